"""The crop cache: crops made once per (manifest, cropper), reused, and resumed after a kill."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torchvision.ops import box_iou

from kemotion.data.manifest import Selection, load_or_build
from kemotion.preprocess.cache import CropCache
from kemotion.preprocess.face_crop import FaceCropper
from kemotion.preprocess.resize import ResizeCropper


@pytest.fixture()
def manifest(tiny_aihub, tmp_path):
    return load_or_build(tiny_aihub, Selection(n_per_class=4, n_detector=7, workers=1), tmp_path)


def test_every_manifest_row_gets_a_square_crop(manifest, tmp_path):
    table = CropCache(ResizeCropper(size=48), tmp_path, workers=2).build(manifest)
    assert len(table) == len(manifest.classification)
    assert table["filename"].tolist() == manifest.classification["filename"].tolist()
    for path in table["crop_path"]:
        assert cv2.imread(path).shape == (48, 48, 3)


def test_second_build_reuses_the_crops(manifest, tmp_path):
    cache = CropCache(ResizeCropper(size=48), tmp_path, workers=1)
    first = cache.build(manifest)
    stamps = {p: os.stat(p).st_mtime_ns for p in first["crop_path"]}
    second = cache.build(manifest)
    assert second["crop_path"].tolist() == first["crop_path"].tolist()
    assert all(os.stat(p).st_mtime_ns == t for p, t in stamps.items())


def test_other_parameters_make_another_cache(manifest, tmp_path):
    small = CropCache(ResizeCropper(size=48), tmp_path).directory(manifest)
    large = CropCache(ResizeCropper(size=64), tmp_path).directory(manifest)
    assert small != large and small.parent == large.parent  # both under the manifest's key


def test_a_killed_build_only_redoes_what_is_missing(manifest, tmp_path):
    cache = CropCache(ResizeCropper(size=48), tmp_path, workers=1)
    first = cache.build(manifest)
    cache.table_path(manifest).unlink()  # killed before the table was written...
    lost = first["crop_path"].iloc[0]
    os.remove(lost)  # ...and before this crop was
    kept = first["crop_path"].iloc[1]
    kept_stamp = os.stat(kept).st_mtime_ns
    again = cache.build(manifest)
    assert cv2.imread(lost).shape == (48, 48, 3)
    assert os.stat(kept).st_mtime_ns == kept_stamp
    assert again["crop_path"].tolist() == first["crop_path"].tolist()
    assert not list(cache.directory(manifest).glob(".*.part"))  # no temporary file left behind


def test_crops_deleted_under_a_finished_table_are_made_again_on_reuse(manifest, tmp_path, caplog):
    cache = CropCache(ResizeCropper(size=48), tmp_path, workers=1)
    first = cache.build(manifest)
    lost = first["crop_path"].iloc[2]
    os.remove(lost)  # e.g. a clean-up of the cache folder by hand
    kept = first["crop_path"].iloc[1]
    kept_stamp = os.stat(kept).st_mtime_ns
    again = cache.build(manifest)
    assert f"1 of the {len(first)} resize crops" in caplog.text and "making them again" in caplog.text
    assert cv2.imread(lost).shape == (48, 48, 3) and os.stat(kept).st_mtime_ns == kept_stamp
    assert again["crop_path"].tolist() == first["crop_path"].tolist()


def test_a_damaged_crop_is_named_with_how_to_rebuild_it(tmp_path):
    from kemotion.preprocess.cache import read_crop

    (tmp_path / "half.jpg").write_bytes(b"\xff\xd8\xff")  # a truncated leftover
    with pytest.raises(OSError, match=r"cannot read cached crop .*half\.jpg: damaged .* delete it, and the next run"):
        read_crop(str(tmp_path / "half.jpg"))


@dataclass(frozen=True)
class PortraitsOnly(FaceCropper):
    """A face cropper whose 'detector' finds one face, the middle third of the frame, in portrait images only."""

    size: int = 16
    margin: float = 0.0
    pick: str = "largest"
    fallback: str = "drop"
    detect_side: int = 64
    batch_size: int = 4
    name: str = "portraits"

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        if width > height:
            return np.zeros((0, 4)), np.zeros(0)
        return np.array([[width / 3, height / 3, 2 * width / 3, 2 * height / 3]]), np.array([0.9])


def test_images_without_a_face_are_dropped_and_listed_not_fatal(manifest, tmp_path):
    cache = CropCache(PortraitsOnly(), tmp_path, workers=1)
    table = cache.build(manifest)
    landscape = manifest.classification["width"] > manifest.classification["height"]
    assert 0 < landscape.sum() < len(landscape)  # the tiny set has both
    assert sorted(table["filename"]) == sorted(manifest.classification.loc[~landscape, "filename"])
    dropped = pd.read_csv(cache.directory(manifest) / "classification_dropped.csv")
    assert sorted(dropped["filename"]) == sorted(manifest.classification.loc[landscape, "filename"])
    assert set(dropped["reason"]) == {"no face found"}
    assert cache.build(manifest)["filename"].tolist() == table["filename"].tolist()  # reused as it was


def test_the_report_counts_fallbacks_recall_and_square_sizes(manifest, tmp_path):
    cache = CropCache(PortraitsOnly(fallback="centre"), tmp_path, workers=2)
    table = cache.build(manifest)
    frame = manifest.classification
    assert len(table) == len(frame)  # "centre" keeps the faceless images
    seen = pd.read_csv(cache.directory(manifest) / "classification_report.csv", keep_default_na=False)
    assert seen["filename"].tolist() == frame["filename"].tolist()
    landscape = (frame["width"] > frame["height"]).to_numpy()
    assert (seen.loc[landscape, "fallback"] == "centre").all() and (seen.loc[~landscape, "fallback"] == "").all()
    portrait = frame[~landscape]
    # the found face is a third of the width and of the height: its square's side is a third of the height
    assert np.allclose(seen.loc[~landscape, "square_side"].astype(float), portrait["height"] / 3, atol=1)
    truth = torch.tensor(portrait[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy())
    found = torch.tensor(np.stack([portrait["width"] / 3, portrait["height"] / 3, 2 * portrait["width"] / 3,
                                   2 * portrait["height"] / 3], axis=1))
    expected = box_iou(found, truth).diagonal().numpy()
    assert np.allclose(seen.loc[~landscape, "best_iou"].astype(float), expected, atol=1e-6)
    text = (cache.directory(manifest) / "classification_report.txt").read_text()
    n, faceless, matched = len(frame), int(landscape.sum()), int((expected >= 0.5).sum())
    assert f"face recall (a face found with IoU >= 0.5 to the annotated box): {matched}/{n}" in text
    assert f"no face found: {faceless}/{n}" in text and f"{faceless} kept as the centre square" in text


def test_a_killed_face_crop_build_redoes_only_what_is_missing(manifest, tmp_path, monkeypatch):
    cache = CropCache(PortraitsOnly(fallback="centre"), tmp_path, workers=1)
    detected = []
    real = PortraitsOnly.detect_batch

    def killed_at_the_third_batch(self, batch):
        if len(detected) == 2:
            raise KeyboardInterrupt  # the run is killed while cropping
        detected.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(PortraitsOnly, "detect_batch", killed_at_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        cache.build(manifest)
    directory = cache.directory(manifest)
    assert not cache.table_path(manifest).exists() and not list(directory.glob(".*.part"))
    done = {p: p.stat().st_mtime_ns for p in directory.glob("*.jpg")}
    assert len(done) == len(list(directory.glob("*.json"))) == 8  # two batches of four, each crop with its JSON

    detected.clear()
    monkeypatch.setattr(PortraitsOnly, "detect_batch", lambda self, batch: detected.append(len(batch)) or
                        real(self, batch))
    table = cache.build(manifest)
    assert sum(detected) == len(manifest.classification) - 8  # only what was missing
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    assert len(table) == len(manifest.classification)

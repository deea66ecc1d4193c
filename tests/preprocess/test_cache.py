"""The crop cache: crops made once per (manifest, cropper), reused, and resumed after a kill."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import pytest

from kemotion.data.manifest import Selection, load_or_build
from kemotion.preprocess.cache import CropCache
from kemotion.preprocess.face_crop import NoFaceFound
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


def test_a_lost_crop_is_named_with_how_to_rebuild_it(tmp_path):
    from kemotion.preprocess.cache import read_crop

    (tmp_path / "half.jpg").write_bytes(b"\xff\xd8\xff")  # a truncated leftover
    with pytest.raises(OSError, match=r"cannot read cached crop .*half\.jpg; delete it and run again"):
        read_crop(str(tmp_path / "half.jpg"))


@dataclass(frozen=True)
class PortraitsOnly:
    """A face cropper with fallback "drop" that finds a face in portrait images only."""

    size: int = 16
    name: str = "portraits"

    def decode_side(self, width: int, height: int) -> int:
        return 64

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1] > image.shape[0]:
            raise NoFaceFound("no face found in a landscape image")
        return np.zeros((self.size, self.size, 3), np.uint8)


def test_images_without_a_face_are_dropped_and_listed_not_fatal(manifest, tmp_path):
    cache = CropCache(PortraitsOnly(), tmp_path, workers=1)
    table = cache.build(manifest)
    landscape = manifest.classification["width"] > manifest.classification["height"]
    assert 0 < landscape.sum() < len(landscape)  # the tiny set has both
    assert sorted(table["filename"]) == sorted(manifest.classification.loc[~landscape, "filename"])
    dropped = pd.read_csv(cache.directory(manifest) / "classification_dropped.csv")
    assert sorted(dropped["filename"]) == sorted(manifest.classification.loc[landscape, "filename"])
    assert set(dropped["reason"]) == {"no face found in a landscape image"}
    assert cache.build(manifest)["filename"].tolist() == table["filename"].tolist()  # reused as it was

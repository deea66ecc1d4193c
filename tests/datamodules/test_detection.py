"""The detection DataModule: the manifest's detector subset as letterboxed ultralytics-format batches."""

from __future__ import annotations

import pytest
import torch

from kemotion.data.synthetic import SyntheticAIHub
from kemotion.datamodules.detection import DetectionDataModule, collate
from kemotion.preprocess.resize import letterbox

SIZE = 96


def datamodule(tiny_aihub, tmp_path, **augment) -> DetectionDataModule:
    source = SyntheticAIHub(tiny_aihub.parent, seed=3, n_subjects=6, images_per_class=16, long_side=320,
                            missing_image_fraction=0.05, workers=1)  # the session's tiny set, already made
    module = DetectionDataModule(source, {"n_per_class": 4, "n_detector": 30, "workers": 1}, tmp_path,
                                 image_size=SIZE, batch_size=4, num_workers=0, cache_workers=1, augment=augment)
    module.prepare_data()
    module.setup("fit")
    return module


def test_batches_are_in_ultralytics_format_with_the_manifest_box(tiny_aihub, tmp_path):
    module = datamodule(tiny_aihub, tmp_path)
    assert source_root(module) == tiny_aihub
    batch = next(iter(module.val_dataloader()))
    n = len(module.datasets["val"])  # 3 of the 30: fewer than a batch
    assert batch["img"].shape == (n, 3, SIZE, SIZE) and batch["img"].dtype == torch.float32
    assert batch["img"].min() >= 0 and batch["img"].max() <= 1
    assert batch["batch_idx"].tolist() == list(range(n)) and batch["cls"].tolist() == [[0.0]] * n
    rows = module.table.set_index("filename")
    for name, box in zip(batch["filename"], batch["bboxes"], strict=True):
        row = rows.loc[name]
        x1, y1, x2, y2 = letterbox(row.width, row.height, SIZE).map_box(row.box_x1, row.box_y1, row.box_x2,
                                                                         row.box_y2)
        expected = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / SIZE
        assert box.tolist() == pytest.approx(expected.tolist(), abs=1e-4)


def source_root(module: DetectionDataModule):
    return module.source.dataset_root


def test_splits_are_the_manifest_detector_splits(tiny_aihub, tmp_path):
    module = datamodule(tiny_aihub, tmp_path)
    sizes = {split: len(dataset) for split, dataset in module.datasets.items()}
    assert sizes == module.manifest.detector["split"].value_counts().to_dict()
    assert sum(sizes.values()) == 30


def test_a_flip_moves_the_box_with_the_face(tiny_aihub, tmp_path):
    plain = datamodule(tiny_aihub, tmp_path / "plain", hflip_p=0.0, affine_p=0.0, color_p=0.0)
    flipped = datamodule(tiny_aihub, tmp_path / "flipped", hflip_p=1.0, affine_p=0.0, color_p=0.0)
    a, b = plain.datasets["train"][0], flipped.datasets["train"][0]
    assert torch.equal(b["img"], a["img"].flip(-1))
    (x1, y1, x2, y2), (u1, v1, u2, v2) = a["boxes"][0].tolist(), b["boxes"][0].tolist()
    assert (u1, v1, u2, v2) == pytest.approx((SIZE - x2, y1, SIZE - x1, y2), abs=1e-3)


def test_the_letterboxes_are_cached_once(tiny_aihub, tmp_path, caplog):
    datamodule(tiny_aihub, tmp_path)
    with caplog.at_level("INFO"):
        datamodule(tiny_aihub, tmp_path)
    assert "Reusing resize crops of the detector subset" in caplog.text


def test_images_whose_face_was_cut_away_have_no_targets():
    items = [{"img": torch.zeros(3, 8, 8, dtype=torch.uint8), "boxes": torch.zeros(0, 4), "filename": "a"},
             {"img": torch.zeros(3, 8, 8, dtype=torch.uint8), "boxes": torch.tensor([[0.0, 2, 4, 8]]),
              "filename": "b"}]
    batch = collate(items)
    assert batch["batch_idx"].tolist() == [1.0]
    assert batch["bboxes"].tolist() == [[0.25, 0.625, 0.5, 0.75]]

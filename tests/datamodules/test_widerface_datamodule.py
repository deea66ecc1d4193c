"""WIDER FACE as detector data: many faces per letterboxed image, invalid and tiny faces left out of the targets,
the WIDER evaluation's ground truth riding along on val and test batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kemotion.data.synthetic.wider import SyntheticWider
from kemotion.datamodules.widerface import WiderDetectionDataModule
from kemotion.preprocess.resize import letterbox

SIZE = 96


@pytest.fixture(scope="module")
def wider_module(tmp_path_factory) -> WiderDetectionDataModule:
    root = tmp_path_factory.mktemp("widerdm")
    source = SyntheticWider(root / "data", seed=2, n_train=12, n_val=6, long_side=256, workers=1)
    module = WiderDetectionDataModule(source, root / "cache", image_size=SIZE, batch_size=4, num_workers=0,
                                      cache_workers=1, augment={"hflip_p": 0.0, "affine_p": 0.0, "color_p": 0.0},
                                      min_face_size=3)
    module.prepare_data()
    module.setup("fit")
    return module


def test_splits_are_wider_train_and_val_with_val_also_the_test_split(wider_module):
    assert {split: len(d) for split, d in wider_module.datasets.items()} == {"train": 12, "val": 6, "test": 6}


def test_targets_are_the_valid_faces_large_enough_mapped_into_the_letterbox(wider_module):
    dataset = wider_module.datasets["train"]
    faces = wider_module.manifest.faces
    table = wider_module.table.set_index("filename")
    checked = 0
    for index, name in enumerate(dataset.filenames):
        row = table.loc[name]
        geometry = letterbox(int(row.width), int(row.height), SIZE)
        mine = faces[faces["filename"] == name]
        shorter = np.minimum(mine["x2"] - mine["x1"], mine["y2"] - mine["y1"]) * geometry.scale
        wanted = mine[(mine["invalid"] == 0) & (shorter >= 3)]
        expected = [geometry.map_box(*box) for box in wanted[["x1", "y1", "x2", "y2"]].to_numpy()]
        item = dataset[index]
        assert np.allclose(item["boxes"].numpy(), np.clip(expected, 0, SIZE).reshape(-1, 4), atol=1e-3)
        checked += len(expected)
    assert checked > 12  # several faces per image
    dropped = (faces["invalid"] != 0).sum()
    assert dropped > 0


def test_val_batches_carry_the_toolkit_ground_truth_and_train_batches_do_not(wider_module):
    train = next(iter(wider_module.train_dataloader()))
    assert "wider_truth" not in train
    val = next(iter(wider_module.val_dataloader()))
    assert len(val["wider_truth"]) == len(val["img"]) and all(t is not None for t in val["wider_truth"])
    assert val["letterbox"].shape == (len(val["img"]), 3)
    # several faces in one image: batch_idx repeats
    counts = torch.bincount(val["batch_idx"].long(), minlength=len(val["img"]))
    assert counts.max() > 1
    # the truth is in source pixels: the letterbox maps it onto the targets (valid faces of hard-subset size)
    scale, left, top = val["letterbox"][0].tolist()
    truth = val["wider_truth"][0]
    hard = truth.boxes[truth.kept[:, 2]]
    mapped = np.c_[hard[:, :2] * scale + [left, top], (hard[:, :2] + hard[:, 2:]) * scale + [left, top]]
    targets = val["bboxes"][val["batch_idx"] == 0] * SIZE
    xyxy = torch.cat([targets[:, :2] - targets[:, 2:] / 2, targets[:, :2] + targets[:, 2:] / 2], 1).numpy()
    for box in mapped:
        assert np.abs(xyxy - box).max(axis=1).min() < 1.5  # every hard face is a target (±1 px: the .mat's ints)

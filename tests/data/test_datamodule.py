"""The classifier's loaders: augmentations differ between DataLoader workers and repeat under the same seed."""

from __future__ import annotations

import cv2
import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from kemotion.data.datamodule import ClassificationDataModule, CropDataset
from kemotion.data.transforms import train_transform

AUGMENT = {"random_erasing_p": 1.0, "hflip_p": 0.5, "affine_p": 1.0, "color_p": 1.0}


def augmented(tmp_path, seed: int, num_workers: int) -> list[torch.Tensor]:
    """One crop, eight times over, through the train loader: any difference between items is augmentation."""
    crop = tmp_path / "crop.jpg"
    if not crop.exists():
        cv2.imwrite(str(crop), np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    frame = pd.DataFrame({"crop_path": [str(crop)] * 8, "label": [0] * 8})
    module = ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path,
                                      batch_size=1, num_workers=num_workers)
    module.datasets = {"train": CropDataset(frame, train_transform(32, **AUGMENT))}
    L.seed_everything(seed, workers=True, verbose=False)
    return [images[0] for images, _ in module.train_dataloader()]


def test_workers_do_not_replay_each_others_augmentations(tmp_path):
    items = augmented(tmp_path, seed=0, num_workers=2)
    # items 0 and 1 are the first of worker 0 and worker 1: forked copies of one unseeded state would make them equal
    assert not torch.equal(items[0], items[1])
    assert len({item.numpy().tobytes() for item in items}) == len(items)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_same_seed_same_augmentations(tmp_path, num_workers):
    first = augmented(tmp_path, seed=0, num_workers=num_workers)
    again = augmented(tmp_path, seed=0, num_workers=num_workers)
    other = augmented(tmp_path, seed=1, num_workers=num_workers)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other, strict=True))

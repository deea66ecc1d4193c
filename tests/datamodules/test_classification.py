"""The classifier's loaders: augmentations differ between DataLoader workers and repeat under the same seed; under DDP
every test image is tested once and every rank gets training batches."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import SequentialSampler

from kemotion.data.transforms import train_transform
from kemotion.datamodules.classification import ClassificationDataModule, CropDataset

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


def _module_on_rank(tmp_path, rank: int, world_size: int, images: int) -> ClassificationDataModule:
    frame = pd.DataFrame({"crop_path": [f"{i}.jpg" for i in range(images)], "label": [i % 7 for i in range(images)]})
    module = ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path, batch_size=4,
                                      num_workers=0)
    module.trainer = SimpleNamespace(world_size=world_size, global_rank=rank)  # what Lightning attaches
    module.datasets = {"train": CropDataset(frame, None), "test": CropDataset(frame, None)}
    return module


def test_under_ddp_each_test_image_is_tested_on_exactly_one_rank(tmp_path):
    ranks = [list(_module_on_rank(tmp_path, rank, 2, images=7).test_dataloader().sampler) for rank in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(7))  # Lightning's padding sampler would give 8, one twice
    assert isinstance(_module_on_rank(tmp_path, 0, 1, images=7).test_dataloader().sampler, SequentialSampler)


@pytest.mark.parametrize(("world_size", "drop_last"), [(1, True), (2, False)])
def test_the_last_partial_batch_is_dropped_only_when_each_rank_has_a_full_one(tmp_path, world_size, drop_last):
    # 6 images of batch 4: one rank drops its last 2; two ranks get 3 each, which dropping would leave with nothing
    assert _module_on_rank(tmp_path, 0, world_size, images=6).train_dataloader().drop_last == drop_last


def test_soft_labels_are_the_training_target_and_val_and_test_keep_the_hard_label(tmp_path):
    crop = tmp_path / "crop.jpg"
    cv2.imwrite(str(crop), np.zeros((40, 40, 3), dtype=np.uint8))
    table = pd.DataFrame({"crop_path": [str(crop)] * 3, "label": [1, 1, 2], "split": ["train", "val", "test"],
                          "answers": ["분노|슬픔|슬픔", "슬픔|슬픔|슬픔", "슬픔|슬픔|슬픔"]})
    soft = ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path, image_size=32,
                                    labels="soft", uploader_weight=2.0)._datasets(table)
    _, target = soft["train"][0]
    assert target.tolist() == pytest.approx([0, 0.6, 0.4, 0, 0, 0, 0])  # uploader 2 + A 1 on angry, B and C on sad
    assert soft["val"][0][1] == 1 and soft["test"][0][1] == 2  # scored against the uploader's label
    hard = ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path,
                                    image_size=32)._datasets(table)
    assert hard["train"][0][1] == 1
    with pytest.raises(ValueError, match="data.labels must be one of"):
        ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path, labels="votes")

"""The classification LightningDataModule: dataset → manifest → cached crops → train/val/test loaders.

Two opt-in speed-ups for a GPU (`data.decoded_cache`, `data.device_augment`): read the crops decoded once at the
input size from a memmap instead of decoding each JPEG every epoch (`kemotion.preprocess.decoded`), and leave the
flip, normalisation and Random Erasing to whole batches on the training device
(`kemotion.data.transforms.BatchAugment`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import Dataset

from kemotion.data.manifest import Manifest, Selection
from kemotion.data.transforms import BatchAugment, eval_transform, train_transform
from kemotion.data.votes import vote_distribution
from kemotion.datamodules.base import DatasetSource, ManifestDataModule
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.cropper import Cropper
from kemotion.preprocess.decoded import DecodedCache, DecodedCrops

log = logging.getLogger(__name__)

LABEL_KINDS = ("hard", "soft")


class CropDataset(Dataset):
    """(image tensor, label index) pairs read from the crop cache, or with `decoded` from its decoded cache (the
    frame's index is then each image's row there); with `targets` ((N, 7) soft labels), (image tensor, its row of
    `targets`) instead."""

    def __init__(self, frame: pd.DataFrame, transform: Any, decoded: DecodedCrops | None = None,
                 targets: np.ndarray | None = None) -> None:
        self.paths = frame["crop_path"].tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64) if targets is None else torch.from_numpy(targets)
        self.transform = transform
        self.decoded, self.rows = decoded, frame.index.to_numpy()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        image = self.decoded[self.rows[index]] if self.decoded is not None else read_crop(self.paths[index])
        label = self.labels[index]
        return self.transform(image=image)["image"], label if isinstance(label, torch.Tensor) else int(label)


class ClassificationDataModule(ManifestDataModule):
    def __init__(
        self,
        source: DatasetSource,
        cropper: Cropper,
        selection: Selection | dict,
        cache_dir: str | Path,
        image_size: int = 224,
        batch_size: int = 16,
        num_workers: int = 2,
        crop_workers: int = 2,
        augment: dict | None = None,
        pin_memory: bool = False,
        epochs: int | None = None,  # the schedule this dataset is meant to train for; read by the trainer config
        detector: dict | None = None,  # the face detector's scale and schedule on this dataset; read by conf/detector
        decoded_cache: bool = False,
        device_augment: bool = False,
        channels_last: bool = False,  # with device_augment: batches in channels_last memory format
        labels: str = "hard",  # train on the uploader's label ("hard", the paper's) or the votes ("soft": data/votes)
        uploader_weight: float = 1.0,  # the uploader's vote against each annotator's 1 (labels="soft")
    ) -> None:
        if labels not in LABEL_KINDS:
            raise ValueError(f"data.labels must be one of {LABEL_KINDS}, got {labels!r}")
        super().__init__(source, selection, cache_dir)
        self.save_hyperparameters(ignore=["source", "cropper", "selection"])
        self.cropper = cropper
        self.decoded: DecodedCrops | None = None
        augment = dict(augment or {})
        self.batch_augment = BatchAugment(augment.get("random_erasing_p", 0.5), augment.get("hflip_p", 0.5),
                                          channels_last) if device_augment else None

    def _cache(self, manifest: Manifest) -> pd.DataFrame:
        log.info("Manifest %s\n%s", manifest.directory, manifest.summary())
        crops = CropCache(self.cropper, self.cache_dir, self.hparams.crop_workers)
        table = crops.build(manifest)
        if self.hparams.decoded_cache:
            decoded = DecodedCache(crops.directory(manifest), self.hparams.image_size, self.hparams.crop_workers)
            self.decoded = decoded.build(table)
        return table

    def _datasets(self, table: pd.DataFrame) -> dict[str, Dataset]:
        augment, size = dict(self.hparams.augment or {}), self.hparams.image_size
        on_device = self.batch_augment is not None
        if on_device:
            self.batch_augment.set_random_seed((torch.initial_seed() + rank_zero_only.rank) % 2**32)
        transforms = {"train": train_transform(size, **augment, on_device=on_device),
                      "val": eval_transform(size, on_device=on_device),
                      "test": eval_transform(size, on_device=on_device)}
        datasets = {split: CropDataset(table[table["split"] == split], transform, self.decoded)
                    for split, transform in transforms.items()}
        if self.hparams.labels == "soft":  # the training target only: val and test score against the hard label
            train = table[table["split"] == "train"]
            datasets["train"] = CropDataset(train, transforms["train"], self.decoded, vote_distribution(
                train["label"], train["answers"], self.hparams.uploader_weight))
        return datasets

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """With `device_augment`: the batch's uint8 images (its first item) normalised on its device, and in training
        flipped and erased too (`BatchAugment`)."""
        if self.batch_augment is None:
            return batch
        images, *rest = batch
        return [self.batch_augment(images, train=self.trainer is not None and self.trainer.training), *rest]

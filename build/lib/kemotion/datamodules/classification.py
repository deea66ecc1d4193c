"""The classification LightningDataModule: dataset → manifest → cached crops → train/val/test loaders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from kemotion.data.manifest import Manifest, Selection
from kemotion.data.transforms import eval_transform, train_transform
from kemotion.datamodules.base import DatasetSource, ManifestDataModule
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.cropper import Cropper

log = logging.getLogger(__name__)


class CropDataset(Dataset):
    """(image tensor, label index) pairs read from the crop cache."""

    def __init__(self, frame: pd.DataFrame, transform: Any) -> None:
        self.paths = frame["crop_path"].tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.transform(image=read_crop(self.paths[index]))["image"]
        return image, int(self.labels[index])


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
    ) -> None:
        super().__init__(source, selection, cache_dir)
        self.save_hyperparameters(ignore=["source", "cropper", "selection"])
        self.cropper = cropper

    def _cache(self, manifest: Manifest) -> pd.DataFrame:
        log.info("Manifest %s\n%s", manifest.directory, manifest.summary())
        return CropCache(self.cropper, self.cache_dir, self.hparams.crop_workers).build(manifest)

    def _datasets(self, table: pd.DataFrame) -> dict[str, Dataset]:
        augment = dict(self.hparams.augment or {})
        transforms = {"train": train_transform(self.hparams.image_size, **augment),
                      "val": eval_transform(self.hparams.image_size),
                      "test": eval_transform(self.hparams.image_size)}
        return {split: CropDataset(table[table["split"] == split], transform)
                for split, transform in transforms.items()}

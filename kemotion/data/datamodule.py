"""The classification LightningDataModule: dataset → manifest → cached crops → train/val/test loaders.

`prepare_data` (one process) makes whatever is missing — the synthetic dataset, the manifest, the crops — and
`setup` (every process) only reads what it made, so a sweep or a DDP run builds each of them once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import cv2
import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from kemotion.data.manifest import Manifest, Selection, load_or_build
from kemotion.data.transforms import eval_transform, train_transform
from kemotion.preprocess.cache import CropCache
from kemotion.preprocess.cropper import Cropper

log = logging.getLogger(__name__)


class DatasetSource(Protocol):
    def prepare(self) -> Path:
        """The root of an AI-Hub-layout folder, made first if needed (synthetic) or checked (a download)."""


class CropDataset(Dataset):
    """(image tensor, label index) pairs read from the crop cache."""

    def __init__(self, frame: pd.DataFrame, transform: Any) -> None:
        self.paths = frame["crop_path"].tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = cv2.imread(self.paths[index], cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read cached crop {self.paths[index]}; delete it and run again to rebuild it")
        image = self.transform(image=cv2.cvtColor(image, cv2.COLOR_BGR2RGB))["image"]
        return image, int(self.labels[index])


class SplitLoaders(L.LightningDataModule):
    """The train/val/test loaders over `self.datasets`, shared by kemotion's data modules."""

    datasets: dict[str, Dataset]
    collate_fn: Any = None  # torch's default

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=len(self.datasets["train"]) > self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, split: str, shuffle: bool = False, drop_last: bool = False) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(self.datasets[split], batch_size=self.hparams.batch_size, shuffle=shuffle,
                          drop_last=drop_last, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=self.hparams.pin_memory, collate_fn=self.collate_fn)


class ClassificationDataModule(SplitLoaders):
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
        super().__init__()
        self.save_hyperparameters(ignore=["source", "cropper", "selection"])
        self.source, self.cropper = source, cropper
        self.selection = selection if isinstance(selection, Selection) else Selection(**selection)
        self.cache_dir = Path(cache_dir)
        self.manifest: Manifest | None = None
        self.crops: pd.DataFrame | None = None
        self.datasets: dict[str, CropDataset] = {}

    def prepare_data(self) -> None:
        self._prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.crops is None:
            self._prepare()  # in every process: all cache hits after prepare_data
        augment = dict(self.hparams.augment or {})
        transforms = {"train": train_transform(self.hparams.image_size, **augment),
                      "val": eval_transform(self.hparams.image_size),
                      "test": eval_transform(self.hparams.image_size)}
        self.datasets = {split: CropDataset(self.crops[self.crops["split"] == split], transform)
                         for split, transform in transforms.items()}

    def _prepare(self) -> None:
        root = self.source.prepare()
        self.manifest = load_or_build(root, self.selection, self.cache_dir)
        log.info("Manifest %s\n%s", self.manifest.directory, self.manifest.summary())
        self.crops = CropCache(self.cropper, self.cache_dir, self.hparams.crop_workers).build(self.manifest)

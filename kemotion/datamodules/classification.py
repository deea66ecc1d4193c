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
from kemotion.data.votes import vote_distribution
from kemotion.datamodules.base import DatasetSource, ManifestDataModule
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.cropper import Cropper

log = logging.getLogger(__name__)

LABEL_KINDS = ("hard", "soft")


class CropDataset(Dataset):
    """(image tensor, label index) pairs read from the crop cache; with `targets` ((N, 7) soft labels), (image
    tensor, its row of `targets`) instead."""

    def __init__(self, frame: pd.DataFrame, transform: Any, targets: np.ndarray | None = None) -> None:
        self.paths = frame["crop_path"].tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64) if targets is None else torch.from_numpy(targets)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        image = self.transform(image=read_crop(self.paths[index]))["image"]
        label = self.labels[index]
        return image, label if isinstance(label, torch.Tensor) else int(label)


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
        labels: str = "hard",  # train on the uploader's label ("hard", the paper's) or the votes ("soft": data/votes)
        uploader_weight: float = 1.0,  # the uploader's vote against each annotator's 1 (labels="soft")
    ) -> None:
        if labels not in LABEL_KINDS:
            raise ValueError(f"data.labels must be one of {LABEL_KINDS}, got {labels!r}")
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
        datasets = {split: CropDataset(table[table["split"] == split], transform)
                    for split, transform in transforms.items()}
        if self.hparams.labels == "soft":  # the training target only: val and test score against the hard label
            train = table[table["split"] == "train"]
            datasets["train"] = CropDataset(train, transforms["train"], vote_distribution(
                train["label"], train["answers"], self.hparams.uploader_weight))
        return datasets

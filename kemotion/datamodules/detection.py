"""The face-detection LightningDataModule: the manifest's detector subset, letterboxed once, one face box each.

Each source image is decoded once and cached as a `image_size` letterbox (the crop cache with a letterboxing
`ResizeCropper`); its face box is mapped into the letterbox by the same geometry. Batches are in ultralytics'
format, so its loss and NMS take them as they are: `img` B×3×S×S float in [0, 1], and the targets flattened
over the batch as `batch_idx` (N,), `cls` (N, 1) and `bboxes` (N, 4) normalised centre-x, centre-y, w, h.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from kemotion.data.manifest import Manifest, Selection
from kemotion.datamodules.base import DatasetSource, ManifestDataModule
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.resize import PAD_GREY, ResizeCropper, letterbox

log = logging.getLogger(__name__)

FACE = 0  # the detector's only class
MIN_BOX_VISIBILITY = 0.4  # a face cut to less than this by augmentation is dropped from the targets


def train_transform(image_size: int, hflip_p: float = 0.5, affine_p: float = 0.8, scale: float = 0.3,
                    translate: float = 0.1, color_p: float = 0.5) -> A.Compose:
    """Flip, scale/shift (faces of other sizes and places) and colour jitter; boxes follow (albumentations)."""
    return A.Compose([
        A.HorizontalFlip(p=hflip_p),
        A.Affine(scale=(1 - scale, 1 + scale), translate_percent=(-translate, translate),
                 border_mode=cv2.BORDER_CONSTANT, fill=PAD_GREY, p=affine_p),
        A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=40, val_shift_limit=30, p=color_p),
    ], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=MIN_BOX_VISIBILITY))


class FaceBoxDataset(Dataset):
    """(letterboxed RGB image, face boxes in its pixels) from the cached letterboxes."""

    def __init__(self, frame: pd.DataFrame, image_size: int, transform: A.Compose | None = None) -> None:
        self.paths = frame["crop_path"].tolist()
        self.filenames = frame["filename"].tolist()
        self.boxes = [
            letterbox(w, h, image_size).map_box(x1, y1, x2, y2)
            for w, h, x1, y1, x2, y2 in frame[["width", "height", "box_x1", "box_y1", "box_x2", "box_y2"]].itertuples(
                index=False)
        ]
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = read_crop(self.paths[index])
        boxes = np.array([self.boxes[index]], np.float32).clip(0, self.image_size)
        if self.transform is not None:
            out = self.transform(image=image, bboxes=boxes, labels=[FACE] * len(boxes))
            image, boxes = out["image"], np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        return {"img": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                "boxes": torch.from_numpy(boxes), "filename": self.filenames[index]}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images (uint8 → float [0, 1]) and flatten the boxes into ultralytics' batch format."""
    images = torch.stack([item["img"] for item in items]).float() / 255
    size = images.shape[-1]
    boxes = [item["boxes"] for item in items]
    xyxy = torch.cat(boxes) if boxes else torch.zeros(0, 4)
    xywh = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                        xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], dim=1) / size
    return {
        "img": images,
        "batch_idx": torch.cat([torch.full((len(b),), i, dtype=torch.float32) for i, b in enumerate(boxes)]),
        "cls": torch.zeros(len(xyxy), 1),
        "bboxes": xywh,
        "filename": [item["filename"] for item in items],
    }


class DetectionDataModule(ManifestDataModule):
    collate_fn = staticmethod(collate)
    subset = "detector"  # the manifest subset it reads
    dataset_class = FaceBoxDataset

    def __init__(
        self,
        source: DatasetSource,
        selection: Selection | dict,
        cache_dir: str | Path,
        image_size: int = 640,
        batch_size: int = 16,
        num_workers: int = 2,
        cache_workers: int = 2,
        augment: dict | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(source, selection, cache_dir)
        self.save_hyperparameters(ignore=["source", "selection"])

    def _cache(self, manifest: Manifest) -> pd.DataFrame:
        rows = getattr(manifest, self.subset)
        log.info("%s subset of %s: %s", self.subset, manifest.directory, rows["split"].value_counts().to_dict())
        cropper = ResizeCropper(size=self.hparams.image_size, keep_aspect=True)
        return CropCache(cropper, self.cache_dir, self.hparams.cache_workers).build(manifest, self.subset)

    def _datasets(self, table: pd.DataFrame) -> dict[str, Dataset]:
        size = self.hparams.image_size
        augment = train_transform(size, **(self.hparams.augment or {}))
        return {split: self.dataset_class(table[table["split"] == split], size, augment if split == "train" else None)
                for split in ("train", "val", "test")}

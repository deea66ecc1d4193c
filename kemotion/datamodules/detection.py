"""The face-detection LightningDataModule: images letterboxed once, each with a table of face boxes.

Each source image is decoded once and cached as an `image_size` letterbox (the crop cache with a letterboxing
`ResizeCropper`); its face boxes are mapped into the letterbox by the same geometry. Batches are in ultralytics'
format, so its loss and NMS take them as they are: `img` B×3×S×S float in [0, 1], and the targets flattened
over the batch as `batch_idx` (N,), `cls` (N, 1) and `bboxes` (N, 4) normalised centre-x, centre-y, w, h. They also
carry `letterbox` (B, 3: scale, left, top), which maps the input's pixels back to the source's, and, when the data
has the WIDER FACE evaluation's ground truth, `wider_truth` (one `WiderTruth` per image, or None).

`DetectionDataModule` reads the AI-Hub manifest's detector subset (one face box per image, the annotators' median);
`kemotion.datamodules.widerface.WiderDetectionDataModule` reads WIDER FACE (many faces per image). A subclass says
which images (`_cache`), which training faces (`_faces`) and which evaluation ground truth (`_truths`) it has.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from kemotion.data.manifest import Manifest, Selection
from kemotion.data.widerface import WiderTruth
from kemotion.datamodules.base import DatasetSource, ManifestDataModule
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.resize import PAD_GREY, ResizeCropper, letterbox

log = logging.getLogger(__name__)

FACE = 0  # the detector's only class
BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]  # the manifest's face box
MIN_BOX_VISIBILITY = 0.4  # a face cut to less than this by augmentation is dropped from the targets


def boxes_train_transform(image_size: int, hflip_p: float = 0.5, affine_p: float = 0.8, scale: float = 0.3,
                    translate: float = 0.1, color_p: float = 0.5) -> A.Compose:
    """Flip, scale/shift (faces of other sizes and places) and colour jitter; boxes follow (albumentations)."""
    return A.Compose([
        A.HorizontalFlip(p=hflip_p),
        A.Affine(scale=(1 - scale, 1 + scale), translate_percent=(-translate, translate),
                 border_mode=cv2.BORDER_CONSTANT, fill=PAD_GREY, p=affine_p),
        A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=40, val_shift_limit=30, p=color_p),
    ], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=MIN_BOX_VISIBILITY))


class FaceBoxDataset(Dataset):
    """(letterboxed RGB image, its face boxes in the letterbox's pixels) from the cached letterboxes.

    `faces` maps a filename to its training faces, (n, 4) xyxy in the source's pixels; `truths`, when given, to the
    WIDER evaluation's ground truth of the image (None for an image without it)."""

    def __init__(self, frame: pd.DataFrame, image_size: int, transform: A.Compose | None = None,
                 faces: Mapping[str, np.ndarray] | None = None,
                 truths: Mapping[str, WiderTruth | None] | None = None) -> None:
        self.paths = frame["crop_path"].tolist()
        self.filenames = frame["filename"].tolist()
        if faces is None:  # one face per image, the manifest's box
            faces = dict(zip(self.filenames, frame[BOX].to_numpy(np.float64).reshape(-1, 1, 4), strict=True))
        self.letterboxes = [letterbox(w, h, image_size) for w, h in frame[["width", "height"]].itertuples(index=False)]
        self.boxes = [np.array([geometry.map_box(*box) for box in faces.get(name, np.zeros((0, 4)))],
                               np.float32).reshape(-1, 4)
                      for name, geometry in zip(self.filenames, self.letterboxes, strict=True)]
        self.truths = None if truths is None else [truths.get(name) for name in self.filenames]
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = read_crop(self.paths[index])
        boxes = self.boxes[index].clip(0, self.image_size)
        if self.transform is not None:
            out = self.transform(image=image, bboxes=boxes, labels=[FACE] * len(boxes))
            image, boxes = out["image"], np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        geometry = self.letterboxes[index]
        item = {"img": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                "boxes": torch.from_numpy(boxes), "filename": self.filenames[index],
                "letterbox": torch.tensor([geometry.scale, geometry.left, geometry.top], dtype=torch.float64)}
        if self.truths is not None and self.truths[index] is not None:
            item["wider_truth"] = self.truths[index]
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images (uint8 → float [0, 1]) and flatten the boxes into ultralytics' batch format."""
    images = torch.stack([item["img"] for item in items]).float() / 255
    size = images.shape[-1]
    boxes = [item["boxes"] for item in items]
    xyxy = torch.cat(boxes) if boxes else torch.zeros(0, 4)
    xywh = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                        xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], dim=1) / size
    batch = {
        "img": images,
        "batch_idx": torch.cat([torch.full((len(b),), i, dtype=torch.float32) for i, b in enumerate(boxes)]),
        "cls": torch.zeros(len(xyxy), 1),
        "bboxes": xywh,
        "filename": [item["filename"] for item in items],
    }
    if all("letterbox" in item for item in items):
        batch["letterbox"] = torch.stack([item["letterbox"] for item in items])
    if any("wider_truth" in item for item in items):
        batch["wider_truth"] = [item.get("wider_truth") for item in items]
    return batch


class DetectionDataModule(ManifestDataModule):
    collate_fn = staticmethod(collate)
    splits = {"train": "train", "val": "val", "test": "test"}  # each loader's split → the table's split it reads
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
        augment = boxes_train_transform(size, **(self.hparams.augment or {}))
        faces, truths = self._faces(table), self._truths(table)
        return {split: self.dataset_class(table[table["split"] == source], size, augment if split == "train" else None,
                                          faces, truths)
                for split, source in self.splits.items()}

    def _faces(self, table: pd.DataFrame) -> Mapping[str, np.ndarray] | None:
        """filename → (n, 4) xyxy training faces in source pixels; None: the table's one box per image."""
        return None

    def _truths(self, table: pd.DataFrame) -> Mapping[str, WiderTruth | None] | None:
        """filename → the WIDER evaluation's ground truth; None: the data has none (only COCO mAP is logged)."""
        return None

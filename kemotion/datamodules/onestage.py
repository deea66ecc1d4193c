"""The one-stage data: the manifest's classification subset as detection data, the emotion as the face box's class.

The same images and split as the Table 5 cells (so the same test images), letterboxed once like the face detector's
data (`DetectionDataModule`, `data.detector.image_size`), each with its annotated face box. Batches are the detector's
(ultralytics' format) with `cls` set to the image's emotion index, plus `label` (B,): the image's emotion, which the
one-stage model is scored against as a classifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from kemotion.datamodules import detection
from kemotion.datamodules.detection import DetectionDataModule, FaceBoxDataset


class EmotionBoxDataset(FaceBoxDataset):
    """A letterboxed image, its face box(es) and its emotion label."""

    def __init__(self, frame: pd.DataFrame, image_size: int, transform: Any = None, *faces_and_truths: Any) -> None:
        super().__init__(frame, image_size, transform, *faces_and_truths)
        self.labels = frame["label"].to_numpy(dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**super().__getitem__(index), "label": int(self.labels[index])}


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The detector's batch, every face box of an image classed with that image's emotion, and `label` (B,)."""
    batch = detection.collate(items)
    batch["cls"] = torch.cat([torch.full((len(item["boxes"]), 1), float(item["label"])) for item in items])
    batch["label"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
    return batch


class EmotionBoxDataModule(DetectionDataModule):
    collate_fn = staticmethod(collate)
    subset = "classification"
    dataset_class = EmotionBoxDataset

"""OpenCV's Haar frontal-face cascade as a cropper: detect on a small grey copy, crop at full resolution.

Haar cascades give no confidence. As a score we use the cascade's level weight from `detectMultiScale3`
(`outputRejectLevels=True`): the summed stage response of the last stage a window reached, higher = more
face-like. The boxes are the same as plain `detectMultiScale`'s for the same parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kemotion.core.keys import RUNTIME_SETTING
from kemotion.preprocess.face_crop import DEFAULT_MARGIN, FaceCropper, NoFace, PickRule

FRONTAL_FACE = "haarcascade_frontalface_default.xml"  # shipped with opencv-python in cv2.data.haarcascades


@dataclass(frozen=True)
class OpenCVCropper(FaceCropper):
    size: int = 500  # paper §3.3: crops are 500×500
    margin: float = DEFAULT_MARGIN  # fraction of the face box's longer side added on each side
    scale_factor: float = 1.1  # image pyramid step of detectMultiScale (OpenCV's default)
    min_neighbors: int = 5  # overlapping raw detections needed to keep a face (higher: fewer false faces)
    min_size: float = 0.1  # smallest face side: < 1 a fraction of the image's shorter side, >= 1 full-image pixels
    detect_side: int = 640  # long side of the grey copy the cascade runs on (never enlarged)
    pick: PickRule = "largest"  # which face when several: "largest" box or most "confident" (level weight)
    fallback: NoFace = "resize"  # no face: "resize" (the paper's baseline), "centre" square, or "drop"
    cascade: str = FRONTAL_FACE  # a file in cv2.data.haarcascades, or a path
    batch_size: int = field(default=1, metadata=RUNTIME_SETTING)  # files per worker task
    name: str = "opencv"

    def __post_init__(self) -> None:
        self.check_policy()
        if self.scale_factor <= 1 or self.min_neighbors < 0 or self.min_size <= 0 or self.detect_side < 1:
            raise ValueError("need scale_factor > 1, min_neighbors >= 0, min_size > 0 and detect_side >= 1")

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in an H×W×3 RGB image: (n, 4) float xyxy boxes in its pixels and (n,) level-weight scores."""
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_side / max(width, height))  # detection pixels per image pixel
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # grey first: the resize then moves one channel, not three
        if scale < 1:
            small = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = cv2.resize(grey, small, interpolation=cv2.INTER_AREA)
        min_side = self.min_size * min(width, height) if self.min_size < 1 else self.min_size
        min_px = max(1, round(min_side * scale))
        found, _, weights = _cascade(self.cascade).detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_px, min_px),
            outputRejectLevels=True)
        xywh = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        # map back by the actual per-axis ratio (rounding the small size makes it differ slightly from `scale`)
        ratio_x, ratio_y = width / grey.shape[1], height / grey.shape[0]
        boxes = np.stack([xywh[:, 0] * ratio_x, xywh[:, 1] * ratio_y, (xywh[:, 0] + xywh[:, 2]) * ratio_x,
                          (xywh[:, 1] + xywh[:, 3]) * ratio_y], axis=1)
        return boxes, np.asarray(weights, dtype=np.float64).reshape(-1)


@functools.cache
def _cascade(cascade: str) -> cv2.CascadeClassifier:
    """The classifier, loaded once per process (a module cache, not a field: the cropper pickles and hashes)."""
    path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise FileNotFoundError(f"could not load the Haar cascade {path}")
    return classifier

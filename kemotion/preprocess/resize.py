"""The paper's baseline: no face detection, the whole image resized to the crop size."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from kemotion.core.keys import RUNTIME_SETTING
from kemotion.preprocess.cropper import WholeFrameCropper

PAD_GREY = 114  # the letterbox fill of YOLO detectors (ultralytics' LetterBox), also used for classifier inputs


@dataclass(frozen=True)
class ResizeCropper(WholeFrameCropper):
    size: int = 500  # paper §3.3: classifier inputs are prepared at 500×500
    keep_aspect: bool = False  # the paper's baseline stretches the whole frame (its Fig. 3); True letterboxes
    name: str = "resize"
    batch_size: int = field(default=1, metadata=RUNTIME_SETTING)

    def decode_side(self, width: int, height: int) -> int:
        """The long side to decode at (JPEG DCT scaling), no larger than the output needs: a letterbox needs the
        long side at `size`, a stretch the short side."""
        long, short = max(width, height), min(width, height)
        return self.size if self.keep_aspect else math.ceil(self.size * long / short)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not self.keep_aspect:
            return _shrink(image, self.size, self.size)
        height, width = image.shape[:2]
        box = letterbox(width, height, self.size)
        inner = _shrink(image, box.inner_width, box.inner_height)
        canvas = np.full((self.size, self.size, 3), PAD_GREY, np.uint8)
        canvas[box.top: box.top + box.inner_height, box.left: box.left + box.inner_width] = inner
        return canvas


@dataclass(frozen=True)
class Letterbox:
    """Where a width × height image lands in a size × size letterbox: scaled by `scale`, offset by (left, top)."""

    scale: float
    left: int
    top: int
    inner_width: int
    inner_height: int

    def map_box(self, x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
        """A box in the source image's pixels → the same box in the letterbox's pixels."""
        return (x1 * self.scale + self.left, y1 * self.scale + self.top,
                x2 * self.scale + self.left, y2 * self.scale + self.top)

    def unmap_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) xyxy boxes in the letterbox's pixels → the same boxes in the source image's pixels."""
        offset = np.array([self.left, self.top] * 2, dtype=np.float64)
        return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - offset) / self.scale


def letterbox(width: int, height: int, size: int) -> Letterbox:
    scale = size / max(width, height)
    inner_width, inner_height = max(1, round(width * scale)), max(1, round(height * scale))
    return Letterbox(scale, (size - inner_width) // 2, (size - inner_height) // 2, inner_width, inner_height)


def _shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing), bilinear when enlarging."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

"""The paper's baseline: no face detection, the whole image resized to the crop size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ResizeCropper:
    size: int = 500  # paper §3.3: classifier inputs are prepared at 500×500
    keep_aspect: bool = False  # the paper's baseline stretches the whole frame (its Fig. 3); True letterboxes
    name: str = "resize"

    def decode_side(self, width: int, height: int) -> int | None:
        return self.size  # never more than the output needs: JPEG DCT scaling does the rest

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not self.keep_aspect:
            return _shrink(image, self.size, self.size)
        height, width = image.shape[:2]
        scale = self.size / max(height, width)
        inner = _shrink(image, max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        top, left = (self.size - inner.shape[0]) // 2, (self.size - inner.shape[1]) // 2
        canvas[top: top + inner.shape[0], left: left + inner.shape[1]] = inner
        return canvas


def _shrink(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing), bilinear when enlarging."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

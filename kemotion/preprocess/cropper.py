"""What every cropper is: an upright RGB image in, a square RGB crop out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol

import numpy as np


class Cropper(Protocol):
    name: str
    size: int  # side of the square crop (paper §3.3: 500)

    def decode_side(self, width: int, height: int) -> int | None:
        """The long side the source must be decoded at (None: full resolution)."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H × W × 3 RGB uint8 (upright) → size × size × 3 RGB uint8."""


def cropper_key(cropper: Any, **context: Any) -> str:
    """A short hash of everything that determines a cropper's output (its parameters and `context`)."""
    params = asdict(cropper) if is_dataclass(cropper) else vars(cropper)
    blob = json.dumps({"name": cropper.name, **params, **context}, sort_keys=True, default=str)
    return f"{cropper.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

"""What every cropper is: an upright RGB image in, a square RGB crop out; and, for the cache, a batch of files in,
their crops and what the cropper saw out (`Cropped`, the preprocessing report's raw material). A file that records a
cropper (a run's `run.json`, an export's `pipeline.json`) names one of these classes, and `cropper_class` refuses
any other `_target_`: a file chooses which of kemotion's croppers to use, never which code runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kemotion.config import defined_in


@dataclass(frozen=True)
class SourceImage:
    path: str
    width: int  # upright (EXIF-applied) full-resolution size, as the manifest probed it
    height: int


@dataclass(frozen=True)
class Cropped:
    """One source image's crop, and what the cropper saw, in the source's upright full-resolution pixels."""

    image: np.ndarray | None  # size × size × 3 RGB uint8; None: dropped (no face and fallback "drop")
    faces: np.ndarray | None = None  # (n, 4) xyxy of every face found; None: the cropper does not detect
    scores: np.ndarray | None = None  # (n,) their confidences
    picked: int | None = None  # the face cropped, an index into `faces`
    square_side: float | None = None  # side of the square cut around the picked face; None: no face was cut
    fallback: str | None = None  # what was done for want of a face: "resize", "centre" or "drop"


class Cropper(Protocol):
    name: str
    size: int  # side of the square crop (paper §3.3: 500)
    batch_size: int  # images per `crop_files` call (the YOLO detector runs them as one batch)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H × W × 3 RGB uint8 (upright) → size × size × 3 RGB uint8."""

    def crop_files(self, sources: list[SourceImage]) -> list[Cropped]:
        """Decode each file (no larger than its crop needs) and crop it."""


CROPPER_PACKAGE = "kemotion.preprocess"


def cropper_class(target: object, source: str | Path) -> type:
    """The class a recorded cropper config's `_target_` names, when it is a cropper of kemotion's own (a dataclass
    defined in a `kemotion.preprocess` module, with `crop_files`); else a ValueError naming `source`, the file."""
    found = defined_in(target, CROPPER_PACKAGE)
    if not (isinstance(found, type) and dataclasses.is_dataclass(found) and hasattr(found, "crop_files")):
        raise ValueError(f"{source}: the cropper _target_ {target!r} is not one of kemotion's croppers (a cropper "
                         f"class of {CROPPER_PACKAGE}); a recorded file may not name other code")
    return found

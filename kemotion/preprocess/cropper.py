"""What every cropper is: the one object that training (the crop cache), prediction and export use.

`Cropper` declares everything they call: the decode size, cropping a batch of files (the cache: their crops and what
the cropper saw, `Cropped`) or of frames (prediction: every face, `FaceCrop`), whether it needs a face detector,
which fields are runtime settings, and what it writes into an export folder. Subclass `WholeFrameCropper` (one crop
per image, no detection: write `__call__`) or `face_crop.FaceCropper` (write `detect`) and the rest is inherited.

A file that records a cropper (a run's `run.json`, an export's `pipeline.json`) names one of these classes, and
`cropper_class` refuses any other `_target_`: a file chooses which of kemotion's croppers to use, never which code
runs; `build_cropper` then takes its fields as they are, and its runtime settings only from the caller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from kemotion.core.config import defined_in
from kemotion.data import images
from kemotion.preprocess.stored import as_stored

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the upright image (x2, y2 exclusive)


@dataclass(frozen=True)
class SourceImage:
    path: str
    width: int  # upright (EXIF-applied) full-resolution size, as the manifest probed it
    height: int

    def decode(self, max_side: int | None) -> np.ndarray:
        """The upright RGB image, its long side at least `max_side` (JPEG DCT scaling), or whole for None."""
        return images.load_rgb(self.path, max_side=max_side)


class Decodable(Protocol):
    """An image a cropper may decode again at a larger size: a `SourceImage`, or a prediction `Frame`."""

    width: int  # upright, full resolution
    height: int

    def decode(self, max_side: int | None) -> np.ndarray: ...


@dataclass(frozen=True)
class Cropped:
    """One source image's crop, and what the cropper saw, in the source's upright full-resolution pixels."""

    image: np.ndarray | None  # size × size × 3 RGB uint8; None: dropped (no face and fallback "drop")
    faces: np.ndarray | None = None  # (n, 4) xyxy of every face found; None: the cropper does not detect
    scores: np.ndarray | None = None  # (n,) their confidences
    picked: int | None = None  # the face cropped, an index into `faces`
    square_side: float | None = None  # side of the square cut around the picked face; None: no face was cut
    fallback: str | None = None  # what was done for want of a face: "resize", "centre" or "drop"


@dataclass(frozen=True)
class FaceCrop:
    """One face of a frame as prediction classifies it."""

    box: Box  # xyxy in the frame's upright full-resolution pixels (clipped to it); the whole frame without detection
    score: float | None  # the detector's confidence; None for a whole-frame crop
    image: np.ndarray  # size × size × 3 RGB uint8 as the crop cache stores it: the classifier's training input


class Cropper(Protocol):
    name: str
    size: int  # side of the square crop (paper §3.3: 500)
    batch_size: int  # images per `crop_files` call (the YOLO detector runs them as one batch)
    needs_face_detector: ClassVar[bool]  # True: a `checkpoint` field names a face-detector file (the detector stage)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H × W × 3 RGB uint8 (upright) → size × size × 3 RGB uint8."""

    def decode_side(self, width: int, height: int) -> int:
        """The long side a width × height image is first decoded at (JPEG DCT scaling): what detection or the
        whole-frame crop needs; a face crop that needs more decodes again."""

    def crop_files(self, sources: list[SourceImage]) -> list[Cropped]:
        """Training's crops (the cache): decode each file (no larger than its crop needs) and crop it."""

    def crop_frames(self, frames: list[Decodable], decoded: list[np.ndarray], conf: float | None,
                    max_faces: int) -> list[list[FaceCrop]]:
        """Prediction's crops of each frame, given its first decode (at `decode_side`), as the cache stores them:
        every face scoring >= `conf` (None: all the detector keeps), at most `max_faces`, the one training would
        have cropped first; the whole frame for a cropper that detects no faces."""

    @classmethod
    def runtime_settings(cls) -> frozenset[str]:
        """Its fields marked `kemotion.core.keys.RUNTIME_SETTING`: given by the caller, never read from a file, not in
        the crop key."""

    def export(self, directory: Path, opset: int) -> dict:
        """Write what it needs beside `pipeline.json` into export folder `directory` (a face detector as ONNX); the
        fields of its recorded config that change there (`{"checkpoint": "face_detector.onnx"}`), or {}."""


class CropperBase:
    """What every cropper of kemotion shares: no face detector, no files to export, runtime settings by metadata."""

    needs_face_detector: ClassVar[bool] = False

    @classmethod
    def runtime_settings(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime", False))

    def export(self, directory: Path, opset: int) -> dict:
        return {}


class WholeFrameCropper(CropperBase):
    """A cropper that makes one crop of the whole image and detects nothing: a dataclass with `name`, `size` and
    `batch_size` fields and `__call__(image)` gets the rest of the protocol from here. `decode_side` decodes whole
    unless overridden with a smaller side that still gives the crop its pixels (`ResizeCropper`)."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode_side(self, width: int, height: int) -> int:
        return max(width, height)

    def crop_files(self, sources: list[SourceImage]) -> list[Cropped]:
        return [Cropped(self(source.decode(self.decode_side(source.width, source.height)))) for source in sources]

    def crop_frames(self, frames: list[Decodable], decoded: list[np.ndarray], conf: float | None,
                    max_faces: int) -> list[list[FaceCrop]]:
        return [[FaceCrop((0.0, 0.0, float(frame.width), float(frame.height)), None, as_stored(self(image)))]
                for frame, image in zip(frames, decoded, strict=True)]


CROPPER_PACKAGE = "kemotion.preprocess"


def cropper_class(target: object, source: str | Path) -> type:
    """The class a recorded cropper config's `_target_` names, when it is a cropper of kemotion's own (a dataclass
    defined in a `kemotion.preprocess` module, with `crop_files`); else a ValueError naming `source`, the file."""
    found = defined_in(target, CROPPER_PACKAGE)
    if not (isinstance(found, type) and dataclasses.is_dataclass(found) and hasattr(found, "crop_files")):
        raise ValueError(f"{source}: the cropper _target_ {target!r} is not one of kemotion's croppers (a cropper "
                         f"class of {CROPPER_PACKAGE}); a recorded file may not name other code")
    return found


def build_cropper(config: object, source: str | Path, **settings: object) -> Cropper:
    """The cropper a recorded config (`_target_` and fields, from file `source`) names, built from its fields as they
    are but its runtime settings (a file never says how a cropper runs), then the `settings` the caller gives for
    fields the class has (None: not given; `device`, `batch_size`, `trust_checkpoint`, or prediction's `conf`). A
    config that names no kemotion cropper, or does not fit it, is a ValueError naming `source`."""
    if not isinstance(config, dict):
        raise ValueError(f"{source}: 'cropper' must be a cropper config, not {config!r}")
    config = dict(config)
    target = config.pop("_target_", None)
    cls = cropper_class(target, source)
    runtime, known = cls.runtime_settings(), {f.name for f in dataclasses.fields(cls)}
    config = {key: value for key, value in config.items() if key not in runtime} | {
        key: value for key, value in settings.items() if key in known and value is not None}
    try:
        return cls(**config)
    except TypeError as error:
        raise ValueError(f"{source}: the cropper config does not fit {target}: {error}") from None

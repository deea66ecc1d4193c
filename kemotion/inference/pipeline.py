"""`EmotionPipeline`: a trained run's face crop and classifier applied to new images, the training path exactly.

    from kemotion import EmotionPipeline
    pipe = EmotionPipeline.from_run("outputs/runs/<run>", device="cpu")
    faces = pipe("photo.jpg")              # a path, a PIL image or an RGB numpy array (bgr=True for OpenCV's order)
    pipe.predict(["a.jpg", "b.jpg"], batch_size=8)

A frame is decoded at the size the run's cropper needs (`decode_side`), its faces found and cropped by the cropper
itself (`crop_frames`: training's crop policy, the crops as the cache stores them), and the crops classified in one
batch by a backend: torch (`from_run`) or onnxruntime (`from_export`, which never imports torch; its cropper runs the
exported face detector).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kemotion.core.emotions import EMOTIONS
from kemotion.data.images import BadImage
from kemotion.inference.record_check import synthetic_notice
from kemotion.inference.sources import Frame, Skip, as_frame
from kemotion.preprocess.cropper import Box, Cropper

log = logging.getLogger(__name__)

DEFAULT_MAX_FACES = 20
Classify = Callable[[list[np.ndarray]], np.ndarray]  # n size × size RGB crops → (n, 7) class probabilities


@dataclass(frozen=True)
class Face:
    box: Box  # x1, y1, x2, y2 in the upright (EXIF-applied) full-resolution frame; the whole frame for resize runs
    detector_confidence: float | None  # None when the run's cropper detects no faces (preprocess=resize)
    label: str  # English class name, e.g. "happy"
    label_ko: str  # Korean class name, e.g. "기쁨"
    probabilities: dict[str, float]  # English class name → probability, the 7 classes in kemotion's order

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, face: dict) -> Face:
        """A face as `as_dict` wrote it (a line of predictions.jsonl)."""
        return cls(**{**face, "box": tuple(face["box"])})


@dataclass(frozen=True)
class Prediction:
    frame: Frame
    faces: list[Face]


class EmotionPipeline:
    def __init__(self, cropper: Cropper, classify: Classify, conf: float | None = None,
                 max_faces: int = DEFAULT_MAX_FACES, origin: dict | None = None) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.cropper, self.classify, self.conf, self.max_faces = cropper, classify, conf, max_faces
        self.origin = origin or {}  # the backend, its model files' SHA-256, what it was trained on (from_run, ...)
        self._notice = synthetic_notice(self.origin.get("trained_on"))  # said once, when images first come

    def identity(self) -> dict:
        """What decides this pipeline's predictions: its backend, model files (by SHA-256), crop policy and
        settings. A resumed output folder must have been made by the same (`kemotion.inference.outputs`)."""
        from kemotion.core.keys import cropper_key

        return {**self.origin, "cropper": cropper_key(self.cropper), "conf": self.conf, "max_faces": self.max_faces}

    @classmethod
    def from_run(cls, run: str | Path, device: str = "cpu", conf: float | None = None,
                 max_faces: int = DEFAULT_MAX_FACES, half: bool = False, batch_size: int = 8,
                 trust_checkpoint: bool = False) -> EmotionPipeline:
        """The pipeline of a run folder or of a classifier checkpoint inside one (torch backend). `conf`: the
        lowest face confidence kept (None: the run's own cropper setting). `trust_checkpoint`: unpickle a face
        detector that holds Python objects (an ultralytics .pt; it runs code): only ever from this argument."""
        from kemotion.inference.torch_backend import load_run

        cropper, classify, origin = load_run(run, device=device, conf=conf, half=half, batch_size=batch_size,
                                             trust_checkpoint=trust_checkpoint)
        return cls(cropper, classify, conf, max_faces, origin)

    @classmethod
    def from_export(cls, directory: str | Path, conf: float | None = None,
                    max_faces: int = DEFAULT_MAX_FACES) -> EmotionPipeline:
        """The pipeline of a `python -m kemotion.export` folder, run by onnxruntime without torch."""
        from kemotion.inference.onnx import load_export

        cropper, classify, origin = load_export(directory, conf=conf)
        return cls(cropper, classify, conf, max_faces, origin)

    def __call__(self, image, bgr: bool = False) -> list[Face]:
        return self.predict([image], bgr=bgr)[0]

    def predict(self, images: Iterable, batch_size: int = 8, bgr: bool = False) -> list[list[Face]]:
        """The faces of each image (paths, PIL images or arrays); a file that cannot be read is a BadImage error."""
        results = []
        for result in self.stream((as_frame(image, bgr) for image in images), batch_size):
            if isinstance(result, Skip):
                raise BadImage(result.source, "unreadable image", result.reason)
            results.append(result.faces)
        return results

    def stream(self, frames: Iterable[Frame | Skip], batch_size: int = 8) -> Iterator[Prediction | Skip]:
        """Predictions as frames arrive, `batch_size` frames per detector and classifier batch; a frame that does not
        decode is passed on as a Skip with its reason, and the stream goes on."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self._notice:  # a demo run pointed at photos (here, so predict.log has it too)
            log.warning(self._notice)
            self._notice = None
        iterator = iter(frames)
        while batch := list(itertools.islice(iterator, batch_size)):
            good, decoded = [], []
            for item in batch:
                if isinstance(item, Frame):
                    try:
                        decoded.append(item.decode(self.cropper.decode_side(item.width, item.height)))
                        good.append(item)
                        continue
                    except BadImage as error:
                        item = Skip(item.source, f"{error.kind}: {error.reason}")
                yield item
            if good:  # a batch in which no file decodes has nothing to detect (np.stack of none fails)
                yield from self._classified(good, decoded)

    def _classified(self, frames: list[Frame], decoded: list[np.ndarray]) -> Iterator[Prediction]:
        crops = self.cropper.crop_frames(frames, decoded, self.conf, self.max_faces)
        flat = [crop for per_frame in crops for crop in per_frame]
        probabilities = iter(self.classify([crop.image for crop in flat]) if flat else [])
        for frame, found in zip(frames, crops, strict=True):
            yield Prediction(frame, [_face(crop.box, crop.score, next(probabilities)) for crop in found])


def _face(box: Box, score: float | None, probabilities: np.ndarray) -> Face:
    best = EMOTIONS[int(np.argmax(probabilities))]
    return Face(box, score, best.english, best.korean,
                {emotion.english: float(p) for emotion, p in zip(EMOTIONS, probabilities, strict=True)})

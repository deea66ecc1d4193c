"""`EmotionPipeline`: a trained run's face crop and classifier applied to new images, the training path exactly.

    from kemotion import EmotionPipeline
    pipe = EmotionPipeline.from_run("outputs/runs/<run>", device="cpu")
    result = pipe("photo.jpg")             # a path, a PIL image or an RGB numpy array (bgr=True for OpenCV's order)
    result.faces, result.plot(), result.to_pandas()    # an `EmotionResult` (`kemotion.inference.results`)
    pipe.predict(["a.jpg", "b.jpg"], batch_size=8)     # one EmotionResult per image

    import kemotion
    kemotion.analyze("photo.jpg", run="outputs/runs/<run>")  # deepface's `DeepFace.analyze` shape, BGR arrays

A frame is decoded at the size the run's cropper needs (`decode_side`), its faces found and cropped by the cropper
itself (`crop_frames`: training's crop policy, the crops as the cache stores them), and the crops classified in one
batch by a backend: torch (`from_run`) or onnxruntime (`from_export`, which never imports torch; its cropper runs the
exported face detector).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from kemotion.core.emotions import EMOTIONS
from kemotion.data.images import BadImage
from kemotion.inference.record_check import synthetic_notice
from kemotion.inference.results import EmotionResult, Face
from kemotion.inference.sources import Frame, Skip, as_frame
from kemotion.preprocess.cropper import Box, Cropper

log = logging.getLogger(__name__)

DEFAULT_MAX_FACES = 20
Classify = Callable[[list[np.ndarray]], np.ndarray]  # n size × size RGB crops → (n, 7) class probabilities


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

    def __call__(self, image, bgr: bool = False) -> EmotionResult:
        return self.predict([image], bgr=bgr)[0]

    def predict(self, images: Iterable, batch_size: int = 8, bgr: bool = False) -> list[EmotionResult]:
        """The result of each image (paths, PIL images or arrays); a file that cannot be read is a BadImage error."""
        results = []
        for result in self.stream((as_frame(image, bgr) for image in images), batch_size):
            if isinstance(result, Skip):
                raise BadImage(result.source, "unreadable image", result.reason)
            results.append(result)
        return results

    def stream(self, frames: Iterable[Frame | Skip], batch_size: int = 8) -> Iterator[EmotionResult | Skip]:
        """Results as frames arrive, `batch_size` frames per detector and classifier batch; a frame that does not
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

    def _classified(self, frames: list[Frame], decoded: list[np.ndarray]) -> Iterator[EmotionResult]:
        crops = self.cropper.crop_frames(frames, decoded, self.conf, self.max_faces)
        flat = [crop for per_frame in crops for crop in per_frame]
        probabilities = iter(self.classify([crop.image for crop in flat]) if flat else [])
        for frame, found in zip(frames, crops, strict=True):
            yield EmotionResult(frame, [_face(crop.box, crop.score, next(probabilities)) for crop in found])


def _face(box: Box, score: float | None, probabilities: np.ndarray) -> Face:
    best = EMOTIONS[int(np.argmax(probabilities))]
    return Face(box, score, best.english, best.korean,
                {emotion.english: float(p) for emotion, p in zip(EMOTIONS, probabilities, strict=True)})


BACKENDS = ("torch", "onnx")  # a run folder (`from_run`) or an export folder (`from_export`), as predict's `backend=`
KEPT_PIPELINES = 2  # pipelines `analyze` holds loaded (one per run and settings); the least recently used goes


def analyze(img, *, run: str | Path, bgr: bool = True, backend: str = "torch", device: str = "cpu",
            conf: float | None = None, max_faces: int = DEFAULT_MAX_FACES) -> list[dict]:
    """deepface's `DeepFace.analyze(img_path, actions=["emotion"])` with a trained run: one dict per face with
    `dominant_emotion`, `emotion` (each class's score in percent), `region` (x, y, w, h) and `face_confidence`
    (`EmotionResult.summary`). Unlike deepface, an image without a face gives [] rather than an error.

    `img`: a path, a PIL image, or a numpy array in OpenCV's BGR order as deepface takes it (`bgr=False`: RGB).
    `run`: a run folder or a checkpoint inside one (`backend="onnx"`: an export folder). The pipeline is loaded on the
    first call and held for the next (the last KEPT_PIPELINES runs and settings), so a loop over photos loads it once;
    a run trained again into the same folder needs a new process, or an `EmotionPipeline` of your own."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    return _kept(str(run), backend, device, conf, max_faces)(img, bgr=bgr).summary()


@functools.lru_cache(maxsize=KEPT_PIPELINES)
def _kept(run: str, backend: str, device: str, conf: float | None, max_faces: int) -> EmotionPipeline:
    if backend == "onnx":
        return EmotionPipeline.from_export(run, conf=conf, max_faces=max_faces)
    return EmotionPipeline.from_run(run, device=device, conf=conf, max_faces=max_faces)

"""The onnxruntime backends of `EmotionPipeline.from_export`: no torch anywhere on this path.

An export folder (`python -m kemotion.export`) holds `classifier.onnx`, for a YOLO-crop run `face_detector.onnx`
(the detector's decoded head output, before NMS), and `pipeline.json`: the cropper's config, the classifier's input
size and normalisation, the class names. The crop policy is the same `FaceCropper` code as training's; what torch did
is done here by onnxruntime, OpenCV's NMS (`cv2.dnn.NMSBoxes`, in place of ultralytics' torchvision NMS) and OpenCV's
area resize plus the normalisation (in place of albumentations' eval transform, which imports torch; a test checks
they agree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kemotion.inference.record_check import pipeline_entries
from kemotion.keys import CROP_NEUTRAL, file_sha256
from kemotion.preprocess.cropper import cropper_class
from kemotion.preprocess.face_crop import DEFAULT_MARGIN, FaceCropper, NoFace, PickRule
from kemotion.preprocess.resize import ResizeCropper, letterbox

PIPELINE_FILE, CLASSIFIER_FILE, DETECTOR_FILE = "pipeline.json", "classifier.onnx", "face_detector.onnx"
YOLO_CROPPER = "kemotion.preprocess.yolo.YoloCropper"
MAX_DETECTIONS = 300  # ultralytics' max_det


def session(path: Path):
    """An onnxruntime CPU session of `path`; a clear error when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("the ONNX backend needs onnxruntime: pip install -e '.[export]'") from error
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a `python -m kemotion.export` folder")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def classifier_inputs(crops: list[np.ndarray], input_size: int, mean, std) -> np.ndarray:
    """n RGB crops → (n, 3, S, S) float32: an area resize to S, then (x / 255 - mean) / std (the eval transform)."""
    resized = np.stack([cv2.resize(crop, (input_size, input_size), interpolation=cv2.INTER_AREA) for crop in crops])
    normalised = (resized.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2), dtype=np.float32)


class OnnxClassifier:
    def __init__(self, path: Path, input_size: int, mean, std) -> None:
        self.session, self.input_size, self.mean, self.std = session(path), input_size, mean, std

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.session.get_inputs()[0].name: inputs})[0]

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        logits = self.logits(classifier_inputs(crops, self.input_size, self.mean, self.std))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class OnnxYoloCropper(FaceCropper):
    """YoloCropper's detection with the exported detector: letterbox, forward, confidence filter, NMS, unbox."""

    detector: str = field(metadata=CROP_NEUTRAL)  # face_detector.onnx (what it holds: the pipeline's identity)
    size: int = 500
    margin: float = DEFAULT_MARGIN
    detect_side: int = 640
    conf: float = 0.25
    iou: float = 0.7
    pick: PickRule = "confident"
    fallback: NoFace = "resize"
    batch_size: int = field(default=8, metadata=CROP_NEUTRAL)
    name: str = "yolo"

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (found,) = self.detect_batch([image])
        return found

    def detect_batch(self, batch: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        if not batch:
            return []
        boxed = np.stack([ResizeCropper(size=self.detect_side, keep_aspect=True)(image) for image in batch])
        inputs = np.ascontiguousarray(boxed.transpose(0, 3, 1, 2), dtype=np.float32) / 255
        runner = _sessions(self.detector)
        output = runner.run(None, {runner.get_inputs()[0].name: inputs})[0]  # (B, 4 + 1, anchors): xywh, score
        return [self._faces(prediction.T, image) for prediction, image in zip(output, batch, strict=True)]

    def _faces(self, prediction: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = prediction[:, 4:].max(axis=1)
        kept = scores > self.conf
        centre, size, scores = prediction[kept, :2], prediction[kept, 2:4], scores[kept]
        corners = np.concatenate([centre - size / 2, size], axis=1)  # x, y, w, h as OpenCV's NMS takes them
        chosen = np.asarray(cv2.dnn.NMSBoxes(corners.tolist(), scores.tolist(), self.conf, self.iou),
                            dtype=np.int64).reshape(-1)[:MAX_DETECTIONS]
        xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[chosen]
        geometry = letterbox(image.shape[1], image.shape[0], self.detect_side)
        return geometry.unmap_boxes(xyxy), scores[chosen].astype(np.float64)


_SESSIONS: dict[str, object] = {}


def _sessions(path: str):
    """One onnxruntime session per detector file and process (the cropper stays a plain, picklable dataclass)."""
    if path not in _SESSIONS:
        _SESSIONS[path] = session(Path(path))
    return _SESSIONS[path]


def load_export(directory: str | Path, conf: float | None = None) -> tuple[object, OnnxClassifier, dict]:
    """The cropper and the classifier of an export folder, and what identifies them (its graphs' SHA-256)."""
    directory = Path(directory)
    path = directory / PIPELINE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: export a run first (python -m kemotion.export run=RUN)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    cropper, classifier = pipeline_entries(record, path)
    cropper, classify = export_cropper(cropper, path, conf), OnnxClassifier(
        directory / CLASSIFIER_FILE, classifier["input_size"], classifier["mean"], classifier["std"])
    detector = directory / DETECTOR_FILE
    origin = {"backend": "onnx", "classifier_sha256": file_sha256(directory / CLASSIFIER_FILE),
              "classifier": classifier, "detector_sha256": file_sha256(detector) if detector.is_file() else None}
    return cropper, classify, origin


def export_cropper(config: dict, source: Path, conf: float | None = None):
    """The cropper pipeline.json `source` names: the YOLO one on the exported detector beside it, kemotion's other
    croppers as they are, nothing else (`cropper_class`)."""
    if not isinstance(config, dict):
        raise ValueError(f"{source}: 'cropper' must be a cropper config, not {config!r}")
    config = dict(config)
    target = config.pop("_target_", None)
    if target == YOLO_CROPPER:
        config.pop("checkpoint", None)
        cropper, config = OnnxYoloCropper, config | {"detector": str(source.parent / DETECTOR_FILE)} | (
            {"conf": conf} if conf is not None else {})
    else:
        cropper = cropper_class(target, source)
    try:
        return cropper(**config)
    except TypeError as error:
        raise ValueError(f"{source}: the cropper config does not fit {target}: {error}") from None

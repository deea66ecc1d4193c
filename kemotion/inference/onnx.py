"""The onnxruntime backend of `EmotionPipeline.from_export`: no torch anywhere on this path.

An export folder (`python -m kemotion.export`) holds `classifier.onnx`, the files its cropper needs (a YOLO-crop
run's `face_detector.onnx`, the detector's decoded head output, before NMS) and `pipeline.json`: the cropper's config,
the classifier's input size and normalisation, the class names in English and Korean (checked against kemotion's,
which label the outputs). The cropper is the run's own class, built from that config as training built it: a face
detector's file is the export's `.onnx` one, so it runs on onnxruntime (`kemotion.preprocess.detector_runtime`). What
torch did for the classifier is done here by onnxruntime and OpenCV's area resize plus the normalisation (in place of
albumentations' eval transform, which imports torch; a test checks they agree).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from kemotion.core.keys import file_sha256
from kemotion.inference.record_check import export_classes, pipeline_entries, recorded_training
from kemotion.models.onnx_runtime import session
from kemotion.preprocess.cropper import Cropper, build_cropper, cropper_class
from kemotion.preprocess.detector_runtime import DETECTOR_FILE

PIPELINE_FILE, CLASSIFIER_FILE = "pipeline.json", "classifier.onnx"


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


def load_export(directory: str | Path, conf: float | None = None) -> tuple[Cropper, OnnxClassifier, dict]:
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
    cropper = export_cropper(cropper, path, conf)
    export_classes(record, path)
    classify = OnnxClassifier(directory / CLASSIFIER_FILE, classifier["input_size"], classifier["mean"],
                              classifier["std"])
    detector = directory / DETECTOR_FILE
    origin = {"backend": "onnx", "classifier_sha256": file_sha256(directory / CLASSIFIER_FILE),
              "classifier": classifier, "detector_sha256": file_sha256(detector) if detector.is_file() else None,
              "trained_on": recorded_training(record, path)}
    return cropper, classify, origin


def export_cropper(config: object, source: Path, conf: float | None = None) -> Cropper:
    """The cropper pipeline.json `source` names (one of kemotion's, `cropper_class`); one that needs a face detector
    runs the export's own `face_detector.onnx`, never another file (an `.onnx` one: no torch on this path)."""
    if isinstance(config, dict) and cropper_class(config.get("_target_"), source).needs_face_detector:
        if config.get("checkpoint") != DETECTOR_FILE:
            raise ValueError(f"{source}: the cropper's face detector must be the export's {DETECTOR_FILE}, not "
                             f"{config.get('checkpoint')!r}")
        config = config | {"checkpoint": str(source.parent / DETECTOR_FILE)}
    return build_cropper(config, source, conf=conf)

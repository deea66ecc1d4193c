"""A run's pipeline as ONNX files plus `pipeline.json`, for `EmotionPipeline.from_export` (onnxruntime, no torch).

The classifier and the face detector are exported with `torch.onnx.export` and a dynamic batch axis; the detector's
output is its decoded head (B, 4 + 1, anchors: centre x, y, width, height in letterbox pixels, face score), NMS
being left to the backend.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from kemotion.inference.onnx import CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE
from kemotion.inference.record import read_run
from kemotion.inference.torch_backend import load_cropper, load_network
from kemotion.io import atomic_write
from kemotion.models.yolo import load_detector

log = logging.getLogger(__name__)

OPSET = 18


class DecodedHead(nn.Module):
    """A detector in eval mode returning only its decoded output (ultralytics' Detect returns it with the raw maps)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector(images)[0]


def export_run(run: str | Path, directory: str | Path, opset: int = OPSET) -> Path:
    """Write classifier.onnx, face_detector.onnx (a YOLO-crop run) and pipeline.json into `directory`."""
    record = read_run(run)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    size = record.classifier["input_size"]
    to_onnx(load_network(record), torch.zeros(2, 3, size, size), directory / CLASSIFIER_FILE, "logits", opset)
    cropper = dict(record.cropper)
    if record.detector_sha256 is not None:
        load_cropper(record)  # checks that the detector file is the run's
        side = cropper["detect_side"]
        to_onnx(DecodedHead(load_detector(cropper["checkpoint"])), torch.zeros(2, 3, side, side),
                directory / DETECTOR_FILE, "detections", opset)
        cropper["checkpoint"] = DETECTOR_FILE
    pipeline = {"run": str(record.directory), "checkpoint": str(record.checkpoint), "cropper": cropper,
                "detector_sha256": record.detector_sha256, "classifier": record.classifier}
    with atomic_write(directory / PIPELINE_FILE, "w", encoding="utf-8") as handle:
        json.dump(pipeline, handle, indent=1, ensure_ascii=False)
    log.info("Exported %s to %s", record.directory, directory)
    return directory


def to_onnx(model: nn.Module, example: torch.Tensor, path: Path, output: str, opset: int) -> None:
    """`model` (eval mode) as ONNX at `path`, batch size free, written atomically."""
    with atomic_write(path, "wb") as handle:
        torch.onnx.export(model.eval(), (example,), handle, input_names=["images"], output_names=[output],
                          dynamic_axes={"images": {0: "batch"}, output: {0: "batch"}}, opset_version=opset,
                          dynamo=False)

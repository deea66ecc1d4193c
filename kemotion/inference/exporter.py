"""A run's pipeline as ONNX files plus `pipeline.json`, for `EmotionPipeline.from_export` (onnxruntime, no torch).

The classifier and the face detector are exported with `torch.onnx.export` and a dynamic batch axis; the detector's
output is its decoded head (B, 4 + 1, anchors: centre x, y, width, height in letterbox pixels, face score), NMS
being left to the backend. An export is complete or absent: a folder never holds classifier.onnx without
pipeline.json.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from kemotion.inference.onnx import CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE
from kemotion.inference.record import RunRecord, read_run
from kemotion.inference.torch_backend import load_cropper, load_network
from kemotion.io import atomic_write
from kemotion.models.yolo import load_detector

log = logging.getLogger(__name__)

OPSET = 18
EXPORT_FILES = (CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE)  # in the order they are moved in: pipeline.json last


class DecodedHead(nn.Module):
    """A detector in eval mode returning only its decoded output (ultralytics' Detect returns it with the raw maps)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector(images)[0]


def export_run(run: str | Path, directory: str | Path, opset: int = OPSET, trust_checkpoint: bool = False) -> Path:
    """Write classifier.onnx, face_detector.onnx (a YOLO-crop run) and pipeline.json into `directory`, all or none:
    they are written into a temporary folder beside it, then moved in, pipeline.json (what `from_export` reads
    first) last; a failure leaves no file behind. `trust_checkpoint`: the run's face detector may be a pickled
    ultralytics .pt, as for predict (never taken from the run's record)."""
    record = read_run(run)
    directory = Path(directory)
    taken = [name for name in EXPORT_FILES if (directory / name).exists()]
    if taken:
        raise FileExistsError(f"{directory} already holds an export ({', '.join(taken)}); export into a new folder")
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{directory.name}.partial-", dir=directory.parent))
    try:
        _write_export(record, partial, opset, trust_checkpoint)
        if directory.exists():  # `python -m kemotion.export` logs into it: move the files in, pipeline.json last
            for name in EXPORT_FILES:
                if (partial / name).exists():
                    os.replace(partial / name, directory / name)
            partial.rmdir()
        else:
            os.replace(partial, directory)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info("Exported %s to %s", record.directory, directory)
    return directory


def _write_export(record: RunRecord, directory: Path, opset: int, trust_checkpoint: bool) -> None:
    size = record.classifier["input_size"]
    to_onnx(load_network(record), torch.zeros(2, 3, size, size), directory / CLASSIFIER_FILE, "logits", opset)
    cropper = dict(record.cropper)
    if record.detector_sha256 is not None:
        load_cropper(record, trust_checkpoint=trust_checkpoint)  # checks that the detector file is the run's
        side = cropper["detect_side"]
        to_onnx(DecodedHead(load_detector(cropper["checkpoint"], trust_checkpoint)), torch.zeros(2, 3, side, side),
                directory / DETECTOR_FILE, "detections", opset)
        cropper["checkpoint"] = DETECTOR_FILE
    pipeline = {"run": str(record.directory), "checkpoint": str(record.checkpoint), "cropper": cropper,
                "detector_sha256": record.detector_sha256, "classifier": record.classifier}
    with atomic_write(directory / PIPELINE_FILE, "w", encoding="utf-8") as handle:
        json.dump(pipeline, handle, indent=1, ensure_ascii=False)


def to_onnx(model: nn.Module, example: torch.Tensor, path: Path, output: str, opset: int) -> None:
    """`model` (eval mode) as ONNX at `path`, batch size free, written atomically."""
    with atomic_write(path, "wb") as handle:
        torch.onnx.export(model.eval(), (example,), handle, input_names=["images"], output_names=[output],
                          dynamic_axes={"images": {0: "batch"}, output: {0: "batch"}}, opset_version=opset,
                          dynamo=False)

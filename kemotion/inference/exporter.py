"""A run's pipeline as ONNX files plus `pipeline.json`, for `EmotionPipeline.from_export` (onnxruntime, no torch).

The classifier is exported with `torch.onnx.export` and a dynamic batch axis; the cropper writes what it needs itself
(`Cropper.export`: a YOLO cropper its face detector's decoded head, NMS being left to the runtime). An export is
complete or absent: a folder never holds classifier.onnx without pipeline.json.

An export carries its own labels: `pipeline.json` holds the class names (English and Korean, by output index) beside
the cropper, input size and normalisation, and each `.onnx` file holds what it is in its `metadata_props` (ONNX's
key-value strings; values that are not plain strings or numbers are JSON), so one file alone can be used elsewhere:
classifier.onnx its class names, input size, normalisation and cropper; face_detector.onnx what it outputs and its
input size.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from kemotion.core.io import atomic_write
from kemotion.inference.onnx import CLASSIFIER_FILE, PIPELINE_FILE
from kemotion.inference.record import RunRecord, read_run
from kemotion.inference.record_check import CLASS_NAMES
from kemotion.inference.torch_backend import load_cropper, load_network
from kemotion.models.onnx_export import set_metadata, to_onnx
from kemotion.preprocess.detector_runtime import DETECTOR_FILE

log = logging.getLogger(__name__)

OPSET = 18
EXPORT_FILES = (CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE)  # in the order they are moved in: pipeline.json last
CLASSIFIER_DESCRIPTION = ("kemotion emotion classifier: images (N, 3, S, S), RGB face crops as `cropper` makes them, "
                          "area-resized to S = input_size, scaled to [0, 1] and normalised by mean and std per channel "
                          "→ logits (N, 7), in the order of classes (English) and classes_korean")
DETECTOR_DESCRIPTION = ("kemotion face detector (YOLO, decoded head before NMS): images (N, 3, S, S), RGB letterboxes "
                        "of side S = input_size scaled to [0, 1] → detections (N, 5, anchors): centre x, centre y, "
                        "width, height in letterbox pixels, face score")


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
            for path in sorted(partial.iterdir(), key=lambda path: path.name == PIPELINE_FILE):
                os.replace(path, directory / path.name)
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
    cropper = load_cropper(record, trust_checkpoint=trust_checkpoint)  # checks that a detector file is the run's
    pipeline = {"run": str(record.directory), "checkpoint": str(record.checkpoint),
                "cropper": dict(record.cropper) | cropper.export(directory, opset),
                "detector_sha256": record.detector_sha256, "classifier": record.classifier,
                "trained_on": record.trained_on, **CLASS_NAMES}
    set_metadata(directory / CLASSIFIER_FILE, {
        "description": CLASSIFIER_DESCRIPTION, "mean": json.dumps(record.classifier["mean"]),
        "std": json.dumps(record.classifier["std"]), "cropper": json.dumps(pipeline["cropper"], ensure_ascii=False),
        **{key: json.dumps(names, ensure_ascii=False) for key, names in CLASS_NAMES.items()}})
    if (directory / DETECTOR_FILE).is_file():
        set_metadata(directory / DETECTOR_FILE, {"description": DETECTOR_DESCRIPTION, "classes": json.dumps(["face"])})
    with atomic_write(directory / PIPELINE_FILE, "w", encoding="utf-8") as handle:
        json.dump(pipeline, handle, indent=1, ensure_ascii=False)

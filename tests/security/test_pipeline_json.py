"""Item 3 of issue 20: an export folder's `pipeline.json` names one of kemotion's croppers, nothing else.

`predict backend=onnx` (`EmotionPipeline.from_export`) used to import whatever `_target_` the file named and call it
with the file's fields: `subprocess.call` ran a command.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from kemotion import EmotionPipeline
from kemotion.inference.onnx import PIPELINE_FILE
from kemotion.predict import predict
from tests.security.conftest import hostile_pickle

CLASSIFIER = {"input_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}


def export_folder(tmp_path, cropper: dict):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / PIPELINE_FILE).write_text(json.dumps({"cropper": cropper, "classifier": CLASSIFIER}))
    return folder


@pytest.mark.parametrize("target", [
    "subprocess.call",
    "kemotion.preprocess.yolo.file_sha256",  # kemotion's, but no cropper
    "kemotion.preprocess.face_crop.cv2.imwrite",  # reached through a kemotion module
    "kemotion.preprocess.cropper.Cropped",  # a kemotion dataclass, but no cropper
])
def test_from_export_refuses_a_target_that_is_no_kemotion_cropper(tmp_path, marker, target):
    folder = export_folder(tmp_path, {"_target_": target, "args": ["touch", str(marker)]})
    with pytest.raises(ValueError, match=rf"{PIPELINE_FILE}: the cropper _target_ '{target}' is not one of kemotion"):
        EmotionPipeline.from_export(folder)
    assert not marker.exists()


def test_predict_backend_onnx_refuses_it(tmp_path, marker):
    folder = export_folder(tmp_path, {"_target_": "subprocess.call", "args": ["touch", str(marker)]})
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((32, 32, 3), 128, np.uint8))  # a source that exists: it is checked first
    cfg = OmegaConf.create({"backend": "onnx", "run": str(folder), "source": str(photo), "show": False, "conf": None,
                            "max_faces": 20, "project": str(tmp_path / "out"), "name": "hostile"})
    with pytest.raises(ValueError, match=f"{folder / PIPELINE_FILE}: the cropper _target_ 'subprocess.call'"):
        predict(cfg)
    assert not marker.exists()


def test_a_kemotion_cropper_with_fields_it_lacks_is_named(tmp_path):
    folder = export_folder(tmp_path, {"_target_": "kemotion.preprocess.resize.ResizeCropper", "command": "ls"})
    with pytest.raises(ValueError, match=f"{PIPELINE_FILE}: the cropper config does not fit .*ResizeCropper"):
        EmotionPipeline.from_export(folder)


def test_a_face_detector_cropper_runs_the_exports_own_onnx_file_only(tmp_path, marker):
    """The YOLO cropper takes its runtime from its file's suffix: pipeline.json may not point it at another file (a
    pickle, or torch on a path that never imports it), nor switch trust on."""
    (tmp_path / "face_detector.pt").write_bytes(hostile_pickle(marker))
    folder = export_folder(tmp_path, {"_target_": "kemotion.preprocess.yolo.YoloCropper", "trust_checkpoint": True,
                                      "checkpoint": str(tmp_path / "face_detector.pt")})
    with pytest.raises(ValueError, match=f"{PIPELINE_FILE}: the cropper's face detector must be the export's "
                                         "face_detector.onnx, not '.*face_detector.pt'"):
        EmotionPipeline.from_export(folder)
    assert not marker.exists()


@pytest.mark.parametrize(("record", "message"), [
    ({"cropper": {"_target_": "kemotion.preprocess.resize.ResizeCropper"}}, "must hold a 'cropper' and a 'classifier'"),
    ({"cropper": {"_target_": "kemotion.preprocess.resize.ResizeCropper"}, "classifier": {**CLASSIFIER, "std": "x"}},
     "classifier.std must be three numbers"),
    ([], "must hold a 'cropper' and a 'classifier'"),
])
def test_a_damaged_pipeline_json_is_an_error_naming_it(tmp_path, record, message):
    """A pipeline.json with a missing or ill-shaped entry was a KeyError or TypeError, naming nothing."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / PIPELINE_FILE).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=rf"{folder / PIPELINE_FILE}: .*{message}"):
        EmotionPipeline.from_export(folder)


def test_a_pipeline_json_that_is_no_json_is_named(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / PIPELINE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=rf"{folder / PIPELINE_FILE} is not valid JSON"):
        EmotionPipeline.from_export(folder)

"""The cropper contract: every cropper of kemotion's configs has every method training, predict and export call,
its runtime settings stay out of the crop key, and a recorded config builds it with runtime settings from the caller
only."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import yaml

from kemotion.core.config import config_file, options
from kemotion.core.keys import cropper_key
from kemotion.preprocess.cropper import Cropper, SourceImage, build_cropper, cropper_class
from kemotion.preprocess.resize import ResizeCropper
from kemotion.preprocess.stored import as_stored
from kemotion.preprocess.yolo import YoloCropper

PROTOCOL = sorted({name for name in dir(Cropper) if not name.startswith("_")} | set(Cropper.__annotations__)
                  | {"__call__"})


def test_the_protocol_declares_what_training_predict_and_export_call():
    assert {"decode_side", "crop_files", "crop_frames", "needs_face_detector", "runtime_settings",
            "export"} <= set(PROTOCOL)


@pytest.mark.parametrize("option", options("preprocess"))
def test_every_configured_cropper_has_the_whole_protocol(option):
    target = yaml.safe_load(config_file("preprocess", f"{option}.yaml").read_text())["_target_"]
    cls = cropper_class(target, option)
    assert [name for name in PROTOCOL if not hasattr(cls, name)] == []
    neutral = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("cache_key", True)}
    assert "batch_size" in cls.runtime_settings() <= neutral  # runtime settings never change a crop's key
    assert cls.needs_face_detector == ("checkpoint" in {f.name for f in dataclasses.fields(cls)})


def test_a_recorded_config_gives_fields_and_the_caller_gives_runtime_settings(tmp_path):
    detector = tmp_path / "face_detector.ckpt"
    detector.write_bytes(b"weights")
    recorded = {"_target_": "kemotion.preprocess.yolo.YoloCropper", "checkpoint": str(detector), "conf": 0.4,
                "batch_size": 3, "trust_checkpoint": True, "device": "cuda:7"}
    built = build_cropper(recorded, "run.json")
    assert (built.conf, built.batch_size, built.trust_checkpoint, built.device) == (0.4, 8, False, "cpu")
    given = build_cropper(recorded, "run.json", conf=0.1, batch_size=2, trust_checkpoint=True, device="cpu")
    assert (given.conf, given.batch_size, given.trust_checkpoint) == (0.1, 2, True)
    assert cropper_key(given) != cropper_key(built) == cropper_key(YoloCropper(str(detector), conf=0.4))
    resize = build_cropper({"_target_": "kemotion.preprocess.resize.ResizeCropper", "size": 32}, "run.json", conf=0.1,
                           device="cuda")  # settings it has no field for are not its business
    assert resize == ResizeCropper(size=32)


def test_whole_frame_croppers_predict_the_frame_as_the_cache_stores_it(tmp_path):
    path = tmp_path / "frame.png"
    image = np.random.default_rng(0).integers(0, 256, (90, 160, 3), np.uint8)
    cv2.imwrite(str(path), image[..., ::-1])
    cropper, source = ResizeCropper(size=48), SourceImage(str(path), 160, 90)
    (cropped,) = cropper.crop_files([source])
    ((crop,),) = cropper.crop_frames([source], [source.decode(cropper.decode_side(160, 90))], None, 5)
    assert crop.box == (0.0, 0.0, 160.0, 90.0) and crop.score is None
    assert np.array_equal(crop.image, as_stored(cropped.image))

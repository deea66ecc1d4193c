"""Item 4 of issue 20, and the same rule for what else a run's `run.json` names: the record is data.

A recorded `trust_checkpoint` used to reach the YOLO cropper, so a run.json alone could make predict unpickle a face
detector that runs code; its `_target_`s were handed to Hydra's instantiate, so it could name any function. Now trust
comes from the command line or the API call only, and the record names kemotion's croppers and networks only.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from kemotion import EmotionPipeline
from kemotion.engine.runs import STARTED
from kemotion.inference.exporter import export_run
from kemotion.preprocess.yolo import file_sha256
from tests.inference.conftest import recorded_run
from tests.security.conftest import Payload, hostile_pickle


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A yolo run and a resize run as training records them (untrained weights), copied by each test."""
    return {"yolo": recorded_run(tmp_path_factory.mktemp("yolo"), "yolo_kemo", ["data.detector.image_size=64"]),
            "resize": recorded_run(tmp_path_factory.mktemp("resize"), "resize_kemo")}


def edited_run(runs, kind, tmp_path, edit):
    """A copy of the `kind` run whose run.json pipeline record `edit` changed."""
    run = shutil.copytree(runs[kind], tmp_path / kind)
    started = json.loads((run / STARTED).read_text())
    edit(started["pipeline"])
    (run / STARTED).write_text(json.dumps(started))
    return run


def unpickler(tmp_path, marker) -> dict:
    """A config that, instantiated, unpickles a payload with kemotion's own loader (Hydra's instantiate blocks
    `subprocess` and `os`, but any function of kemotion was allowed)."""
    (tmp_path / "payload.pt").write_bytes(hostile_pickle(marker))
    return {"_target_": "kemotion.models.checkpoint.load_checkpoint", "path": str(tmp_path / "payload.pt"),
            "trust_checkpoint": True}


def test_a_recorded_trust_checkpoint_is_ignored_and_said_so(runs, tmp_path, marker, caplog):
    """run.json turns trust on for a face detector that pickles a payload: predict refuses the file instead."""
    hostile = tmp_path / "face_detector.pt"
    torch.save({"model": Payload(marker)}, hostile)

    def trust(record):
        record["cropper"] |= {"checkpoint": str(hostile), "trust_checkpoint": True}
        record["detector_sha256"] = file_sha256(hostile)

    run = edited_run(runs, "yolo", tmp_path, trust)
    with caplog.at_level(logging.WARNING):
        pipe = EmotionPipeline.from_run(run)
    assert f"{run / STARTED} records trust_checkpoint=true for the face detector: ignored" in caplog.text
    with pytest.raises(ValueError, match="face_detector.pt holds pickled Python objects .* trust_checkpoint=true"):
        pipe(np.zeros((64, 64, 3), np.uint8))
    assert not marker.exists()


def test_trust_comes_from_the_api_argument(runs):
    assert not EmotionPipeline.from_run(runs["yolo"]).cropper.trust_checkpoint
    assert EmotionPipeline.from_run(runs["yolo"], trust_checkpoint=True).cropper.trust_checkpoint


@pytest.mark.parametrize("target", ["subprocess.call", "kemotion.models.checkpoint.load_checkpoint"])
def test_a_cropper_target_naming_other_code_is_refused(runs, tmp_path, marker, target):
    cropper = unpickler(tmp_path, marker) | {"_target_": target}
    run = edited_run(runs, "resize", tmp_path, lambda record: record.update(cropper=cropper))
    with pytest.raises(ValueError, match=rf"{STARTED}: the cropper _target_ '{target}' is not one of kemotion"):
        EmotionPipeline.from_run(run)
    with pytest.raises(ValueError, match=f"'{target}' is not one of kemotion's croppers"):
        export_run(run, tmp_path / "export")
    assert not marker.exists()


def test_a_nested_target_in_a_cropper_field_is_not_instantiated(runs, tmp_path, marker):
    field = unpickler(tmp_path, marker)
    run = edited_run(runs, "resize", tmp_path, lambda record: record["cropper"].update(size=field))
    with pytest.raises((TypeError, ValueError)):
        EmotionPipeline.from_run(run)(np.zeros((64, 64, 3), np.uint8))
    assert not marker.exists()


def test_a_network_target_naming_other_code_is_refused(runs, tmp_path, marker):
    net = unpickler(tmp_path, marker)
    run = edited_run(runs, "resize", tmp_path, lambda record: record["classifier"].update(net=net))
    with pytest.raises(ValueError, match=r"classifier _target_ '\S+load_checkpoint' is not a network of kemotion"):
        EmotionPipeline.from_run(run)
    assert not marker.exists()


@pytest.mark.parametrize("target", ["subprocess.call", "kemotion.models.resnet.nn.Module",
                                    "kemotion.models.yolo.build_detector"])
def test_kemotion_functions_that_are_no_classifier_are_refused(runs, tmp_path, target):
    run = edited_run(runs, "resize", tmp_path, lambda record: record["classifier"]["net"].update(_target_=target))
    with pytest.raises(ValueError, match=f"classifier _target_ '{target}' is not a network"):
        EmotionPipeline.from_run(run)


@pytest.mark.parametrize("where", ["num_classes", "_args_"])
def test_a_network_target_inside_a_list_is_refused(runs, tmp_path, marker, where):
    """instantiate builds a `_target_` inside a list (an argument's value, or `_args_`) as it does inside a dict."""
    nested = [unpickler(tmp_path, marker)]
    run = edited_run(runs, "resize", tmp_path, lambda record: record["classifier"]["net"].update({where: nested}))
    with pytest.raises(ValueError, match=r"classifier _target_ '\S+load_checkpoint' is not a network of kemotion"):
        EmotionPipeline.from_run(run)
    assert not marker.exists()


def test_a_network_config_made_by_an_interpolation_is_refused(runs, tmp_path, marker):
    """OmegaConf resolves `${oc.create:...}` into a config inside instantiate, after any look at the record's dicts:
    a recorded (resolved) config holds no interpolation, so one is refused."""
    made = json.dumps(unpickler(tmp_path, marker))
    run = edited_run(runs, "resize", tmp_path,
                     lambda record: record["classifier"]["net"].update(num_classes=f"${{oc.create:{made}}}"))
    with pytest.raises(ValueError, match=r"run.json: the classifier's net holds an interpolation"):
        EmotionPipeline.from_run(run)
    assert not marker.exists()


@pytest.mark.parametrize("start", [{"pretrained": "imagenet"}, {"checkpoint": "/gone/classifier.ckpt"}])
def test_a_moved_run_needs_no_start_weights_of_its_network(runs, tmp_path, monkeypatch, start):
    """The classifier checkpoint holds every tensor (load_network refuses one that doesn't), so the network's start
    weights (`pretrained`, a `checkpoint` the run began from) are not read again: an offline machine without the
    ImageNet file, or without the training machine's paths, predicts the same."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("KEMOTION_OFFLINE", "1")
    run = edited_run(runs, "resize", tmp_path, lambda record: record["classifier"]["net"].update(start))
    expected = EmotionPipeline.from_run(runs["resize"])(np.zeros((64, 64, 3), np.uint8)).faces
    moved = EmotionPipeline.from_run(run)(np.zeros((64, 64, 3), np.uint8)).faces
    assert moved[0].probabilities == expected[0].probabilities


@pytest.mark.parametrize(("edit", "message"), [
    (lambda record: record.pop("classifier"), "must hold a 'cropper' and a 'classifier' object"),
    (lambda record: record.update(cropper=["_target_"]), "must hold a 'cropper' and a 'classifier' object"),
    (lambda record: record["classifier"].pop("input_size"), "classifier.input_size must be a whole number"),
    (lambda record: record["classifier"].update(mean=[0.5]), r"classifier.mean must be three numbers"),
    (lambda record: record["classifier"].update(std=[0.5, 0.0, 0.5]), "classifier.std must be positive"),
])
def test_a_damaged_record_is_an_error_naming_run_json(runs, tmp_path, edit, message):
    """A run.json with a missing or ill-shaped entry was a KeyError or TypeError deep inside prediction."""
    run = edited_run(runs, "resize", tmp_path, edit)
    with pytest.raises(ValueError, match=rf"{run / STARTED}: .*{message}"):
        EmotionPipeline.from_run(run)


def test_a_run_json_that_is_no_object_is_named(runs, tmp_path):
    run = shutil.copytree(runs["resize"], tmp_path / "resize")
    (run / STARTED).write_text("[]")
    with pytest.raises(ValueError, match=rf"{run / STARTED} holds no JSON object"):
        EmotionPipeline.from_run(run)

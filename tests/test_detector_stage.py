"""The pipeline's detector stage: what it trains is `+experiment=face_detector`, trained once per data and detector
config, and a YOLO-crop run without a checkpoint gets it."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.strategies import SingleDeviceStrategy
from omegaconf import OmegaConf

from kemotion.engine import detector_stage
from kemotion.train import job
from tests.conftest import compose_config
from tests.test_train import TINY_DETECTOR, TINY_RUN

RUN_KEYS = ["datamodule", "module", "callbacks", "trainer", "optimized_metric"]


def _resolved(cfg):
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in RUN_KEYS[:-1]} | {
        "optimized_metric": cfg.optimized_metric}


def test_the_detector_stage_trains_what_the_face_detector_experiment_trains(tmp_path):
    yolo = compose_config(tmp_path, ["+experiment=yolo_kemo", "trainer.max_epochs=3", "seed=7", "logger=wandb"])
    run = detector_stage.detector_run(yolo)
    experiment = compose_config(tmp_path, ["+experiment=face_detector", "seed=0"])
    assert _resolved(run) == _resolved(experiment)  # the classifier's max_epochs does not leak in
    assert run.trainer.max_epochs == yolo.data.detector.epochs and run.seed == yolo.detector.seed == 0
    assert set(run.logger) == {"csv"}
    assert yolo.trainer.max_epochs == 3 and "ema" not in yolo.callbacks  # the run's own config is untouched


def test_under_ddp_the_detector_stage_trains_in_one_process_on_the_runs_accelerator(tmp_path):
    ddp = compose_config(tmp_path, ["+experiment=yolo_kemo", "trainer=ddp", "+trainer.num_nodes=2"])
    run = detector_stage.detector_run(ddp)
    trainer = instantiate(run.trainer, logger=False)
    assert isinstance(trainer.strategy, SingleDeviceStrategy) and trainer.world_size == 1
    assert run.trainer.accelerator == ddp.trainer.accelerator == "auto"
    assert (ddp.trainer.devices, ddp.trainer.strategy, ddp.trainer.sync_batchnorm) == (2, "ddp", True)  # untouched
    single = compose_config(tmp_path, ["+experiment=yolo_kemo", "trainer.accelerator=auto"])
    single_run = detector_stage.detector_run(single)
    assert detector_stage.detector_key(run, ddp) == detector_stage.detector_key(single_run, single)


@pytest.mark.parametrize(("change", "same"), [
    ("detector.epochs=5", False), ("data.detector.image_size=320", False), ("detector=yolov8n", False),
    ("detector.seed=1", False), ("seed=5", True), ("model=vgg19", True), ("trainer.max_epochs=2", True),
    ("data.num_workers=0", True), ("preprocess.conf=0.5", True),
])
def test_the_detector_key_follows_what_the_detector_trains_with(tmp_path, change, same):
    base = compose_config(tmp_path, ["+experiment=yolo_kemo"])
    key = detector_stage.detector_key(detector_stage.detector_run(base), base)
    changed = compose_config(tmp_path, ["+experiment=yolo_kemo", change])
    assert (detector_stage.detector_key(detector_stage.detector_run(changed), changed) == key) == same


def test_a_given_checkpoint_is_used_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setattr(detector_stage, "train", lambda run: pytest.fail("trained a detector it did not need"))
    (tmp_path / "mine.pt").write_bytes(b"weights")
    cfg = compose_config(tmp_path, ["+experiment=yolo_kemo", f"preprocess.checkpoint={tmp_path / 'mine.pt'}"])
    assert detector_stage.run(cfg) is None and cfg.preprocess.checkpoint == str(tmp_path / "mine.pt")
    assert detector_stage.run(compose_config(tmp_path, ["+experiment=resize_kemo"])) is None


def test_the_stage_is_asked_for_by_the_croppers_class_not_by_a_checkpoint_key(tmp_path):
    """`needs_face_detector` decides: a cropper with a `checkpoint` field that needs no detector gets none."""
    yolo = compose_config(tmp_path, ["+experiment=yolo_kemo"])
    assert detector_stage.needs_stage(yolo)
    opencv = compose_config(tmp_path, ["+experiment=opencv_kemo", "+preprocess.checkpoint=null"])
    assert "checkpoint" in opencv.datamodule.cropper and not detector_stage.needs_stage(opencv)
    for detector in ("+experiment=face_detector", "+experiment=detector_table4"):
        assert not detector_stage.needs_stage(compose_config(tmp_path, [detector]))


def test_the_stage_runs_before_the_run_and_leaves_its_config_as_composed(tmp_path, monkeypatch):
    """A run gets the stage's detector beside its config: the config (and the run folder's key) stay as composed, and
    the run's record names the detector it cropped with."""
    from kemotion import train as entry
    from kemotion.engine.runs import RunFolder

    cfg = compose_config(tmp_path, ["+experiment=yolo_kemo", "debug=tiny", "logger=none"])
    composed, key = OmegaConf.to_yaml(cfg), RunFolder.of(cfg).key
    seen = {}

    def stage(run):  # the stage's answer, without the minutes of training
        seen["stage"] = OmegaConf.to_yaml(run)
        return tmp_path / "face_detector.ckpt"

    def run(run_cfg, face_detector=None):
        seen["run"] = (OmegaConf.to_yaml(run_cfg), face_detector)
        return {"val/acc_best": 0.5}, None

    monkeypatch.setattr(entry.detector_stage, "run", stage)
    monkeypatch.setattr(entry, "train", run)
    assert entry.job(cfg) == ({"val/acc_best": 0.5}, None)
    assert seen == {"stage": composed, "run": (composed, tmp_path / "face_detector.ckpt")}
    assert OmegaConf.to_yaml(cfg) == composed and RunFolder.of(cfg).key == key


@pytest.mark.slow
def test_yolo_kemo_trains_its_detector_once_then_reuses_detector_and_crops(tmp_path, caplog):
    detector = [o for o in TINY_DETECTOR if o.startswith("data.detector")]
    overrides = ["+experiment=yolo_kemo", *TINY_RUN, *detector, "trainer.max_epochs=2",
                 "preprocess.conf=0.0"]  # a 2-epoch detector is unsure: keep every face it proposes
    cfg = compose_config(tmp_path, overrides)
    with caplog.at_level(logging.INFO):
        metrics, best = job(cfg)
    assert 0 <= metrics["test/acc"] <= 1 and best
    (weights,) = (tmp_path / ".cache" / "detectors").glob("*/*/face_detector.ckpt")
    assert "Building the face detector into" in caplog.text
    assert "Face detector on the test split: mAP@0.5" in caplog.text
    assert weights.parent.name.startswith("yolo_facev2-") and weights == detector_stage.face_detector_path(cfg)
    assert cfg.preprocess.checkpoint is None  # the run got its detector beside its config
    run = json.loads((tmp_path / "run" / "run.json").read_text())["pipeline"]["cropper"]["checkpoint"]
    assert (tmp_path / "run" / run).read_bytes() == weights.read_bytes()  # the run's own copy, named relative to it
    detector = instantiate(compose_config(tmp_path, ["+experiment=face_detector"]).module.net)
    saved = torch.load(weights, map_location="cpu", weights_only=False)["state_dict"]
    assert {k.removeprefix("net.") for k in saved if k.startswith("net.")} == set(detector.state_dict())
    (report,) = (tmp_path / ".cache" / "crops").glob("*/yolo-*/classification_report.txt")
    assert "face recall" in report.read_text()

    caplog.clear()
    again = compose_config(tmp_path, [*overrides, "trainer.max_epochs=1", "seed=1"])
    with caplog.at_level(logging.INFO):
        job(again)
    assert f"Reusing the face detector {weights}" in caplog.text
    assert "Reusing yolo crops of the classification subset" in caplog.text
    assert "Building the face detector" not in caplog.text

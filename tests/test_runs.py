"""A run folder's record: finished runs are skipped, killed ones resume, a folder of other settings is an error."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger

from kemotion.core.keys import settings_key
from kemotion.engine.runs import LOCK, RunFolder, pipeline_record
from kemotion.engine.training import train
from kemotion.lit.classifier import EmotionClassifier
from tests.conftest import compose_config

TINY_RUN = ["debug=tiny", "+experiment=resize_kemo", "trainer.max_epochs=3", "model.net.width=8",
            "callbacks.model_checkpoint.save_last=true"]  # as table5 does


@pytest.mark.parametrize(("change", "same"), [
    ("data.num_workers=3", True), ("data.crop_workers=3", True), ("trainer.log_every_n_steps=1", True),
    ("threads=1", True),  # the same config on any machine: README, Measured (tests/test_train.py)
    ("seed=1", False), ("trainer.max_epochs=2", False), ("model=resnet18", False), ("preprocess=opencv", False),
])
def test_the_settings_key_follows_what_a_run_trains(tmp_path, change, same):
    base = settings_key(compose_config(tmp_path, ["+experiment=resize_kemo"]))
    assert (settings_key(compose_config(tmp_path, ["+experiment=resize_kemo", change])) == base) is same


def test_a_folder_records_start_and_result_and_refuses_other_settings(tmp_path):
    folder = RunFolder(tmp_path, "abc")
    assert folder.finished() is None and folder.last_checkpoint() is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert folder.last_checkpoint() is None  # not a run this folder started
    folder.start({"preprocess": "yolo", "model": "vgg19", "seed": 0})
    assert folder.finished() is None and folder.last_checkpoint() == str(tmp_path / "checkpoints" / "last.ckpt")
    folder.finish({"metrics": {"test/acc": 0.5}})
    assert folder.finished() == {"key": "abc", "metrics": {"test/acc": 0.5}}
    with pytest.raises(RuntimeError, match=r"run\.json records a run with other settings"):
        RunFolder(tmp_path, "xyz").finished()
    (tmp_path / "result.json").write_text("{half", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"result\.json is not valid JSON"):
        folder.finished()


SYNTHETIC_AIHUB = {"dataset": "synthetic", "source": "kemotion.data.synthetic.SyntheticAIHub"}


@pytest.mark.parametrize(("overrides", "from_stage", "expected"), [
    (["+experiment=resize_kemo"], False, {**SYNTHETIC_AIHUB, "face_detector": None}),  # the cropper has none
    (["+experiment=yolo_kemo"], True, {**SYNTHETIC_AIHUB, "face_detector": SYNTHETIC_AIHUB}),  # `make demo`
    (["+experiment=yolo_kemo", "preprocess.checkpoint={detector}"], False,  # trained elsewhere: unknown
     {**SYNTHETIC_AIHUB, "face_detector": None}),
    (["+experiment=yolo_kemo", "data=aihub", "data.source.root=/data/aihub", "detector_data=widerface_synthetic"], True,
     {"dataset": "aihub", "source": "kemotion.data.aihub.AIHubDownload",
      "face_detector": {"dataset": "synthetic", "source": "kemotion.data.synthetic.wider.SyntheticWider"}}),
])
def test_a_run_records_what_its_classifier_and_face_detector_were_trained_on(tmp_path, overrides, from_stage,
                                                                            expected):
    detector = tmp_path / "face_detector.ckpt"
    detector.write_bytes(b"a face detector")
    cfg = compose_config(tmp_path, [override.format(detector=detector) for override in overrides])
    record = pipeline_record(cfg, tmp_path / "run", detector if from_stage else None)
    assert record["trained_on"] == expected


@pytest.mark.slow
def test_a_crashed_run_resumes_and_a_finished_one_is_skipped(tmp_path, monkeypatch, caplog):
    cfg = compose_config(tmp_path, TINY_RUN)
    run = tmp_path / "run"

    def killed(self):
        if self.current_epoch == 1:
            raise RuntimeError("crashed in epoch 1")

    with monkeypatch.context() as patch:
        patch.setattr(EmotionClassifier, "on_train_epoch_end", killed, raising=False)
        with pytest.raises(RuntimeError, match="crashed in epoch 1"):
            train(cfg)
    assert (run / "run.json").exists() and not (run / "result.json").exists()

    with caplog.at_level(logging.INFO):
        metrics, best = train(cfg)  # the same folder and settings, as a relaunched sweep job
    assert f"Resuming training from {run / 'checkpoints' / 'last.ckpt'}" in caplog.text
    resumed = pd.read_csv(sorted((run / "csv").glob("version_*"))[-1] / "metrics.csv")
    # epoch 0 came from the checkpoint; epoch 1, cut short by the crash after its validation, runs again
    assert resumed.dropna(subset=["train/loss_epoch"])["epoch"].astype(int).tolist() == [1, 2]
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result["cell"] == {"preprocess": "resize", "model": "kemotionnet", "split": "random", "seed": 42}
    assert result["metrics"]["test/acc"] == metrics["test/acc"] and result["best_checkpoint"] == best
    assert sum(map(sum, result["confusion"])) == 7  # one test image per class in the tiny set: all counted
    assert not (run / "checkpoints" / "last.ckpt").exists() and Path(best).exists()  # the resume point is dropped

    caplog.clear()
    with caplog.at_level(logging.INFO):
        again, best_again = train(cfg)
    assert f"Skipping {run}: it finished there already" in caplog.text and "Resuming" not in caplog.text
    assert again == metrics and best_again == best


def test_a_failed_run_leaves_its_error_not_its_model(tmp_path, monkeypatch):
    """Hydra keeps each failed job's exception until a sweep ends: it must not keep the job's model alive."""
    def crashed(self):
        raise RuntimeError("crashed")

    monkeypatch.setattr(EmotionClassifier, "on_train_epoch_end", crashed, raising=False)
    with pytest.raises(RuntimeError, match="crashed") as failure:
        train(compose_config(tmp_path, [*TINY_RUN, "trainer.max_epochs=1"]))
    gc.collect()
    assert failure.value.__traceback__ is not None  # the error and its lines are kept for Hydra's report
    assert not [o for o in gc.get_objects() if isinstance(o, EmotionClassifier)]


def test_a_run_folder_another_process_owns_is_skipped(tmp_path, caplog):
    cfg = compose_config(tmp_path, [*TINY_RUN, "trainer.max_epochs=1"])
    run = tmp_path / "run"
    run.mkdir()
    with FileLock(run / LOCK, timeout=0):  # the first launch of a sweep, still training this run
        with caplog.at_level(logging.INFO):
            assert train(cfg) == ({}, None)
        assert f"Skipping {run}: another process is running it" in caplog.text
        assert not (run / "run.json").exists()  # nothing of the folder touched
        with RunFolder.of(cfg).claim() as owned:
            assert owned is False
    with RunFolder.of(cfg).claim() as owned:  # released: the next launch owns it
        assert owned is True


def test_a_run_keeps_its_w_and_b_id_across_a_resume(tmp_path):
    cfg = compose_config(tmp_path, [*TINY_RUN, "logger=wandb"])
    first = RunFolder.of(cfg)
    first.start({})
    again = RunFolder.of(cfg)  # the relaunch: a new process, the same folder
    assert first.new_id != again.new_id and again.run_id() == first.run_id()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["run_id"] == first.run_id()
    from kemotion.engine.training import _run_id

    logger = instantiate(cfg.logger.wandb, **_run_id(cfg.logger.wandb, again))
    assert isinstance(logger, WandbLogger)
    assert logger._wandb_init["id"] == first.run_id() and logger._wandb_init["resume"] == "allow"
    other = compose_config(tmp_path, [*TINY_RUN, "logger=wandb"])  # another folder: another run
    assert RunFolder.of(other).run_id() != first.run_id()

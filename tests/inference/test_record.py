"""What a run was trained on, read from its record (or an export's) and said once when it was kemotion's synthetic
faces: the demo's model finds no face on real photos, and its emotions there mean nothing."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from kemotion import EmotionPipeline
from kemotion.core.config import CONFIG_PACKAGE
from kemotion.engine.runs import STARTED
from kemotion.inference.record import read_run
from kemotion.inference.record_check import synthetic_notice
from kemotion.predict import LOG_FILE, predict
from tests.inference.conftest import recorded_run

SYNTHETIC = {"dataset": "synthetic", "source": "kemotion.data.synthetic.SyntheticAIHub"}
AIHUB = {"dataset": "aihub", "source": "kemotion.data.aihub.AIHubDownload"}
WIDER = {"dataset": "widerface", "source": "kemotion.data.widerface.WiderFace"}
ADVICE = "Train on AI-Hub data for real use (README, Data)"
RESIZE_NOTICE = ("this run was trained on kemotion's synthetic faces only: on real photos its emotions are not "
                 f"meaningful. {ADVICE}")


@pytest.fixture(scope="module")
def resize_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("resize"), "resize_kemo")


def edited(run, tmp_path, edit):
    """A copy of `run` whose run.json pipeline record `edit` changed."""
    copy = shutil.copytree(run, tmp_path / "run")
    started = json.loads((copy / STARTED).read_text())
    edit(started["pipeline"])
    (copy / STARTED).write_text(json.dumps(started))
    return copy


def notices(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and "synthetic faces" in record.getMessage()]


@pytest.mark.parametrize(("trained_on", "notice"), [
    ({**SYNTHETIC, "face_detector": SYNTHETIC},  # `make demo`
     "this run was trained on kemotion's synthetic faces only: on real photos it will find few faces and its "
     f"emotions are not meaningful. {ADVICE}"),
    ({**SYNTHETIC, "face_detector": None}, RESIZE_NOTICE),  # a crop without a face detector of kemotion's training
    ({**AIHUB, "face_detector": {"dataset": "synthetic", "source": "kemotion.data.synthetic.wider.SyntheticWider"}},
     f"this run's face detector was trained on kemotion's synthetic faces only: on real photos it will find few "
     f"faces. {ADVICE}"),
    ({**SYNTHETIC, "face_detector": WIDER},
     f"this run's classifier was trained on kemotion's synthetic faces only: on real photos its emotions are not "
     f"meaningful. {ADVICE}"),
    ({**AIHUB, "face_detector": WIDER}, None),
    ({**AIHUB, "face_detector": None}, None),
    (None, None),  # recorded before kemotion kept it
])
def test_the_notice_names_what_learned_from_synthetic_faces(trained_on, notice):
    assert synthetic_notice(trained_on) == notice


def test_a_synthetic_run_says_so_once_per_pipeline_when_it_is_pointed_at_images(resize_run, tiny_aihub, caplog):
    photo = sorted(tiny_aihub.rglob("*.jpg"))[0]
    assert read_run(resize_run).trained_on == {**SYNTHETIC, "face_detector": None}
    with caplog.at_level(logging.WARNING):
        pipe = EmotionPipeline.from_run(resize_run)
        assert notices(caplog) == []  # not yet: it may never see a photo
        pipe.predict([photo, photo])
        pipe(photo)
        assert notices(caplog) == [RESIZE_NOTICE]
        EmotionPipeline.from_run(resize_run)(photo)
    assert notices(caplog) == [RESIZE_NOTICE] * 2  # each pipeline once
    assert pipe.identity()["trained_on"] == {**SYNTHETIC, "face_detector": None}


def test_a_run_recorded_before_kemotion_kept_it_predicts_without_a_notice(resize_run, tiny_aihub, tmp_path, caplog):
    run = edited(resize_run, tmp_path, lambda record: record.pop("trained_on"))
    with caplog.at_level(logging.WARNING):
        pipe = EmotionPipeline.from_run(run)
        faces = pipe(sorted(tiny_aihub.rglob("*.jpg"))[0])
    assert len(faces) == 1 and notices(caplog) == []  # a resize run: the whole frame is its face
    assert pipe.identity()["trained_on"] is None


@pytest.mark.parametrize("damage", ["synthetic", {"dataset": 3, "source": None},
                                    {**SYNTHETIC, "face_detector": "yolo"}])
def test_a_damaged_trained_on_is_an_error_naming_run_json(resize_run, tmp_path, damage):
    run = edited(resize_run, tmp_path, lambda record: record.update(trained_on=damage))
    with pytest.raises(ValueError, match=rf"{run / STARTED}: trained_on must say each part's dataset"):
        EmotionPipeline.from_run(run)


def test_an_export_carries_it_and_its_pipeline_says_so(resize_run, tiny_aihub, tmp_path, caplog):
    from kemotion.inference.exporter import export_run

    pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]' (make install does)")
    export = export_run(resize_run, tmp_path / "export")
    assert json.loads((export / "pipeline.json").read_text())["trained_on"] == {**SYNTHETIC, "face_detector": None}
    with caplog.at_level(logging.WARNING):
        pipe = EmotionPipeline.from_export(export)
        pipe(sorted(tiny_aihub.rglob("*.jpg"))[0])
    assert notices(caplog) == [RESIZE_NOTICE]
    assert pipe.identity()["trained_on"] == {**SYNTHETIC, "face_detector": None}


def test_predict_records_it_in_predict_json_and_predict_log(resize_run, tiny_aihub, tmp_path):
    photo = shutil.copy(sorted(tiny_aihub.rglob("*.jpg"))[0], tmp_path / "photo.jpg")  # a name Hydra parses
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        cfg = compose("predict", overrides=[f"run={resize_run}", f"source={photo}",
                                            f"project={tmp_path}", "name=out", "save=false"])
    folder, _ = predict(cfg)
    recorded = json.loads((folder / "predict.json").read_text(encoding="utf-8"))
    assert recorded["identity"]["pipeline"]["trained_on"] == {**SYNTHETIC, "face_detector": None}
    log = (folder / LOG_FILE).read_text(encoding="utf-8").splitlines()
    assert [line.split("]", 1)[1] for line in log if "synthetic faces" in line] == [
        f"[kemotion.inference.pipeline][WARNING] - {RESIZE_NOTICE}"]

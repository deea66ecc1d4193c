"""A run shared through W&B: logged as a model and a dataset artifact (W&B offline, read back from the run's own
transaction log), and predicted from an artifact reference (only W&B's download step stands in for the network)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import wandb
from wandb.proto import wandb_internal_pb2

from kemotion import EmotionPipeline
from kemotion.engine.artifacts import log_run, model_files
from kemotion.engine.runs import FINISHED, STARTED
from kemotion.engine.training import train
from kemotion.inference.exporter import export_run
from kemotion.inference.onnx import PIPELINE_FILE
from kemotion.inference.record import read_run
from tests.conftest import compose_config
from tests.inference.conftest import recorded_run
from tests.inference.test_predict import lines_of, predict_in

BLOCK, HEADER, CHUNK_HEADER = 32768, 7, 7  # W&B's transaction log: LevelDB's log format after a 7-byte header
FULL, LAST = 1, 4  # LevelDB chunk types that end a record


def logged_artifacts(wandb_folder: Path) -> dict[str, wandb_internal_pb2.ArtifactRecord]:
    """Type → the artifact an offline W&B run under `wandb_folder` logged (what `wandb sync` would upload), read
    from its transaction log `run-<id>.wandb`: protobuf records in LevelDB log chunks. W&B's service process may
    write them after `finish()` returns; `teardown` waits for it."""
    wandb.teardown()
    (log,) = wandb_folder.glob("offline-run-*/run-*.wandb")
    data, position, record, found = log.read_bytes(), HEADER, b"", {}
    assert data[:4] == b":W&B"
    while position + CHUNK_HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < CHUNK_HEADER:  # a block's tail too short for a chunk is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + CHUNK_HEADER])
        record += data[position + CHUNK_HEADER:position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            parsed = wandb_internal_pb2.Record.FromString(record)
            if parsed.WhichOneof("record_type") == "artifact":
                found[parsed.artifact.type] = parsed.artifact
            record = b""
    return found


def contents(artifact: wandb_internal_pb2.ArtifactRecord) -> dict[str, int]:
    return {entry.path: entry.size for entry in artifact.manifest.contents}


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B offline for this test, its staging and cache folders under tmp_path (the conftest disables it)."""
    wandb.teardown()  # W&B reads its mode once per process setup
    for variable, value in [("WANDB_MODE", "offline"), ("WANDB_DIR", tmp_path / "wandb-dir"),
                            ("WANDB_DATA_DIR", tmp_path / "wandb-data"), ("WANDB_CACHE_DIR", tmp_path / "wandb-cache")]:
        monkeypatch.setenv(variable, str(value))
    yield
    wandb.teardown()


@pytest.mark.slow
def test_a_finished_run_logs_its_model_and_its_crop_table(tmp_path, offline_wandb):
    cfg = compose_config(tmp_path, ["+experiment=resize_kemo", "debug=tiny", "logger=wandb", "trainer.max_epochs=1",
                                    "model.net.width=8"])
    _, best = train(cfg)
    run = tmp_path / "run"
    logged = logged_artifacts(run / "wandb")
    assert set(logged) == {"model", "dataset"}

    model = logged["model"]
    run_id = json.loads((run / STARTED).read_text())["run_id"]
    assert (model.name, sorted(model.aliases)) == (f"{cfg.run_name}-{run_id}", ["best", "latest"])
    best = Path(best)
    assert best.parent == run / "checkpoints" and best.is_file()
    assert contents(model) == {name: (run / name).stat().st_size for name in
                               (STARTED, FINISHED, f"checkpoints/{best.name}")}
    assert {entry.path: entry.local_path for entry in model.manifest.contents}[f"checkpoints/{best.name}"] == str(best)
    result = json.loads((run / FINISHED).read_text())
    assert json.loads(model.metadata)["metrics"]["test/acc"] == pytest.approx(result["metrics"]["test/acc"])

    crops = logged["dataset"]
    (table,) = (tmp_path / ".cache" / "crops").glob("*/resize-*/classification.csv")
    assert crops.name == f"crops-{table.parent.parent.name}-{table.parent.name}"
    assert contents(crops) == {name: (table.parent / name).stat().st_size for name in
                               ("classification.csv", "classification_report.csv", "classification_dropped.csv")}
    assert json.loads(crops.metadata)["cropper"] == "resize"


def test_a_yolo_runs_model_artifact_carries_its_face_detector(tmp_path, offline_wandb):
    run = recorded_run(tmp_path, "yolo_kemo")
    best = run / "checkpoints" / "best.ckpt"
    assert model_files(run, best) == {STARTED: run / STARTED, FINISHED: run / FINISHED,
                                      "checkpoints/best.ckpt": best,
                                      "detector/face_detector.ckpt": run / "detector" / "face_detector.ckpt"}
    experiment = wandb.init(project="kemotion", name="train/yolo kemo", id="abc123", dir=tmp_path)
    log_run(experiment, run, datamodule=None)  # no data module: no crop table
    experiment.finish()
    logged = logged_artifacts(tmp_path / "wandb")
    assert set(logged) == {"model"} and logged["model"].name == "train-yolo-kemo-abc123"  # a name references can name
    assert contents(logged["model"]) == {name: path.stat().st_size for name, path in model_files(run, best).items()}


class Downloads:
    """`wandb.Api()` as the predict path calls it, with only the download in place of the network: it writes the
    files `kemotion.engine.artifacts` logs of `run` (`model_files`)."""

    def __init__(self, run: Path) -> None:
        self.run, self.asked = run, []

    def __call__(self):
        return self

    def artifact(self, name: str, type: str | None = None):
        self.asked.append((name, type))
        artifact = Downloads.Artifact()
        artifact.entity, artifact.project, artifact.name, artifact.version = "me", "kemotion", "yolo-run:best", "v3"
        artifact.download = self.download
        return artifact

    def download(self, root: str) -> str:
        for name, path in model_files(self.run, self.run / "checkpoints" / "best.ckpt").items():
            (Path(root) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(root) / name)
        return root

    class Artifact:
        pass


REFERENCE = "wandb:me/kemotion/yolo-run:best"


@pytest.fixture
def shared_run(tmp_path, monkeypatch):
    """A YOLO-crop run and the W&B API that downloads its model artifact; kemotion's cache in tmp_path."""
    (tmp_path / "trained").mkdir()
    run = recorded_run(tmp_path / "trained", "yolo_kemo", ["preprocess.conf=0.0"])
    downloads = Downloads(run)
    monkeypatch.setattr(wandb, "Api", downloads)
    monkeypatch.setenv("KEMOTION_CACHE", str(tmp_path / "cache"))
    return run, downloads


def test_a_model_artifact_predicts_as_its_run_folder_does(tmp_path, shared_run):
    run, downloads = shared_run
    frame = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    expected = EmotionPipeline.from_run(run, max_faces=3)(frame)
    assert EmotionPipeline.from_run(REFERENCE, max_faces=3)(frame).faces == expected.faces and len(expected) == 3
    assert downloads.asked == [("me/kemotion/yolo-run:best", "model")]
    record = read_run(REFERENCE)
    assert record.directory == tmp_path / "cache" / "artifacts" / "me" / "kemotion" / "yolo-run" / "v3"
    assert record.cropper["checkpoint"] == str(record.directory / "detector" / "face_detector.ckpt")  # the artifact's


def test_predict_and_export_take_an_artifact_reference(tmp_path, shared_run, tiny_aihub):
    run, _ = shared_run
    photo = shutil.copy(sorted(tiny_aihub.rglob("*.jpg"))[0], tmp_path / "photo.jpg")  # a name Hydra can parse
    predict_in(tmp_path / "from_folder", [f"run={run}", f"source={photo}", "conf=0.0", "max_faces=2"])
    predict_in(tmp_path / "from_wandb", [f"run={REFERENCE}", f"source={photo}", "conf=0.0", "max_faces=2"])
    ours, theirs = lines_of(tmp_path / "from_folder"), lines_of(tmp_path / "from_wandb")
    assert [line["faces"] for line in ours] == [line["faces"] for line in theirs] and len(ours[0]["faces"]) == 2
    pipeline = json.loads((export_run(REFERENCE, tmp_path / "export") / PIPELINE_FILE).read_text())
    assert pipeline["run"] == str(tmp_path / "cache" / "artifacts" / "me" / "kemotion" / "yolo-run" / "v3")


def test_an_artifacts_record_is_checked_as_any_run_record(shared_run):
    run, _ = shared_run
    started = json.loads((run / STARTED).read_text())
    started["pipeline"]["cropper"]["_target_"] = "subprocess.call"
    (run / STARTED).write_text(json.dumps(started))
    with pytest.raises(ValueError, match=r"artifacts/me/kemotion/yolo-run/v3/run.json: the cropper _target_ "
                                         r"'subprocess.call' is not one of kemotion"):
        EmotionPipeline.from_run(REFERENCE)


def test_without_the_network_the_error_names_the_reference(monkeypatch):
    def offline():
        raise wandb.errors.CommError("Failed to execute API request: the service process is busy")

    monkeypatch.setattr(wandb, "Api", offline)
    with pytest.raises(ConnectionError, match=rf"run={REFERENCE}: cannot fetch the W&B model artifact "
                                              r"me/kemotion/yolo-run:best: Failed to execute API request.*wandb login"):
        EmotionPipeline.from_run(REFERENCE)


@pytest.mark.parametrize(("answer", "message"), [
    ({"entity": ".."}, r"W&B names .* as \['\.\.', 'kemotion', 'yolo-run', 'v3'\], which cannot be a folder name"),
    ({"name": "a/b:v3"}, r"which cannot be a folder name"),
])
def test_a_name_from_w_and_b_that_is_no_folder_name_is_refused(tmp_path, shared_run, answer, message):
    _, downloads = shared_run
    artifact = downloads.artifact
    downloads.artifact = lambda name, type=None: _with(artifact(name, type), answer)
    with pytest.raises(ValueError, match=message):
        read_run(REFERENCE)
    assert not (tmp_path / "cache" / "artifacts").exists()


def _with(artifact, attributes: dict):
    for key, value in attributes.items():
        setattr(artifact, key, value)
    return artifact


def test_a_reference_naming_nothing_is_refused():
    with pytest.raises(ValueError, match="run=wandb:: name the artifact, run=wandb:ENTITY/PROJECT/NAME:ALIAS"):
        read_run("wandb:")

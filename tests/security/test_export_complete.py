"""Item 16 of issue 20: export takes the trust flag predict takes, and an export is complete or absent.

A run whose face detector is a pickled ultralytics `.pt` (trained with `+preprocess.trust_checkpoint=true`) used to
fail its export with an error asking for a flag export did not accept, after writing `classifier.onnx` and before
`pipeline.json`.
"""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from kemotion.core.config import CONFIG_PACKAGE
from kemotion.export import export
from kemotion.inference.exporter import export_run
from kemotion.inference.onnx import CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE
from kemotion.models.yolo import build_detector
from tests.inference.conftest import recorded_run

pytest.importorskip("onnx", reason="the export extra: pip install -e '.[export]' (make install does)")


@pytest.fixture(scope="module")
def pickled_detector_run(tmp_path_factory):
    """A yolo run whose face detector is an ultralytics-style .pt (a pickled model), recorded with trust on."""
    root = tmp_path_factory.mktemp("pickled")
    torch.save({"model": build_detector("yolov8n.yaml", scale="n").half()}, root / "yolov8n_faces.pt")
    return recorded_run(root, "yolo_kemo", ["data.detector.image_size=64", "+preprocess.trust_checkpoint=true",
                                            f"preprocess.checkpoint={root}/yolov8n_faces.pt"])


def export_config(run, overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        return compose("export", overrides=[f"run={run}", *overrides])


def test_a_failed_export_leaves_no_file(pickled_detector_run, tmp_path):
    folder = tmp_path / "export"
    with pytest.raises(ValueError, match="yolov8n_faces.pt holds pickled Python objects .* trust_checkpoint=true"):
        export_run(pickled_detector_run, folder)
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []  # nor a partial folder beside it


def test_a_failed_export_into_an_existing_folder_adds_nothing(pickled_detector_run, tmp_path):
    """`python -m kemotion.export` exports into Hydra's run folder, which already holds its log."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export.log").write_text("")
    with pytest.raises(ValueError, match="trust_checkpoint=true"):
        export(export_config(pickled_detector_run), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["export.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_export_takes_trust_checkpoint_as_predict_does(pickled_detector_run, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    export(export_config(pickled_detector_run, ["trust_checkpoint=true"]), folder)
    assert {CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE} <= {p.name for p in folder.iterdir()}
    cropper = json.loads((folder / PIPELINE_FILE).read_text())["cropper"]
    assert "trust_checkpoint" not in cropper and cropper["checkpoint"] == DETECTOR_FILE
    with pytest.raises(FileExistsError, match="already holds an export"):  # never overwritten, never mixed
        export_run(pickled_detector_run, folder, trust_checkpoint=True)

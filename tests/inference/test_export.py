"""`python -m kemotion.export` and `EmotionPipeline.from_export`: onnxruntime agrees with torch, without torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from kemotion import EmotionPipeline
from kemotion.core.emotions import ENGLISH_NAMES
from kemotion.core.keys import file_sha256
from kemotion.data.manifest import load_or_build
from kemotion.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from kemotion.inference.exporter import export_run
from kemotion.inference.onnx import CLASSIFIER_FILE, DETECTOR_FILE, PIPELINE_FILE, classifier_inputs
from kemotion.models.onnx_export import DecodedHead
from kemotion.models.onnx_runtime import session
from kemotion.models.yolo import load_detector, save_detector
from tests.inference.conftest import detector_checkpoint, recorded_run
from tests.inference.test_pipeline import unreadable_first

pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]' (make install does)")

LOGIT_TOLERANCE = 1e-4
BOX_TOLERANCE = 0.5  # pixels


@pytest.fixture(scope="module")
def yolo_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo")
    torch.manual_seed(3)  # one untrained detector whatever ran before: seeds 0 and 1 saturate its scores at 1.0, and
    # which of two tied boxes NMS keeps differs between ultralytics (torch) and OpenCV (onnx): 20 faces against 10
    detector = calibrated(detector_checkpoint(root / "face_detector.ckpt"))
    run = recorded_run(root, "yolo_kemo", ["preprocess.conf=0.0", "data.detector.image_size=64",
                                           f"preprocess.checkpoint={detector}"])
    return run, export_run(run, root / "export")


def calibrated(checkpoint):
    """An untrained ultralytics net's activations shrink layer by layer (BatchNorm's running variance starts at 1),
    so every box scored about 1/81, and which of two equal boxes NMS kept was float noise: torch and onnxruntime
    kept 17 and 18 faces. BatchNorm statistics measured on random images make the scores differ."""
    torch.manual_seed(0)
    net = load_detector(checkpoint).train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # the plain average over the batches below
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(8, 3, 64, 64))
    return save_detector(net, checkpoint)


def test_the_onnx_classifier_and_detector_match_torch(yolo_export, tiny_aihub):
    run, export = yolo_export
    torch_pipe, onnx_pipe = EmotionPipeline.from_run(run), EmotionPipeline.from_export(export)
    crops = [np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8) for seed in range(5)]
    inputs = torch_pipe.classify.inputs(crops)
    np.testing.assert_allclose(onnx_pipe.classify.logits(inputs.numpy()), torch_pipe.classify.logits(inputs).numpy(),
                               atol=LOGIT_TOLERANCE, rtol=0)

    images = torch.rand(3, 3, 64, 64)
    with torch.inference_mode():
        expected = DecodedHead(load_detector(torch_pipe.cropper.checkpoint))(images).numpy()
    detector = session(export / DETECTOR_FILE)
    found = detector.run(None, {"images": images.numpy()})[0]
    assert found.shape == expected.shape == (3, 5, found.shape[2])  # a batch of 3 through a graph exported with 2
    np.testing.assert_allclose(found[:, :4], expected[:, :4], atol=BOX_TOLERANCE, rtol=0)
    np.testing.assert_allclose(found[:, 4], expected[:, 4], atol=LOGIT_TOLERANCE, rtol=0)

    photos = sorted(tiny_aihub.rglob("*.jpg"))[:4]
    for ours, theirs in zip(torch_pipe.predict(photos), onnx_pipe.predict(photos), strict=True):
        ours, theirs = ours.faces, theirs.faces
        assert len(ours) == len(theirs) > 0 and [f.label for f in ours] == [f.label for f in theirs]
        np.testing.assert_allclose([f.box for f in ours], [f.box for f in theirs], atol=BOX_TOLERANCE, rtol=0)


def test_an_onnx_batch_in_which_no_file_decodes_is_skipped_and_the_stream_goes_on(yolo_export, tmp_path):
    _, export = yolo_export
    results = list(EmotionPipeline.from_export(export).stream(unreadable_first(tmp_path / "in").frames(), 2))
    assert [type(result).__name__ for result in results] == ["Skip", "Skip", "EmotionResult"] and results[2].faces


def test_an_onnx_pipelines_identity_is_its_graphs_and_settings_not_where_they_lie(yolo_export, tmp_path):
    _, export = yolo_export
    identity = EmotionPipeline.from_export(export).identity()
    assert identity["backend"] == "onnx" and identity["detector_sha256"] == file_sha256(export / DETECTOR_FILE)
    assert EmotionPipeline.from_export(shutil.copytree(export, tmp_path / "copy")).identity() == identity
    assert EmotionPipeline.from_export(export, conf=0.5).identity() != identity


def test_an_export_carries_its_class_names_input_size_and_normalisation(yolo_export):
    _, export = yolo_export
    pipeline = json.loads((export / PIPELINE_FILE).read_text(encoding="utf-8"))
    assert pipeline["classes"] == list(ENGLISH_NAMES) and pipeline["classes"][0] == "happy"
    assert pipeline["classes_korean"] == ["기쁨", "분노", "슬픔", "불안", "당황", "상처", "중립"]
    assert pipeline["classifier"]["input_size"] == 32  # debug=tiny: data.image_size
    assert (pipeline["classifier"]["mean"], pipeline["classifier"]["std"]) == (list(IMAGENET_MEAN), list(IMAGENET_STD))

    classifier = session(export / CLASSIFIER_FILE).get_modelmeta().custom_metadata_map
    assert {key: json.loads(classifier[key]) for key in ("classes", "classes_korean", "mean", "std", "cropper")} == {
        "classes": pipeline["classes"], "classes_korean": pipeline["classes_korean"],
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "cropper": pipeline["cropper"]}
    assert classifier["input_size"] == "32" and "logits (N, 7)" in classifier["description"]
    assert json.loads(classifier["cropper"])["checkpoint"] == DETECTOR_FILE  # the cropper as the export runs it
    detector = session(export / DETECTOR_FILE).get_modelmeta().custom_metadata_map
    assert detector["input_size"] == "64" and json.loads(detector["classes"]) == ["face"]  # data.detector.image_size
    assert detector["description"].startswith("kemotion face detector")
    import onnx  # with onnxruntime in the export extra

    assert {p.key: p.value for p in onnx.load(str(export / CLASSIFIER_FILE)).metadata_props} == classifier


@pytest.mark.parametrize(("change", "message"), [
    ({"classes": list(reversed(ENGLISH_NAMES))}, r"classes \['neutral', .*\] are not kemotion's classes"),
    ({"classes_korean": None}, "classes_korean must be the list of class names by output index, not None"),
    ({"classes": [1, 2]}, r"classes must be the list of class names by output index, not \[1, 2\]"),
])
def test_an_export_naming_other_classes_is_refused_naming_its_file(yolo_export, tmp_path, change, message):
    _, export = yolo_export
    copy = shutil.copytree(export, tmp_path / "copy")
    pipeline = json.loads((copy / PIPELINE_FILE).read_text(encoding="utf-8"))
    (copy / PIPELINE_FILE).write_text(json.dumps(pipeline | change), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{copy / PIPELINE_FILE}: {message}"):
        EmotionPipeline.from_export(copy)


def test_an_export_from_before_the_class_names_still_loads(yolo_export, tmp_path):
    """pipeline.json without `classes` (an export made before it recorded them) labels with kemotion's seven."""
    _, export = yolo_export
    copy = shutil.copytree(export, tmp_path / "older")
    pipeline = json.loads((copy / PIPELINE_FILE).read_text(encoding="utf-8"))
    older = {key: value for key, value in pipeline.items() if key not in ("classes", "classes_korean")}
    (copy / PIPELINE_FILE).write_text(json.dumps(older), encoding="utf-8")
    assert EmotionPipeline.from_export(copy) is not None


def test_the_onnx_input_transform_is_the_eval_transform():
    crops = [np.random.default_rng(seed).integers(0, 256, (80, 80, 3), dtype=np.uint8) for seed in range(3)]
    expected = torch.stack([eval_transform(32)(image=crop)["image"] for crop in crops]).numpy()
    np.testing.assert_allclose(classifier_inputs(crops, 32, IMAGENET_MEAN, IMAGENET_STD), expected, atol=1e-5)


@pytest.mark.slow
def test_the_exported_pipeline_gives_the_torch_pipelines_labels(trained_opencv_run, tmp_path):
    run, cfg = trained_opencv_run
    export = export_run(run, tmp_path / "export")
    assert sorted(p.name for p in export.iterdir()) == ["classifier.onnx", "pipeline.json"]  # no detector to export
    manifest = load_or_build(  # the run's own test images
        instantiate(cfg.data.source).prepare(), instantiate(cfg.data.selection), cfg.paths.cache_dir)
    photos = manifest.classification.query("split == 'test'")["path"].tolist()
    ours = [result.faces for result in EmotionPipeline.from_run(run).predict(photos)]
    theirs = [result.faces for result in EmotionPipeline.from_export(export).predict(photos)]
    assert [[f.label for f in faces] for faces in ours] == [[f.label for f in faces] for faces in theirs]
    assert [[f.box for f in faces] for faces in ours] == [[f.box for f in faces] for faces in theirs]  # same Haar


def test_from_export_never_imports_torch(yolo_export, tiny_aihub):
    _, export = yolo_export
    photo = sorted(tiny_aihub.rglob("*.jpg"))[0]
    code = (f"import sys, kemotion; from kemotion import EmotionPipeline; "
            f"faces = EmotionPipeline.from_export({str(export)!r})({str(photo)!r}).faces; "
            "assert faces and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_folder_that_is_no_export_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'pipeline.json'} not found"):
        EmotionPipeline.from_export(tmp_path)

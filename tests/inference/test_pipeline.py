"""`EmotionPipeline`: the training path on new images, whatever form they come in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from kemotion import EmotionPipeline
from kemotion.core.emotions import ENGLISH_NAMES
from kemotion.data import images
from kemotion.inference.record import read_run
from kemotion.inference.sources import Skip, open_source
from kemotion.models.checkpoint import load_weights
from tests.inference.conftest import recorded_run


@pytest.mark.slow
def test_predicting_the_test_split_gives_the_test_steps_labels_image_for_image(trained_opencv_run):
    run, cfg = trained_opencv_run
    datamodule = instantiate(cfg.datamodule)
    datamodule.setup("test")
    table = datamodule.table.query("split == 'test'").reset_index(drop=True)
    record = read_run(run)
    net = instantiate({**cfg.module.net, "checkpoint": None})
    load_weights(net, record.checkpoint)
    with torch.inference_mode():  # the test step's forward pass, on the test loader's batches
        logits = torch.cat([net.eval()(batch) for batch, _ in datamodule.test_dataloader()])
    test_step = logits.softmax(1).numpy()
    result = json.loads((run / "result.json").read_text())
    assert (test_step.argmax(1) == table["label"]).mean() == pytest.approx(result["metrics"]["test/acc"])

    predicted = EmotionPipeline.from_run(run).predict(table["path"].tolist(), batch_size=3)
    report = pd.read_csv(next(run.parent.glob(".cache/crops/*/opencv-*/classification_report.csv")),
                         keep_default_na=False).set_index("filename").loc[table["filename"]]
    fallback = (report["fallback"] != "").to_numpy()
    assert len(predicted) == len(table) and (~fallback).sum() >= len(table) // 2
    for result, expected, fell_back in zip(predicted, test_step, fallback, strict=True):
        faces = result.faces
        if fell_back:  # the test used the whole frame for want of a face: prediction reports no face instead
            assert faces == []
            continue
        assert faces[0].label == ENGLISH_NAMES[expected.argmax()]  # the first face is the one training cropped
        np.testing.assert_allclose(list(faces[0].probabilities.values()), expected, atol=1e-5)


@pytest.fixture(scope="module")
def resize_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("resize"), "resize_kemo")


def test_a_path_a_pil_image_and_rgb_or_bgr_arrays_give_the_same_faces(resize_run, tiny_aihub):
    path = sorted(tiny_aihub.rglob("*.jpg"))[0]
    pipe = EmotionPipeline.from_run(resize_run)
    rgb = images.load_rgb(path)
    (face,) = pipe(path).faces
    assert face.box == (0, 0, rgb.shape[1], rgb.shape[0]) and face.detector_confidence is None  # the whole frame
    assert set(face.probabilities) == set(ENGLISH_NAMES) and sum(face.probabilities.values()) == pytest.approx(1)
    assert face.label == max(face.probabilities, key=face.probabilities.get) and face.label_ko
    assert pipe.predict([str(path)], batch_size=1)[0].faces == [face]
    (decoded,) = pipe(rgb).faces  # a path is decoded DCT-reduced, as training did; an array is already decoded in full
    assert decoded.box == face.box
    np.testing.assert_allclose(list(decoded.probabilities.values()), list(face.probabilities.values()), atol=0.02)
    assert pipe(np.ascontiguousarray(rgb[..., ::-1]), bgr=True).faces == pipe(Image.open(path)).faces == [decoded]
    swapped = pipe(rgb[..., ::-1].copy()).faces  # BGR read as RGB: another input, another answer
    assert swapped[0].probabilities != decoded.probabilities


def test_an_exif_rotated_photo_gets_its_box_in_the_upright_frame(tmp_path, resize_run):
    upright = np.zeros((40, 80, 3), np.uint8)
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION_TAG] = 6  # stored rotated: upright it is 40 wide, 80 high
    Image.fromarray(upright).save(tmp_path / "rotated.jpg", exif=exif)
    (face,) = EmotionPipeline.from_run(resize_run)(tmp_path / "rotated.jpg").faces
    assert face.box == (0, 0, 40, 80)


def test_a_corrupt_file_is_an_error_naming_it(tmp_path, resize_run):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(images.BadImage, match="broken.jpg"):
        EmotionPipeline.from_run(resize_run)(tmp_path / "broken.jpg")


def test_missing_runs_and_runs_without_a_record_are_errors_naming_the_file(tmp_path, resize_run):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        EmotionPipeline.from_run(tmp_path / "nowhere")
    run_json = resize_run / "run.json"
    bare = tmp_path / "old_run"
    (bare / "checkpoints").mkdir(parents=True)
    (bare / "run.json").write_text(json.dumps({"key": "x", "cell": {}}))
    (bare / "checkpoints" / "a.ckpt").write_bytes((resize_run / "checkpoints" / "best.ckpt").read_bytes())
    with pytest.raises(ValueError, match=f"{bare / 'run.json'} records no pipeline"):
        EmotionPipeline.from_run(bare / "checkpoints" / "a.ckpt")
    with pytest.raises(FileNotFoundError, match="result.json not found"):
        EmotionPipeline.from_run(bare)
    assert json.loads(run_json.read_text())["pipeline"]["cropper"]["_target_"].endswith("ResizeCropper")


def test_a_yolo_run_checks_its_face_detector_file(tmp_path):
    run = recorded_run(tmp_path, "yolo_kemo", ["preprocess.conf=0.0"])
    pipe = EmotionPipeline.from_run(run, max_faces=3)
    frame = np.full((96, 128, 3), 127, np.uint8)
    faces = pipe(frame).faces
    assert 1 <= len(faces) <= 3  # an untrained detector at conf 0 proposes many boxes: max_faces caps them
    assert [f.detector_confidence for f in faces] == sorted((f.detector_confidence for f in faces), reverse=True)
    assert all(0 <= f.box[0] < f.box[2] <= 128 and 0 <= f.box[1] < f.box[3] <= 96 for f in faces)
    assert EmotionPipeline.from_run(run, conf=0.99)(frame).faces == []  # its scores are far below
    record = json.loads((run / "run.json").read_text())["pipeline"]
    assert record["cropper"]["checkpoint"] == "detector/face_detector.ckpt"  # the run's own, relative to it
    kept = run / "detector" / "face_detector.ckpt"
    kept.unlink()  # a link to the original: write another file in its place
    kept.write_bytes(b"other weights")
    with pytest.raises(ValueError, match="is not the one run .* was trained with"):
        EmotionPipeline.from_run(run)


def unreadable_first(folder):
    """A folder whose first two files (a batch of two) do not decode, then a readable image."""
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.new("RGB", (128, 96), (127, 127, 127)).save(folder / "c.jpg")
    return open_source(folder)


def test_a_yolo_batch_in_which_no_file_decodes_is_skipped_and_the_stream_goes_on(tmp_path):
    run = recorded_run(tmp_path, "yolo_kemo", ["preprocess.conf=0.0"])
    results = list(EmotionPipeline.from_run(run, max_faces=2).stream(unreadable_first(tmp_path / "in").frames(), 2))
    assert [isinstance(result, Skip) for result in results] == [True, True, False]
    assert len(results[2].faces) == 2


def test_a_yolo_run_folder_predicts_the_same_when_moved_away_from_its_face_detector(tmp_path):
    (tmp_path / "here").mkdir()
    run = recorded_run(tmp_path / "here", "yolo_kemo", ["preprocess.conf=0.0"])
    frame = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    before = EmotionPipeline.from_run(run, max_faces=3)(frame).faces
    moved = shutil.copytree(run, tmp_path / "elsewhere" / "run")
    shutil.rmtree(tmp_path / "here")  # the cache that held the face detector, and the run's first folder
    assert EmotionPipeline.from_run(moved, max_faces=3)(frame).faces == before and len(before) == 3


def test_importing_kemotion_stays_light():
    code = ("import sys, kemotion; assert 'kemotion.inference.pipeline' not in sys.modules; "
            "from kemotion import EmotionPipeline, analyze; print(EmotionPipeline.__module__, analyze.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["kemotion.inference.pipeline"] * 2

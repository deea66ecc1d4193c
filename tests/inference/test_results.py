"""`EmotionResult` (what `EmotionPipeline` returns) and `kemotion.analyze`: the same values as predict's files, a
picture drawn where the faces are, JSON and table views, and deepface's shape."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kemotion
from kemotion import EmotionPipeline
from kemotion.core.emotions import ENGLISH_NAMES, KOREAN_NAMES
from kemotion.data import images
from kemotion.inference import pipeline
from kemotion.inference.outputs import predict_into
from kemotion.inference.results import EmotionResult
from kemotion.inference.writers import ROW_FIELDS
from tests.inference.conftest import recorded_run

DEEPFACE_KEYS = {"dominant_emotion", "emotion", "region", "face_confidence"}


@pytest.fixture(scope="module")
def opencv_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("opencv"), "opencv_kemo")


@pytest.fixture(scope="module")
def resize_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("resize"), "resize_kemo")


@pytest.fixture(scope="module")
def photos(tmp_path_factory, tiny_aihub):
    """Three AI-Hub photos (one as a PNG, drawn losslessly by predict) and a blank image without a face."""
    folder = tmp_path_factory.mktemp("photos")
    first, *others = sorted(tiny_aihub.rglob("*.jpg"))[:3]
    Image.open(first).save(folder / "a.png")
    for photo in others:
        shutil.copy(photo, folder / photo.name)
    Image.new("RGB", (200, 150), (90, 90, 90)).save(folder / "blank.png")
    return folder


@pytest.fixture(scope="module")
def results(opencv_run, photos):
    """The pipeline's results for the photos, in the order predict reads them (sorted, absolute paths)."""
    return EmotionPipeline.from_run(opencv_run).predict(sorted(photos.iterdir()))


def test_the_results_are_what_predict_writes(tmp_path, opencv_run, photos, results):
    out = tmp_path / "out"
    summary = predict_into(EmotionPipeline.from_run(opencv_run), str(photos), out)
    assert summary.images == len(results) == 4 and sum(map(len, results)) == summary.faces >= 3
    assert [result.to_json() for result in results] == (out / "predictions.jsonl").read_text().splitlines()
    written = pd.read_csv(out / "predictions.csv", float_precision="round_trip", keep_default_na=False,
                          na_values=[""])
    ours = pd.concat([result.to_pandas() for result in results], ignore_index=True)
    pd.testing.assert_frame_equal(ours, written, check_dtype=False)
    drawn = next(result for result in results if result.source.endswith("a.png"))
    assert len(drawn) >= 1  # predict draws this one into a PNG: the very pixels of plot()
    np.testing.assert_array_equal(np.asarray(Image.open(out / "annotated" / "a.png")), drawn.plot())


def test_a_result_holds_its_source_shape_and_faces_with_both_names(photos, results):
    result = next(result for result in results if result.faces)
    height, width = images.upright_size(result.source)[::-1]
    assert result.source.startswith(str(photos)) and result.index == 0 and result.orig_shape == (height, width)
    for face in result.faces:
        assert list(face.probabilities) == list(ENGLISH_NAMES) and sum(face.probabilities.values()) == pytest.approx(1)
        assert face.label == max(face.probabilities, key=face.probabilities.get)
        assert face.label_ko == KOREAN_NAMES[ENGLISH_NAMES.index(face.label)] and face.label_ko in result.to_json()
    assert "EmotionResult(source=" in repr(result) and "faces=[Face(" in repr(result)


def test_plot_draws_the_faces_on_the_image_at_its_size(tmp_path, results):
    result = next(result for result in results if result.faces)
    original = result.frame.decode(None)
    plotted = result.plot()
    assert plotted.shape == (*result.orig_shape, 3) and plotted.dtype == np.uint8
    changed = np.any(plotted != original, axis=2)
    for face in result.faces:
        x1, y1, x2, y2 = (round(value) for value in face.box)
        assert changed[y1:y2, x1:x2].any()
    lowest = max(round(face.box[3]) for face in result.faces)
    assert not changed[lowest + 1:].any()  # labels go above a box or inside it: nothing is drawn below the faces
    np.testing.assert_array_equal(result.plot(bgr=True), plotted[..., ::-1])
    saved = result.save(tmp_path / "deep" / "plot.png")
    np.testing.assert_array_equal(np.asarray(Image.open(saved)), plotted)

    blank = next(result for result in results if not result.faces)
    np.testing.assert_array_equal(blank.plot(), blank.frame.decode(None))


def test_to_json_round_trips_with_its_frame(results):
    for result in results:
        assert EmotionResult.from_json(result.to_json(), result.frame) == result
        line = json.loads(result.to_json())
        assert (line["source"], line["frame"], line["height"], line["width"]) == (result.source, 0, *result.orig_shape)
    first, second = results[:2]
    with pytest.raises(ValueError, match=f"the JSON is the result of {first.source} frame 0, not of {second.source}"):
        EmotionResult.from_json(first.to_json(), second.frame)


def test_to_pandas_has_a_row_per_face_and_a_column_per_class(results):
    for result in results:
        table = result.to_pandas()
        assert list(table.columns) == ROW_FIELDS and len(table) == len(result)
        assert {f"p_{name}" for name in ENGLISH_NAMES} <= set(table.columns)
        for row, face in zip(table.itertuples(index=False), result.faces, strict=True):
            assert [getattr(row, f"p_{name}") for name in ENGLISH_NAMES] == list(face.probabilities.values())
            assert (row.label, row.label_ko, (row.x1, row.y1, row.x2, row.y2)) == (face.label, face.label_ko, face.box)
            assert row.detector_confidence == face.detector_confidence and row.source == result.source


def test_analyze_gives_deepfaces_shape_for_a_bgr_array_and_loads_the_run_once(opencv_run, photos):
    pipeline._kept.cache_clear()
    path = photos / "a.png"
    rgb = images.load_rgb(path)
    faces = kemotion.analyze(np.ascontiguousarray(rgb[..., ::-1]), run=opencv_run)  # cv2.imread's order
    expected = EmotionPipeline.from_run(opencv_run)(rgb).faces
    assert len(faces) == len(expected) >= 1
    for found, face in zip(faces, expected, strict=True):
        assert set(found) == DEEPFACE_KEYS and list(found["emotion"]) == list(ENGLISH_NAMES)
        assert sum(found["emotion"].values()) == pytest.approx(100)
        assert found["dominant_emotion"] == max(found["emotion"], key=found["emotion"].get) == face.label
        assert found["emotion"][face.label] == pytest.approx(100 * face.confidence)
        x1, y1, x2, y2 = (round(value) for value in face.box)
        assert found["region"] == {"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1}
        assert found["face_confidence"] == face.detector_confidence
    assert kemotion.analyze(rgb, run=opencv_run, bgr=False) == faces
    assert pipeline._kept.cache_info().misses == 1  # the second call used the loaded pipeline
    assert kemotion.analyze(photos / "blank.png", run=opencv_run) == []  # no face: deepface would raise


def test_analyze_of_a_run_without_a_face_detector_is_the_whole_image(resize_run):
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    (found,) = kemotion.analyze(frame, run=resize_run)
    assert found["region"] == {"x": 0, "y": 0, "w": 64, "h": 48} and found["face_confidence"] is None
    assert found["dominant_emotion"] == max(found["emotion"], key=found["emotion"].get)
    with pytest.raises(ValueError, match="backend must be one of"):
        kemotion.analyze(frame, run=resize_run, backend="tensorflow")


def test_a_result_of_an_array_plots_that_array(resize_run):
    frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    result = EmotionPipeline.from_run(resize_run)(frame)
    assert (result.source, result.orig_shape, len(result)) == ("<array>", (48, 64), 1)
    assert result.plot().shape == frame.shape and not np.array_equal(result.plot(), frame)


def test_analyze_runs_an_export_with_onnxruntime(resize_run, tmp_path):
    pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]' (make install does)")
    from kemotion.inference.exporter import export_run

    export = export_run(resize_run, tmp_path / "export")
    frame = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    (ours,) = kemotion.analyze(frame, run=resize_run)
    (theirs,) = kemotion.analyze(frame, run=export, backend="onnx")
    assert (theirs["dominant_emotion"], theirs["region"]) == (ours["dominant_emotion"], ours["region"])
    np.testing.assert_allclose(list(theirs["emotion"].values()), list(ours["emotion"].values()), atol=1e-3)

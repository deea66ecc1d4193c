"""`python -m kemotion.predict`: a folder, a glob, a video; its tables, pictures, skips, resume and summary."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from kemotion.config import CONFIG_PACKAGE
from kemotion.inference.sources import open_source
from kemotion.inference.writers import ROW_FIELDS
from kemotion.predict import predict
from tests.inference.conftest import recorded_run


def predict_config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        return compose("predict", overrides=overrides)


@pytest.fixture(scope="module")
def opencv_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("opencv"), "opencv_kemo")


@pytest.fixture
def photo_folder(tmp_path, tiny_aihub):
    """Four AI-Hub photos (one with an upper-case extension, one in a subfolder), a blank image, two broken files and
    a text file."""
    folder = tmp_path / "phone"
    (folder / "sub").mkdir(parents=True)
    photos = sorted(tiny_aihub.rglob("*.jpg"))[:4]
    for index, (photo, target) in enumerate(zip(photos, ["a.jpg", "b.JPG", "sub/c.jpeg", "d.jpg"], strict=True)):
        shutil.copy(photo, folder / target.replace(".", f"_{index}_{photo.stem.split('_')[3]}."))
    Image.new("RGB", (200, 150), (90, 90, 90)).save(folder / "blank.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(photos[0].read_bytes()[:2000])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_folder_gives_tables_pictures_and_a_skip_list(tmp_path, opencv_run, photo_folder):
    out = tmp_path / "out"
    summary = predict(predict_config([f"run={opencv_run}", f"source={photo_folder}"]), out)
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and {line["source"].split("/")[-1] for line in lines} >= {"blank.png"}
    blank = next(line for line in lines if line["source"].endswith("blank.png"))
    assert blank["faces"] == [] and (blank["width"], blank["height"]) == (200, 150)
    with open(out / "skipped.csv", encoding="utf-8") as handle:
        skipped = {row["source"].split("/")[-1]: row["reason"] for row in csv.DictReader(handle)}
    assert set(skipped) == {"empty.jpg", "truncated.jpg"}
    assert "empty file" in skipped["empty.jpg"] and "truncated" in skipped["truncated.jpg"]
    with open(out / "predictions.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ROW_FIELDS and len(rows) == sum(len(line["faces"]) for line in lines) == summary.faces
    drawn = (out / "annotated").rglob("*.jpg")
    assert sorted(p.relative_to(out / "annotated").as_posix().split("_")[0] for p in drawn) == [
        "a", "b", "blank.jpg", "d", "sub/c"]
    assert (summary.images, summary.skipped, summary.no_face) == (5, 2, sum(not line["faces"] for line in lines))
    assert summary.labelled == 4 and 0 <= summary.correct <= 4  # the emotion in the AI-Hub file names
    assert "accuracy against the labels in the file names" in str(summary)


def test_save_false_writes_only_tables_and_resume_does_only_what_is_missing(tmp_path, opencv_run, photo_folder):
    out = tmp_path / "out"
    first = predict(predict_config([f"run={opencv_run}", f"source={photo_folder}/*.jpg", "save=false"]), out)
    assert first.images == 2 and first.skipped == 2 and not (out / "annotated").exists()
    rows = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()
    first_image = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])["source"]
    assert len(rows) == 1 + first.faces and first.faces >= 2  # the header, then a row per face
    # killed: the second image's rows were written but its line torn, and the first image's line reached the disk
    # before its rows did (the two files are flushed one after the other)
    (out / "predictions.jsonl").write_text((out / "predictions.jsonl").read_text().splitlines()[0] + "\n{\"sour")
    (out / "predictions.csv").write_text("\n".join(r for r in rows if not r.startswith(first_image)) + "\n",
                                         encoding="utf-8")
    again = predict(predict_config([f"run={opencv_run}", f"source={photo_folder}/*.jpg", "save=false"]), out)
    assert (again.resumed, again.images, again.skipped) == (3, 1, 0)  # 1 predicted and 2 skipped before; 1 torn
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and len({line["source"] for line in lines}) == 2
    with open(out / "predictions.csv", encoding="utf-8") as handle:
        faces = [(row["source"], row["face"]) for row in csv.DictReader(handle)]
    assert sorted(faces) == sorted((line["source"], str(n)) for line in lines for n in range(len(line["faces"])))


def test_a_video_is_predicted_frame_by_frame_into_an_annotated_video(tmp_path, opencv_run, tiny_aihub):
    photo = cv2.resize(cv2.imread(str(sorted(tiny_aihub.rglob("*.jpg"))[0])), (160, 120))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for shift in range(7):
        writer.write(np.roll(photo, shift * 3, axis=1))
    writer.release()
    out = tmp_path / "out"
    summary = predict(predict_config([f"run={opencv_run}", f"source={video}", "vid_stride=3"]), out)
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 3, 6] and summary.images == 3
    assert {(line["source"], line["width"], line["height"]) for line in lines} == {(str(video), 160, 120)}
    capture = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()


def test_bad_sources_are_errors_naming_them(tmp_path, opencv_run):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(OSError, match="cannot open the video .*broken.mp4"):
        predict(predict_config([f"run={opencv_run}", f"source={tmp_path / 'broken.mp4'}"]), tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        open_source(tmp_path / "nothing_here")
    (tmp_path / "docs").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        open_source(tmp_path / "docs")
    assert open_source("0").video == 0  # a webcam index


@pytest.mark.parametrize("name", ["predict", "export"])
def test_the_command_configs_compose_and_name_every_option(name):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        cfg = compose(name, overrides=["run=somewhere"] + (["source=x"] if name == "predict" else []),
                      return_hydra_config=True)
    assert cfg.run == "somewhere" and cfg.hydra.run.dir.startswith(f"outputs/{name}/")

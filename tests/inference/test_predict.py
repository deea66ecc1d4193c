"""`python -m kemotion.predict`: a folder, a glob, a video; its tables, pictures, skips, resume and summary."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from kemotion.core.config import CONFIG_PACKAGE
from kemotion.inference.pipeline import EmotionPipeline
from kemotion.inference.sources import open_source
from kemotion.inference.writers import ROW_FIELDS, done_frames
from kemotion.predict import main, predict
from tests.inference.conftest import recorded_run


def predict_config(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        return compose("predict", overrides=overrides)


def predict_in(folder: Path, overrides: list[str]):
    """`predict` into `folder` (project= its parent, name= its name); the summary."""
    return predict(predict_config([*overrides, f"project={folder.parent}", f"name={folder.name}"]))[1]


def command(monkeypatch, *overrides: str) -> None:
    """`python -m kemotion.predict OVERRIDES` in this process; an error is raised as it is (HYDRA_FULL_ERROR)."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["kemotion.predict", *overrides])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    try:
        main()
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level


def folders(project: Path) -> list[Path]:
    return sorted(p for p in project.iterdir() if p.is_dir() and not p.name.startswith("."))


def lines_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


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
    summary = predict_in(out, [f"run={opencv_run}", f"source={photo_folder}"])
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
    drawn = sorted(p.relative_to(out / "annotated").as_posix() for p in (out / "annotated").rglob("*") if p.is_file())
    assert drawn == sorted(Path(line["source"]).relative_to(photo_folder).as_posix() for line in lines)  # name as is
    assert [name.split("_")[0] for name in drawn] == ["a", "b", "blank.png", "d", "sub/c"]
    assert (summary.images, summary.skipped, summary.no_face) == (5, 2, sum(not line["faces"] for line in lines))
    assert summary.labelled == 4 and 0 <= summary.correct <= 4  # the emotion in the AI-Hub file names
    assert "accuracy against the labels in the file names" in str(summary)


def test_save_false_writes_only_tables_and_resume_does_only_what_is_missing(tmp_path, opencv_run, photo_folder):
    out = tmp_path / "out"
    first = predict_in(out, [f"run={opencv_run}", f"source={photo_folder}/*.jpg", "save=false", "resume=true"])
    assert first.images == 2 and first.skipped == 2 and not (out / "annotated").exists()
    rows = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()
    first_image = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])["source"]
    assert len(rows) == 1 + first.faces and first.faces >= 2  # the header, then a row per face
    # killed: the second image's rows were written but its line torn, and the first image's line reached the disk
    # before its rows did (the two files are flushed one after the other)
    (out / "predictions.jsonl").write_text((out / "predictions.jsonl").read_text().splitlines()[0] + "\n{\"sour")
    (out / "predictions.csv").write_text("\n".join(r for r in rows if not r.startswith(first_image)) + "\n",
                                         encoding="utf-8")
    again = predict_in(out, [f"run={opencv_run}", f"source={photo_folder}/*.jpg", "save=false", "resume=true"])
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
    summary = predict_in(out, [f"run={opencv_run}", f"source={video}", "vid_stride=3"])
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 3, 6] and summary.images == 3
    assert {(line["source"], line["width"], line["height"]) for line in lines} == {(str(video), 160, 120)}
    capture = cv2.VideoCapture(str(out / "annotated" / "clip.avi.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()


def test_bad_sources_are_errors_naming_them(tmp_path, opencv_run):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(OSError, match="cannot open the video .*broken.mp4"):
        predict_in(tmp_path / "out", [f"run={opencv_run}", f"source={tmp_path / 'broken.mp4'}"])
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        open_source(tmp_path / "nothing_here")
    (tmp_path / "docs").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        open_source(tmp_path / "docs")


@pytest.mark.parametrize("name", ["predict", "export"])
def test_the_command_configs_compose_and_name_every_option(name):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        cfg = compose(name, overrides=["run=somewhere"] + (["source=x"] if name == "predict" else []),
                      return_hydra_config=True)
    assert cfg.run == "somewhere"
    # predict makes its output folder itself, and only once the source and the models are there
    assert cfg.hydra.run.dir == "." if name == "predict" else cfg.hydra.run.dir.startswith(f"outputs/{name}")


@pytest.fixture(scope="module")
def resize_run(tmp_path_factory):
    return recorded_run(tmp_path_factory.mktemp("resize"), "resize_kemo")


def test_two_predicts_started_in_the_same_second_get_a_folder_each(tmp_path, monkeypatch, opencv_run, photo_folder):
    project = tmp_path / "project"
    for source in (f"{photo_folder}/*.jpg", f"{photo_folder}/blank.png"):  # the same name: the same second
        command(monkeypatch, f"run={opencv_run}", f"source={source}", f"project={project}", "name=now", "save=false")
    first, second = folders(project)
    assert second.name.startswith("now") and second != first
    assert {Path(line["source"]).name for line in lines_of(second)} == {"blank.png"}
    assert "blank.png" not in {Path(line["source"]).name for line in lines_of(first)} and len(lines_of(first)) == 2


def test_a_resume_knows_a_relative_source_from_its_absolute_path(tmp_path, monkeypatch, opencv_run, photo_folder):
    project, args = tmp_path / "project", [f"run={opencv_run}", "name=mine", "resume=true", "save=false"]
    command(monkeypatch, *args, f"source={photo_folder}", f"project={project}")
    (folder,) = folders(project)
    done = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "predictions.jsonl").write_text("\n".join(done[:2]) + "\n", encoding="utf-8")  # killed after two
    monkeypatch.chdir(photo_folder.parent)
    command(monkeypatch, *args, f"source={photo_folder.name}", f"project={os.path.relpath(project)}")
    sources = [line["source"] for line in lines_of(folder)]
    assert len(sources) == len(set(sources)) == len(done) == 5 and folders(project) == [folder]


@pytest.mark.parametrize("change", ["run", "conf=0.5", "max_faces=1", "source"])
def test_a_resume_with_another_model_source_or_setting_is_refused(tmp_path, monkeypatch, opencv_run, resize_run,
                                                                   photo_folder, change):
    project = tmp_path / "project"
    first = [f"run={opencv_run}", f"source={photo_folder}/*.jpg", f"project={project}", "name=mine", "resume=true"]
    command(monkeypatch, *first)
    (folder,) = folders(project)
    before = {name: (folder / name).read_bytes() for name in ("predictions.jsonl", "predictions.csv")}
    second = {"run": [f"run={resize_run}", *first[1:]], "source": [first[0], f"source={photo_folder}", *first[2:]]}
    with pytest.raises(ValueError, match=f"{folder}.* other settings.*give another name="):
        command(monkeypatch, *second.get(change, [*first, change]))
    assert {name: (folder / name).read_bytes() for name in before} == before


def test_a_video_resumes_where_it_stopped(tmp_path, monkeypatch, opencv_run, tiny_aihub):
    photo = cv2.resize(cv2.imread(str(sorted(tiny_aihub.rglob("*.jpg"))[0])), (160, 120))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for shift in range(7):
        writer.write(np.roll(photo, shift * 3, axis=1))
    writer.release()
    args = [f"run={opencv_run}", f"source={video}", "vid_stride=3", f"project={tmp_path / 'project'}", "name=clip",
            "resume=true"]
    command(monkeypatch, *args)
    (folder,) = folders(tmp_path / "project")
    whole = lines_of(folder)
    (folder / "predictions.jsonl").write_text(json.dumps(whole[0]) + "\n", encoding="utf-8")  # killed after frame 0
    command(monkeypatch, *args)
    again = lines_of(folder)
    assert [line["frame"] for line in again] == [0, 3, 6] and again[0] == whole[0]
    for before, after in zip(whole[1:], again[1:], strict=True):  # batched otherwise: equal to float rounding
        assert [face["box"] for face in after["faces"]] == [face["box"] for face in before["faces"]]
        assert [p for face in after["faces"] for p in face["probabilities"].values()] == pytest.approx(
            [p for face in before["faces"] for p in face["probabilities"].values()], abs=1e-5)
    capture = cv2.VideoCapture(str(folder / "annotated" / "clip.avi.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3  # the frames done before are drawn again
    capture.release()


def test_images_of_the_same_stem_keep_an_annotated_image_each(tmp_path, monkeypatch, opencv_run, photo_folder):
    pictures = tmp_path / "pictures"
    (pictures / "x").mkdir(parents=True)
    shutil.copy(next(photo_folder.glob("a_*.jpg")), pictures / "a.jpg")
    Image.new("RGB", (120, 90), (200, 30, 30)).save(pictures / "a.png")
    Image.new("RGB", (120, 90), (30, 200, 30)).save(pictures / "x" / "a.png")
    for source in (pictures, f"{pictures}/**/*.png"):
        command(monkeypatch, f"run={opencv_run}", f"source={source}", f"project={tmp_path / 'project'}",
                f"name={Path(str(source)).name}")
    drawn = [sorted(p.relative_to(f / "annotated").as_posix() for p in (f / "annotated").rglob("*") if p.is_file())
             for f in folders(tmp_path / "project")]
    assert len(drawn[0]) == 2 and len(drawn[1]) == 3 and len(set(drawn[1])) == 3
    (folder,) = [f for f in folders(tmp_path / "project") if f.name == "pictures"]
    colours = {p.name: Image.open(p).convert("RGB").getpixel((60, 80)) for p in (folder / "annotated").rglob("a.*")}
    assert len(colours) == 2


def test_resume_false_on_a_used_folder_leaves_no_old_pictures_beside_new_tables(tmp_path, monkeypatch, opencv_run,
                                                                                photo_folder):
    project = tmp_path / "project"
    for source in (photo_folder, photo_folder / "blank.png"):
        command(monkeypatch, f"run={opencv_run}", f"source={source}", f"project={project}", "name=mine",
                "resume=false")
    for folder in folders(project):
        drawn = {p.stem for p in (folder / "annotated").rglob("*") if p.is_file()}
        assert drawn == {Path(line["source"]).stem for line in lines_of(folder)}


def test_the_torn_line_repair_writes_a_new_file(tmp_path, monkeypatch, opencv_run, photo_folder):
    args = [f"run={opencv_run}", f"source={photo_folder}/*.jpg", f"project={tmp_path}", "name=mine", "resume=true",
            "save=false"]
    command(monkeypatch, *args)
    table = tmp_path / "mine" / "predictions.jsonl"
    torn = table.read_text(encoding="utf-8").splitlines()[0] + '\n{"sour'
    table.write_text(torn, encoding="utf-8")
    os.link(table, tmp_path / "seen")  # the same file, under a second name: an in-place rewrite shows through it
    command(monkeypatch, *args)
    assert (tmp_path / "seen").read_text(encoding="utf-8") == torn and len(lines_of(tmp_path / "mine")) == 2


def face_clip(path: Path, photo: np.ndarray, frames: int, fourcc: str = "MJPG") -> Path:
    """A video of `frames` frames of `photo` (BGR), shifted a little each frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (photo.shape[1], photo.shape[0]))
    for shift in range(frames):
        writer.write(np.roll(photo, shift * 3, axis=1))
    writer.release()
    return path


def frame_count(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def test_a_list_of_a_tiff_and_videos_gives_a_line_per_frame_and_an_annotated_copy_each(tmp_path, monkeypatch,
                                                                                          opencv_run, tiny_aihub):
    face = cv2.resize(cv2.imread(str(sorted(tiny_aihub.rglob("*.jpg"))[0])), (160, 120))
    media = tmp_path / "media"
    face_clip(media / "a.mkv", face, 3)
    face_clip(media / "sub" / "b.webm", face, 2, fourcc="VP80")
    cv2.imwrite(str(media / "c.tif"), face)
    (tmp_path / "list.txt").write_text("media/a.mkv\nmedia/sub/b.webm\nmedia/c.tif\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    summary = predict_in(out, [f"run={opencv_run}", "source=list.txt"])
    lines = lines_of(out)
    assert [(Path(line["source"]).name, line["frame"]) for line in lines] == [  # the images, then each video
        ("c.tif", 0), ("a.mkv", 0), ("a.mkv", 1), ("a.mkv", 2), ("b.webm", 0), ("b.webm", 1)]
    assert summary.images == 6 and {(line["width"], line["height"]) for line in lines} == {(160, 120)}
    drawn = sorted(p.relative_to(out / "annotated").as_posix() for p in (out / "annotated").rglob("*") if p.is_file())
    assert drawn == ["a.mkv.mp4", "c.tif", "sub/b.webm.mp4"]  # below the folder the listed files share
    assert [frame_count(out / "annotated" / name) for name in ("a.mkv.mp4", "sub/b.webm.mp4")] == [3, 2]
    identity = json.loads((out / "predict.json").read_text(encoding="utf-8"))["identity"]
    assert identity["source"] == str(tmp_path / "list.txt") and identity["vid_stride"] == 1


@pytest.fixture
def no_models(monkeypatch):
    """Loading a pipeline fails the test: what is checked here must be checked before the models load."""
    def load(*args, **kwargs):
        pytest.fail("the models were loaded before the source was checked")

    monkeypatch.setattr(EmotionPipeline, "from_run", load)
    monkeypatch.setattr(EmotionPipeline, "from_export", load)


@pytest.mark.parametrize(("source", "error", "message"), [
    ("photos/IMG_0001.jgp", FileNotFoundError, r"source=photos/IMG_0001\.jgp: no such file or folder"),
    ("notes.pdf", ValueError, r"source=notes\.pdf: a \.pdf is no image"),
    ("list.txt", FileNotFoundError, r"source=list\.txt line 2: photos/IMG_0002\.jpg not found"),
    ("https://example.com/me.jpg", ConnectionError, r"source=https://example\.com/me\.jpg: cannot download it"),
])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_typo_in_source_fails_before_the_models_load_and_leaves_no_folder(tmp_path, monkeypatch, no_models,
                                                                            source, error, message, backend):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "IMG_0001.jpg").write_bytes(b"a photo")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "list.txt").write_text("photos/IMG_0001.jpg\nphotos/IMG_0002.jpg\n", encoding="utf-8")

    def offline(request, timeout):
        raise urllib.error.URLError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(error, match=message) as raised:
        command(monkeypatch, "run=outputs/runs/mine", f"source={source}", f"backend={backend}", "project=predictions")
    assert "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "notes.pdf", "photos"]  # Hydra's made none


@pytest.mark.parametrize("results_before", [0, 1])
def test_a_prediction_that_fails_before_its_first_result_leaves_no_folder(tmp_path, monkeypatch, opencv_run,
                                                                         photo_folder, results_before):
    streamed = EmotionPipeline.stream

    def failing(self, frames, batch_size=8):
        for number, result in enumerate(streamed(self, frames, batch_size)):
            if number == results_before:
                raise MemoryError("the detector ran out of memory")
            yield result

    monkeypatch.setattr(EmotionPipeline, "stream", failing)
    project = tmp_path / "project"
    with pytest.raises(MemoryError):
        command(monkeypatch, f"run={opencv_run}", f"source={photo_folder}", f"project={project}", "name=mine")
    if results_before == 0:
        assert folders(project) == []
    else:  # a result is there (a line or a skip row): the folder is kept, to resume
        (folder,) = folders(project)
        assert folder.name == "mine" and len(done_frames(folder)) == 1


@pytest.fixture
def screen(monkeypatch):
    """A display stood in for: OpenCV's window calls are recorded, and waitKey returns `keys` in turn (-1: none)."""
    monkeypatch.setenv("DISPLAY", ":0")
    seen = {"opened": [], "pictures": [], "waits": [], "keys": [], "closed": []}

    def wait(milliseconds):
        seen["waits"].append(milliseconds)
        return seen["keys"].pop(0) if seen["keys"] else -1

    monkeypatch.setattr(cv2, "namedWindow", lambda title, flags: seen["opened"].append(title))
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: seen["pictures"].append(picture))
    monkeypatch.setattr(cv2, "waitKey", wait)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: seen["closed"].append(title))
    return seen


def test_show_draws_each_image_in_a_window_until_q(tmp_path, monkeypatch, opencv_run, photo_folder, screen):
    screen["keys"] = [-1, ord("q")]
    summary = predict_in(tmp_path / "out", [f"run={opencv_run}", f"source={photo_folder}", "show=true", "save=false"])
    assert summary.images == 2 and len(lines_of(tmp_path / "out")) == 2  # q after the second: what is done is kept
    assert screen["opened"] == screen["closed"] == [f"kemotion predict {photo_folder}"]
    assert screen["waits"] == [300, 300]  # an image stays 300 ms, as in ultralytics
    sizes = [(line["height"], line["width"], 3) for line in lines_of(tmp_path / "out")]
    assert [picture.shape for picture in screen["pictures"]] == sizes
    shown, first = screen["pictures"][0].astype(int), cv2.imread(lines_of(tmp_path / "out")[0]["source"]).astype(int)
    assert np.abs(shown - first).mean() < np.abs(shown - first[..., ::-1]).mean()  # in OpenCV's order, BGR


def test_show_plays_a_video_at_its_pace_and_esc_stops_it(tmp_path, opencv_run, tiny_aihub, screen):
    face = cv2.resize(cv2.imread(str(sorted(tiny_aihub.rglob("*.jpg"))[0])), (160, 120))
    video = face_clip(tmp_path / "clip.avi", face, 6)
    screen["keys"] = [-1, -1, 27]
    out = tmp_path / "out"
    summary = predict_in(out, [f"run={opencv_run}", f"source={video}", "show=true", "batch_size=1"])
    assert summary.images == 3 and screen["waits"] == [1, 1, 1] and screen["closed"] == screen["opened"]
    assert frame_count(out / "annotated" / "clip.avi.mp4") == 3


def test_show_without_a_display_is_refused_before_the_models_load(tmp_path, monkeypatch, no_models, photo_folder):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(RuntimeError, match=r"^show=true needs a display, and DISPLAY is not set here"):
        command(monkeypatch, "run=outputs/runs/mine", f"source={photo_folder}", "show=true",
                f"project={tmp_path / 'project'}")
    assert not (tmp_path / "project").exists()


def test_show_with_an_opencv_without_windows_is_refused_and_leaves_no_folder(tmp_path, monkeypatch, opencv_run,
                                                                              photo_folder, screen):
    def headless(title, flags):
        raise cv2.error("The function is not implemented. Rebuild the library with Windows, GTK+ 2.x or Cocoa support")

    monkeypatch.setattr(cv2, "namedWindow", headless)
    with pytest.raises(RuntimeError, match="show=true: this OpenCV cannot open a window"):
        command(monkeypatch, f"run={opencv_run}", f"source={photo_folder}", "show=true",
                f"project={tmp_path / 'project'}")
    assert folders(tmp_path / "project") == []

"""What a predict SOURCE lists and streams: symlinked folders once each, a FIFO as a skip, a folder named like a
webcam index, a truncated video; folders of videos, .mkv and .webm, TIFF, a .txt list of paths, a URL (the network
blocked or stood in for), and the errors a typo gets before anything is predicted."""

from __future__ import annotations

import io
import os
import socket
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kemotion.inference.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Frame, Skip, open_source
from tests.data.test_files import feed_fifo, returns_within


def photo(path: Path, size=(64, 48), fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path, fmt)
    return path


def clip(path: Path, frames: int = 5, fourcc: str = "MJPG", fps: float = 10) -> Path:
    """A video of `frames` random 64×48 frames, written by OpenCV with `fourcc` (its container from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} into {path.suffix}"
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
    writer.release()
    return path


def test_the_formats_are_ultralytics_own():
    from ultralytics.data.utils import IMG_FORMATS, VID_FORMATS

    assert {suffix[1:] for suffix in VIDEO_SUFFIXES} == VID_FORMATS  # `yolo predict`'s videos are ours
    assert {suffix[1:] for suffix in IMAGE_SUFFIXES} <= IMG_FORMATS  # its images, less those kemotion does not decode


def test_a_folder_source_follows_symlinked_folders_and_reads_a_loop_once(tmp_path):
    root = tmp_path / "photos"
    photo(root / "a.jpg")
    photo(tmp_path / "elsewhere" / "b.jpg")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # was skipped silently
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert [p.relative_to(root) for p in open_source(root).images] == [Path("a.jpg"), Path("linked/b.jpg")]
    assert sorted(p.name for p in open_source(f"{root}/**/*.jpg").images) == ["a.jpg", "b.jpg"]  # was a.jpg × 40


def test_a_fifo_named_jpg_in_a_folder_is_a_skip_row_not_a_hang(tmp_path):
    root = tmp_path / "photos"
    photo(root / "a.jpg")
    os.mkfifo(root / "pipe.jpg")
    source = open_source(root)
    assert [p.name for p in source.images] == ["a.jpg", "pipe.jpg"]  # was left out silently
    items = returns_within(5, lambda: list(source.frames()), unblock=lambda: feed_fifo(root / "pipe.jpg"))
    assert isinstance(items[0], Frame)
    assert items[1] == Skip(str(root / "pipe.jpg"), "not a regular file: a FIFO (named pipe), not a regular file; "
                                                    "not read")


def webcams(monkeypatch, *present: int) -> None:
    """OpenCV's capture stood in for: the webcams `present` open, no other does (video files open as before)."""
    capture = cv2.VideoCapture

    class Webcam:
        def __init__(self, index: int) -> None:
            self.index = index

        def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
            return self.index in present

        def release(self) -> None:
            pass

    monkeypatch.setattr(cv2, "VideoCapture", lambda video, *args: Webcam(video) if isinstance(video, int)
                        else capture(video, *args))


def test_an_existing_folder_wins_over_a_webcam_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    webcams(monkeypatch, 7)
    photo(tmp_path / "2024" / "a.jpg")
    source = open_source("2024")
    assert source.videos == () and source.images == (Path("2024/a.jpg"),)
    webcam = open_source("7")  # no such folder: a webcam
    assert webcam.videos == (7,) and webcam.live and webcam.count() is None and webcam.resolved == "webcam:7"
    with pytest.raises(OSError, match=r"^cannot open the webcam 0: no such device, or it is in use$"):
        open_source("0")  # said before the models load


def test_a_truncated_video_ends_with_a_skip_saying_how_many_frames_were_read(tmp_path):
    video = clip(tmp_path / "clip.avi", frames=30)
    whole = list(open_source(video).frames())
    assert len(whole) == 30 and all(isinstance(item, Frame) for item in whole)
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    *frames, last = open_source(video).frames()
    assert 0 < len(frames) < 30 and all(isinstance(item, Frame) for item in frames)
    assert last == Skip(str(video), f"truncated video: {len(frames)} of the 30 frames its header gives could be read")


@pytest.mark.parametrize(("name", "fourcc"), [("clip.mkv", "MJPG"), ("clip.webm", "VP80"), ("clip.MKV", "XVID")])
def test_mkv_and_webm_are_videos(tmp_path, name, fourcc):
    video = clip(tmp_path / name, frames=5, fourcc=fourcc, fps=10)
    source = open_source(video)
    assert source.images == () and source.videos == (str(video),) and source.count(vid_stride=2) == 3
    frames = list(source.frames(vid_stride=2))
    assert [(f.source, f.index, f.width, f.height, f.fps) for f in frames] == [(str(video), i, 64, 48, 5.0)
                                                                                for i in (0, 2, 4)]
    assert frames[0].decode(None).shape == (48, 64, 3)


def test_a_folder_of_only_videos_is_each_video_in_turn(tmp_path):
    folder = tmp_path / "clips"
    clip(folder / "b.mkv", frames=4)
    clip(folder / "sub" / "a.webm", frames=3, fourcc="VP80")
    (folder / "broken.mp4").write_bytes(b"not a video")
    os.mkfifo(folder / "pipe.mp4")  # OpenCV would wait on it for ever
    (folder / "notes.md").write_text("not a video")
    source = open_source(folder)
    assert source.images == () and source.root == folder
    assert [Path(v).relative_to(folder).as_posix() for v in source.videos] == ["b.mkv", "broken.mp4", "pipe.mp4",
                                                                                "sub/a.webm"]
    assert source.count() == 4 + 3  # the unreadable ones: none
    assert [len(part.videos) for part in source.parts()] == [1, 1, 1, 1]
    items = returns_within(10, lambda: list(source.frames()), unblock=lambda: feed_fifo(folder / "pipe.mp4"))
    assert [(Path(item.source).name, item.index) for item in items if isinstance(item, Frame)] == [
        ("b.mkv", i) for i in range(4)] + [("a.webm", i) for i in range(3)]
    skips = {Path(item.source).name: item.reason for item in items if isinstance(item, Skip)}
    assert skips == {"broken.mp4": f"cannot open the video {folder / 'broken.mp4'}: not a video OpenCV can decode",
                     "pipe.mp4": f"cannot open the video {folder / 'pipe.mp4'}: a FIFO (named pipe), not a regular "
                                 "file; not read"}


def test_a_folder_of_images_and_videos_gives_the_images_then_the_videos(tmp_path):
    folder = tmp_path / "mixed"
    clip(folder / "a.avi", frames=2)
    photo(folder / "b.jpg")
    photo(folder / "c.tif", fmt="TIFF")
    source = open_source(folder)
    assert [p.name for p in source.images] == ["b.jpg", "c.tif"] and [Path(v).name for v in source.videos] == ["a.avi"]
    names = [(Path(f.source).name, f.index, f.fps) for f in source.frames()]
    assert names == [("b.jpg", 0, None), ("c.tif", 0, None), ("a.avi", 0, 10.0), ("a.avi", 1, 10.0)]


def test_a_tiff_is_an_image(tmp_path):
    tiff = photo(tmp_path / "scan.TIFF", size=(80, 60), fmt="TIFF")
    (frame,) = open_source(tiff).frames()
    assert (frame.width, frame.height) == (80, 60)
    assert tuple(frame.decode(None)[30, 40]) == (90, 120, 150)


def test_a_txt_list_names_files_folders_and_globs_beside_it_or_here(tmp_path, monkeypatch):
    here, lists = tmp_path / "here", tmp_path / "lists"
    photo(here / "near.jpg")
    photo(lists / "beside.png")
    photo(lists / "shots" / "a.jpg")
    photo(lists / "shots" / "deep" / "b.bmp")
    clip(lists / "clips" / "c.mkv", frames=2)
    photo(lists / "clips" / "d.webp")
    listed = lists / "list.txt"
    listed.write_text("\ufeffnear.jpg\n\n  beside.png  \nshots\nclips/*.mkv\n" + f"{lists / 'beside.png'}\n",
                      encoding="utf-8")  # a BOM, a blank line, spaces, a file named twice
    monkeypatch.chdir(here)
    source = open_source("../lists/list.txt")
    assert [p.relative_to(tmp_path).as_posix() for p in source.images] == [
        "here/near.jpg", "lists/beside.png", "lists/shots/a.jpg", "lists/shots/deep/b.bmp"]
    assert source.videos == (str(lists / "clips" / "c.mkv"),)
    assert source.root == tmp_path and source.resolved == str(listed)  # the folder the files share
    assert [isinstance(item, Frame) for item in source.frames()] == [True] * 6


@pytest.mark.parametrize(("line", "error", "message"), [
    ("missing.jpg", FileNotFoundError, r"source=.*list\.txt line 2: missing\.jpg not found"),
    ("notes.md", ValueError, r"source=.*list\.txt line 2: notes\.md is no image"),
    ("nothing/*.png", FileNotFoundError, r"line 2: nothing/\*\.png not found"),
])
def test_a_list_naming_what_is_not_there_is_an_error_naming_the_line(tmp_path, line, error, message):
    photo(tmp_path / "a.jpg")
    (tmp_path / "notes.md").write_text("not a picture")
    (tmp_path / "list.txt").write_text(f"a.jpg\n{line}\n", encoding="utf-8")
    with pytest.raises(error, match=message):
        open_source(tmp_path / "list.txt")


def test_a_list_that_is_no_text_or_no_file_is_refused(tmp_path):
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00photo.jpg")
    with pytest.raises(ValueError, match=r"source=.*binary\.txt: not a readable list of paths"):
        open_source(tmp_path / "binary.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(ValueError, match=r"pipe\.txt: not a readable list of paths .*FIFO"):
        returns_within(5, lambda: open_source(tmp_path / "pipe.txt"), unblock=lambda: feed_fifo(tmp_path / "pipe.txt"))


@pytest.mark.parametrize(("spec", "error", "message"), [
    ("photos/missing.jpg", FileNotFoundError, r"^source=photos/missing\.jpg: no such file or folder; give an image "),
    ("notes.pdf", ValueError, r"^source=notes\.pdf: a \.pdf is no image \(\.jpg .*\), video \(.*\.mkv.*\) or list "),
    ("README", ValueError, r"^source=README: a file without an extension is no image"),
    ("*.png", FileNotFoundError, r"^source=\*\.png: no file matches it$"),
    ("empty", FileNotFoundError, r"^source=empty: empty holds no images or videos \(\.jpg .* \.webm, any case\)$"),
    ("broken.mp4", OSError, r"^cannot open the video .*broken\.mp4: not a video OpenCV can decode"),
])
def test_a_typo_is_one_line_naming_the_source(tmp_path, monkeypatch, spec, error, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "README").write_text("words")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(error, match=message) as raised:
        open_source(spec)
    assert "\n" not in str(raised.value)


@pytest.fixture
def no_network(monkeypatch):
    """Every name lookup and connection fails at once, as on a machine without internet; the attempts are recorded."""
    attempts = []

    def lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    def connect(self, address):
        attempts.append(address)
        raise OSError("the network is blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.mark.parametrize("url", ["https://example.com/faces/photo.jpg", "http://example.com/clip.mp4",
                                 "https://example.com/photo?id=3"])
def test_a_url_without_internet_is_one_line_naming_it(no_network, url):
    with pytest.raises(ConnectionError) as raised:
        returns_within(5, lambda: open_source(url))
    message = str(raised.value)
    assert message == (f"source={url}: cannot download it ([Errno -3] Temporary failure in name resolution); without "
                       "internet, copy the file here and give its path")
    assert "\n" not in message and raised.value.__suppress_context__  # no urllib or socket traceback under it
    assert no_network and all(host == "example.com" for host in no_network)  # looked up, never connected


def test_a_url_image_is_downloaded_and_read_as_any_image_file(tmp_path, monkeypatch):
    """urlopen stood in for: the bytes go through kemotion.data.images (an EPS is refused, unopened, as on disk)."""
    served = {"https://example.com/me.jpg": photo(tmp_path / "me.jpg", size=(80, 60)).read_bytes(),
              "https://example.com/trap.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"}
    asked = []

    def urlopen(request, timeout):
        asked.append((request.full_url, timeout))
        return io.BytesIO(served[request.full_url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    source = open_source("https://example.com/me.jpg")
    assert asked == [("https://example.com/me.jpg", 10)] and source.count() == 1
    assert source.resolved == "https://example.com/me.jpg"
    (frame,) = source.frames()
    assert (frame.source, frame.width, frame.height) == ("https://example.com/me.jpg", 80, 60)
    assert frame.decode(None).shape == (60, 80, 3) and frame.decode(20).shape == (15, 20, 3)  # DCT-reduced
    (skip,) = open_source("https://example.com/trap.jpg").frames()
    assert skip == Skip("https://example.com/trap.jpg", "unsupported image: EPS content; kemotion reads JPEG, PNG, "
                                                        "BMP, WEBP, TIFF only (not opened)")

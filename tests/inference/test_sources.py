"""What a predict SOURCE lists and streams: symlinked folders once each, a FIFO as a skip, a folder named like a
webcam index, a truncated video."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kemotion.inference.sources import Frame, Skip, open_source
from tests.data.test_files import feed_fifo, returns_within


def photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (90, 120, 150)).save(path)
    return path


def test_a_folder_source_follows_symlinked_folders_and_reads_a_loop_once(tmp_path):
    root = tmp_path / "photos"
    photo(root / "a.jpg")
    photo(tmp_path / "elsewhere" / "b.jpg")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # was skipped silently
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert [p.relative_to(root) for p in open_source(root).files] == [Path("a.jpg"), Path("linked/b.jpg")]
    assert sorted(p.name for p in open_source(f"{root}/**/*.jpg").files) == ["a.jpg", "b.jpg"]  # was a.jpg × 40


def test_a_fifo_named_jpg_in_a_folder_is_a_skip_row_not_a_hang(tmp_path):
    root = tmp_path / "photos"
    photo(root / "a.jpg")
    os.mkfifo(root / "pipe.jpg")
    source = open_source(root)
    assert [p.name for p in source.files] == ["a.jpg", "pipe.jpg"]  # was left out silently
    items = returns_within(5, lambda: list(source.frames()), unblock=lambda: feed_fifo(root / "pipe.jpg"))
    assert isinstance(items[0], Frame)
    assert items[1] == Skip(str(root / "pipe.jpg"), "not a regular file: a FIFO (named pipe), not a regular file; "
                                                    "not read")


def test_an_existing_folder_wins_over_a_webcam_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "2024" / "a.jpg")
    source = open_source("2024")
    assert source.video is None and source.files == (Path("2024/a.jpg"),)
    assert open_source("7").video == 7  # no such folder: a webcam


def test_a_truncated_video_ends_with_a_skip_saying_how_many_frames_were_read(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
    writer.release()
    whole = list(open_source(video).frames())
    assert len(whole) == 30 and all(isinstance(item, Frame) for item in whole)
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    *frames, last = open_source(video).frames()
    assert 0 < len(frames) < 30 and all(isinstance(item, Frame) for item in frames)
    assert last == Skip(str(video), f"truncated video: {len(frames)} of the 30 frames its header gives could be read")

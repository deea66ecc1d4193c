"""Walking folders through symlink loops, globbing, and refusing FIFOs, devices and oversized files."""

from __future__ import annotations

import glob
import os
import threading
from pathlib import Path

import pytest

from kemotion.data.files import NotARegularFile, TooLarge, glob_files, open_regular, read_bounded, walk_files


def returns_within(seconds: float, call, unblock=None):
    """call()'s result, or a test failure when it has not returned after `seconds` (a read blocked on a FIFO);
    `unblock` then frees the stuck thread."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        thread.join(5)
        pytest.fail(f"still blocked after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def feed_fifo(path: Path) -> None:
    """Open a FIFO for writing and close it: a reader blocked on it gets an end of file."""
    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def tree_with_a_loop(tmp_path: Path) -> Path:
    """photos/a.jpg, photos/sub/b.jpg, photos/sub/back -> photos (a loop), photos/again -> photos/sub (twice)."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"a")
    (root / "sub" / "b.jpg").write_bytes(b"b")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    (root / "again").symlink_to(root / "sub", target_is_directory=True)
    return root


def test_a_walk_reads_each_real_folder_once_and_names_the_second_routes(tmp_path):
    root = tree_with_a_loop(tmp_path)
    listing = walk_files(root)
    assert sorted(p.name for p in listing.files) == ["a.jpg", "b.jpg"]
    assert len(listing.repeated) == 2  # the loop back to photos, and the second of photos/again and photos/sub
    assert all(os.path.realpath(folder) == os.path.realpath(first) for folder, first in listing.repeated)


def test_a_recursive_glob_through_a_loop_lists_each_file_once(tmp_path):
    root = tree_with_a_loop(tmp_path)
    (root / "again").unlink()  # one loop: the standard glob lists each file ~40 times (two loops: without end)
    assert len(glob.glob(f"{root}/**/*.jpg", recursive=True)) > 10
    found = glob_files(f"{root}/**/*.jpg").files
    assert sorted(p.name for p in found) == ["a.jpg", "b.jpg"]
    (root / "again").symlink_to(root / "sub", target_is_directory=True)
    assert sorted(p.name for p in glob_files(f"{root}/**/*.jpg").files) == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("*.jpg", ["a.jpg"]),
    ("*/*.jpg", ["sub/b.jpg"]),
    ("**/*.jpg", ["a.jpg", "sub/b.jpg", "sub/deep/c.jpg"]),
    ("sub/**", ["sub/b.jpg", "sub/deep/c.jpg"]),
    ("sub/.*.jpg", ["sub/.hidden.jpg"]),
    ("**/c.[jp]pg", ["sub/deep/c.jpg"]),
])
def test_glob_files_matches_as_the_standard_glob_does_without_loops(tmp_path, monkeypatch, pattern, expected):
    for name in ("a.jpg", "sub/b.jpg", "sub/.hidden.jpg", "sub/deep/c.jpg", "a.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    standard = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    assert sorted(str(p) for p in glob_files(pattern).files) == standard == expected
    absolute = sorted(str(p) for p in glob_files(str(tmp_path / pattern)).files)
    assert absolute == [str(tmp_path / p) for p in expected]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)

    def read():
        with open_regular(fifo) as handle:
            return handle.read()

    with pytest.raises(NotARegularFile, match=r"pipe\.jpg: a FIFO"):
        returns_within(5, read, unblock=lambda: feed_fifo(fifo))


def test_a_link_to_a_device_is_refused_and_a_large_file_is_not_read_whole(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    with pytest.raises(NotARegularFile, match="zero.json: a character device"):
        read_bounded(tmp_path / "zero.json", 1000)
    (tmp_path / "big.json").write_bytes(b"x" * 1001)
    with pytest.raises(TooLarge, match=r"big\.json: larger than 1,000 bytes"):
        read_bounded(tmp_path / "big.json", 1000)
    assert read_bounded(tmp_path / "big.json", 1001) == b"x" * 1001

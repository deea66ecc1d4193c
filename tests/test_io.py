"""Atomic writes: the file appears whole, with the permissions a plain `open` would give it. Builds done once: of the
callers asking at the same time one builds and the others reuse; a failed build is redone from a clean start."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time

import pytest

from kemotion.core.io import atomic_write, build_once


def test_an_atomic_write_gets_the_permissions_of_a_plain_open(tmp_path):
    with atomic_write(tmp_path / "table5.md", "w", encoding="utf-8") as handle:
        handle.write("| a |\n")
    (tmp_path / "plain.md").write_text("| a |\n", encoding="utf-8")
    mode = stat.S_IMODE(os.stat(tmp_path / "table5.md").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.md").st_mode)
    assert (tmp_path / "table5.md").read_text(encoding="utf-8") == "| a |\n"
    assert not list(tmp_path.glob(".*.part"))


def test_of_two_callers_at_once_one_builds_and_the_other_waits_then_reuses(tmp_path):
    target = tmp_path / "cache" / "crops"
    marker = target / "table.csv"
    asking, builds, results = threading.Event(), [], {}

    def build() -> str:
        builds.append(threading.current_thread().name)
        assert (tmp_path / "cache" / "crops.lock").exists()  # the lock beside the target
        asking.wait(10)
        time.sleep(0.3)  # the other caller is at the lock: without it, it would find no marker and build too
        with atomic_write(marker, "w") as handle:
            handle.write("crops")
        return "built"

    def ask() -> None:
        if threading.current_thread().name == "second":
            asking.set()
        results[threading.current_thread().name] = build_once(
            target, build, done=marker.exists, reuse=lambda: f"reused {marker.read_text()}", what="crops")

    first = threading.Thread(target=ask, name="first")  # each call takes a lock of its own, as two processes would
    first.start()
    while not builds:
        time.sleep(0.01)
    second = threading.Thread(target=ask, name="second")
    second.start()
    first.join(10), second.join(10)
    assert builds == ["first"]
    assert results == {"first": "built", "second": "reused crops"}


def test_a_build_that_raises_is_redone_from_a_clean_start_then_reused(tmp_path, caplog):
    target = tmp_path / "detector"
    weights, run = target / "face_detector.ckpt", target / "run"
    ask = {"done": weights.exists, "reuse": lambda: "reused", "what": "the face detector", "leftovers": [run]}

    def killed() -> str:
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.ckpt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(target, killed, **ask)
    assert not weights.exists() and run.is_dir()

    found_run = []

    def train() -> str:
        found_run.append(run.exists())
        weights.write_text("weights")
        return "trained"

    with caplog.at_level(logging.INFO, logger="kemotion.core.io"):
        assert build_once(target, train, **ask) == "trained"
        assert build_once(target, killed, **ask) == "reused"
    assert found_run == [False]  # the killed build's run folder was removed before training again
    assert f"Removing what an interrupted build of the face detector left: {run}" in caplog.text
    assert f"Building the face detector into {target}" in caplog.text
    assert f"Reusing the face detector in {target}" in caplog.text

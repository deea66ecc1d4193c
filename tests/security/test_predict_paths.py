"""Hostile output names: `python -m kemotion.predict` writes only inside `project`."""

from __future__ import annotations

import shutil

import pytest

from tests.inference.conftest import recorded_run
from tests.inference.test_predict import command


@pytest.mark.parametrize("name", ["../escaped", "../..", "a/../../escaped", ".", "..", ""])
def test_a_name_that_is_not_one_folder_is_refused_and_nothing_is_written_outside_project(tmp_path, monkeypatch,
                                                                                         tiny_aihub, name):
    run = recorded_run(tmp_path / "runs", "resize_kemo")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(sorted(tiny_aihub.rglob("*.jpg"))[0].read_bytes())
    (tmp_path / "outside" / "project").mkdir(parents=True)
    with pytest.raises(ValueError, match="name= must be one folder name"):
        command(monkeypatch, f"run={run}", f"source={photo}", f"project={tmp_path / 'outside' / 'project'}",
                f"name={name}")
    assert [p.name for p in (tmp_path / "outside").iterdir()] == ["project"]
    assert not any(p.name.endswith(".jsonl") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("entry", ["predictions.jsonl", "skipped.csv", "annotated"])
def test_a_resumed_folder_holding_a_symlink_is_refused_and_nothing_outside_is_written(tmp_path, monkeypatch,
                                                                                      tiny_aihub, entry):
    """Resume appends to the tables and writes pictures in a folder that was there before: a link there (planted, or
    copied along) would have it append to, or write pictures into, a file or folder anywhere."""
    run = recorded_run(tmp_path / "runs", "resize_kemo")
    (tmp_path / "photos").mkdir()
    for photo in sorted(tiny_aihub.rglob("*.jpg"))[:2]:
        (tmp_path / "photos" / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"")  # a skip row
    args = [f"run={run}", f"source={tmp_path / 'photos'}", f"project={tmp_path / 'project'}", "name=mine",
            "resume=true"]
    command(monkeypatch, *args)
    folder = tmp_path / "project" / "mine"
    for table in ("predictions.jsonl", "skipped.csv"):  # so that the resume has work to do
        (folder / table).write_text("", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n", encoding="utf-8")
    target = outside if entry == "annotated" else outside / "victim.txt"
    if (folder / entry).is_dir():
        shutil.rmtree(folder / entry)
    else:
        (folder / entry).unlink(missing_ok=True)
    (folder / entry).symlink_to(target)
    with pytest.raises(ValueError, match=f"{folder} cannot be resumed: {folder / entry} is a symbolic link"):
        command(monkeypatch, *args)
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text(encoding="utf-8") == "precious\n"

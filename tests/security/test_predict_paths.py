"""Hostile output names: `python -m kemotion.predict` writes only inside `project`."""

from __future__ import annotations

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

"""Atomic writes: the file appears whole, with the permissions a plain `open` would give it."""

from __future__ import annotations

import os
import stat

from kemotion.io import atomic_write


def test_an_atomic_write_gets_the_permissions_of_a_plain_open(tmp_path):
    with atomic_write(tmp_path / "table5.md", "w", encoding="utf-8") as handle:
        handle.write("| a |\n")
    (tmp_path / "plain.md").write_text("| a |\n", encoding="utf-8")
    mode = stat.S_IMODE(os.stat(tmp_path / "table5.md").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.md").st_mode)
    assert (tmp_path / "table5.md").read_text(encoding="utf-8") == "| a |\n"
    assert not list(tmp_path.glob(".*.part"))

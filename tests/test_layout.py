"""The package's rooms and the one way their imports run (STYLE.md): entry points → Lightning modules and data
modules → models / preprocessing → data; no room imports a room above it, and no module imports an entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kemotion"
ENTRY_POINTS = {"kemotion.train", "kemotion.report", "kemotion.data.inspect", "kemotion.preprocess.__main__"}
# A room may import the rooms listed for it (and shared modules: config, keys, io, emotions, confusion, parallel).
ALLOWED = {
    "kemotion.data": {"kemotion.data"},
    "kemotion.preprocess": {"kemotion.preprocess", "kemotion.data", "kemotion.models"},
    "kemotion.models": {"kemotion.models"},
    "kemotion.lit": {"kemotion.lit", "kemotion.models", "kemotion.data"},
    "kemotion.datamodules": {"kemotion.datamodules", "kemotion.data", "kemotion.preprocess"},
}
SHARED = {"kemotion", "kemotion.config", "kemotion.keys", "kemotion.io", "kemotion.emotions", "kemotion.confusion",
          "kemotion.parallel"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("kemotion")}


MODULES = {_module(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_an_entry_point(module):
    assert not MODULES[module] & ENTRY_POINTS


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_the_rooms_below_it(room):
    for module, imports in MODULES.items():
        if (module == room or module.startswith(room + ".")) and module not in ENTRY_POINTS:  # entries sit on top
            known = {name for name in imports if name not in SHARED and not name.startswith(tuple(
                f"{shared}." for shared in SHARED - {"kemotion"}))}
            outside = {name for name in known if not any(name == r or name.startswith(r + ".") for r in ALLOWED[room])}
            assert not outside, f"{module} imports {sorted(outside)}"

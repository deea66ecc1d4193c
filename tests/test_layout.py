"""The package's rooms and the one way their imports run (STYLE.md): entry points → inference → engine → Lightning
modules and data modules → preprocessing → models / data → core; no room imports a room above it, no module imports
an entry point, and every module is in a room or is an entry point (no exemptions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kemotion"
# Each room and the rooms it may import, from the bottom up. Every module is in one: a package of the tree, or an
# entry point (a module at the package root: `python -m kemotion.<name>`), which no module imports.
ALLOWED = {
    "kemotion.core": set(),
    "kemotion.conf": set(),
    "kemotion.data": {"kemotion.core"},
    "kemotion.models": {"kemotion.core"},
    "kemotion.preprocess": {"kemotion.core", "kemotion.data", "kemotion.models"},
    "kemotion.lit": {"kemotion.core", "kemotion.data", "kemotion.models"},
    "kemotion.datamodules": {"kemotion.core", "kemotion.data", "kemotion.preprocess"},
    "kemotion.engine": {"kemotion.core", "kemotion.data", "kemotion.models", "kemotion.preprocess", "kemotion.lit",
                        "kemotion.datamodules"},
    "kemotion.inference": {"kemotion.core", "kemotion.data", "kemotion.models", "kemotion.preprocess",
                           "kemotion.engine"},
    "kemotion.notebooks": {"kemotion.core", "kemotion.data", "kemotion.models", "kemotion.preprocess",
                           "kemotion.engine", "kemotion.inference"},
    "kemotion": {"kemotion.core", "kemotion.inference"},  # the package itself: `kemotion.EmotionPipeline`
}
ENTRY_POINTS = {f"kemotion.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


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


def _room(module: str) -> str | None:
    return next((room for room in sorted(ALLOWED, key=len, reverse=True)
                 if module == room or module.startswith(room + ".")), None)


def test_the_package_root_holds_only_entry_points_and_rooms():
    assert {"kemotion.train", "kemotion.predict", "kemotion.export", "kemotion.report", "kemotion.inspect",
            "kemotion.prepare", "kemotion.__main__"} == ENTRY_POINTS  # __main__: `kemotion COMMAND`, which runs them
    rooms = {f"kemotion.{path.name}" for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert rooms == set(ALLOWED) - {"kemotion"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_an_entry_point(module):
    assert not MODULES[module] & ENTRY_POINTS


@pytest.mark.parametrize("module", sorted(set(MODULES) - ENTRY_POINTS))
def test_each_module_imports_only_its_room_and_the_rooms_below_it(module):
    room = _room(module)
    outside = {name for name in MODULES[module] if _room(name) not in {room, *ALLOWED[room]}}
    assert not outside, f"{module} imports {sorted(outside)}"

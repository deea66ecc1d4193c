"""A wheel is all a user needs: built from the clone, installed in a clean venv with its dependencies, it composes the
packaged configs and runs `kemotion train +experiment=resize_kemo` (its console script) from a folder that is not the
clone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = {".git", ".venv", ".cache", "data", "outputs", "build", ".pytest_cache"}  # at the top of a clone
TORCH_PAIR = ("torch==2.14.1", "torchvision==0.29.1")  # the Makefile's pair: the one with a CPU torchvision here


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {name for name in names
            if (top and name in NOT_SOURCE) or name == "__pycache__" or name.endswith(".egg-info")}


def _run(command: list, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_a_wheel_in_a_clean_venv_trains_resize_kemo_from_anywhere(tmp_path):
    source = shutil.copytree(ROOT, tmp_path / "source", symlinks=True, ignore=_not_source)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source],
         cwd=tmp_path, timeout=600)  # built from a copy: setuptools leaves build/ and *.egg-info beside the sources
    (wheel,) = (tmp_path / "dist").glob("kemotion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"kemotion/conf/train.yaml", "kemotion/conf/model/_classifier.yaml", "kemotion/conf/experiment/table5.yaml",
            "kemotion/models/architectures/yolo-facev2.yaml"} <= names

    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", wheel, *TORCH_PAIR], cwd=tmp_path, timeout=1500)
    elsewhere = tmp_path / "user"
    elsewhere.mkdir()
    where = _run([python, "-c", "import kemotion; print(kemotion.__file__)"], cwd=elsewhere, timeout=120).stdout
    assert str(tmp_path / "venv") in where  # the installed package, not the clone

    kemotion = tmp_path / "venv" / "bin" / "kemotion"  # the console script the wheel installs
    _run([kemotion, "train", "+experiment=resize_kemo", "debug=tiny", "trainer.max_epochs=1", "model.net.width=8",
          "hydra.run.dir=run"], cwd=elsewhere, timeout=900)
    result = json.loads((elsewhere / "run" / "result.json").read_text(encoding="utf-8"))
    assert result["cell"]["preprocess"] == "resize" and 0 <= result["metrics"]["test/acc"] <= 1
    assert (elsewhere / "data" / "synthetic_aihub").is_dir() and (elsewhere / ".cache" / "manifests").is_dir()

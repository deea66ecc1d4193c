"""benchmarks/gpu.py --smoke: the prepared GPU benchmark runs end to end on the CPU, so it cannot rot before a GPU
session spends its minutes on it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_smoke_run_measures_every_section_and_prints_the_table(gpu_benchmark, tmp_path, capsys):
    results = gpu_benchmark.main(["--smoke", "--models", "resnet18", "--out", str(tmp_path)])
    assert set(results["loader"]) == {(name, workers) for name in ("jpeg", "decoded", "decoded+device")
                                      for workers in (0, 1)}
    assert all(rate > 0 for rate in results["loader"].values())
    assert results["device_step"] > 0
    (key, (rate, _)), = results["models"].items()
    assert key == ("resnet18", "32-true", False, False) and rate > 0
    assert results["detector"]["train"] > 0 and results["detector"]["detect"] > 0 and results["detector"]["onnx"] > 0
    printed = capsys.readouterr().out
    assert "resnet18 32-true" in printed and "Table 5 at paper scale" in printed
    assert (tmp_path / "cache" / "crops").is_dir() and list((tmp_path / "cache").rglob("decoded/32px-v1/*.u8"))


def test_a_spent_budget_skips_the_remaining_sections(gpu_benchmark, tmp_path, capsys):
    results = gpu_benchmark.main(["--smoke", "--models", "resnet18", "--budget-s", "0", "--out", str(tmp_path)])
    assert results["loader"] == {} and results["models"] == {} and results["detector"] == {}
    assert "skipped (budget)" in capsys.readouterr().out

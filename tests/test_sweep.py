"""Table 5 as one Hydra multirun: its jobs, caches built once before them, a crash that spares the rest, a relaunch
that skips what finished, and `python -m kemotion.report` over the result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from kemotion.engine.sweep import sweep_jobs
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("overrides", "count", "expected"), [
    ([], 27, {"preprocess=yolo", "model=kemotionnet", "seed=2"}),
    (["seed=5"], 9, {"preprocess=opencv", "model=vgg19", "seed=5"}),  # the command line replaces the params' key
    (["model=vgg19,resnet18", "trainer.max_epochs=3"], 18, {"model=resnet18", "trainer.max_epochs=3"}),
])
def test_the_table5_sweep_expands_as_hydras_basic_sweeper(tmp_path, overrides, count, expected):
    hydra = compose_config(tmp_path, ["+experiment=table5"]).hydra
    # the command line of `-m` as Hydra records it, beside the experiment's params (compose itself refuses sweeps)
    jobs = sweep_jobs(OmegaConf.create({"hydra": {
        "sweeper": {"params": OmegaConf.to_container(hydra.sweeper.params)},
        "overrides": {"task": [*hydra.overrides.task, *overrides]}}}))
    assert len(jobs) == count and len({tuple(job) for job in jobs}) == count
    assert any(expected <= set(job) for job in jobs)
    assert all("+experiment=table5" in job for job in jobs)


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "kemotion.train", "-m", "+experiment=table5", f"paths.root_dir={tmp_path}",
               "debug=tiny", "model.net.width=8", *overrides]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_sweep_builds_caches_once_skips_finished_runs_and_reports(tmp_path):
    grid = ["preprocess=resize,opencv", "model=kemotionnet", "seed=0,1", "trainer.max_epochs=1"]
    first = sweep(tmp_path, *grid)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Caches ready: 2 distinct for 4 jobs (0 failed)" in first.stdout
    folder = tmp_path / "outputs" / "multiruns" / "table5"
    runs = sorted(p.name for p in folder.iterdir() if (p / "result.json").exists())
    assert runs == [f"{preprocess}_kemotionnet_random_seed{seed}" for preprocess in ("opencv", "resize")
                    for seed in (0, 1)]
    for run in runs:  # the jobs only read the caches the callback built
        log = (folder / run / "table5.log").read_text(encoding="utf-8")
        assert "Reusing manifest" in log and "crops of the classification subset in" in log
        assert "to make in" not in log

    again = sweep(tmp_path, *grid)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("Skipping ") == 4 and "Testing" not in again.stdout + again.stderr

    out = tmp_path / "report"
    report = subprocess.run([sys.executable, "-m", "kemotion.report", str(folder), "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(out / "table5.csv")
    assert table[["preprocess", "model", "runs"]].values.tolist() == [["resize", "kemotionnet", 2],
                                                                     ["opencv", "kemotionnet", 2]]
    runs_csv = pd.read_csv(out / "runs.csv")
    means = runs_csv.groupby("preprocess", sort=False)["test_acc"].mean()
    assert table["mean"].tolist() == pytest.approx(means.tolist())
    best = (out / "best_cell.txt").read_text(encoding="utf-8").strip()
    assert best == "{}/kemotionnet".format(table.sort_values("mean", ascending=False).iloc[0].preprocess)
    confusion = pd.read_csv(out / "confusion_best.csv", index_col=0)
    assert confusion.to_numpy().sum() == 2 * 7  # two seeds × one test image per class
    assert (out / "confusion_best.png").stat().st_size > 10_000
    assert "| Resize |" in report.stdout and "| OpenCV face crop |" in report.stdout and "61.81 ± 0.55" in report.stdout


@pytest.mark.slow
def test_a_crashing_job_spares_the_others(tmp_path):
    grid = ["preprocess=resize", "model=kemotionnet", "seed=0", "trainer.max_epochs=-5,1",
            "hydra.sweep.subdir=${hydra.job.num}"]
    result = sweep(tmp_path, *grid)
    folder = tmp_path / "outputs" / "multiruns" / "table5"
    assert result.returncode != 0 and "trainer.max_epochs=-5: epochs to train must be" in result.stderr
    assert not (folder / "0" / "result.json").exists() and (folder / "1" / "result.json").exists()


def test_a_job_config_resolves_as_the_job_sees_it(tmp_path):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from kemotion.core.config import CONFIG_PACKAGE
    from kemotion.engine.sweep import _job_config

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        job = _job_config("train", ["+experiment=table5", "preprocess=yolo", "model=vgg19", "seed=1",
                                    f"paths.root_dir={tmp_path}"], tmp_path / "sweep")
    resolved = OmegaConf.to_container(job, resolve=True)  # what train() logs; a `hydra` node would not resolve
    assert "hydra" not in resolved and resolved["paths"]["output_dir"] == str(tmp_path / "sweep")
    assert resolved["cell"] == {"preprocess": "yolo", "model": "vgg19", "split": "random", "seed": 1}
    assert resolved["tags"] == ["table5", "yolo", "vgg19", "random", "seed1"]

"""The Hydra launchers kemotion configures (conf/hydra/launcher/): `slurm`, hydra-submitit-launcher's SLURM job
arrays, one GPU per job; `parallel`, hydra-joblib-launcher's processes on this machine, whose jobs share the caches."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import compose_config
from tests.test_ddp import TINY_CLI, run_train

SUBMITIT = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def test_runs_launch_in_this_process_unless_a_launcher_is_chosen(tmp_path):
    cfg = compose_config(tmp_path)
    assert cfg.hydra.launcher._target_ == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def test_the_slurm_launcher_submits_one_single_gpu_process_per_job(tmp_path):
    cfg = compose_config(tmp_path, ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "data=aihub",
                                    "data.source.root=/nowhere"])
    launcher = cfg.hydra.launcher
    assert launcher._target_ == SUBMITIT and cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (1, 1, 1)
    assert launcher.partition == "gpu"
    assert compose_config(tmp_path, ["hydra/launcher=slurm"]).hydra.launcher.partition is None  # the user's to set
    assert launcher.cpus_per_task > cfg.data.num_workers  # the loader's workers and the training process
    assert launcher.mem_gb > 0 and launcher.timeout_min >= 60
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # each job's logs in its sweep
    assert instantiate(launcher).params["gpus_per_node"] == 1  # the plugin takes every field as it is


def test_the_parallel_launcher_runs_two_joblib_processes(tmp_path):
    cfg = compose_config(tmp_path, ["hydra/launcher=parallel"])
    launcher = cfg.hydra.launcher
    assert launcher._target_ == JOBLIB and cfg.hydra.runtime.choices["hydra/launcher"] == "parallel"
    assert launcher.n_jobs == 2 and launcher.prefer == "processes" and launcher.backend is None  # loky processes
    assert OmegaConf.to_container(compose_config(tmp_path, ["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"])
                                  .hydra.launcher)["n_jobs"] == 4


def _log_span(log: str) -> tuple[datetime, datetime]:
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", log, flags=re.MULTILINE)
    return tuple(datetime.strptime(stamps[i], "%Y-%m-%d %H:%M:%S,%f") for i in (0, -1))


@pytest.mark.slow
def test_a_parallel_sweep_runs_its_jobs_at_once_and_builds_each_cache_once(tmp_path):
    output = run_train(tmp_path, ["-m", "hydra/launcher=parallel", "+experiment=resize_kemo", "seed=0,1", *TINY_CLI,
                                  "trainer.max_epochs=1"])
    (sweep,) = (tmp_path / "outputs" / "multiruns").iterdir()
    jobs = [sweep / "0", sweep / "1"]
    for job, seed in zip(jobs, (0, 1), strict=True):
        assert f"seed={seed}" in OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert any(p.name.startswith("epoch") for p in (job / "checkpoints").glob("*.ckpt"))
        history = pd.read_csv(next((job / "csv").rglob("metrics.csv")))
        assert 0 <= history["test/acc"].dropna().item() <= 1
        assert (job / "confusion_matrix_test.csv").exists()

    # Both jobs ran at once, each in a process of its own, with its own log: their spans overlap.
    (first_start, first_end), (second_start, second_end) = (_log_span(next(job.glob("*.log")).read_text())
                                                             for job in jobs)
    assert first_start < second_end and second_start < first_end
    # ... and the shared caches were built once, by whichever job came first; the other waited and read them.
    assert output.count("Building synthetic AI-Hub set") == 1
    assert output.count("Building manifest") == 1
    assert len(re.findall(r"resize crops: 0 cached, \d+ to make", output)) == 1
    assert len(list((tmp_path / ".cache" / "manifests").glob("*/classification.csv"))) == 1

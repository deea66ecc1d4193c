"""A Hydra callback for sweeps: before the first job, build every cache the jobs will read, once each.

`+experiment=table5` registers it (`hydra.callbacks.prepare_caches`). The sweep's jobs are expanded as Hydra's
basic sweeper expands them (its `hydra.sweeper.params`, then the command line's overrides), each job's config is
composed, and each distinct (dataset, selection, cropper, detector) gets its manifest, its face detector when the
crop needs one, and its crop cache, here in the launching process. The jobs then only read them, so three models ×
N seeds never wait on the same cache, and parallel launchers (joblib, SLURM) never build one twice.

With `hydra/launcher=slurm` this runs on the machine you submit from; drop it (`~hydra.callbacks.prepare_caches`)
to leave each cache to the first job that needs it (the caches lock, so concurrent jobs wait rather than clash).
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


class PrepareCaches(Callback):
    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs: Any) -> None:
        from kemotion.engine import detector_stage
        from kemotion.engine.training import data_config

        jobs = sweep_jobs(config)
        prepared: set[str] = set()
        failed = 0
        for overrides in jobs:
            job = _job_config(config_name, overrides, Path(config.hydra.sweep.dir))
            need = cache_need(job)
            if need in prepared:
                continue
            prepared.add(need)
            log.info("Preparing the caches for %s", " ".join(overrides))
            try:
                instantiate(data_config(job, detector_stage.run(job))).prepare_data()
            except Exception:  # the jobs that need it fail on their own; the rest of the sweep goes on
                failed += 1
                log.exception("Could not prepare the caches for %s; the jobs that need them will try again",
                              " ".join(overrides))
        log.info("Caches ready: %d distinct for %d jobs (%d failed)", len(prepared) - failed, len(jobs), failed)


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper makes them: the product of `hydra.sweeper.params` and the
    command line's overrides, where a key given on the command line replaces the same key of the params."""
    params = [f"{key}={value}" for key, value in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    task = list(OmegaConf.select(config, "hydra.overrides.task") or [])
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides([*params, *task]):
        key = override.get_key_element()
        if override.is_sweep_override():
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*axes.values())]


def _job_config(config_name: str | None, overrides: list[str], sweep_dir: Path) -> DictConfig:
    """A job's config as Hydra's `run_job` hands it to the task: `${hydra:...}` resolving (here with the sweep's
    folder as the output folder), and the `hydra` node itself left out."""
    job = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with read_write(job), open_dict(job):
        job.hydra.runtime.output_dir = str(sweep_dir)
        HydraConfig.instance().set_config(job)
        del job["hydra"]
    return job


def cache_need(job: DictConfig) -> str:
    """What a job's caches depend on: its dataset, selection, cropper and detector (not its model or seed)."""
    need = {key: OmegaConf.to_container(OmegaConf.select(job, key), resolve=True)
            for key in ("data.source", "data.selection", "preprocess", "detector", "trainer")}
    return json.dumps(need, sort_keys=True, default=str)

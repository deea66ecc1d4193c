"""The proposed pipeline's first stage, run when a run needs it: the face detector behind the YOLO crops.

A cropper whose `checkpoint` is null (`preprocess=yolo` unless you give one) gets kemotion's own face detector: what
`+experiment=face_detector` trains, on this run's dataset and `detector` config. It is trained once, into
`<cache>/detectors/<manifest key>/<detector>-<config hash>/face_detector.ckpt`, and every later run with the same
data and detector settings reuses it, so `python -m kemotion.train +experiment=yolo_kemo` runs the whole pipeline on
a fresh machine and a sweep trains its detector once. A run killed while training it leaves no `face_detector.ckpt`;
the next run trains it again from the start.

The detector stage always trains as one process on the run's accelerator, whatever the run's own trainer. Under
`trainer=ddp` it runs in rank 0 before the classifier's other ranks exist: Lightning's launcher starts them in
`trainer.fit` by running the whole command again. A DDP detector stage would start its own ranks the same way, and they
would wait for the detector's lock that rank 0 holds while training it. As it is, when rank 1's run of the command gets
here, the detector is cached and rank 1 reuses it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kemotion.config import config_file
from kemotion.data.manifest import load_or_build
from kemotion.io import atomic_write
from kemotion.keys import settings_key

log = logging.getLogger(__name__)

FACE_DETECTOR_RUN = config_file("experiment", "face_detector.yaml")
WEIGHTS = "face_detector.ckpt"
# Where the data lies, not what it is: the manifest key above the detector's folder already names the data, so a
# run from another folder or with an absolute path finds the same detector.
DATA_LOCATION = frozenset({"root", "cache_dir"})

# Trainer settings that make more than one process; the detector stage drops them (Lightning's defaults: one node,
# the "auto" strategy, which for one device is a single process, and no SyncBatchNorm).
MULTI_PROCESS = ("strategy", "num_nodes", "sync_batchnorm")

Train = Callable[[DictConfig], tuple[dict[str, float], str | None]]


def provide_face_detector(cfg: DictConfig, train: Train) -> None:
    """Set the run's cropper checkpoint when the config leaves it to kemotion (null): the cached detector of this
    data and detector config, trained with `train` first if there is none."""
    cropper = OmegaConf.select(cfg, "datamodule.cropper")
    if cropper is not None and "checkpoint" in cropper and cropper.checkpoint is None:
        cropper.checkpoint = str(face_detector(cfg, train))


def face_detector(cfg: DictConfig, train: Train) -> Path:
    """The checkpoint of the face detector `cfg`'s data and detector config make, trained now if not cached."""
    run = detector_run(cfg)
    directory = Path(cfg.paths.cache_dir).resolve() / "detectors" / _manifest_key(cfg) / detector_key(run, cfg)
    weights = directory / WEIGHTS
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if weights.exists():
            log.info("Reusing the face detector %s (%s)", weights, _metrics_line(directory))
            return weights
        shutil.rmtree(directory / "run", ignore_errors=True)  # what a killed training left
        run.paths.output_dir = str(directory / "run")
        log.info("No face detector for this data and detector config yet: training one into %s", directory)
        metrics, best = train(run)
        if not best:
            raise RuntimeError(f"the face detector's training in {directory / 'run'} saved no best checkpoint")
        with atomic_write(directory / "metrics.json", "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}, handle, indent=1)
        os.replace(best, weights)  # last: its presence says the detector is complete
        log.info("Face detector ready: %s (%s)", weights, _metrics_line(directory))
    return weights


def detector_run(cfg: DictConfig) -> DictConfig:
    """What `+experiment=face_detector` would run on `cfg`'s data and detector: the experiment merged over `cfg`,
    as Hydra merges a global package, with the detector's own seed and a CSV log instead of the run's loggers, in one
    process on the run's accelerator (see the module's docstring)."""
    run = copy.deepcopy(cfg)
    OmegaConf.set_struct(run, False)
    run.merge_with(OmegaConf.load(FACE_DETECTOR_RUN))
    run.trainer.devices = 1
    for key in MULTI_PROCESS:
        run.trainer.pop(key, None)  # absent, not set to the default: a single-process run's key stays what it was
    run.seed = cfg.detector.seed
    run.logger = {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": "${paths.output_dir}",
                          "name": "csv"}}
    run.test_before_fit, run.ckpt_path, run.train, run.test = False, None, True, True
    return run


def detector_key(run: DictConfig, cfg: DictConfig) -> str:
    """`<detector choice>-<hash of everything the detector run trains with>` (paths and worker counts left out)."""
    choice = HydraConfig.get().runtime.choices.get("detector") if HydraConfig.initialized() else None
    choice = choice or "detector"
    return f"{choice}-{settings_key(run, ignore=DATA_LOCATION)}"


def _manifest_key(cfg: DictConfig) -> str:
    """The detector subset's manifest (built here if it is not yet): new data or selection, a new detector."""
    source = instantiate(cfg.data.source)
    return load_or_build(source.prepare(), instantiate(cfg.data.selection), cfg.paths.cache_dir).key


def _metrics_line(directory: Path) -> str:
    try:
        metrics = json.loads((directory / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no metrics recorded"
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in ("test/map50", "test/map") if k in metrics)

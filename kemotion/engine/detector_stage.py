"""The proposed pipeline's first stage, run before a run that needs it: the face detector behind the YOLO crops.

A cropper that needs a face detector (`needs_face_detector`, `preprocess=yolo`) and names none (`checkpoint: null`)
gets kemotion's own: what `+experiment=face_detector` trains, on the run's dataset and `detector` config. The entry
points (`kemotion.train`, `kemotion.preprocess`, the sweep's cache callback) ask for it before the run starts
(`run`), and hand the checkpoint to the run beside its config (`kemotion.engine.training.train(cfg,
face_detector=...)`): the run's config stays what was composed, and its folder's key with it.

The detector is trained once, into `face_detector_path(cfg)` —
`<cache>/detectors/<manifest key>/<detector>-<config hash>/face_detector.ckpt` — and every later run with the same
data and detector settings reuses it, so `python -m kemotion.train +experiment=yolo_kemo` runs the whole pipeline on
a fresh machine and a sweep trains its detector once. A stage killed while training leaves no `face_detector.ckpt`;
the next one trains it again from the start.

The stage always trains as one process on the run's accelerator, whatever the run's own trainer. Under
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
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from kemotion.core.config import config_file
from kemotion.core.io import atomic_write, build_once
from kemotion.core.keys import settings_key
from kemotion.data.manifest import load_or_build
from kemotion.engine.training import train
from kemotion.preprocess.cropper import cropper_class

log = logging.getLogger(__name__)

FACE_DETECTOR_RUN = config_file("experiment", "face_detector.yaml")
WEIGHTS = "face_detector.ckpt"
# Where the data lies, not what it is: the manifest key above the detector's folder already names the data, so a
# run from another folder or with an absolute path finds the same detector.
DATA_LOCATION = frozenset({"root", "cache_dir"})

# Trainer settings that make more than one process; the detector stage drops them (Lightning's defaults: one node,
# the "auto" strategy, which for one device is a single process, and no SyncBatchNorm).
MULTI_PROCESS = ("strategy", "num_nodes", "sync_batchnorm")


def run(cfg: DictConfig) -> Path | None:
    """The face-detector checkpoint the run `cfg` needs from this stage, trained now if it is not cached; None when
    its cropper needs none or names its own."""
    if not needs_stage(cfg):
        return None
    weights = face_detector_path(cfg)
    directory = weights.parent

    def trained() -> Path:
        detector = detector_run(cfg)
        detector.paths.output_dir = str(directory / "run")
        metrics, best = train(detector)
        if not best:
            raise RuntimeError(f"the face detector's training in {directory / 'run'} saved no best checkpoint")
        with atomic_write(directory / "metrics.json", "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}, handle, indent=1)
        os.replace(best, weights)  # last: its presence says the detector is complete
        log.info("Face detector ready: %s (%s)", weights, _metrics_line(directory))
        return weights

    def reused() -> Path:
        log.info("Reusing the face detector %s (%s)", weights, _metrics_line(directory))
        return weights

    directory.mkdir(parents=True, exist_ok=True)
    return build_once(directory, trained, done=weights.exists, reuse=reused, what="the face detector",
                      leftovers=[directory / "run"])  # what a killed training left


def needs_stage(cfg: DictConfig) -> bool:
    """Whether the run's cropper needs a face detector (its class says so) and leaves it to kemotion (null)."""
    cropper = OmegaConf.select(cfg, "datamodule.cropper")
    if not isinstance(cropper, DictConfig) or "_target_" not in cropper:
        return False
    return cropper_class(cropper._target_, "the run's config").needs_face_detector and not cropper.get("checkpoint")


def face_detector_path(cfg: DictConfig) -> Path:
    """Where this stage keeps the face detector of `cfg`'s data and detector config (it may not exist yet)."""
    key = detector_key(detector_run(cfg), cfg)
    return Path(cfg.paths.cache_dir).resolve() / "detectors" / _manifest_key(cfg) / key / WEIGHTS


def detector_run(cfg: DictConfig) -> DictConfig:
    """What `+experiment=face_detector` would run on `cfg`'s data and detector: the experiment merged over `cfg`,
    as Hydra merges a global package, with the detector's own seed and a CSV log instead of the run's loggers, in one
    process on the run's accelerator (see the module's docstring)."""
    detector = copy.deepcopy(cfg)
    OmegaConf.set_struct(detector, False)
    detector.merge_with(OmegaConf.load(FACE_DETECTOR_RUN))
    detector.trainer.devices = 1
    for key in MULTI_PROCESS:
        detector.trainer.pop(key, None)  # absent, not set to the default: a single-process run's key stays the same
    detector.seed = cfg.detector.seed
    detector.logger = {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": "${paths.output_dir}",
                               "name": "csv"}}
    detector.test_before_fit, detector.ckpt_path, detector.train, detector.test = False, None, True, True
    return detector


def detector_key(detector: DictConfig, cfg: DictConfig) -> str:
    """`<detector choice>-<hash of everything the detector run trains with>` (paths and worker counts left out)."""
    choice = HydraConfig.get().runtime.choices.get("detector") if HydraConfig.initialized() else None
    choice = choice or "detector"
    return f"{choice}-{settings_key(detector, ignore=DATA_LOCATION)}"


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

"""A run folder's record of itself, so a sweep launched again skips what finished and resumes what did not.

`run.json` is written when a run starts: the hash of what it trains (`settings_key`) and its Table 5 cell.
`result.json` is written last, atomically: the metrics, the best checkpoint, the test confusion matrix; a real
`last.ckpt` is then deleted (the best checkpoint is what a finished run keeps). A run whose folder already holds
both, for the same settings, is not run again; one with `run.json` and a `last.ckpt` but no result (killed,
crashed) resumes from that checkpoint. Timestamped folders never meet either case; a sweep with a
fixed folder (`+experiment=table5`) does.

A run owns its folder while it runs (`claim`: a lock file, released when the process ends however it ends), so a
second launch of the same sweep skips the runs the first one is still running instead of training them twice. The
folder also keeps the run's id (`run_id`, in `run.json`), which W&B gets, so a resumed run continues its W&B run.

A classifier run's `run.json` also records what prediction needs to prepare a photo as training did
(`pipeline_record`; `kemotion.inference.record` reads it), and the folder keeps the face detector its crops came from
in `<run>/detector/`, so it can be moved or shared. The record says what the run was trained on (`trained_on`), so
prediction can say when that was kemotion's synthetic faces, which teach nothing about real photos.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from kemotion.core.emotions import ENGLISH_NAMES
from kemotion.core.io import atomic_write
from kemotion.core.keys import file_sha256, settings_key
from kemotion.data.transforms import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

STARTED, FINISHED, LOCK = "run.json", "result.json", ".run.lock"
RECORD_KEY = "pipeline"  # run.json's entry of what prediction needs (`pipeline_record`)
DETECTOR_FOLDER = "detector"  # <run>/detector/<file>: the run's own face detector
SYNTHETIC_DATA = "kemotion.data.synthetic"  # the package of the datasets kemotion draws itself (the demo's)
DATASETS = {"kemotion.data.aihub.AIHubDownload": "aihub", "kemotion.data.widerface.WiderFace": "widerface"}


@dataclass(frozen=True)
class RunFolder:
    """What a run folder already holds for the run `cfg` describes."""

    directory: Path
    key: str
    new_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12], compare=False)  # when the folder has none

    @classmethod
    def of(cls, cfg: DictConfig) -> RunFolder:
        return cls(Path(cfg.paths.output_dir), settings_key(cfg))

    @contextlib.contextmanager
    def claim(self) -> Iterator[bool]:
        """Own this folder while the block runs: True, or False when another process owns it now. Only the first
        process of a run locks (a DDP run's other ranks run the command again in the same folder)."""
        if not _first_process():
            yield True
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.directory / LOCK, timeout=0)
        try:
            lock.acquire()
            owned = True
        except Timeout:
            owned = False
        try:
            yield owned
        finally:
            if owned:
                lock.release()

    def run_id(self) -> str:
        """This folder's run id: the one it recorded when its run started, or a new one for a new run."""
        started = self._read(STARTED) or {}
        return started.get("run_id") or self.new_id

    def finished(self) -> dict | None:
        """The recorded result when this run already finished here, else None. A folder holding a different run
        is an error rather than something to overwrite or resume from."""
        started = self._read(STARTED)
        if started is None:
            return None
        if started.get("key") != self.key:
            raise RuntimeError(f"{self.directory / STARTED} records a run with other settings (key "
                               f"{started.get('key')}, this one {self.key}); give this sweep a new folder "
                               "(hydra.sweep.dir=...) or delete that one")
        return self._read(FINISHED)

    def last_checkpoint(self) -> str | None:
        """The checkpoint to resume from: `checkpoints/last.ckpt` of an unfinished run of the same settings."""
        last = self.directory / "checkpoints" / "last.ckpt"
        return str(last) if (self.directory / STARTED).exists() and last.exists() else None

    def start(self, cell: dict, pipeline: dict | None = None) -> None:
        """Record the run's key and cell, and what prediction needs (`pipeline_record`)."""
        with atomic_write(self.directory / STARTED, "w", encoding="utf-8") as handle:
            json.dump({"key": self.key, "cell": cell, "run_id": self.run_id(),
                       **({RECORD_KEY: pipeline} if pipeline else {})}, handle, indent=1, ensure_ascii=False)

    def finish(self, result: dict) -> Path:
        """Record the result; then drop the resume point, a real `last.ckpt` (as `table5` writes: a VGG19 one is
        1.7 GB), which only an unfinished run needs. A `last.ckpt` link to the best checkpoint stays."""
        with atomic_write(self.directory / FINISHED, "w", encoding="utf-8") as handle:
            json.dump({"key": self.key, **result}, handle, indent=1, ensure_ascii=False)
        last = self.directory / "checkpoints" / "last.ckpt"
        if last.is_file() and not last.is_symlink() and str(last) != result.get("best_checkpoint"):
            last.unlink()
        return self.directory / FINISHED

    def _read(self, name: str) -> dict | None:
        path = self.directory / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise RuntimeError(f"{path} is not valid JSON ({error}); delete it to run this folder again") from error



def pipeline_record(cfg: DictConfig, directory: Path, face_detector: Path | None = None) -> dict | None:
    """What prediction needs of a classifier run (`kemotion.inference.record` reads it): its cropper, classifier
    network, input size and normalisation; None for a run without a cropper (the face detector's). A cropper's
    face detector — its own `checkpoint`, or `face_detector` from the detector stage — goes into the run folder
    `directory`, named relative to it, with the file's SHA-256."""
    cropper = OmegaConf.select(cfg, "datamodule.cropper")
    if cropper is None or OmegaConf.select(cfg, "module.net") is None:
        return None
    cropper = OmegaConf.to_container(cropper, resolve=True)
    checkpoint = face_detector or cropper.get("checkpoint")
    if checkpoint:
        cropper["checkpoint"] = _keep_in_run(Path(checkpoint), Path(directory))
    return {
        "cropper": cropper,
        "detector_sha256": file_sha256(checkpoint) if checkpoint else None,
        "classifier": {"net": OmegaConf.to_container(cfg.module.net, resolve=True),
                       "input_size": int(cfg.datamodule.image_size),
                       "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "classes": list(ENGLISH_NAMES),
        "trained_on": trained_on(cfg, face_detector),
    }


def trained_on(cfg: DictConfig, face_detector: Path | None = None) -> dict:
    """What the classifier learned from and, when the detector stage trained its face detector (`face_detector`),
    what that learned from: each a dataset ("synthetic", "aihub", "widerface"; "other" for a source of your own) and
    its source class. A face detector the cropper names itself was trained elsewhere, on data this run cannot know
    (None, as for a cropper without one)."""
    detector = OmegaConf.select(cfg, "detector_data.source._target_") if face_detector else None
    return {**_dataset(OmegaConf.select(cfg, "datamodule.source._target_")),
            "face_detector": _dataset(detector) if detector else None}


def _dataset(source: str | None) -> dict:
    name = "synthetic" if str(source).startswith(f"{SYNTHETIC_DATA}.") else DATASETS.get(source, "other")
    return {"dataset": name, "source": source}


def _keep_in_run(checkpoint: Path, directory: Path) -> str:
    """`checkpoint` hard-linked into `<directory>/detector/` (copied across filesystems), atomically; its path there,
    relative to the run folder."""
    kept = directory / DETECTOR_FOLDER / checkpoint.name
    if kept.exists() and kept.samefile(checkpoint):
        return kept.relative_to(directory).as_posix()
    kept.parent.mkdir(parents=True, exist_ok=True)
    part = kept.with_name(f".{kept.name}.part")
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    try:
        os.link(checkpoint, part)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(checkpoint, part)
    os.replace(part, kept)
    return kept.relative_to(directory).as_posix()


def _first_process() -> bool:
    """Global rank 0: Lightning's rank (from RANK, LOCAL_RANK or SLURM_PROCID) on the first node."""
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0

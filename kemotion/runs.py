"""A run folder's record of itself, so a sweep launched again skips what finished and resumes what did not.

`run.json` is written when a run starts: the hash of what it trains (`settings_key`) and its Table 5 cell.
`result.json` is written last, atomically: the metrics, the best checkpoint, the test confusion matrix; a real
`last.ckpt` is then deleted (the best checkpoint is what a finished run keeps). A run whose folder already holds
both, for the same settings, is not run again; one with `run.json` and a `last.ckpt` but no result (killed,
crashed) resumes from that checkpoint. Timestamped folders never meet either case; a sweep with a
fixed folder (`+experiment=table5`) does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from kemotion.io import atomic_write

log = logging.getLogger(__name__)

# Settings that change how a run goes, never what it trains: left out of its key (and the face detector's).
NOT_IN_KEY = frozenset({"num_workers", "crop_workers", "cache_workers", "pin_memory", "enable_progress_bar",
                        "log_every_n_steps", "enable_model_summary", "default_root_dir", "dirpath"})
STARTED, FINISHED = "run.json", "result.json"


def settings_key(cfg: DictConfig, ignore: frozenset[str] = NOT_IN_KEY) -> str:
    """Hash of what a run trains: data, model, trainer, callbacks and seed, less the keys named in `ignore` (and the
    run's own folder)."""
    probe = copy.deepcopy(cfg)
    OmegaConf.set_struct(probe, False)
    probe.paths.output_dir = "<run>"
    settings = {key: OmegaConf.to_container(probe[key], resolve=True) if key in probe else None
                for key in ("datamodule", "module", "trainer", "callbacks")} | {"seed": probe.get("seed")}
    blob = json.dumps(_without(settings, ignore), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunFolder:
    """What a run folder already holds for the run `cfg` describes."""

    directory: Path
    key: str

    @classmethod
    def of(cls, cfg: DictConfig) -> RunFolder:
        return cls(Path(cfg.paths.output_dir), settings_key(cfg))

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
        """Record the run's key and cell, and what prediction needs (`kemotion.inference.record`)."""
        with atomic_write(self.directory / STARTED, "w", encoding="utf-8") as handle:
            json.dump({"key": self.key, "cell": cell, **({"pipeline": pipeline} if pipeline else {})}, handle,
                      indent=1, ensure_ascii=False)

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


def _without(tree: object, keys: frozenset[str]) -> object:
    if isinstance(tree, dict):
        return {k: _without(v, keys) for k, v in tree.items() if k not in keys}
    if isinstance(tree, list):
        return [_without(v, keys) for v in tree]
    return tree

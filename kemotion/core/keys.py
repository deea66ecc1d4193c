"""The keys kemotion names its caches and run folders by: short hashes of what decides an output, and nothing else.

Four things are keyed: a manifest (the dataset's relative file index and the selection, `kemotion.data.manifest`), a
crop cache (the cropper's parameters, `cropper_key`), a face detector (the settings of its training run,
`kemotion.engine.detector_stage`) and a run folder (the settings of the run, `kemotion.engine.runs`). A setting that
changes how a step runs but never what it makes — a worker or thread count, a progress bar, where logs go — is in none
of them (`RUNTIME_SETTINGS`), so changing it reuses every cache and lets a sweep resume its own folders.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Config keys (at any depth) that change how a step runs, never what it makes: left out of every key.
RUNTIME_SETTINGS = frozenset({
    "workers", "num_workers", "crop_workers", "cache_workers",  # processes and threads
    "pin_memory", "enable_progress_bar", "log_every_n_steps", "enable_model_summary", "model_summary",  # console
    "default_root_dir", "dirpath",  # where a run's files go (the run folder is its own key's subject)
    "decoded_cache",  # the same pixels, read from a memmap instead of decoded from each JPEG
})
# Dataclass-field metadata of a cropper parameter that never changes a crop (where the detector file is, as opposed
# to what it holds, which goes into the key as its hash).
CROP_NEUTRAL = {"cache_key": False}
# ... and of a cropper's runtime setting: how it runs (images per batch, device, trusting a pickled detector), never
# what it crops. Left out of the key, given by the caller, never read from a recorded file (`build_cropper`).
RUNTIME_SETTING = {**CROP_NEUTRAL, "runtime": True}
RUN_SECTIONS = ("datamodule", "module", "trainer", "callbacks")  # what a run trains with (and its seed)


FILE_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (a model file's identity wherever it lies)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(FILE_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def short_hash(value: Any) -> str:
    """12 hex digits of the SHA-256 of `value` as sorted JSON."""
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:12]  # a non-UTF-8 file name too


def without(tree: Any, keys: frozenset[str] = RUNTIME_SETTINGS) -> Any:
    """`tree` (plain dicts and lists) with every mapping key in `keys` left out, at any depth."""
    if isinstance(tree, dict):
        return {k: without(v, keys) for k, v in tree.items() if k not in keys}
    if isinstance(tree, list):
        return [without(v, keys) for v in tree]
    return tree


def settings_key(cfg: DictConfig, ignore: frozenset[str] = frozenset()) -> str:
    """Hash of what a run trains: data, model, trainer, callbacks and seed, less the runtime settings, the keys named
    in `ignore` and the run's own folder."""
    probe = copy.deepcopy(cfg)
    OmegaConf.set_struct(probe, False)
    probe.paths.output_dir = "<run>"
    settings = {key: OmegaConf.to_container(probe[key], resolve=True) if key in probe else None
                for key in RUN_SECTIONS} | {"seed": probe.get("seed")}
    return short_hash(without(settings, RUNTIME_SETTINGS | ignore))


def cropper_key(cropper: Any, **context: Any) -> str:
    """`<name>-<hash>` of everything that decides a cropper's output: its parameters but the CROP_NEUTRAL ones and
    the runtime settings, and `context` (a cache version, the detector's hash)."""
    params = ({f.name: getattr(cropper, f.name) for f in fields(cropper) if f.metadata.get("cache_key", True)}
              if is_dataclass(cropper) else dict(vars(cropper)))
    return f"{cropper.name}-{short_hash(without({'name': cropper.name, **params, **context}))}"

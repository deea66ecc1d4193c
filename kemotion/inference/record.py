"""How prediction reads what a run recorded so that it prepares a photo exactly as training did.

`run.json` (written when a run starts, `kemotion.engine.runs.pipeline_record`) holds a `pipeline` entry: the run's
resolved cropper config (with the face-detector checkpoint it cropped with, and the file's SHA-256), the classifier
network's config, its input size and normalisation, and what the run was trained on (`trained_on`). `read_run` finds
that record and the checkpoint to load from a run folder or from a checkpoint inside one; whatever is missing is an
error naming the file.

A run folder holds all it predicts with, so it can be moved or shared: the face detector it was trained with is
linked (or copied) into `<run>/detector/`, and `run.json` names it relative to the run folder. A record from before
(an absolute path) is still read. A run shared as a W&B model artifact (`run=wandb:ENTITY/PROJECT/NAME:ALIAS`) is
downloaded into a run folder first (`kemotion.inference.artifacts`), then read the same way. The record is data: what
it may name and what it may not switch on is checked as it is read (`kemotion.inference.record_check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kemotion.engine.runs import FINISHED, RECORD_KEY, STARTED
from kemotion.inference.artifacts import download_run, is_reference
from kemotion.inference.record_check import check_network, pipeline_entries, recorded_cropper, recorded_training

RUN_DEPTH = 3  # a checkpoint lies this many folders below its run at most (checkpoints/<name>.ckpt)


@dataclass(frozen=True)
class RunRecord:
    directory: Path  # the run folder
    checkpoint: Path  # the classifier checkpoint to load
    cropper: dict  # the cropper's config (`_target_` and its fields)
    detector_sha256: str | None  # of the cropper's face-detector checkpoint, when it has one
    classifier: dict  # net (its config), input_size, mean, std
    trained_on: dict | None = None  # what the run was trained on (None: recorded before kemotion kept it)


def read_run(run: str | Path) -> RunRecord:
    """The record of a run folder (its best checkpoint, from result.json), of a checkpoint inside a run folder, or of
    a W&B model artifact (`wandb:ENTITY/PROJECT/NAME:ALIAS`, downloaded into a run folder)."""
    path = (download_run(run) if is_reference(run) else Path(run).expanduser()).resolve()
    if not path.exists():
        raise FileNotFoundError(f"run {path} not found: give a run folder (outputs/runs/...), a classifier "
                                "checkpoint inside one or a W&B model artifact (wandb:ENTITY/PROJECT/NAME:ALIAS)")
    directory = path if path.is_dir() else _run_folder_of(path)
    checkpoint = path if path.is_file() else _best_checkpoint(directory)
    started = _read_json(directory / STARTED)
    record = started.get(RECORD_KEY)
    if not record:
        raise ValueError(f"{directory / STARTED} records no pipeline (cropper, classifier input): the run was "
                         "trained before kemotion recorded them, or it is not a classifier run; train it again")
    cropper, classifier = pipeline_entries(record, directory / STARTED)
    check_network(classifier.get("net"), directory / STARTED)
    cropper = recorded_cropper(cropper, directory / STARTED)
    if cropper.get("checkpoint"):  # relative to the run folder (an older record's absolute path stays as it is)
        cropper["checkpoint"] = str(directory / cropper["checkpoint"])
    return RunRecord(directory, checkpoint, cropper, record.get("detector_sha256"), classifier,
                     recorded_training(record, directory / STARTED))


def _run_folder_of(checkpoint: Path) -> Path:
    for folder in list(checkpoint.parents)[:RUN_DEPTH]:
        if (folder / STARTED).is_file():
            return folder
    raise FileNotFoundError(f"{checkpoint} is not inside a run folder: no {STARTED} in the {RUN_DEPTH} folders "
                            "above it, so its preprocessing is unknown")


def _best_checkpoint(directory: Path) -> Path:
    if not (directory / FINISHED).is_file():
        raise FileNotFoundError(f"{directory / FINISHED} not found: the run has not finished; give one of its "
                                f"checkpoints instead (run={directory}/checkpoints/<name>.ckpt)")
    best = _read_json(directory / FINISHED).get("best_checkpoint")
    if not best:
        raise ValueError(f"{directory / FINISHED} names no best checkpoint")
    for candidate in (Path(best), directory / "checkpoints" / Path(best).name):  # the folder may have moved
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the best checkpoint {best} that {directory / FINISHED} names is not there")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a kemotion run folder")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(found, dict):
        raise ValueError(f"{path} holds no JSON object: not a kemotion run record")
    return found

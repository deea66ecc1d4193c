"""A finished run as W&B artifacts, so it can be shared: its model (what predict needs) and the crop table it read.

The model artifact (type "model", aliases "latest" and "best") is named `<run name>-<run id>`: a run name is shared
by runs that differ in what it does not name (the split kind, a retraining in a timestamped folder), and the run id
(the run folder's, which W&B gets) keeps each its own artifact, whose "best" is its own. It holds a run folder in
small: `run.json`, `result.json`, the best checkpoint under `checkpoints/` and the run's own face detector under
`detector/` when its record names one (`kemotion.engine.runs.pipeline_record`). Downloaded, it is a run folder that
`python -m kemotion.predict run=wandb:ENTITY/PROJECT/NAME:ALIAS` reads like any other (`kemotion.inference.artifacts`).
It is one artifact, not Lightning's `log_model`: that logs the checkpoint alone, when fitting ends, before the test
has written `result.json`, and prediction needs the checkpoint, the record and the face detector together.

The dataset artifact (type "dataset", named after the crop cache folder, `crops-<manifest key>-<cropper key>`) holds
the crop cache's table of a classifier run (`classification.csv`: the manifest rows with their crop paths) and beside
it what the cropper saw and dropped. Runs that read the same crops log the same files, which W&B keeps as one version.

The checkpoint and the face detector are added as "immutable": W&B reads them where they lie instead of copying them
to its staging folder first (a VGG19 checkpoint is 1.7 GB), so an offline run's folder must stay until `wandb sync`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kemotion.datamodules.classification import ClassificationDataModule
from kemotion.engine.runs import FINISHED, RECORD_KEY, STARTED
from kemotion.preprocess.cache import CropCache

MODEL_TYPE, DATASET_TYPE = "model", "dataset"
MODEL_ALIASES = ["latest", "best"]  # Lightning's for a best checkpoint; the artifact holds the run's best only
CHECKPOINTS = "checkpoints"  # where `kemotion.inference.record` looks for the best checkpoint of a moved run folder
CROP_SUBSET = "classification"  # the manifest subset a classifier trains on


def log_run(run, directory: Path, datamodule: object) -> None:
    """Log the finished run in `directory` to W&B run `run`: its model artifact, when it kept a best checkpoint, and
    its crop table, when `datamodule` read one."""
    import wandb

    result = json.loads((directory / FINISHED).read_text(encoding="utf-8"))
    best = result.get("best_checkpoint")
    if best and Path(best).is_file():
        model = wandb.Artifact(artifact_name(f"{run.name or 'run'}-{run.id}"), type=MODEL_TYPE,
                               metadata={"cell": result.get("cell"), "metrics": result.get("metrics")})
        for name, path in model_files(directory, Path(best)).items():
            model.add_file(str(path), name=name, policy="immutable")
        run.log_artifact(model, aliases=MODEL_ALIASES)
    table = crop_table(datamodule)
    if table is not None:
        splits = datamodule.table["split"].value_counts()
        crops = wandb.Artifact(artifact_name(f"crops-{table.parent.parent.name}-{table.parent.name}"),
                               type=DATASET_TYPE, metadata={"cropper": datamodule.cropper.name,
                                                            "images": {k: int(v) for k, v in splits.items()}})
        for name in (table.name, f"{table.stem}_report.csv", f"{table.stem}_dropped.csv"):  # as `CropCache` writes
            crops.add_file(str(table.parent / name), name=name)
        run.log_artifact(crops)


def model_files(directory: Path, best: Path) -> dict[str, Path]:
    """Name in the artifact → file: the run's record, its best checkpoint, and the face detector its record names
    relative to the run folder (a record from before, naming an absolute path, has none to give)."""
    files = {STARTED: directory / STARTED, FINISHED: directory / FINISHED, f"{CHECKPOINTS}/{best.name}": best}
    record = json.loads((directory / STARTED).read_text(encoding="utf-8")).get(RECORD_KEY) or {}
    detector = (record.get("cropper") or {}).get("checkpoint")
    if detector and not Path(detector).is_absolute():
        files[Path(detector).as_posix()] = directory / detector
    return files


def crop_table(datamodule: object) -> Path | None:
    """The crop cache's table (`classification.csv`) a classifier's data module read, with the reports beside it;
    None for other data modules (the face detector's letterboxes are no crops)."""
    if not isinstance(datamodule, ClassificationDataModule) or datamodule.manifest is None:
        return None
    return CropCache(datamodule.cropper, datamodule.cache_dir).table_path(datamodule.manifest, CROP_SUBSET)


def artifact_name(text: str) -> str:
    """`text` as a W&B artifact name a reference can name: ASCII letters, digits, `-`, `_` and `.` (anything else,
    `/` and `:` included, becomes `-`)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)

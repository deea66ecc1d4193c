"""A run shared as a W&B model artifact (`kemotion.engine.artifacts` logs one per finished run), fetched as a folder.

`run=wandb:ENTITY/PROJECT/NAME:ALIAS` names one (W&B's own reference, behind a prefix so that it is never taken for a
relative folder; `ENTITY/` may be left out when WANDB_ENTITY says it). W&B's API downloads it once per version into
kemotion's cache, `<cache>/artifacts/<entity>/<project>/<name>/<version>/` (the cache: KEMOTION_CACHE, else
`<KEMOTION_ROOT or .>/.cache`, as conf/paths/default.yaml says), and what arrives is read as a run folder like any
other: data, checked as it is read (`kemotion.inference.record`). Fetching needs the network and a W&B login;
without them, or for a reference W&B does not know, the error names the reference and W&B's reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PREFIX = "wandb:"
MODEL_TYPE = "model"  # the type `kemotion.engine.artifacts` logs a run's model as
SAFE_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a folder name from W&B's answer: no `..`, no separators


def is_reference(run: object) -> bool:
    """Whether `run` names a W&B artifact (`wandb:...`) rather than a run folder or a checkpoint."""
    return isinstance(run, str) and run.startswith(PREFIX)


def download_run(reference: str) -> Path:
    """The run folder of W&B model artifact `reference` (`wandb:ENTITY/PROJECT/NAME:ALIAS`), downloaded into
    kemotion's cache unless it is there already."""
    import wandb

    name = reference.removeprefix(PREFIX)
    if not name:
        raise ValueError(f"run={reference}: name the artifact, run=wandb:ENTITY/PROJECT/NAME:ALIAS")
    try:
        artifact = wandb.Api().artifact(name, type=MODEL_TYPE)
        folder = _folder(artifact, reference, _kemotion_cache())
        return Path(artifact.download(root=str(folder)))
    except (wandb.errors.Error, OSError) as error:
        raise ConnectionError(f"run={reference}: cannot fetch the W&B model artifact {name}: {error} (fetching needs "
                              "the network and a W&B login, `wandb login` or WANDB_API_KEY; without them, copy the "
                              "run folder and give run=FOLDER)") from None
    except ValueError as error:  # W&B's word on the reference itself: its form, its type
        raise ValueError(f"run={reference}: {error} (a model artifact: run=wandb:ENTITY/PROJECT/NAME:ALIAS)") from None


def _folder(artifact, reference: str, cache: Path) -> Path:
    """Where a version of an artifact goes in `cache`: one folder per version, as W&B's download leaves files that are
    there already as they are."""
    parts = [artifact.entity, artifact.project, artifact.name.split(":")[0], artifact.version]
    if not all(isinstance(part, str) and SAFE_PART.fullmatch(part) for part in parts):
        raise ValueError(f"W&B names {reference} as {parts}, which cannot be a folder name")
    return cache.joinpath("artifacts", *parts)


def _kemotion_cache() -> Path:
    root = Path(os.environ.get("KEMOTION_ROOT", "."))
    return Path(os.environ.get("KEMOTION_CACHE", root / ".cache")).resolve()

"""Where kemotion's configs are, and what they offer: read by every entry point, the tests and the notebooks.

The configs ship inside the package (`kemotion/conf/`, also reachable as the top-level `conf/` link in a clone), so an
installed kemotion (a wheel, `pip install git+...`) composes the same configs as a clone. Hydra finds them as the
package `pkg://kemotion.conf`; code that reads a file directly uses `CONFIG_DIR`. `validate` checks a composed config's
numbers before anything runs (the entry points call it through `kemotion.engine.training.train` and `preprocess`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_PACKAGE = "kemotion.conf"
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"  # for @hydra.main
CONFIG_NAME = "train"
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


# Counts and sizes a run needs: key → (smallest value that can work, what the value is). A key a config does not
# have is not checked. 0 epochs would record untrained weights as a finished run, -1 is Lightning's "no end"; a size
# of 0 fails deep inside OpenCV or albumentations; a negative count selects nothing and calls that "no problems".
AT_LEAST = {
    "threads": (1, "torch's CPU threads per process"),
    "trainer.max_epochs": (1, "epochs to train"),
    "data.image_size": (1, "the classifier's input side in pixels"),
    "data.batch_size": (1, "images per batch"),
    "data.selection.n_per_class": (1, "images per class"),
    "data.selection.n_detector": (0, "images of the face detector's subset"),
    "data.detector.epochs": (1, "the face detector's epochs"),
    "data.detector.image_size": (1, "the face detector's input side in pixels"),
    "data.detector.batch_size": (1, "the face detector's images per batch"),
    "datamodule.image_size": (1, "the input side in pixels"),
    "datamodule.batch_size": (1, "images per batch"),
    "preprocess.size": (1, "the crop side in pixels"),
    "preprocess.detect_side": (1, "the long side faces are detected at"),
    "preprocess.batch_size": (1, "images per detector batch"),
}


def validate(cfg: DictConfig) -> None:
    """ValueError naming the key and the value of the first count or size in `AT_LEAST` that cannot work (and, for
    a value set through another key, that key: `trainer.max_epochs=0 (from ${data.epochs})`)."""
    for key, (smallest, meaning) in AT_LEAST.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise ValueError(f"{key}={value!r}{_origin(cfg, key)}: {meaning} must be a whole number >= {smallest}")


def _origin(cfg: DictConfig, key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return f" (from {OmegaConf.to_container(node)[leaf]})" if OmegaConf.is_interpolation(node, leaf) else ""


def options(group: str) -> list[str]:
    """The options of a config group (`conf/<group>/*.yaml`), sorted; files named `_*` are bases, not options."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def config_file(*parts: str) -> Path:
    """A file of the configs, e.g. `config_file("experiment", "face_detector.yaml")`."""
    path = CONFIG_DIR.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not one of kemotion's configs")
    return path


def table5_grid(axis: str) -> tuple[str, ...]:
    """Table 5's rows (`axis="preprocess"`) or columns (`"model"`), in its order: what `+experiment=table5` sweeps."""
    params = OmegaConf.load(config_file("experiment", "table5.yaml")).hydra.sweeper.params
    return tuple(value.strip() for value in str(params[axis]).split(","))


def split_kind(subject_disjoint: bool) -> str:
    """A run's split, as its cell names it: "random" (the paper's: a person's images may sit in train and test) or
    "subject" (`data.selection.subject_disjoint=true`: each person in one split)."""
    return "subject" if subject_disjoint else "random"


OmegaConf.register_new_resolver("split_kind", split_kind, replace=True)


def defined_in(target: object, package: str) -> object | None:
    """What the dotted `_target_` string names when that is defined in a module of `package` (importing only modules of
    `package`), else None: how a target read from a file is resolved, so that it can only name kemotion's own code."""
    import importlib

    module, _, name = target.rpartition(".") if isinstance(target, str) else ("", "", "")
    if not module.startswith(f"{package}.") or not all(part.isidentifier() for part in target.split(".")):
        return None
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return found if getattr(found, "__module__", None) == module else None

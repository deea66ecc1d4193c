"""What a run's record (`run.json`) may name and switch on: it is data, so it chooses among kemotion's own code only.

- the cropper `_target_`: one of kemotion's croppers (`kemotion.preprocess.cropper.cropper_class`); its fields are
  then passed to that class, never instantiated recursively (a nested `_target_` would be code too);
- every `_target_` of the classifier's network config, nested ones included, in dicts and lists (instantiate builds
  them all): an nn.Module class of `kemotion.models`, or a builder there annotated to return one; no interpolation
  (`${oc.create:...}` would make a config only instantiate sees);
- the shape of the record itself: a `cropper` and a `classifier` object, the classifier's input size a whole number
  and its normalisation three numbers each (`pipeline_entries`), so a damaged file is an error naming it, not a
  KeyError deep in prediction;
- an export's class names (`pipeline.json`'s `classes` and `classes_korean`): kemotion's seven, in its order, which
  are what the ONNX backend labels the classifier's outputs with (`export_classes`);
- `trust_checkpoint`: never. A recorded value is dropped, with a warning; trust comes only from the command line
  (`trust_checkpoint=true`) or the API call (`trust_checkpoint=True`).

What the record tells, rather than switches on: what the run was trained on (`recorded_training`), from which
prediction says, once, when that was kemotion's synthetic faces (`synthetic_notice`). It is read here, not in
`kemotion.inference.record`, because an export's reader (onnxruntime, no torch) reads it too.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

from kemotion.core.config import defined_in
from kemotion.core.emotions import ENGLISH_NAMES, KOREAN_NAMES
from kemotion.preprocess.cropper import cropper_class

log = logging.getLogger(__name__)

TRUST_KEY = "trust_checkpoint"  # a cropper field a record may hold but never switches on
NETWORK_PACKAGE = "kemotion.models"
CLASS_NAMES = {"classes": list(ENGLISH_NAMES), "classes_korean": list(KOREAN_NAMES)}  # an export's, by logit index


def pipeline_entries(record: object, source: Path) -> tuple[dict, dict]:
    """The (cropper config, classifier entry) of the pipeline record that `source` holds (a run's run.json, an
    export's pipeline.json), or a ValueError naming `source` and what is wrong."""
    if not isinstance(record, dict) or not all(isinstance(record.get(key), dict) for key in ("cropper", "classifier")):
        raise ValueError(f"{source}: the pipeline record must hold a 'cropper' and a 'classifier' object; it is "
                         "damaged or not kemotion's")
    classifier = record["classifier"]
    size = classifier.get("input_size")
    if not _is_number(size) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{source}: classifier.input_size must be a whole number >= 1, not {size!r}")
    for key in ("mean", "std"):
        values = classifier.get(key)
        if not isinstance(values, list) or len(values) != 3 or not all(map(_is_number, values)):
            raise ValueError(f"{source}: classifier.{key} must be three numbers (one per RGB channel), not {values!r}")
    if not all(value > 0 for value in classifier["std"]):
        raise ValueError(f"{source}: classifier.std must be positive, not {classifier['std']!r}")
    return record["cropper"], classifier


def export_classes(record: dict, source: Path) -> None:
    """A ValueError naming `source` (an export's pipeline.json) when it names classes other than kemotion's
    (`CLASS_NAMES`): its labels are kemotion's, and a file that says otherwise is damaged or another model's. An
    export from before pipeline.json named them (no such key) has kemotion's classes."""
    for key, names in CLASS_NAMES.items():
        if key not in record:
            continue
        found = record[key]
        if not isinstance(found, list) or not all(isinstance(name, str) for name in found):
            raise ValueError(f"{source}: {key} must be the list of class names by output index, not {found!r}; "
                             "export the run again")
        if found != names:
            raise ValueError(f"{source}: {key} {found} are not kemotion's classes {names}, in whose order its "
                             "classifier's outputs are labelled")


def recorded_training(record: dict, source: Path) -> dict | None:
    """The `trained_on` entry of the pipeline record `source` holds (`kemotion.engine.runs.trained_on`): None for a
    record written before kemotion kept it; a ValueError naming `source` for one of another shape."""
    found = record.get("trained_on")
    if found is None:
        return None
    detector = found.get("face_detector") if isinstance(found, dict) else None
    if not all(_is_dataset(entry) for entry in (found, *([detector] if detector is not None else []))):
        raise ValueError(f"{source}: trained_on must say each part's dataset and source class ({{'dataset': "
                         f"'synthetic', 'source': ..., 'face_detector': {{...}} or null}}), not {found!r}")
    return found


def _is_dataset(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("dataset"), str)
            and isinstance(entry.get("source"), (str, type(None))))


SYNTHETIC_EFFECTS = {"face_detector": "it will find few faces", "classifier": "its emotions are not meaningful"}


def synthetic_notice(trained_on: dict | None) -> str | None:
    """What to tell whoever points a run at photos when it was trained on kemotion's synthetic faces (the demo's):
    on real photos its face detector finds few faces and its emotions mean nothing. None for a run trained on real
    data, or recorded before kemotion kept what it was trained on."""
    if not trained_on:
        return None
    datasets = {"face_detector": (trained_on.get("face_detector") or {}).get("dataset"),
                "classifier": trained_on.get("dataset")}
    synthetic = [part for part, dataset in datasets.items() if dataset == "synthetic"]
    if not synthetic:
        return None
    known = [part for part, dataset in datasets.items() if dataset is not None]
    who = "this run was" if synthetic == known else f"this run's {synthetic[0].replace('_', ' ')} was"
    return (f"{who} trained on kemotion's synthetic faces only: on real photos "
            f"{' and '.join(SYNTHETIC_EFFECTS[part] for part in synthetic)}. Train on AI-Hub data for real use "
            "(README, Data)")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def recorded_cropper(config: object, source: Path) -> dict:
    """The recorded cropper config of `source`, naming one of kemotion's croppers, without `trust_checkpoint`."""
    cropper_class(config.get("_target_") if isinstance(config, dict) else None, source)
    config = dict(config)
    if config.pop(TRUST_KEY, False):
        log.warning("%s records trust_checkpoint=true for the face detector: ignored. Trust comes only from the "
                    "command line (trust_checkpoint=true) or the API call (trust_checkpoint=True)", source)
    return config


def check_network(config: object, source: Path) -> None:
    """A ValueError naming `source` unless every `_target_` of network config `config` names a network of
    kemotion.models (module docstring)."""
    if not isinstance(config, dict):
        raise ValueError(f"{source}: the classifier's 'net' must be a network config, not {config!r}")
    for value in _nested_configs(config.values(), source):
        check_network(value, source)
    target = config.get("_target_")
    if target is None:
        return
    if not _builds_a_network(defined_in(target, NETWORK_PACKAGE)):
        raise ValueError(f"{source}: the classifier _target_ {target!r} is not a network of {NETWORK_PACKAGE} (an "
                         "nn.Module class or a function returning one); a recorded file may not name other code")


def _nested_configs(values, source: Path) -> list[dict]:
    """The dicts among `values`, and inside their lists at any depth (instantiate builds a `_target_` in either). An
    interpolation is refused: instantiate resolves it, and `${oc.create:...}` makes a config no look here would see
    (a recorded config is resolved, so it holds none)."""
    found = []
    for value in values:
        if isinstance(value, dict):
            found.append(value)
        elif isinstance(value, list):
            found += _nested_configs(value, source)
        elif isinstance(value, str) and "${" in value:
            raise ValueError(f"{source}: the classifier's net holds an interpolation, {value!r}; a recorded config "
                             "is resolved, and OmegaConf would resolve this one into code to run")
    return found


def _builds_a_network(found: object) -> bool:
    from torch import nn

    if isinstance(found, type):
        return issubclass(found, nn.Module)
    return inspect.isfunction(found) and inspect.signature(found).return_annotation in ("nn.Module", nn.Module)

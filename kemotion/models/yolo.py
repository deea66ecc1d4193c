"""Face detectors as ultralytics `DetectionModel`s, built from a model YAML by name — never downloaded.

`build_detector(architecture, scale, num_classes, checkpoint)` takes
- a kemotion architecture: a file in `kemotion/models/architectures/` ("yolo-facev2"),
- an ultralytics model YAML name ("yolov8n.yaml", "yolo11s.yaml"), found in the installed package's `cfg/models`;
  a scale letter in the name selects the scale, as ultralytics does,
- or a path to a model YAML.
`checkpoint` is matched by name and shape (`kemotion.models.checkpoint.load_weights`): a state_dict, a Lightning
checkpoint, or, with `trust_checkpoint=True`, an ultralytics `.pt` (its pickled model under "model", or "ema"
mid-training; unpickling it runs code, so it is never done unasked); the original YOLO-FaceV2 release is recognised
and loaded through its adapter, by layer index and shape (`kemotion.models.yolo_facev2_weights`, tensors only, no
code run).
Every model dict, from a YAML file or a checkpoint, passes `kemotion.models.yolo_architecture.check_architecture`
before ultralytics' parser (which evaluates some of its strings) sees it.

Being a module of the kemotion package, this is only imported after `kemotion/__init__.py` has set YOLO_OFFLINE
and friends, which ultralytics reads once, at its first import.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from kemotion.models import yolo_facev2
from kemotion.models.checkpoint import load_checkpoint, load_weights
from kemotion.models.yolo_architecture import check_architecture
from kemotion.models.yolo_facev2_weights import ORIGINAL_RELEASE, is_original_checkpoint

log = logging.getLogger(__name__)

ARCHITECTURES_DIR = Path(__file__).parent / "architectures"
INPUT_CHANNELS = 3  # RGB
ARCHITECTURE_KEY = "detector_architecture"  # where a FaceDetector checkpoint keeps its resolved model dict


def build_detector(
    architecture: str = "yolo-facev2", scale: str = "s", num_classes: int = 1, checkpoint: str | None = None,
    trust_checkpoint: bool = False,
) -> DetectionModel:
    """A detector for `num_classes` classes in train mode, with `model.args` (ultralytics' default hyperparameters,
    whose box/cls/dfl gains v8DetectionLoss reads) and, if `checkpoint` is given, its matching weights."""
    cfg = yolo_facev2.resolve_rows(architecture_config(architecture, scale))
    model = DetectionModel(cfg, ch=INPUT_CHANNELS, nc=num_classes, verbose=False)
    model.args = get_cfg()
    if checkpoint is not None:
        adapter = ORIGINAL_RELEASE if is_original_checkpoint(checkpoint) else None  # the release: by layer index
        load_weights(model, checkpoint, adapter=adapter, trust_checkpoint=trust_checkpoint)
    return model


def load_detector(path: str | Path, trust_checkpoint: bool = False) -> DetectionModel:
    """A trained detector in eval mode, for inference: from a kemotion FaceDetector checkpoint (the architecture it
    stores under ARCHITECTURE_KEY and its weights, the EMA ones) or, with `trust_checkpoint=True`, from an
    ultralytics `.pt` (its pickled model: unpickling runs code, so only for files you trust)."""
    checkpoint = load_checkpoint(Path(path), trust_checkpoint)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a detector checkpoint (a {type(checkpoint).__name__}, not a dict)")
    pickled = checkpoint.get("ema") or checkpoint.get("model")
    if ARCHITECTURE_KEY in checkpoint:
        architecture = check_architecture(checkpoint[ARCHITECTURE_KEY], f"{path} ({ARCHITECTURE_KEY})")
        model = DetectionModel(copy.deepcopy(architecture), ch=INPUT_CHANNELS, verbose=False)
        load_weights(model, path)
    elif isinstance(pickled, nn.Module):
        model = pickled.float()
    else:
        raise ValueError(f"{path}: neither a kemotion face-detector checkpoint (no {ARCHITECTURE_KEY!r}) nor an "
                         "ultralytics .pt (no pickled model under 'ema' or 'model')")
    model.args = get_cfg()
    return model.eval()


def save_detector(net: DetectionModel, path: str | Path) -> Path:
    """`net` as a FaceDetector checkpoint holds it (its weights under `net.` and its architecture, no pickled
    objects), so `load_detector` and the yolo cropper read it: for detectors made outside a training run."""
    path = Path(path)
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, ARCHITECTURE_KEY: net.yaml}, path)
    return path


def architecture_config(architecture: str, scale: str = "s") -> dict:
    """The model dict of `architecture` (see module docstring) with `scale` set; a scale in the name wins."""
    own = ARCHITECTURES_DIR / f"{architecture}.yaml"
    source = own if own.is_file() else Path(architecture)
    if not source.is_file() and source.suffix not in (".yaml", ".yml"):
        known = sorted(p.stem for p in ARCHITECTURES_DIR.glob("*.yaml"))
        raise ValueError(
            f"unknown detector architecture {architecture!r}: not one of kemotion's {known}, not a YAML file, "
            "not an ultralytics model YAML name such as 'yolov8n.yaml'"
        )
    try:
        cfg = yaml_model_load(source)  # ultralytics' loader: searches its cfg/models for bare names, guesses scale
    except FileNotFoundError as error:
        raise ValueError(f"no model YAML {architecture!r} in kemotion or the installed ultralytics: {error}") from None
    check_architecture(cfg, source)
    named = cfg.get("scale")
    if named and named != scale:
        log.info("%s names scale %r; using it rather than scale=%r", architecture, named, scale)
    cfg["scale"] = named or scale
    scales = cfg.get("scales")
    if scales and cfg["scale"] not in scales:
        raise ValueError(f"{architecture} has scales {list(scales)}, not {cfg['scale']!r}")
    return cfg

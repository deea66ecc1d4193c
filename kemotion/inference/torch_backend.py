"""The torch backend of `EmotionPipeline.from_run`: the run's cropper rebuilt from its record, and its classifier
network with the checkpoint's weights (loaded with `weights_only=True`), fed by the training's eval transform."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from kemotion.core.keys import file_sha256
from kemotion.data.transforms import eval_transform
from kemotion.engine.runs import STARTED
from kemotion.inference.record import RunRecord, read_run
from kemotion.models.checkpoint import load_weights
from kemotion.preprocess.cropper import Cropper, build_cropper

log = logging.getLogger(__name__)


class TorchClassifier:
    """n crops → (n, 7) probabilities: the run's eval transform, then the network on `device`."""

    def __init__(self, net: nn.Module, input_size: int, device: str = "cpu", half: bool = False) -> None:
        if half and not device.startswith(("cuda", "mps")):
            raise ValueError(f"half=true needs a GPU (device=cuda or mps), not device={device}")
        self.dtype = torch.float16 if half else torch.float32
        self.device = torch.device(device)
        self.net = net.to(self.device, self.dtype).eval()
        self.transform = eval_transform(input_size)

    def inputs(self, crops: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([self.transform(image=crop)["image"] for crop in crops])

    @torch.inference_mode()
    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs.to(self.device, self.dtype)).float().cpu()

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        return torch.softmax(self.logits(self.inputs(crops)), dim=1).numpy()


def load_run(run: str | Path, device: str = "cpu", conf: float | None = None, half: bool = False,
             batch_size: int = 8, trust_checkpoint: bool = False) -> tuple[Cropper, TorchClassifier, dict]:
    """The cropper and the classifier a run recorded (`kemotion.inference.record`), and what identifies them (the
    classifier checkpoint's SHA-256, its recorded config, float16 or not; the cropper's key holds the detector's)."""
    record = read_run(run)
    log.info("Run %s, classifier checkpoint %s", record.directory, record.checkpoint)
    origin = {"backend": "torch", "classifier_sha256": file_sha256(record.checkpoint),
              "classifier": record.classifier, "half": half, "trained_on": record.trained_on}
    return load_cropper(record, device, conf, batch_size, trust_checkpoint), TorchClassifier(
        load_network(record), record.classifier["input_size"], device, half), origin


def load_cropper(record: RunRecord, device: str = "cpu", conf: float | None = None, batch_size: int = 8,
                 trust_checkpoint: bool = False) -> Cropper:
    """The run's cropper, with the runtime settings given here; a face detector's file must be the one the run was
    trained with (its SHA-256), and is only unpickled beyond tensors with `trust_checkpoint=True` given here (never
    because the record says so)."""
    cropper = build_cropper(record.cropper, record.directory / STARTED, device=device, batch_size=batch_size,
                            trust_checkpoint=trust_checkpoint, conf=conf)  # its fields as they are: no nested targets
    found = getattr(cropper, "checkpoint_sha256", None)
    if record.detector_sha256 is not None and found != record.detector_sha256:
        raise ValueError(f"the face detector {record.cropper.get('checkpoint')} is not the one run {record.directory} "
                         f"was trained with (SHA-256 {found}, recorded {record.detector_sha256})")
    return cropper


def load_network(record: RunRecord) -> nn.Module:
    """The classifier network built from its recorded config, with every tensor from the checkpoint."""
    net = instantiate(_without_start_weights(record.classifier["net"]))  # the trained weights below
    loaded = load_weights(net, record.checkpoint)
    if loaded.missing or loaded.skipped_shape:
        raise ValueError(f"{record.checkpoint} does not hold the whole classifier of {record.directory}: {loaded}")
    return net.eval()


START_WEIGHTS = ("checkpoint", "pretrained")  # a network's start: the trained checkpoint replaces every tensor


def _without_start_weights(config: object) -> object:
    """`config` with each network's start weights off, nested networks' too: not read again, so a run predicts on a
    machine without them (offline, without the ImageNet file or the training machine's paths)."""
    if isinstance(config, list):
        return [_without_start_weights(value) for value in config]
    if not isinstance(config, dict):
        return config
    return {key: None if key in START_WEIGHTS and "_target_" in config else _without_start_weights(value)
            for key, value in config.items()}

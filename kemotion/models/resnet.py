"""ResNet18: one of the paper's two baseline classifiers, torchvision's model as is.

Keeping torchvision's module names means its ImageNet weights load (all but the 1000-class `fc`) when a
checkpoint is given. Its adaptive average pool takes any input ≥ 32 px: the last stage's map is 2×2 at 64 px
and 7×7 at the paper's 224 px.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18 as torchvision_resnet18

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.checkpoint import load_weights
from kemotion.models.imagenet import weights_file


def resnet18(num_classes: int = NUM_CLASSES, checkpoint: str | None = None, pretrained: str | None = None) -> nn.Module:
    """ResNet18, randomly initialised, or from torchvision's ImageNet weights (`pretrained="imagenet"`, from the torch
    hub cache: kemotion.models.imagenet), then `checkpoint`; (B, 3, H, W), H, W ≥ 32 → (B, num_classes) logits."""
    model = torchvision_resnet18(weights=None, num_classes=num_classes)
    if pretrained is not None:
        load_weights(model, weights_file("resnet18", pretrained))
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model

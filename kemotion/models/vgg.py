"""VGG19 (no batch norm, as torchvision's `vgg19`): one of the paper's two baseline classifiers.

torchvision's model as is, so its ImageNet weights load by name (all but the 1000-class head) when a
checkpoint is given. Its `AdaptiveAvgPool2d((7, 7))` before the classifier lets any input ≥ 32 px through:
at 64 px the 2×2 map of the last block is upsampled to 7×7, at the paper's 224 px it is already 7×7.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import vgg19 as torchvision_vgg19

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.checkpoint import load_weights
from kemotion.models.imagenet import weights_file

CLASSIFIER_DROPOUT = 0.5  # torchvision's (and the original VGG's) dropout in the two 4096-wide layers


def vgg19(
    num_classes: int = NUM_CLASSES, checkpoint: str | None = None, dropout: float = CLASSIFIER_DROPOUT,
    pretrained: str | None = None,
) -> nn.Module:
    """VGG19, randomly initialised, or from torchvision's ImageNet weights (`pretrained="imagenet"`, from the torch hub
    cache: kemotion.models.imagenet), then `checkpoint`; (B, 3, H, W), H, W ≥ 32 → (B, num_classes) logits."""
    model = torchvision_vgg19(weights=None, num_classes=num_classes, dropout=dropout)
    if pretrained is not None:
        load_weights(model, weights_file("vgg19", pretrained))
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model

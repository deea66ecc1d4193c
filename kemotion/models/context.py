"""Face + scene: a two-branch emotion classifier (the paper's §5, second direction: the place in the background as
well as the expression).

The face branch reads the face crop, as every Table 5 classifier does; the scene branch reads the whole frame. Each
is a classifier network built with `features` outputs, so its last linear layer projects to a `features` embedding
(and a trained classifier's checkpoint loads into a branch, all but its 7-class head). The embeddings are fused late:
concatenated, then one linear head gives the emotion logits. An optional auxiliary head on the scene embedding
predicts the place category (AI-Hub's `bg`; `kemotion.lit.context` weighs its loss). Without a scene branch the same
head reads the face embedding alone: the ablation's face-only model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from kemotion.core.emotions import NUM_CLASSES


class ContextOutput(NamedTuple):
    emotions: torch.Tensor  # (B, num_classes) logits
    backgrounds: torch.Tensor | None  # (B, num_backgrounds) logits; None without a background head


class ContextNet(nn.Module):
    def __init__(self, face: nn.Module, scene: nn.Module | None, features: int, num_classes: int = NUM_CLASSES,
                 num_backgrounds: int = 0, dropout: float = 0.2) -> None:
        """`face`, `scene`: networks (B, 3, H, W) → (B, features); `scene=None`: face only. `num_backgrounds=0`: no
        background head (it needs the scene branch)."""
        super().__init__()
        if num_backgrounds and scene is None:
            raise ValueError("the background head reads the scene branch: give a scene network or num_backgrounds=0")
        self.face, self.scene = face, scene
        fused = features * (1 if scene is None else 2)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(fused, num_classes))
        self.background_head = (nn.Sequential(nn.ReLU(), nn.Linear(features, num_backgrounds))
                                if num_backgrounds else None)

    def forward(self, faces: torch.Tensor, scenes: torch.Tensor | None = None) -> ContextOutput:
        """(B, 3, H, W) face crops and (B, 3, H', W') whole frames → emotion and background logits. A face-only net
        ignores `scenes`."""
        face = self.face(faces)
        if self.scene is None:
            return ContextOutput(self.head(face), None)
        scene = self.scene(scenes)
        backgrounds = self.background_head(scene) if self.background_head is not None else None
        return ContextOutput(self.head(torch.cat([face, scene], dim=1)), backgrounds)

"""The face + scene classifier as a LightningModule: `EmotionClassifier`'s training, metrics and test report, with
two inputs and an optional auxiliary loss on the place category (`background_weight` × cross-entropy; images whose
place is unknown do not count in it). Batches are (faces, scenes, labels, backgrounds) from
`kemotion.datamodules.context`."""

from __future__ import annotations

import torch
from torch import nn

from kemotion.data.aihub import UNKNOWN_BACKGROUND
from kemotion.lit.classifier import EmotionClassifier, hard_labels
from kemotion.models.context import ContextNet


class ContextClassifier(EmotionClassifier):
    net: ContextNet

    def __init__(self, net: ContextNet, optimizer, scheduler=None, input_size: int = 224, label_smoothing: float = 0.0,
                 background_weight: float = 0.0) -> None:
        super().__init__(net, optimizer, scheduler, input_size, label_smoothing)  # its hparams include ours
        if background_weight and net.background_head is None:
            raise ValueError("background_weight > 0 needs a background head (net.num_backgrounds > 0)")
        self.background_criterion = nn.CrossEntropyLoss(ignore_index=UNKNOWN_BACKGROUND)
        self.example_input_array = (torch.zeros(1, 3, input_size, input_size),) * 2

    def forward(self, faces: torch.Tensor, scenes: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) face crops and whole frames → (B, 7) emotion logits."""
        return self.net(faces, scenes).emotions

    def model_step(self, batch: tuple[torch.Tensor, ...]):
        faces, scenes, labels, backgrounds = batch
        emotions, places = self.net(faces, scenes)
        loss = self.criterion(emotions, labels)
        known = backgrounds != UNKNOWN_BACKGROUND
        if self.hparams.background_weight and known.any():
            background_loss = self.background_criterion(places, backgrounds)
            if self.training:
                self.log("train/background_loss", background_loss, on_step=False, on_epoch=True)
            loss = loss + self.hparams.background_weight * background_loss
        return loss, emotions.argmax(dim=1), hard_labels(labels)  # soft labels (data.labels=soft): the top vote

"""The emotion classifier as a LightningModule: any `net`, Adam by default, cross-entropy, torchmetrics.

Targets are class indices or, with `data.labels=soft`, annotator vote distributions (cross-entropy against the
distribution; validation and test are always scored against the hard label). Logs `train/loss`, `train/acc`,
`val/loss`, `val/acc` (micro), `val/acc_macro`, `val/acc_best`, and at test `test/acc`, `test/acc_macro`,
`test/acc_<class>` and the confusion matrix (CSV + PNG in the run directory, and an image in W&B when W&B logs
the run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from kemotion.core.confusion import confusion_frame, save_confusion
from kemotion.core.emotions import EMOTIONS, NUM_CLASSES

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class EmotionClassifier(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        input_size: int = 224,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        # the optimizer and scheduler factories stay out of the checkpoint: it must load with weights_only=True
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.example_input_array = torch.zeros(1, 3, input_size, input_size)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.val_acc_macro = MulticlassAccuracy(num_classes=NUM_CLASSES, average="macro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc_macro = MulticlassAccuracy(num_classes=NUM_CLASSES, average="macro")
        self.test_acc_per_class = MulticlassAccuracy(num_classes=NUM_CLASSES, average=None)
        self.test_confusion = MulticlassConfusionMatrix(num_classes=NUM_CLASSES)
        self.val_acc_best = MaxMetric()
        self.test_results: dict[str, object] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images → (B, 7) logits."""
        return self.net(images)

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        """Loss, predictions and hard labels of a batch whose targets are class indices (B,) or, with soft labels
        (`data.labels=soft`), distributions (B, 7): cross-entropy against the distribution, accuracy against its
        most-voted class."""
        images, targets = batch
        logits = self(images)
        return self.criterion(logits, targets), logits.argmax(dim=1), hard_labels(targets)

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # the sanity-check validation must not count as a best

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, preds, labels = self.model_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, labels)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, preds, labels = self.model_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, labels)
        self.val_acc_macro(preds, labels)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)
        self.log("val/acc_macro", self.val_acc_macro, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        loss, preds, labels = self.model_step(batch)
        self.test_loss(loss)
        for metric in (self.test_acc, self.test_acc_macro, self.test_acc_per_class, self.test_confusion):
            metric.update(preds, labels)
        self.log("test/loss", self.test_loss, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        self.test_results = log_test_scores(self, self.test_acc.compute(), self.test_acc_macro.compute(),
                                            self.test_acc_per_class.compute(), self.test_confusion.compute())
        for metric in (self.test_acc_per_class, self.test_confusion):
            metric.reset()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/acc"}}


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Class indices (B,) as given, or the most-voted class of soft targets (B, 7): what accuracy is counted on."""
    return targets.argmax(dim=1) if targets.ndim == 2 else targets


def log_test_scores(module: L.LightningModule, accuracy: torch.Tensor, macro: torch.Tensor, per_class: torch.Tensor,
                    confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Log a classifier's test scores as every Table 5 cell does — `test/acc`, `test/acc_macro`, `test/acc_<class>` —
    print and save the (7, 7) confusion matrix (CSV + PNG in the run directory, an image in W&B); return what the run
    records (`confusion`, `per_class`)."""
    module.log("test/acc", accuracy)
    module.log("test/acc_macro", macro)
    for emotion, value in zip(EMOTIONS, per_class, strict=True):
        module.log(f"test/acc_{emotion.english}", value)
    confusion = confusion.cpu()
    if module.trainer.is_global_zero:
        log.info("Test accuracy %.4f (macro %.4f)\n%s", accuracy, macro, confusion_frame(confusion).to_string())
        png = save_confusion(confusion, Path(module.trainer.default_root_dir) / "confusion_matrix_test")
        for logger in module.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger
                logger.log_image(key="test/confusion_matrix", images=[str(png)])
    return {"confusion": confusion, "per_class": per_class.cpu()}

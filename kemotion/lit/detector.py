"""The face detector as a LightningModule: an ultralytics `DetectionModel`, its loss, NMS, and torchmetrics mAP.

Training follows ultralytics' recipe where it matters for stability: no weight decay on biases and norms, a
linear warm-up of `warmup_epochs` (ultralytics 8.4: never past the start of the last epoch) and then a linear decay
to `final_lr_ratio`; gradient clipping (at 10, like ultralytics' trainer) is the Trainer's `gradient_clip_val`,
and EMA weights for validation and checkpoints are kemotion's `RampedEMA` callback (kemotion/lit/ema.py; set in
conf/experiment/face_detector.yaml).

Logs `train/loss` (and each loss term), `val/loss`, `val/map` (mAP@0.5:0.95), `val/map50`, and at test
`test/map`, `test/map50`. When the batches carry the WIDER FACE evaluation's ground truth (`wider_truth`), also
`val/wider_easy|medium|hard` and `test/wider_…`: the official protocol's AP, on boxes mapped back to the source
image's pixels (`letterbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from kemotion.lit.detection_loss import FaceDetectionLoss
from kemotion.lit.detection_metrics import face_map, postprocess, targets_from_batch
from kemotion.lit.wider_eval import WiderFaceAP
from kemotion.models.yolo import ARCHITECTURE_KEY

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class FaceDetector(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        warmup_epochs: float = 3.0,
        final_lr_ratio: float = 0.01,  # ultralytics' lrf
        loss: dict | None = None,  # FaceDetectionLoss options: nwd_ratio, repulsion_weight, ...
        conf_threshold: float = 0.001,  # ultralytics' validation: keep low-confidence boxes for the PR curve
        iou_threshold: float = 0.7,
        max_det: int = 100,
        freeze_backbone_epochs: int = 0,  # transfer learning: train only the neck and head this many epochs
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer"], logger=False)
        self.net = net
        self.optimizer_factory = optimizer
        self._criterion: FaceDetectionLoss | None = None  # made on first use, on the model's device
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_map, self.test_map = face_map(), face_map()
        self.val_wider, self.test_wider = WiderFaceAP(), WiderFaceAP()

    def forward(self, images: torch.Tensor):
        """(B, 3, S, S) images in [0, 1] → the raw head output (per-level maps in train mode, decoded in eval)."""
        return self.net(images)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, conf: float = 0.25, iou: float = 0.7) -> list[dict[str, torch.Tensor]]:
        """Faces found in each image: {"boxes" (n, 4) xyxy pixels, "scores" (n,), "labels" (n,)}. Eval mode only:
        in train mode the head returns raw maps (and BatchNorm would use the batch's statistics)."""
        if self.training:
            raise RuntimeError("FaceDetector.detect() needs eval mode: call .eval() first")
        return postprocess(self.net(images), conf=conf, iou=iou, max_det=self.hparams.max_det)

    @property
    def criterion(self) -> FaceDetectionLoss:
        """ultralytics' loss keeps tensors on the device the model had when it was made: make it where we are."""
        if self._criterion is None or self._criterion.device != self.device:
            self._criterion = FaceDetectionLoss(self.net, **(self.hparams.loss or {}))
        return self._criterion

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the architecture beside the weights: `kemotion.models.yolo.load_detector` rebuilds from
        the file."""
        checkpoint[ARCHITECTURE_KEY] = self.net.yaml

    def on_train_epoch_start(self) -> None:
        frozen = self.current_epoch < self.hparams.freeze_backbone_epochs
        backbone = self.net.model[: len(self.net.yaml["backbone"])]
        if any(p.requires_grad == frozen for p in backbone.parameters()):
            log.info("%s the backbone at epoch %d", "Freezing" if frozen else "Unfreezing", self.current_epoch)
            backbone.requires_grad_(not frozen)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, items = self.criterion(self(batch["img"]), batch)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=len(batch["img"]))
        for name, value in zip(self.criterion.names, items, strict=True):
            self.log(f"train/{name}_loss", value, on_step=False, on_epoch=True, batch_size=len(batch["img"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        decoded, features = self(batch["img"])
        loss, _ = self.criterion(features, batch)
        self.val_loss(loss)
        self.log("val/loss", self.val_loss, on_epoch=True, batch_size=len(batch["img"]))
        self._update_map(self.val_map, decoded, batch, self.val_wider)

    def on_validation_epoch_end(self) -> None:
        self._log_map("val", self.val_map, self.val_wider)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        decoded, _ = self(batch["img"])
        self._update_map(self.test_map, decoded, batch, self.test_wider)

    def on_test_epoch_end(self) -> None:
        results = self._log_map("test", self.test_map, self.test_wider)
        log.info("Face detector on the test split: mAP@0.5 %.4f, mAP@0.5:0.95 %.4f%s", results["map_50"],
                 results["map"], "".join(f", WIDER {k} AP {v:.4f}" for k, v in results.get("wider", {}).items()))

    def _update_map(self, metric, decoded: torch.Tensor, batch: dict,
                    wider: WiderFaceAP) -> list[dict[str, torch.Tensor]]:
        """Score a batch's detections (returned: what a subclass scores further)."""
        predictions = postprocess(decoded, conf=self.hparams.conf_threshold, iou=self.hparams.iou_threshold,
                                  max_det=self.hparams.max_det)
        metric.update(predictions, targets_from_batch(batch, batch["img"].shape[-1]))
        scored = [i for i, truth in enumerate(batch.get("wider_truth") or []) if truth is not None]
        if scored:
            wider.update([_to_source(predictions[i], batch["letterbox"][i]) for i in scored],
                         [batch["wider_truth"][i] for i in scored])
        return predictions

    def _log_map(self, stage: str, metric, wider: WiderFaceAP) -> dict:
        results = metric.compute()
        self.log(f"{stage}/map", results["map"], prog_bar=stage == "val")
        self.log(f"{stage}/map50", results["map_50"], prog_bar=stage == "val")
        metric.reset()
        if wider.update_count:
            results["wider"] = wider.compute()
            for subset, ap in results["wider"].items():
                self.log(f"{stage}/wider_{subset}", ap)
            wider.reset()
        return results

    def configure_optimizers(self):
        decay, no_decay = [], []
        for parameter in self.net.parameters():
            (decay if parameter.ndim > 1 else no_decay).append(parameter)  # conv/linear weights vs biases and norms
        optimizer = self.optimizer_factory(params=[{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        total = self.trainer.estimated_stepping_batches
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = round(min(self.hparams.warmup_epochs, epochs - 1) * total / epochs)  # ultralytics 8.4's rule
        schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=max(1, warmup)),
            torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=self.hparams.final_lr_ratio,
                                              total_iters=max(1, total - warmup)),
        ], milestones=[max(1, warmup)])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _to_source(prediction: dict[str, torch.Tensor], geometry: torch.Tensor) -> torch.Tensor:
    """A torchmetrics prediction dict in the letterbox's pixels → (n, 5) x1 y1 x2 y2 score in the source's."""
    scale, left, top = geometry.tolist()
    offset = prediction["boxes"].new_tensor([left, top, left, top])
    return torch.cat([(prediction["boxes"] - offset) / scale, prediction["scores"][:, None]], dim=1)

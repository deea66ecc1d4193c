"""The face-detector LightningModule: it learns, warms up, freezes the backbone on request, and checkpoints EMA."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

import kemotion  # noqa: F401  (before ultralytics: offline settings)
from kemotion.datamodules.detection import collate
from kemotion.lit.detector import FaceDetector
from kemotion.lit.ema import RampedEMA, ramped_ema
from kemotion.models.yolo import load_detector

SIZE = 64


def yolov8n() -> torch.nn.Module:
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    net = DetectionModel("yolov8n.yaml", nc=1, verbose=False)
    net.args = get_cfg()
    return net


def squares(n: int = 16) -> list[dict]:
    """Images with one bright square on grey: a face detector's easiest task."""
    generator = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        image = torch.full((3, SIZE, SIZE), 114, dtype=torch.uint8)
        side = int(torch.randint(16, 32, (1,), generator=generator))
        x, y = (int(v) for v in torch.randint(0, SIZE - side, (2,), generator=generator))
        image[:, y: y + side, x: x + side] = 230
        items.append({"img": image, "boxes": torch.tensor([[x, y, x + side, y + side]], dtype=torch.float32),
                      "filename": f"{i}.jpg"})
    return items


def loader(batch_size: int = 8) -> DataLoader:
    return DataLoader(squares(), batch_size=batch_size, collate_fn=collate)


def detector(**kwargs) -> FaceDetector:
    torch.manual_seed(0)
    return FaceDetector(yolov8n(), partial(torch.optim.AdamW, lr=0.002), **kwargs)


def trainer(tmp_path, epochs: int, callbacks=()) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, gradient_clip_val=10.0,
                     num_sanity_val_steps=0, callbacks=list(callbacks), enable_checkpointing=False)


class History(Callback):
    def __init__(self) -> None:
        self.losses, self.lrs = [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])  # the rate this step trains with

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def test_training_lowers_the_loss_after_a_warm_up_and_logs_map(tmp_path):
    history = History()
    module = detector()
    fit = trainer(tmp_path, epochs=8, callbacks=[history])
    fit.fit(module, loader(batch_size=4), loader())
    assert history.lrs[0] == pytest.approx(0.002 * 0.01, rel=0.2)  # warm-up starts at 1 % of lr
    assert max(history.lrs) == pytest.approx(0.002, rel=0.05)  # ... and reaches it after 3 epochs
    assert history.lrs[-1] < 0.3 * max(history.lrs)  # then decays linearly towards 1 %
    # Task-aligned assignment finds few positives in an untrained net: the loss first rises, then falls.
    means = [sum(history.losses[i: i + 4]) / 4 for i in range(len(history.losses) - 3)]
    assert means[-1] < 0.65 * max(means), means
    assert 0 <= float(fit.callback_metrics["val/map"]) <= float(fit.callback_metrics["val/map50"]) <= 1
    assert {"train/box_loss", "train/cls_loss", "train/dfl_loss", "train/repulsion_loss"} <= set(fit.callback_metrics)


def test_a_frozen_backbone_stays_put_and_the_head_learns(tmp_path):
    module = detector(freeze_backbone_epochs=1)
    backbone_layers = len(module.net.yaml["backbone"])
    backbone = [p.detach().clone() for p in module.net.model[:backbone_layers].parameters()]
    head = [p.detach().clone() for p in module.net.model[backbone_layers:].parameters()]
    trainer(tmp_path, epochs=1).fit(module, loader())
    after = list(module.net.model[:backbone_layers].parameters()), list(module.net.model[backbone_layers:].parameters())
    assert all(torch.equal(a, b) for a, b in zip(backbone, after[0], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(head, after[1], strict=True))
    trainer(tmp_path, epochs=2).fit(module, loader())  # epoch 1 (a new fit starts at 0: frozen again, then free)
    assert all(p.requires_grad for p in module.net.model[:backbone_layers].parameters())


def test_checkpoints_hold_the_ema_weights_and_reload(tmp_path):
    module = detector()
    fit = trainer(tmp_path, epochs=2, callbacks=[RampedEMA(tau=5)])
    fit.fit(module, loader(), loader())
    fit.save_checkpoint(tmp_path / "final.ckpt")  # what ModelCheckpoint writes, at the end of training
    saved = torch.load(tmp_path / "final.ckpt", weights_only=False)
    assert "current_model_state" in saved and "averaging_state" in saved  # resumable
    raw = detector()  # the same run without EMA ends elsewhere
    trainer(tmp_path, epochs=2).fit(raw, loader())
    ema = saved["state_dict"]
    assert not torch.allclose(ema["net.model.0.conv.weight"], raw.state_dict()["net.model.0.conv.weight"])
    reloaded = FaceDetector(yolov8n(), partial(torch.optim.AdamW, lr=0.002))
    reloaded.load_state_dict(ema)
    module.eval(), reloaded.eval()
    images = next(iter(loader()))["img"]
    assert torch.allclose(module(images)[0], reloaded(images)[0], atol=1e-5)  # training ends on the EMA weights
    for_inference = load_detector(tmp_path / "final.ckpt")  # no config needed: the checkpoint has the architecture
    assert not for_inference.training
    assert torch.allclose(module(images)[0], for_inference(images)[0], atol=1e-5)
    torch.save({"model": module.net.half()}, tmp_path / "ultralytics.pt")  # ultralytics stores half precision
    with pytest.raises(ValueError, match="ultralytics.pt holds pickled Python objects .* trust_checkpoint=true"):
        load_detector(tmp_path / "ultralytics.pt")
    assert torch.allclose(module.net.float()(images)[0],
                          load_detector(tmp_path / "ultralytics.pt", trust_checkpoint=True)(images)[0], atol=1e-2)


def test_the_ema_decay_ramps_up_like_ultralytics():
    update = ramped_ema(decay=0.9999, tau=2000)
    average, current = torch.zeros(1), torch.ones(1)
    assert update(average, current, 0).item() == pytest.approx(1.0)  # d = 0: the first update copies
    assert update(average, current, 2000).item() == pytest.approx(1 - 0.9999 * (1 - math.exp(-1)))
    assert update(average, current, 10**6).item() == pytest.approx(1e-4, abs=1e-6)


def test_detect_finds_the_square_after_training(tmp_path):
    module = detector()
    trainer(tmp_path, epochs=40).fit(module, loader(batch_size=4))  # 160 steps: BatchNorm's running statistics
    with pytest.raises(RuntimeError, match="eval mode"):
        module.train().detect(torch.zeros(1, 3, SIZE, SIZE))
    module.eval()  # (momentum 0.03 in ultralytics) need about that many to settle for eval mode
    batch = next(iter(loader()))
    found = module.detect(batch["img"], conf=0.1)
    hits = 0
    for faces, (x, y, w, h) in zip(found, batch["bboxes"] * SIZE, strict=True):
        truth = torch.tensor([[x - w / 2, y - h / 2, x + w / 2, y + h / 2]])
        if len(faces["boxes"]):
            from torchvision.ops import box_iou

            hits += float(box_iou(faces["boxes"][:1], truth)) > 0.5
    assert hits >= 6  # of 8


def test_load_detector_names_a_file_that_is_no_detector(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "classifier.ckpt")
    with pytest.raises(ValueError, match="classifier.ckpt: neither a kemotion face-detector checkpoint"):
        load_detector(tmp_path / "classifier.ckpt")


def test_wider_ap_is_logged_from_batches_with_the_wider_ground_truth(tmp_path):
    """The module scores what it detects, mapped back through the letterbox, by the WIDER protocol — the same
    numbers as `wider_ap` on its own detections — and logs them only for data with the WIDER ground truth."""
    import numpy as np

    from kemotion.data.widerface import WiderTruth
    from kemotion.lit.detection_metrics import postprocess
    from kemotion.lit.wider_eval import wider_ap

    scale, left, top = 0.5, 4.0, 2.0
    items = squares(8)
    for item in items:
        box = (item["boxes"][0].double().numpy() - [left, top, left, top]) / scale  # source pixels
        item["letterbox"] = torch.tensor([scale, left, top], dtype=torch.float64)
        item["wider_truth"] = WiderTruth(np.r_[box[:2], box[2:] - box[:2]].reshape(1, 4), np.ones((1, 3), bool))
    module = detector()
    trainer(tmp_path, epochs=1).validate(module, DataLoader(items, batch_size=4, collate_fn=collate), verbose=False)
    logged = {s: float(trainer_metrics) for s, trainer_metrics in module.trainer.callback_metrics.items()}
    module.eval()
    batch = collate(items)
    found = postprocess(module(batch["img"]), conf=0.001, iou=0.7, max_det=100)
    predictions = []
    for faces in found:
        xyxy = (faces["boxes"].double().numpy() - [left, top, left, top]) / scale
        predictions.append(np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2], faces["scores"].double().numpy()])
    expected = wider_ap(predictions, [item["wider_truth"] for item in items])
    assert {s: logged[f"val/wider_{s}"] for s in expected} == pytest.approx(expected, abs=1e-6)

    trainer(tmp_path, epochs=1).validate(module, loader(), verbose=False)  # AI-Hub-style batches: COCO mAP only
    assert "val/wider_easy" not in module.trainer.callback_metrics and "val/map" in module.trainer.callback_metrics

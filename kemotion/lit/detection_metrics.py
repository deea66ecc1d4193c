"""Face-detector evaluation: ultralytics' NMS turns raw outputs into detections, torchmetrics scores them (COCO mAP).

Boxes are compared in the network's input pixels. mAP over all areas does not change under an axis-aligned rescaling
or a shift applied to both predictions and targets, so mapping back to the original image (as ultralytics' validator
does) would give the same mAP@0.5 and mAP@0.5:0.95.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import torch
from torchmetrics.detection import MeanAveragePrecision
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import xywh2xyxy

Boxes = list[dict[str, torch.Tensor]]  # one torchmetrics dict per image

# COCOeval's own thresholds (pycocotools Params.setDetParams), in float64. torchmetrics' defaults come from a float32
# torch.linspace (0.6 → 0.6000000238): a recall landing exactly on a threshold then reads the next precision, and
# mAP@0.5:0.95 drifts from COCOeval's by up to ~1e-3 on small validation sets.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10).tolist()
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101).tolist()


def face_map(iou_thresholds: list[float] | None = None, class_metrics: bool = False) -> MeanAveragePrecision:
    """COCO mAP over xyxy pixel boxes, equal to COCOeval's; `compute()["map_50"]` is mAP@0.5, `["map"]` mAP@0.5:0.95
    (the mean over `iou_thresholds`, COCO's by default), and with `class_metrics` `["map_per_class"]` that mean per
    class (torchmetrics has no per-class mAP@0.5: `iou_thresholds=[0.5]` gives it).

    pycocotools (the reference COCOeval) when installed, else faster-coco-eval, torchmetrics' other backend.
    """
    backend = "pycocotools" if importlib.util.find_spec("pycocotools") else "faster_coco_eval"
    return MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        iou_thresholds=iou_thresholds or COCO_IOU_THRESHOLDS,
        rec_thresholds=COCO_RECALL_THRESHOLDS,
        class_metrics=class_metrics,
        backend=backend,
    )


def postprocess(preds: Any, conf: float, iou: float, max_det: int) -> Boxes:
    """The Detect head's eval output — (B, 4 + nc, A) xywh pixels and class probabilities, or the `(y, dict)` tuple
    the model returns in eval mode — → one torchmetrics prediction dict per image: "boxes" (n, 4) xyxy pixels,
    "scores" (n,), "labels" (n,) long. ultralytics' NMS: class-aware, keeps at most max_det boxes above conf.
    """
    detections = non_max_suppression(preds, conf_thres=conf, iou_thres=iou, max_det=max_det)
    return [{"boxes": d[:, :4].detach(), "scores": d[:, 4].detach(), "labels": d[:, 5].long()} for d in detections]


def targets_from_batch(batch: dict[str, torch.Tensor], image_size: int | tuple[int, int]) -> Boxes:
    """An ultralytics batch ("img" (B, 3, H, W), "batch_idx" (N,), "cls" (N, 1), "bboxes" (N, 4) normalised xywh) →
    one torchmetrics target dict per image: "boxes" (n, 4) xyxy pixels of an image_size (h, w) or square input,
    "labels" (n,) long. Images without faces get empty tensors.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    boxes = xywh2xyxy(batch["bboxes"] * batch["bboxes"].new_tensor([width, height, width, height]))
    labels, image = batch["cls"].view(-1).long(), batch["batch_idx"].view(-1).long()
    return [{"boxes": boxes[image == i], "labels": labels[image == i]} for i in range(len(batch["img"]))]

"""Face-detector metrics: torchmetrics' mAP equals COCOeval's on the same boxes; NMS post-processing; targets."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from kemotion.lit.detection_metrics import face_map, postprocess, targets_from_batch

FACE = 0  # the detector's only class
N_IMAGES, IMAGE = 20, 640


def _random_boxes(generator: torch.Generator, n: int) -> torch.Tensor:
    """n xyxy boxes inside an IMAGE-pixel square, 16-200 pixels a side."""
    xy = torch.rand(n, 2, generator=generator) * (IMAGE - 200)
    wh = 16 + torch.rand(n, 2, generator=generator) * 184
    return torch.cat((xy, xy + wh), 1)


def _scene(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Predictions and targets for N_IMAGES images: some without faces, some crowded, some with no predictions."""
    generator = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for i in range(N_IMAGES):
        n_faces = [0, 1, 3, 5][i % 4]
        faces = _random_boxes(generator, n_faces)
        jitter = (torch.rand(n_faces, 4, generator=generator) - 0.5) * 30  # IoU with its face from ~0.6 to 1
        found = torch.rand(n_faces, generator=generator) < 0.8
        boxes = torch.cat((faces[found] + jitter[found], _random_boxes(generator, i % 3)))  # hits + false alarms
        if i % 7 == 6:
            boxes = boxes[:0]  # the detector saw nothing
        scores = torch.rand(len(boxes), generator=generator)
        preds.append({"boxes": boxes, "scores": scores, "labels": torch.full((len(boxes),), FACE)})
        targets.append({"boxes": faces, "labels": torch.full((n_faces,), FACE)})
    return preds, targets


def _cocoeval(preds: list[dict], targets: list[dict]) -> tuple[float, float]:
    """(mAP@0.5, mAP@0.5:0.95) from pycocotools' COCOeval on COCO dicts built by hand."""

    def xywh(box: torch.Tensor) -> list[float]:
        x1, y1, x2, y2 = box.tolist()
        return [x1, y1, x2 - x1, y2 - y1]

    annotations = [
        {"image_id": i, "category_id": FACE, "bbox": xywh(box), "iscrowd": 0}
        for i, target in enumerate(targets)
        for box in target["boxes"]
    ]
    for k, annotation in enumerate(annotations, start=1):  # COCOeval reads id 0 as "unmatched"
        annotation["id"] = k
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3]
    detections = [
        {"image_id": i, "category_id": FACE, "bbox": xywh(box), "score": float(score)}
        for i, pred in enumerate(preds)
        for box, score in zip(pred["boxes"], pred["scores"], strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        truth = COCO()
        truth.dataset = {
            "images": [{"id": i} for i in range(len(targets))],
            "annotations": annotations,
            "categories": [{"id": FACE, "name": "face"}],
        }
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[1], evaluation.stats[0]


@pytest.mark.parametrize("seed", [0, 1, 2])  # with torchmetrics' default thresholds these differ by up to 1e-3
def test_face_map_equals_cocoeval(seed):
    preds, targets = _scene(seed)
    assert any(len(t["boxes"]) == 0 for t in targets) and any(len(p["boxes"]) == 0 for p in preds)
    metric = face_map()
    metric.update(preds[:10], targets[:10])  # two batches, as in a validation epoch
    metric.update(preds[10:], targets[10:])
    result = metric.compute()
    map_50, map_50_95 = _cocoeval(preds, targets)
    assert 0.1 < map_50_95 < map_50 < 0.95  # a scene where the two numbers say something
    assert result["map_50"].item() == pytest.approx(map_50, abs=1e-4)
    assert result["map"].item() == pytest.approx(map_50_95, abs=1e-4)


def test_postprocess_keeps_the_confident_box_and_drops_duplicates_and_doubtful_ones():
    # (B, 4 + nc, A): xywh pixels, then the face probability, as the Detect head outputs in eval mode
    raw = torch.tensor(
        [
            [  # image 0: a face, its near-duplicate, a second face, a doubtful box
                [100.0, 102.0, 300.0, 500.0],
                [100.0, 101.0, 100.0, 500.0],
                [40.0, 40.0, 50.0, 30.0],
                [40.0, 40.0, 30.0, 30.0],
                [0.9, 0.8, 0.7, 0.1],
            ],
            [  # image 1: only doubtful boxes
                [100.0, 300.0, 0.0, 0.0],
                [100.0, 300.0, 0.0, 0.0],
                [40.0, 40.0, 0.0, 0.0],
                [40.0, 40.0, 0.0, 0.0],
                [0.2, 0.1, 0.0, 0.0],
            ],
        ]
    )
    first, second = postprocess((raw, {}), conf=0.25, iou=0.7, max_det=300)  # the eval-mode (y, dict) tuple
    torch.testing.assert_close(first["boxes"], torch.tensor([[80.0, 80.0, 120.0, 120.0], [275.0, 85.0, 325.0, 115.0]]))
    torch.testing.assert_close(first["scores"], torch.tensor([0.9, 0.7]))
    assert first["labels"].tolist() == [FACE, FACE] and first["labels"].dtype == torch.long
    assert second["boxes"].shape == (0, 4) and second["scores"].shape == (0,)
    (only_best,) = postprocess(raw[:1], conf=0.25, iou=0.7, max_det=1)
    assert only_best["scores"].tolist() == pytest.approx([0.9])


def test_targets_from_batch_gives_pixel_xyxy_per_image():
    batch = {
        "img": torch.zeros(3, 3, 100, 200),
        "batch_idx": torch.tensor([0.0, 2.0, 2.0]),
        "cls": torch.zeros(3, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.25, 0.25, 0.5, 0.5], [1.0, 1.0, 0.1, 0.1]]),
    }
    first, empty, last = targets_from_batch(batch, image_size=(100, 200))
    torch.testing.assert_close(first["boxes"], torch.tensor([[80.0, 30.0, 120.0, 70.0]]))
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    torch.testing.assert_close(last["boxes"], torch.tensor([[0.0, 0.0, 100.0, 50.0], [190.0, 95.0, 210.0, 105.0]]))
    assert last["labels"].tolist() == [FACE, FACE]

"""WIDER FACE val AP on the easy / medium / hard subsets, as the official evaluation toolkit computes it.

The protocol (/work/shared/wider/FORMAT.md; the toolkit's `evaluation.m` and its common Python port):
1. scores min-max normalised over all predictions of all images;
2. per image, predictions by score, highest first, boxes `x y w h` compared in pixel-inclusive IoU;
3. each prediction takes its best ground-truth face; at IoU >= 0.5 an ignored face (not in the subset's `gt_list`)
   takes the prediction out of the proposals and is never recalled, a kept face not yet recalled is recalled;
   the recall count is recorded after each prediction. An image without faces or without predictions is skipped
   (its predictions are not counted), as the toolkit does;
4. 1,000 thresholds t = 1 - (k + 1) / 1000: proposals and recalled faces of the predictions with score >= t,
   summed over images, give precision = TP / proposals and recall = TP / kept faces (0 / 0 is read as 0, which never
   reaches the area below);
5. AP = the VOC all-point area under the running-maximum precision.

`wider_ap` takes arrays; `WiderFaceAP` is the torchmetrics form the face detector logs (`val/wider_easy` …);
`python -m kemotion.lit.wider_eval --pred DIR --gt DIR` scores a folder of the toolkit's `<event>/<image>.txt`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric

from kemotion.data.widerface import SUBSETS, WiderTruth, read_ground_truth

IOU_THRESHOLD = 0.5
THRESHOLDS = 1 - (np.arange(1000) + 1) / 1000  # the toolkit's 1,000 score thresholds, highest first


def wider_ap(predictions: Sequence[np.ndarray], truths: Sequence[WiderTruth]) -> dict[str, float]:
    """AP per subset. predictions[i]: image i's (p, 5) `x y w h score` rows (any order); truths[i]: its faces."""
    predictions = _normalised_scores(predictions)
    counts = np.zeros((len(SUBSETS), len(THRESHOLDS), 2))  # (proposals, recalled) per subset and threshold
    faces = np.zeros(len(SUBSETS))
    for prediction, truth in zip(predictions, truths, strict=True):
        faces += truth.kept.sum(axis=0)
        if len(truth.boxes) == 0 or len(prediction) == 0:
            continue
        prediction = prediction[np.argsort(-prediction[:, 4], kind="stable")]
        overlaps = pixel_iou(_xyxy(prediction[:, :4]), _xyxy(truth.boxes))
        for s in range(len(SUBSETS)):
            recalled, proposed = _image_pr(overlaps, truth.kept[:, s])
            counts[s] += _per_threshold(prediction[:, 4], recalled, proposed)
    return {subset: voc_ap(*_curve(counts[s], faces[s])) for s, subset in enumerate(SUBSETS)}


def pixel_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) × (m, 4) xyxy → (n, m) IoU with the toolkit's pixel-inclusive areas ((x2 - x1 + 1) · (y2 - y1 + 1))."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.where((width > 0) & (height > 0), width * height, 0.0)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """The VOC all-point area: sentinels, precision made monotone from the right, summed where recall changes."""
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    changes = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[changes + 1] - r[changes]) * p[changes + 1]))


def _image_pr(overlaps: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walk the (score-sorted) predictions: the kept faces recalled after each one, and whether it is a proposal."""
    best, best_iou = overlaps.argmax(axis=1), overlaps.max(axis=1)
    state = np.zeros(len(kept), np.int8)  # 0 not yet recalled, 1 recalled, -1 ignored (never recalled)
    recalled, proposed = np.zeros(len(best)), np.ones(len(best), bool)
    for h, (face, iou) in enumerate(zip(best, best_iou, strict=True)):  # sequential by nature: a face is taken once
        if iou >= IOU_THRESHOLD:
            if not kept[face]:
                state[face], proposed[h] = -1, False
            elif state[face] == 0:
                state[face] = 1
        recalled[h] = np.count_nonzero(state == 1)
    return recalled, proposed


def _per_threshold(scores: np.ndarray, recalled: np.ndarray, proposed: np.ndarray) -> np.ndarray:
    """(thresholds, 2): proposals and recalled faces among the predictions scoring >= each threshold (vectorised:
    the scores are sorted, so those predictions are a prefix)."""
    above = len(scores) - np.searchsorted(scores[::-1], THRESHOLDS, side="left")  # count of scores >= t
    last = above - 1
    has = above > 0
    proposals = np.where(has, np.cumsum(proposed)[np.maximum(last, 0)], 0)
    hits = np.where(has, recalled[np.maximum(last, 0)], 0)
    return np.stack([proposals, hits], axis=1)


def _curve(counts: np.ndarray, faces: float) -> tuple[np.ndarray, np.ndarray]:
    proposals, hits = counts[:, 0], counts[:, 1]
    precision = np.divide(hits, proposals, out=np.zeros_like(hits), where=proposals > 0)
    return hits / max(faces, 1.0), precision


def _normalised_scores(predictions: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Scores min-max normalised over all images, as the toolkit does (its running min starts at 1, max at 0)."""
    predictions = [np.asarray(p, np.float64).reshape(-1, 5) for p in predictions]
    scores = np.concatenate([p[:, 4] for p in predictions] + [np.array([1.0]), np.array([0.0])])
    low, high = min(scores.min(), 1.0), max(scores.max(), 0.0)
    out = []
    for p in predictions:
        p = p.copy()
        p[:, 4] = (p[:, 4] - low) / (high - low) if high > low else 1.0
        out.append(p)
    return out


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:4]], axis=1)


# --- files --------------------------------------------------------------------------------------------------------
def read_predictions(directory: str | Path) -> dict[tuple[str, str], np.ndarray]:
    """The toolkit's prediction folder: `<event>/<image>.txt` of a name line, a count and `x y w h score` rows →
    {(event, image name without .jpg): (p, 5)}. A malformed file is a ValueError naming it."""
    predictions = {}
    for path in sorted(Path(directory).glob("*/*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            count = int(lines[1]) if len(lines) > 1 else 0
            rows = np.array([[float(v) for v in line.split()[:5]] for line in lines[2:2 + count]]).reshape(-1, 5)
        except ValueError as error:
            raise ValueError(f"{path}: not a WIDER prediction file ({error})") from None
        if len(rows) != count:
            raise ValueError(f"{path}: announces {count} boxes, holds {len(rows)}")
        predictions[(path.parent.name, path.stem.removesuffix(".jpg"))] = rows
    return predictions


def evaluate_folder(predictions: str | Path, ground_truth: str | Path) -> dict[str, float]:
    """AP per subset of a prediction folder against the toolkit's ground truth; an image without a file has no
    predictions."""
    truths = read_ground_truth(ground_truth)
    found = read_predictions(predictions)
    keys = list(truths)
    return wider_ap([found.get(key, np.zeros((0, 5))) for key in keys], [truths[key] for key in keys])


# --- the metric the face detector logs -----------------------------------------------------------------------------
class WiderFaceAP(Metric):
    """WIDER easy / medium / hard AP over an epoch. `update(predictions, truths)`: per image, an (p, 5) tensor of
    `x1 y1 x2 y2 score` in the ground truth's pixels, and its `WiderTruth`. `compute()` → {"easy": …, …} tensors."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("predictions", default=[], dist_reduce_fx="cat")
        self.add_state("boxes", default=[], dist_reduce_fx="cat")
        self.add_state("kept", default=[], dist_reduce_fx="cat")

    def update(self, predictions: Sequence[torch.Tensor], truths: Sequence[WiderTruth]) -> None:
        for prediction, truth in zip(predictions, truths, strict=True):
            xywh = torch.cat([prediction[:, :2], prediction[:, 2:4] - prediction[:, :2], prediction[:, 4:5]], 1)
            self.predictions.append(xywh.detach().double().cpu())
            self.boxes.append(torch.as_tensor(truth.boxes, dtype=torch.float64))
            self.kept.append(torch.as_tensor(truth.kept))

    def compute(self) -> dict[str, torch.Tensor]:
        truths = [WiderTruth(b.numpy(), k.numpy()) for b, k in zip(self.boxes, self.kept, strict=True)]
        aps = wider_ap([p.numpy() for p in self.predictions], truths)
        return {subset: torch.tensor(ap, dtype=torch.float64) for subset, ap in aps.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WIDER FACE val AP (easy / medium / hard) of a prediction folder")
    parser.add_argument("--pred", required=True, help="folder of <event>/<image>.txt prediction files")
    parser.add_argument("--gt", required=True, help="folder of wider_face_val.mat and wider_{easy,medium,hard}_val.mat")
    args = parser.parse_args(argv)
    for subset, ap in evaluate_folder(args.pred, args.gt).items():
        print(f"{subset:6s} val AP: {ap:.4f}")


if __name__ == "__main__":
    main()

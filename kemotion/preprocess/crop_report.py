"""The preprocessing report: per image, what a cropper found against the dataset's annotated face box; per subset,
how often it found that face, what it did when it found none, and how large the cut squares were.

Recall counts an image as found when any face the cropper found overlaps the annotated box (the annotators' median)
with IoU >= 0.5; "cropped the annotated face" asks the same of the face it picked. Square sides are in the source's
full-resolution pixels: below the crop size the crop was enlarged, far above it much was thrown away.

The crop's scale: `face_share`, the annotated face box's longer side over the side of what became the crop (the cut
square; the whole frame, per axis, when the frame was resized). Detectors draw different boxes (Haar: brows to mouth;
one trained on AI-Hub boxes: forehead to chin), so at the same `preprocess.margin` the face fills a different share
of the crop, and the classifier sees the expression at a different resolution: compare croppers by this, and sweep
`preprocess.margin` (+experiment=crop_scale) to set it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torchvision.ops import box_iou

MATCH_IOU = 0.5  # the usual detection match (and the paper's mAP@0.5)
BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]


def per_image(frame: pd.DataFrame, seen: list[dict]) -> pd.DataFrame:
    """A row per manifest row of `frame`: the faces found, their best IoU and the picked face's IoU with the
    annotated box, the side of the square cut (and as a fraction of the image's shorter side), the fallback used."""
    rows = []
    for truth, what, width, height in zip(frame[BOX].to_numpy(np.float64), seen, frame["width"].to_numpy(),
                                          frame["height"].to_numpy(), strict=True):
        short = min(width, height)
        faces = what["faces"]
        ious = (box_iou(torch.tensor(faces, dtype=torch.float64).reshape(-1, 4),
                        torch.tensor(truth).reshape(1, 4))[:, 0].numpy() if faces is not None else None)
        side = what["square_side"]
        rows.append({
            "face_share": face_share(truth, short if what["fallback"] == "centre" else side, width, height),
            "faces_found": len(faces) if faces is not None else None,
            "best_iou": float(ious.max()) if ious is not None and len(ious) else None,
            "picked_iou": float(ious[what["picked"]]) if what.get("picked") is not None else None,
            "square_side": side,
            "square_fraction": side / short if side is not None else None,
            "fallback": what["fallback"] or "",
        })
    found = pd.DataFrame(rows, index=frame.index, columns=["face_share", "faces_found", "best_iou", "picked_iou",
                                                           "square_side", "square_fraction", "fallback"])
    return pd.concat([frame[["filename", "split", "label", "width", "height", *BOX]], found], axis=1)


def summarise(seen: pd.DataFrame, cropper: str, subset: str) -> str:
    """A few lines for the log and `<subset>_report.txt`."""
    n = len(seen)
    lines = [f"Preprocessing report: {cropper} crops of the {subset} subset, {n} images"]
    if n == 0:
        return lines[0]
    if seen["faces_found"].isna().all():
        return "\n".join([*lines, "  no face detection: every image is the whole frame", _scale(seen)])
    matched = (seen["best_iou"] >= MATCH_IOU).sum()
    cropped_right = (seen["picked_iou"] >= MATCH_IOU).sum()
    lines += [
        f"  face recall (a face found with IoU >= {MATCH_IOU} to the annotated box): {_share(matched, n)}",
        f"  cropped the annotated face (the picked face, IoU >= {MATCH_IOU}): {_share(cropped_right, n)}",
        f"  several faces found: {_share((seen['faces_found'] > 1).sum(), n)}",
    ]
    fallbacks = seen.loc[seen["fallback"] != "", "fallback"].value_counts()
    what = {"resize": "kept as the whole frame resized", "centre": "kept as the centre square",
            "drop": "dropped (listed in <subset>_dropped.csv)"}
    lines.append(f"  no face found: {_share(fallbacks.sum(), n)}" +
                 "".join(f"; {count} {what.get(name, name)}" for name, count in fallbacks.items()))
    sides = seen["square_side"].dropna()
    if len(sides):
        fractions = seen["square_fraction"].dropna()
        lines.append("  square cut around the face, source pixels: " +
                     ", ".join(f"p{q} {sides.quantile(q / 100):.0f}" for q in (5, 50, 95)) +
                     f"; of the image's shorter side: median {fractions.median():.2f}")
    return "\n".join([*lines, _scale(seen)])


def face_share(box: np.ndarray, square_side: float | None, width: int, height: int) -> float:
    """The annotated face box's longer side over the crop's side: the cut square's, or, without one (the frame
    resized), the frame's along each axis, whichever the face fills more."""
    box_width, box_height = box[2] - box[0], box[3] - box[1]
    if square_side is not None:
        return float(max(box_width, box_height) / square_side)
    return float(max(box_width / width, box_height / height))


def _scale(seen: pd.DataFrame) -> str:
    shares = seen["face_share"].dropna()
    return ("  the crop's scale, annotated face box side / crop side: median "
            f"{shares.median():.2f} (p5 {shares.quantile(0.05):.2f}, p95 {shares.quantile(0.95):.2f})")


def _share(count: int, n: int) -> str:
    return f"{count}/{n} ({100 * count / n:.1f} %)"

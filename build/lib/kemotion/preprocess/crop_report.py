"""The preprocessing report: per image, what a cropper found against the dataset's annotated face box; per subset,
how often it found that face, what it did when it found none, and how large the cut squares were.

Recall counts an image as found when any face the cropper found overlaps the annotated box (the annotators' median)
with IoU >= 0.5; "cropped the annotated face" asks the same of the face it picked. Square sides are in the source's
full-resolution pixels: below the crop size the crop was enlarged, far above it much was thrown away.
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
    for truth, what, short in zip(frame[BOX].to_numpy(np.float64), seen,
                                  np.minimum(frame["width"], frame["height"]).to_numpy(), strict=True):
        faces = what["faces"]
        ious = (box_iou(torch.tensor(faces, dtype=torch.float64).reshape(-1, 4),
                        torch.tensor(truth).reshape(1, 4))[:, 0].numpy() if faces is not None else None)
        side = what["square_side"]
        rows.append({
            "faces_found": len(faces) if faces is not None else None,
            "best_iou": float(ious.max()) if ious is not None and len(ious) else None,
            "picked_iou": float(ious[what["picked"]]) if what.get("picked") is not None else None,
            "square_side": side,
            "square_fraction": side / short if side is not None else None,
            "fallback": what["fallback"] or "",
        })
    found = pd.DataFrame(rows, index=frame.index, columns=["faces_found", "best_iou", "picked_iou", "square_side",
                                                           "square_fraction", "fallback"])
    return pd.concat([frame[["filename", "split", "label", "width", "height", *BOX]], found], axis=1)


def summarise(seen: pd.DataFrame, cropper: str, subset: str) -> str:
    """A few lines for the log and `<subset>_report.txt`."""
    n = len(seen)
    lines = [f"Preprocessing report: {cropper} crops of the {subset} subset, {n} images"]
    if n == 0:
        return lines[0]
    if seen["faces_found"].isna().all():
        return "\n".join([*lines, "  no face detection: every image is the whole frame"])
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
    return "\n".join(lines)


def _share(count: int, n: int) -> str:
    return f"{count}/{n} ({100 * count / n:.1f} %)"

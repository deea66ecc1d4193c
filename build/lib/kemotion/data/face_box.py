"""The face box of a record: the annotators' boxes checked against the upright image and combined robustly."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kemotion.data.aihub import Annotation

ANNOTATORS = ("A", "B", "C")  # the record keys annot_A, annot_B, annot_C
BOX_OUTSIDE_TOLERANCE = 0.10  # share of a box's area that may lie outside the image (then clipped)


class BadBox(ValueError):
    """No annotator box of a record is usable; `reasons` says why, per annotator."""

    def __init__(self, message: str, reasons: tuple[str, ...]) -> None:
        super().__init__(message)
        self.reasons = reasons


def consensus_box(
    annotations: Sequence[Annotation], width: int, height: int
) -> tuple[tuple[float, float, float, float], str]:
    """The coordinate-wise median of the valid annotator boxes (robust to one outlier) and which were used.

    A box is valid when it has positive area and at most BOX_OUTSIDE_TOLERANCE of it lies outside the upright
    width x height image; valid boxes are clipped to the image. BadBox when none is valid.
    """
    valid: dict[str, tuple[float, float, float, float]] = {}
    reasons: list[str] = []
    for letter, annotation in zip(ANNOTATORS, annotations, strict=False):  # a short tuple lacks the last ones
        box, reason = _checked_box(annotation.box, width, height)
        if box is None:
            reasons.append(f"{letter}: {reason}")
        else:
            valid[letter] = box
    if not valid:
        message = f"no valid annotator box in the {width}x{height} upright image ({'; '.join(reasons)})"
        raise BadBox(message, tuple(reasons))
    x1, y1, x2, y2 = (float(statistics.median(box[i] for box in valid.values())) for i in range(4))
    letters = ",".join(valid)
    return (x1, y1, x2, y2), (f"{letters} only" if len(valid) == 1 else f"median of {letters}")


def _checked_box(
    box: tuple[float, float, float, float] | None, width: int, height: int
) -> tuple[tuple[float, float, float, float] | None, str]:
    """(the box clipped to the image, "") or (None, why it is rejected)."""
    if box is None:
        return None, "no box (missing, null or malformed)"
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return None, f"zero or negative area {box}"
    inside = max(0.0, min(x2, width) - max(x1, 0.0)) * max(0.0, min(y2, height) - max(y1, 0.0))
    outside = 1.0 - inside / ((x2 - x1) * (y2 - y1))
    if outside > BOX_OUTSIDE_TOLERANCE:
        return None, f"{outside:.0%} of {box} lies outside the image"
    return (max(x1, 0.0), max(y1, 0.0), float(min(x2, width)), float(min(y2, height))), ""

"""A frame's faces, cropped as the run's training crops were: the cropper's own detector, margin square and pad
(`kemotion.preprocess.face_crop`), for every face above `conf` (up to `max_faces`, in the order of the cropper's
`pick` rule, so the first is the face training would have cropped); the whole frame for a cropper that detects no
faces (`preprocess=resize`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kemotion.inference.sources import Frame
from kemotion.preprocess.face_crop import FaceCropper, rank_faces, square_around
from kemotion.preprocess.stored import as_stored

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceCrop:
    box: Box  # xyxy in the frame's upright full-resolution pixels (clipped to it)
    score: float | None  # the detector's confidence; None for a whole-frame crop
    image: np.ndarray  # size × size × 3 RGB uint8 as the crop cache stores it: the classifier's training input


def detection_side(cropper, frame: Frame) -> int:
    """The long side a frame is decoded at first: the detector's, or what a whole-frame crop needs."""
    return cropper.detect_side if isinstance(cropper, FaceCropper) else cropper.decode_side(frame.width, frame.height)


def frame_crops(cropper, frames: list[Frame], decoded: list[np.ndarray], conf: float | None,
                max_faces: int) -> list[list[FaceCrop]]:
    """The crops of each frame, given its first decode (at `detection_side`); one detector batch for all."""
    if not isinstance(cropper, FaceCropper):
        return [[FaceCrop((0.0, 0.0, float(frame.width), float(frame.height)), None, as_stored(cropper(image)))]
                for frame, image in zip(frames, decoded, strict=True)]
    found = cropper.detect_batch(decoded)
    return [_faces(cropper, frame, image, boxes, scores, conf, max_faces)
            for frame, image, (boxes, scores) in zip(frames, decoded, found, strict=True)]


def _faces(cropper: FaceCropper, frame: Frame, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
           conf: float | None, max_faces: int) -> list[FaceCrop]:
    ratio = np.array([frame.width / image.shape[1], frame.height / image.shape[0]] * 2)
    boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4) * ratio, np.asarray(scores, np.float64).reshape(-1)
    kept = [i for i in rank_faces(boxes, scores, cropper.pick) if conf is None or scores[i] >= conf][:max_faces]
    squares = [square_around(tuple(boxes[i]), cropper.margin, frame.width, frame.height) for i in kept]
    if not squares:
        return []
    needed = max(cropper.decode_side(square[2] - square[0], frame.width, frame.height) for square in squares)
    full = image if max(image.shape[:2]) >= needed else frame.decode(needed)
    limits = np.array([frame.width, frame.height] * 2, dtype=np.float64)
    return [FaceCrop(tuple(float(v) for v in np.clip(boxes[i], 0, limits)), float(scores[i]),
                     as_stored(cropper.cut_square(full, square, frame.width, frame.height)))
            for i, square in zip(kept, squares, strict=True)]

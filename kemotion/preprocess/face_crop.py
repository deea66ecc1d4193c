"""The paper's crop policy, shared by every face-detecting cropper: pick a face, square it with a margin, crop.

The face box is enlarged by a margin so some background stays, then extended (never shrunk, never stretched) to a
square centred on the face; where that square leaves the image it is padded with PAD_GREY, so the face keeps its
aspect ratio. When no face is found, a configurable fallback decides what the cache gets (or that it gets nothing).
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

from kemotion.preprocess.cropper import Box, Cropped, CropperBase, Decodable, FaceCrop, SourceImage
from kemotion.preprocess.resize import PAD_GREY, ResizeCropper
from kemotion.preprocess.stored import as_stored

PickRule = Literal["largest", "confident"]
NoFace = Literal["resize", "centre", "drop"]  # resize: the paper's baseline stretch; drop: raise NoFaceFound

# The paper crops "with a margin" but gives no number. Ours: this fraction of the face box's LONGER side is added
# on each of the four sides, so a margin of 0.2 makes the square 1.4 × the box's longer side.
DEFAULT_MARGIN = 0.2
PICK_RULES: tuple[str, ...] = ("largest", "confident")
NO_FACE_FALLBACKS: tuple[str, ...] = ("resize", "centre", "drop")


class NoFaceFound(ValueError):
    """No face in an image whose cropper's fallback is "drop": the cache counts and reports it."""


def square_around(box: Box, margin: float, width: int, height: int) -> Box:
    """The square (float pixels) centred on `box`, of side (1 + 2·margin) × the box's longer side.

    The box is first clipped to the width × height image (an annotator's box may poke out of the frame); the
    square itself may leave the image, `crop_square` pads there.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    x1, y1, x2, y2 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"face box {box} has no area inside the {width}×{height} image")
    half = max(x2 - x1, y2 - y1) * (0.5 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return cx - half, cy - half, cx + half, cy + half


def crop_square(image: np.ndarray, square: Box, size: int) -> np.ndarray:
    """Cut `square` out of H×W×3 `image` (PAD_GREY where it leaves the image) and resize it to size×size×3."""
    left, top = round(square[0]), round(square[1])
    side = max(1, round(square[2] - square[0]))
    height, width = image.shape[:2]
    canvas = np.full((side, side, image.shape[2]), PAD_GREY, np.uint8)
    src_x1, src_y1 = max(left, 0), max(top, 0)
    src_x2, src_y2 = min(left + side, width), min(top + side, height)
    if src_x2 > src_x1 and src_y2 > src_y1:
        canvas[src_y1 - top: src_y2 - top, src_x1 - left: src_x2 - left] = image[src_y1:src_y2, src_x1:src_x2]
    if side == size:
        return canvas
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR  # area averaging: no aliasing
    return cv2.resize(canvas, (size, size), interpolation=interpolation)


def pick_face(boxes: np.ndarray, scores: np.ndarray, rule: PickRule) -> int | None:
    """Index of the face to crop among (n, 4) xyxy `boxes`: the largest area or the highest score; None if n = 0.

    Ties go to the first box (detector order).
    """
    order = rank_faces(boxes, scores, rule)
    return int(order[0]) if len(order) else None


def rank_faces(boxes: np.ndarray, scores: np.ndarray, rule: PickRule) -> np.ndarray:
    """The indices of (n, 4) xyxy `boxes` in the order `rule` prefers them (largest area or highest score first,
    ties in detector order): the first is the face a cropper picks."""
    if rule not in PICK_RULES:
        raise ValueError(f"pick rule must be one of {PICK_RULES}, got {rule!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if rule == "largest":
        key = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    else:
        key = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.argsort(-key, kind="stable")


def faces_inside(boxes: np.ndarray, scores: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The (boxes, scores) of the faces whose box keeps some area inside the width × height frame. A detector can
    put a box wholly outside it (in the letterbox padding, from a frame's edge); such a box is no face of this frame,
    and cutting a square around it has no centre to take."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    inside = ((np.minimum(boxes[:, 2], width) > np.maximum(boxes[:, 0], 0))
              & (np.minimum(boxes[:, 3], height) > np.maximum(boxes[:, 1], 0)))
    return boxes[inside], scores[inside]


def centre_square(width: int, height: int) -> Box:
    """The largest square in the middle of a width × height image."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def no_face_crop(image: np.ndarray, fallback: NoFace, size: int) -> np.ndarray:
    """What an image without a face becomes: the whole frame stretched, its centre square, or NoFaceFound."""
    if fallback == "resize":
        return ResizeCropper(size=size)(image)
    if fallback == "centre":
        return crop_square(image, centre_square(image.shape[1], image.shape[0]), size)
    if fallback == "drop":
        raise NoFaceFound(f"no face found in a {image.shape[1]}×{image.shape[0]} image")
    raise ValueError(f"no-face fallback must be one of {NO_FACE_FALLBACKS}, got {fallback!r}")


def crop_face(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, *, rule: PickRule, margin: float,
              size: int, fallback: NoFace) -> np.ndarray:
    """The whole policy: pick one of the detected faces, crop its margin square, or fall back when there is none."""
    index = pick_face(boxes, scores, rule)
    if index is None:
        return no_face_crop(image, fallback, size)
    box = tuple(float(v) for v in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[index])
    return crop_square(image, square_around(box, margin, image.shape[1], image.shape[0]), size)


class FaceCropper(CropperBase):
    """What every face-detecting cropper shares: a dataclass with `size`, `margin`, `pick`, `fallback` and
    `detect_side` fields and a `detect(image) -> (boxes, scores)` method (or a batched `detect_batch`) gets the
    cropper interface from here, and training (`crop_files`) and prediction (`crop_frames`) one crop policy: detect
    on a decode of `detect_side`, rank the faces by `pick`, cut each margin square from a decode just large enough."""

    size: int
    margin: float
    pick: PickRule
    fallback: NoFace
    detect_side: int  # long side the detector looks at
    batch_size: int = 1

    def check_policy(self) -> None:
        if self.pick not in PICK_RULES:
            raise ValueError(f"pick must be one of {PICK_RULES}, got {self.pick!r}")
        if self.fallback not in NO_FACE_FALLBACKS:
            raise ValueError(f"fallback must be one of {NO_FACE_FALLBACKS}, got {self.fallback!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        (found,) = self.detect_batch([image])
        faces = faces_inside(*found, image.shape[1], image.shape[0])
        return crop_face(image, *faces, rule=self.pick, margin=self.margin, size=self.size, fallback=self.fallback)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in an H×W×3 RGB image: (n, 4) float xyxy boxes in its pixels and (n,) scores."""
        raise NotImplementedError

    def detect_batch(self, batch: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.detect(image) for image in batch]

    def decode_side(self, width: int, height: int) -> int:
        return self.detect_side

    def crop_files(self, sources: list[SourceImage]) -> list[Cropped]:
        """Detect on decodes just large enough for the detector (JPEG DCT scaling), all in one batch; then cut each
        crop from a decode just large enough for the crop: the detector's own when it is, as for large faces."""
        small = [source.decode(self.detect_side) for source in sources]
        return [self._cropped(source, image, faces, scores)
                for source, image, (faces, scores) in zip(sources, small, self._detected(sources, small), strict=True)]

    def crop_frames(self, frames: list[Decodable], decoded: list[np.ndarray], conf: float | None,
                    max_faces: int) -> list[list[FaceCrop]]:
        return [self._face_crops(frame, image, faces, scores, conf, max_faces)
                for frame, image, (faces, scores) in zip(frames, decoded, self._detected(frames, decoded),
                                                         strict=True)]

    def _detected(self, frames: list[Decodable], decoded: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each frame's faces found on its reduced decode, in the frame's full-resolution pixels; one batch for all."""
        return [faces_inside(np.asarray(boxes, np.float64).reshape(-1, 4) * _ratio(frame, image), scores,
                             frame.width, frame.height)
                for frame, image, (boxes, scores) in zip(frames, decoded, self.detect_batch(decoded), strict=True)]

    def _cropped(self, source: SourceImage, decoded: np.ndarray, faces: np.ndarray, scores: np.ndarray) -> Cropped:
        """Training's crop of one source: the face `pick` prefers, or the fallback when there is none."""
        index = pick_face(faces, scores, self.pick)
        squares = [] if index is None else [self._square(source, faces[index])]
        image = self._decode_for(source, decoded, squares)
        seen = dict(faces=faces, scores=scores)
        if not squares:
            try:
                return Cropped(no_face_crop(image, self.fallback, self.size), **seen, fallback=self.fallback)
            except NoFaceFound:
                return Cropped(None, **seen, fallback="drop")
        (square,) = squares
        return Cropped(self.cut_square(image, square, source.width, source.height), **seen, picked=index,
                       square_side=square[2] - square[0])

    def _face_crops(self, frame: Decodable, decoded: np.ndarray, faces: np.ndarray, scores: np.ndarray,
                    conf: float | None, max_faces: int) -> list[FaceCrop]:
        """Prediction's crops of one frame: every face >= `conf` in `pick`'s order (the first is training's), as the
        cache stores them; none without a face."""
        kept = [i for i in rank_faces(faces, scores, self.pick) if conf is None or scores[i] >= conf][:max_faces]
        if not kept:
            return []
        squares = [self._square(frame, faces[i]) for i in kept]
        image = self._decode_for(frame, decoded, squares)
        limits = np.array([frame.width, frame.height] * 2, dtype=np.float64)
        return [FaceCrop(tuple(float(v) for v in np.clip(faces[i], 0, limits)), float(scores[i]),
                         as_stored(self.cut_square(image, square, frame.width, frame.height)))
                for i, square in zip(kept, squares, strict=True)]

    def _square(self, frame: Decodable, face: np.ndarray) -> Box:
        return square_around(tuple(face), self.margin, frame.width, frame.height)

    def _decode_for(self, frame: Decodable, decoded: np.ndarray, squares: list[Box]) -> np.ndarray:
        """`decoded`, or a larger decode of `frame` when a square (or, without one, the fallback's frame) needs more
        pixels to give `size` (JPEG DCT scaling: never more than the crop needs)."""
        sides = [square[2] - square[0] for square in squares] or [min(frame.width, frame.height)]
        needed = max(math.ceil(max(frame.width, frame.height) * min(1.0, self.size / side)) for side in sides)
        return decoded if max(decoded.shape[:2]) >= needed else frame.decode(needed)

    def cut_square(self, image: np.ndarray, square: Box, width: int, height: int) -> np.ndarray:
        """The crop of `square`, in the full-resolution pixels of a width × height source, from `image`: a decode of
        that source at any scale."""
        ratio_x, ratio_y = width / image.shape[1], height / image.shape[0]
        local = (square[0] / ratio_x, square[1] / ratio_y, square[2] / ratio_x, square[3] / ratio_y)
        return crop_square(image, local, self.size)


def _ratio(frame: Decodable, image: np.ndarray) -> np.ndarray:
    """Full-resolution pixels per pixel of a reduced decode, as an xyxy multiplier."""
    return np.array([frame.width / image.shape[1], frame.height / image.shape[0]] * 2)

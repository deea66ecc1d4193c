"""The resize baseline: the whole frame in the crop, stretched (paper) or letterboxed."""

from __future__ import annotations

import numpy as np
import pytest

from kemotion.core.keys import cropper_key
from kemotion.preprocess.resize import PAD_GREY, ResizeCropper, letterbox


def _quadrants(height: int, width: int) -> np.ndarray:
    """A landscape image whose left half is red and right half is blue."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 0] = 255
    image[:, width // 2:, 2] = 255
    return image


def test_stretch_keeps_the_whole_frame_in_a_square():
    crop = ResizeCropper(size=100)(_quadrants(300, 800))
    assert crop.shape == (100, 100, 3) and crop.dtype == np.uint8
    assert crop[50, 10].tolist() == [255, 0, 0] and crop[50, 90].tolist() == [0, 0, 255]
    assert (crop.sum(axis=2) > 0).all()  # stretched: no padding anywhere


def test_letterbox_keeps_the_aspect_and_pads():
    crop = ResizeCropper(size=100, keep_aspect=True)(_quadrants(300, 800))
    assert crop.shape == (100, 100, 3)
    filled_rows = np.flatnonzero((crop != PAD_GREY).any(axis=(1, 2)))
    assert len(filled_rows) == round(300 * 100 / 800)  # 38 rows of image, the rest padding
    assert abs((filled_rows[0] + filled_rows[-1]) / 2 - 49.5) <= 1  # centred


def test_letterbox_maps_a_box_onto_the_same_pixels():
    image = np.zeros((300, 800, 3), np.uint8)
    image[100:200, 500:700] = 255  # a white box in a black landscape image
    crop = ResizeCropper(size=160, keep_aspect=True)(image)
    x1, y1, x2, y2 = letterbox(800, 300, 160).map_box(500, 100, 700, 200)
    assert (x1, y1, x2, y2) == pytest.approx((100, 70, 140, 90))  # scale 0.2, 50 rows of padding on top
    white = np.argwhere(crop.min(axis=2) > 200)
    assert white.min(axis=0).tolist() == pytest.approx([y1, x1], abs=1)
    assert (white.max(axis=0) + 1).tolist() == pytest.approx([y2, x2], abs=1)


def test_enlarging_a_small_image_works():
    assert ResizeCropper(size=64)(_quadrants(20, 30)).shape == (64, 64, 3)


def test_cropper_key_changes_with_every_parameter():
    keys = {cropper_key(ResizeCropper()), cropper_key(ResizeCropper(size=224)),
            cropper_key(ResizeCropper(keep_aspect=True))}
    assert len(keys) == 3
    assert cropper_key(ResizeCropper()) == cropper_key(ResizeCropper())
    assert cropper_key(ResizeCropper()).startswith("resize-")

"""The Haar cascade cropper: a real detection on a drawn face, boxes in full-image pixels, fallbacks, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from kemotion.core.keys import cropper_key
from kemotion.data.synthetic.face import NEUTRAL, Pose, draw_person, sample_appearance
from kemotion.preprocess.face_crop import NoFaceFound, crop_square, square_around
from kemotion.preprocess.opencv import OpenCVCropper
from kemotion.preprocess.resize import ResizeCropper

BACKGROUND = 200


@pytest.fixture(scope="module")
def drawn_face() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 1600 × 1200 RGB image with one synthetic face the default cascade finds (checked: IoU 0.77), and its box."""
    canvas = np.full((1200, 1600, 3), BACKGROUND, np.uint8)
    appearance = sample_appearance(np.random.default_rng(2), feminine=False, senior=False)
    box = draw_person(canvas, appearance, NEUTRAL, Pose(x=800, y=520, scale=220, tilt=0.0))
    return np.ascontiguousarray(canvas[:, :, ::-1]), box  # drawn in BGR


def test_detects_the_drawn_face_in_full_image_pixels(drawn_face):
    image, box = drawn_face
    boxes, scores = OpenCVCropper().detect(image)
    assert boxes.shape == (1, 4) and scores.shape == (1,)
    assert box_iou(torch.tensor([box]), torch.from_numpy(boxes)).item() >= 0.5
    full = OpenCVCropper(detect_side=1600).detect(image)[0]  # no downscaling: the mapped-back box agrees
    assert box_iou(torch.from_numpy(full), torch.from_numpy(boxes)).item() >= 0.8


def test_crops_the_margin_square_around_the_detection(drawn_face):
    image, _ = drawn_face
    cropper = OpenCVCropper(size=200, margin=0.3)
    boxes, _ = cropper.detect(image)
    crop = cropper(image)
    assert crop.shape == (200, 200, 3) and crop.dtype == np.uint8
    expected = crop_square(image, square_around(tuple(boxes[0]), 0.3, 1600, 1200), 200)
    np.testing.assert_array_equal(crop, expected)
    assert not np.array_equal(crop, ResizeCropper(size=200)(image))  # not the fallback


def test_a_blank_image_has_no_face_and_uses_the_fallback():
    blank = np.full((900, 1600, 3), BACKGROUND, np.uint8)
    boxes, scores = OpenCVCropper().detect(blank)
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    np.testing.assert_array_equal(OpenCVCropper(size=64)(blank), ResizeCropper(size=64)(blank))
    with pytest.raises(NoFaceFound):
        OpenCVCropper(fallback="drop")(blank)


def test_a_minimum_size_larger_than_the_face_finds_nothing(drawn_face):
    image, _ = drawn_face  # the face is ~400 px of a 1200 px short side
    assert len(OpenCVCropper(min_size=0.6).detect(image)[0]) == 0
    assert len(OpenCVCropper(min_size=700).detect(image)[0]) == 0


def test_pickles_and_keys_by_parameters(drawn_face):
    cropper = OpenCVCropper()
    cropper.detect(drawn_face[0])  # the cascade is now loaded in this process: it must not travel with the cropper
    clone = pickle.loads(pickle.dumps(cropper))
    assert clone == cropper and cropper_key(clone) == cropper_key(OpenCVCropper())
    assert cropper_key(OpenCVCropper(min_neighbors=3)) != cropper_key(cropper)


@pytest.mark.parametrize("bad", [{"pick": "first"}, {"fallback": "skip"}, {"scale_factor": 1.0},
                                 {"min_size": 0}, {"detect_side": 0}])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        OpenCVCropper(**bad)


def test_a_missing_cascade_is_an_error():
    with pytest.raises(FileNotFoundError):
        OpenCVCropper(cascade="no_such_cascade.xml").detect(np.zeros((64, 64, 3), np.uint8))

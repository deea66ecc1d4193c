"""The shared crop policy: margin square around the face, PAD_GREY outside the image, no distortion, fallbacks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from PIL import Image

from kemotion.data.images import EXIF_ORIENTATION_TAG, load_rgb
from kemotion.preprocess import cropper as cropper_module
from kemotion.preprocess.cropper import SourceImage
from kemotion.preprocess.face_crop import (
    FaceCropper,
    NoFaceFound,
    centre_square,
    crop_face,
    crop_square,
    no_face_crop,
    pick_face,
    square_around,
)
from kemotion.preprocess.resize import PAD_GREY, ResizeCropper

RED, BLUE, WHITE = (200, 0, 0), (0, 0, 200), (255, 255, 255)


def test_margin_is_a_fraction_of_the_longer_side_on_each_side():
    # a wide 100 × 50 box: side = 100 · (1 + 2 · 0.2) = 140, centred on (150, 125)
    assert square_around((100, 100, 200, 150), 0.2, 1000, 1000) == pytest.approx((80, 55, 220, 195))


def test_a_tall_box_becomes_a_square_of_its_height_plus_margins_centred():
    x1, y1, x2, y2 = square_around((10, 20, 40, 120), 0.1, 1000, 1000)
    assert (x1, y1, x2, y2) == pytest.approx((-35, 10, 85, 130))  # may leave the image: crop_square pads
    assert x2 - x1 == pytest.approx(y2 - y1) == pytest.approx(100 * 1.2)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((25, 70))


def test_zero_margin_is_the_square_of_the_longer_side_never_shrunk():
    assert square_around((10, 20, 40, 120), 0.0, 1000, 1000) == pytest.approx((-25, 20, 75, 120))


def test_a_box_poking_out_of_the_image_is_clipped_first():
    assert square_around((-50, 10, 50, 110), 0.0, 200, 200) == pytest.approx((-25, 10, 75, 110))


@pytest.mark.parametrize(("box", "margin"), [((300, 10, 400, 50), 0.2), ((10, 10, 10, 50), 0.2),
                                             ((10, 10, 50, 50), -0.1)])
def test_empty_boxes_and_negative_margins_are_refused(box, margin):
    with pytest.raises(ValueError):
        square_around(box, margin, 200, 200)


def test_a_corner_face_is_padded_exactly_where_the_square_leaves_the_image():
    image = np.full((100, 100, 3), RED, np.uint8)
    image[:20, :20] = WHITE  # the "face" in the top-left corner
    square = square_around((0, 0, 20, 20), 0.5, 100, 100)
    assert square == pytest.approx((-10, -10, 30, 30))
    crop = crop_square(image, square, 40)  # 40 px square → 40 px crop: no resampling, exact pixels
    assert (crop[:10] == PAD_GREY).all() and (crop[:, :10] == PAD_GREY).all()
    assert (crop[10:30, 10:30] == WHITE).all()
    assert (crop[30:, 10:] == RED).all() and (crop[10:, 30:] == RED).all()


def test_resizing_keeps_the_face_where_it_was_relative_to_the_square():
    image = np.full((100, 100, 3), RED, np.uint8)
    image[:20, :20] = WHITE
    crop = crop_square(image, (-10, -10, 30, 30), 80)  # enlarged × 2
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    assert (crop[22:58, 22:58] == WHITE).all() and (crop[:18] == PAD_GREY).all() and (crop[62:, 62:] == RED).all()


def test_shrinking_averages_areas():
    image = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    crop = crop_square(image, (0, 0, 400, 400), 100)
    block_means = image.reshape(100, 4, 100, 4, 3).mean(axis=(1, 3))
    assert np.abs(crop - block_means).max() <= 1  # INTER_AREA; bilinear would sample 2 of 16 noisy pixels


def test_no_distortion_a_circle_stays_a_circle():
    image = np.zeros((300, 600, 3), np.uint8)
    cv2.circle(image, (450, 150), 40, WHITE, thickness=-1)
    crop = crop_face(image, np.array([[420, 100, 480, 200]]), np.ones(1), rule="largest", margin=0.2, size=500,
                     fallback="drop")  # a tall "face" box around the circle: square side 100 · 1.4 = 140
    ys, xs = np.nonzero(crop[:, :, 0] > 127)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert abs(width - height) <= 1
    assert width == pytest.approx(81 * 500 / 140, abs=2)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_an_upright_box_crops_the_face_of_a_rotated_stored_jpeg(tmp_path, orientation):
    upright = np.full((120, 200, 3), BLUE, np.uint8)
    upright[20:60, 130:170] = RED  # the face, box (130, 20, 170, 60) in the upright frame
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    path = tmp_path / "rotated.jpg"
    Image.fromarray(upright).transpose(stored[orientation]).save(path, "JPEG", quality=95, exif=exif)
    image = load_rgb(path)
    assert image.shape == (120, 200, 3)
    crop = crop_square(image, square_around((130, 20, 170, 60), 0.25, 200, 120), 60)  # square (120, 10, 180, 70)
    red = crop[:, :, 0].astype(int) - crop[:, :, 2] > 100
    ys, xs = np.nonzero(red)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == pytest.approx((10, 49, 10, 49), abs=1)
    assert red[14:46, 14:46].all() and not red[:6].any() and not red[54:].any()


def test_pick_face_rules():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 30, 20], [5, 5, 25, 25]])
    scores = np.array([0.9, 0.1, 0.5])
    assert pick_face(boxes, scores, "largest") == 1  # area 600 > 400 > 100
    assert pick_face(boxes, scores, "confident") == 0
    assert pick_face(np.array([[0, 0, 10, 10], [5, 5, 15, 15]]), np.ones(2), "largest") == 0  # ties: the first
    assert pick_face(np.zeros((0, 4)), np.zeros(0), "largest") is None
    with pytest.raises(ValueError):
        pick_face(boxes, scores, "biggest")


def test_crop_face_uses_the_picked_box():
    image = np.full((100, 200, 3), RED, np.uint8)
    image[40:60, 150:170] = WHITE
    boxes = np.array([[10, 10, 20, 20], [150, 40, 170, 60]])
    crop = crop_face(image, boxes, np.array([0.9, 0.1]), rule="largest", margin=0.5, size=40, fallback="drop")
    assert (crop[10:30, 10:30] == WHITE).all() and (crop[:10] == RED).all()


def _columns(height: int, width: int) -> np.ndarray:
    """An image whose red channel is its column index: which columns a crop took is readable from it."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.arange(width, dtype=np.uint8)[None, :]
    return image


def test_no_face_resize_is_the_papers_whole_image_stretch():
    image = _columns(100, 240)
    for crop in (no_face_crop(image, "resize", 50),
                 crop_face(image, np.zeros((0, 4)), np.zeros(0), rule="largest", margin=0.2, size=50,
                           fallback="resize")):
        np.testing.assert_array_equal(crop, ResizeCropper(size=50)(image))


def test_no_face_centre_takes_the_middle_square():
    image = _columns(100, 240)
    assert centre_square(240, 100) == (70, 0, 170, 100)
    np.testing.assert_array_equal(no_face_crop(image, "centre", 100), image[:, 70:170])


def test_no_face_drop_raises_a_value_error_the_cache_can_count():
    image = _columns(100, 240)
    with pytest.raises(NoFaceFound, match="240×100"):
        crop_face(image, np.zeros((0, 4)), np.zeros(0), rule="largest", margin=0.2, size=50, fallback="drop")
    assert issubclass(NoFaceFound, ValueError)
    with pytest.raises(ValueError, match="fallback"):
        no_face_crop(image, "skip", 50)


@dataclass(frozen=True)
class FixedFace(FaceCropper):
    """A face cropper whose 'detector' always finds the same box, given as fractions of the frame."""

    where: tuple[float, float, float, float] = (0.4, 0.3, 0.6, 0.5)
    size: int = 64
    margin: float = 0.2
    pick: str = "largest"
    fallback: str = "resize"
    detect_side: int = 100
    name: str = "fixed"

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        return np.array([self.where]) * [width, height, width, height], np.array([1.0])


@pytest.fixture()
def large_jpeg(tmp_path):
    """A 1600×1200 JPEG with smooth structure everywhere (so reduced decodes are comparable)."""
    y, x = np.mgrid[0:1200, 0:1600]
    image = np.stack([(x * 7 + y * 3) % 256, (x // 4 + y // 2) % 256, (128 + 100 * np.sin(x / 40)).astype(int)],
                     axis=2).astype(np.uint8)
    path = tmp_path / "large.jpg"
    Image.fromarray(image).save(path, quality=95)
    return str(path), load_rgb(path)


def test_crop_files_decodes_small_for_the_detector_and_crops_like_full_resolution(large_jpeg, monkeypatch):
    path, full = large_jpeg
    decodes = []
    monkeypatch.setattr(cropper_module.images, "load_rgb", lambda p, max_side=None: decodes.append(max_side) or
                        load_rgb(p, max_side=max_side))
    cropper = FixedFace(size=56)  # the face is 320 × 240, its square 1.4 × 320 = 448 px: 56 px at 1/8 scale
    (cropped,) = cropper.crop_files([SourceImage(path, 1600, 1200)])
    assert decodes == [100]  # one decode at 1/8 scale (200 × 150) sufficed for the detector and the crop
    assert cropped.faces.tolist() == [pytest.approx([640, 360, 960, 600])]  # in full-resolution pixels
    assert cropped.picked == 0 and cropped.square_side == pytest.approx(448) and cropped.fallback is None
    assert np.abs(cropped.image.astype(int) - cropper(full).astype(int)).mean() < 6  # same content as full-res

    decodes.clear()
    (sharp,) = FixedFace(size=300).crop_files([SourceImage(path, 1600, 1200)])  # 300 of 448 px: a 2nd decode
    assert decodes == [100, 1072] and sharp.image.shape == (300, 300, 3)  # long side 1600 × 300 / 448, rounded up
    assert np.abs(sharp.image.astype(int) - FixedFace(size=300)(full).astype(int)).mean() < 3


def test_crop_files_records_the_fallback_and_drops_without_an_image(large_jpeg):
    path, _ = large_jpeg
    source = SourceImage(path, 1600, 1200)
    (dropped,) = NoFaceAtAll(fallback="drop").crop_files([source])
    assert dropped.image is None and dropped.fallback == "drop" and dropped.faces.shape == (0, 4)
    (kept,) = NoFaceAtAll(fallback="centre").crop_files([source])
    assert kept.image.shape == (64, 64, 3) and kept.fallback == "centre" and kept.square_side is None


@dataclass(frozen=True)
class NoFaceAtAll(FixedFace):
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, 4)), np.zeros(0)


@pytest.mark.parametrize("where", [(0.1, 0.1, 0.1, 0.2), (-0.5, 0.1, -0.1, 0.3), (0.2, 1.1, 0.4, 1.3)])
def test_a_detected_box_without_area_in_the_frame_is_no_face_not_a_crash(large_jpeg, where):
    """A detector can put a box of zero width, or one wholly in the letterbox padding, outside the frame: training's
    crop cache and predict raised "face box ... has no area inside the image" and stopped."""
    path, full = large_jpeg
    cropper = FixedFace(where=where, fallback="centre")
    (cropped,) = cropper.crop_files([SourceImage(path, 1600, 1200)])
    assert cropped.fallback == "centre" and cropped.picked is None and cropped.faces.shape == (0, 4)
    assert cropper(full).shape == (64, 64, 3)
    assert cropper.crop_frames([SourceImage(path, 1600, 1200)], [full], conf=None, max_faces=5) == [[]]

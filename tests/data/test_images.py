"""Probing and loading images drawn in tmp_path: bad files, non-RGB modes, EXIF orientation, draft decoding."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from kemotion.data.images import BadImage, ImageInfo, load_rgb, probe_image, upright_size

GREY = (128, 128, 128)
RED = (230, 20, 20)
MARKER = 60  # side of the red square drawn at the stored frame's top-left corner


def draw(path: Path, size=(400, 300), mode="RGB", fmt="JPEG", orientation: int | None = None) -> Path:
    """A grey image (width, height) with a red square at the STORED top-left, saved as `fmt` under `path`."""
    img = Image.new("RGB", size, GREY)
    img.paste(RED, (0, 0, MARKER, MARKER))
    img = img.convert(mode)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    img.save(path, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def is_red(pixel: np.ndarray) -> bool:
    return pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80


def test_probe_plain_jpeg(tmp_path):
    path = draw(tmp_path / "a.jpg")
    assert probe_image(path) == ImageInfo(400, 300, 1, "JPEG", "RGB")


def test_random_bytes_are_a_corrupt_image(tmp_path):
    path = tmp_path / "random.jpg"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(BadImage) as caught:
        probe_image(path)
    assert caught.value.kind == "corrupt image"
    assert "random.jpg" in str(caught.value)


def test_empty_file_is_a_corrupt_image(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(BadImage, match="empty.jpg.*empty file") as caught:
        probe_image(path)
    assert caught.value.kind == "corrupt image"


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg(tmp_path, progressive):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (300, 400, 3), np.uint8)).save(
        whole, progressive=progressive
    )
    path = tmp_path / "half.jpg"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for read in (probe_image, load_rgb):
        with pytest.raises(BadImage) as caught:
            read(path)
        assert caught.value.kind == "truncated image"
        assert "half.jpg" in str(caught.value)


def test_truncation_is_detected_even_when_other_code_allows_it(tmp_path, monkeypatch):
    whole = draw(tmp_path / "whole.jpg")
    path = tmp_path / "half.jpg"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(BadImage) as caught:
        probe_image(path)
    assert caught.value.kind == "truncated image"


def test_missing_file(tmp_path):
    with pytest.raises(BadImage, match="gone.jpg") as caught:
        probe_image(tmp_path / "gone.jpg")
    assert caught.value.kind == "image missing"


def test_heic_named_jpg_is_unsupported(tmp_path):
    path = tmp_path / "iphone.jpg"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100))
    with pytest.raises(BadImage, match="iphone.jpg") as caught:
        probe_image(path)
    assert caught.value.kind == "unsupported image"


def test_png_named_jpg_is_read_by_content(tmp_path):
    path = draw(tmp_path / "png.jpg", fmt="PNG")
    assert probe_image(path) == ImageInfo(400, 300, 1, "PNG", "RGB")
    rgb = load_rgb(path)
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[10, 10]) == RED


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_greyscale_and_cmyk_jpeg_load_as_rgb(tmp_path, mode):
    path = draw(tmp_path / f"{mode}.jpg", mode=mode)
    assert probe_image(path) == ImageInfo(400, 300, 1, "JPEG", mode)
    rgb = load_rgb(path)
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.uint8
    if mode == "L":
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    else:
        assert is_red(rgb[10, 10]) and not is_red(rgb[200, 200])


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA"])
def test_palette_and_alpha_png_load_as_rgb(tmp_path, mode):
    rgb = load_rgb(draw(tmp_path / f"{mode}.png", mode=mode, fmt="PNG"))
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.uint8


def test_orientation_6_is_rotated_upright(tmp_path):
    path = draw(tmp_path / "rot6.jpg", size=(400, 300), orientation=6)  # stored landscape, upright portrait
    assert probe_image(path) == ImageInfo(300, 400, 6, "JPEG", "RGB")
    rgb = load_rgb(path)
    assert rgb.shape == (400, 300, 3)
    # orientation 6 = rotate 90° clockwise to view: the stored top-left corner lands at the upright top-right
    assert is_red(rgb[MARKER // 2, 300 - MARKER // 2])
    assert not is_red(rgb[MARKER // 2, MARKER // 2]) and not is_red(rgb[400 - MARKER // 2, MARKER // 2])


def test_orientation_3_is_rotated_upright(tmp_path):
    path = draw(tmp_path / "rot3.jpg", size=(400, 300), orientation=3)
    assert probe_image(path) == ImageInfo(400, 300, 3, "JPEG", "RGB")
    rgb = load_rgb(path)
    assert rgb.shape == (300, 400, 3)
    assert is_red(rgb[300 - MARKER // 2, 400 - MARKER // 2])  # 180°: top-left lands bottom-right
    assert not is_red(rgb[MARKER // 2, MARKER // 2])


def test_invalid_orientation_counts_as_upright(tmp_path):
    path = draw(tmp_path / "rot9.jpg", orientation=9)
    assert probe_image(path).orientation == 1
    assert load_rgb(path).shape == (300, 400, 3)


def test_max_side_decodes_smaller_but_not_below_max_side(tmp_path):
    path = draw(tmp_path / "big.jpg", size=(1600, 1200))
    assert load_rgb(path, max_side=200).shape == (150, 200, 3)  # exactly 1/8
    shape = load_rgb(path, max_side=300).shape  # 1/5 is not a DCT scale: 1/4 is the smallest >= 300
    assert shape == (300, 400, 3)
    assert load_rgb(path, max_side=5000).shape == (1200, 1600, 3)  # never upscaled


def test_max_side_keeps_orientation(tmp_path):
    path = draw(tmp_path / "big6.jpg", size=(1600, 1200), orientation=6)
    rgb = load_rgb(path, max_side=200)
    assert rgb.shape == (200, 150, 3)
    assert is_red(rgb[3, 150 - 4])


def test_a_corrupt_image_is_still_reported_after_ultralytics_patched_pil(tmp_path):
    """ultralytics' import replaces PIL.Image.open with one that tries to pip-install pi-heif on such files."""
    import kemotion.models.yolo  # noqa: F401  (imports ultralytics, which applies its patch)

    assert Image.open.__module__ == "ultralytics.utils.patches"
    path = tmp_path / "noise.jpg"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BadImage) as raised:
        probe_image(path)
    assert raised.value.kind == "corrupt image"


def test_a_16_bit_greyscale_png_is_scaled_to_8_bit_not_clipped_white(tmp_path):
    """PIL's own conversion of mode I;16 clips every value above 255: the picture came out all white."""
    values = np.array([[0, 256, 100 * 256, 32768, 65535]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert probe_image(path).mode == "I;16"
    rgb = load_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    assert rgb[0, :, 0].tolist() == [0, 1, 100, 128, 255]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGB"), ("PNG", "P"), ("PNG", "I;16"), ("BMP", "RGB"),
                                           ("WEBP", "RGB"), ("TIFF", "RGB"), ("TIFF", "I;16")])
def test_max_side_bounds_every_format_not_only_jpeg(tmp_path, fmt, mode):
    """A memory proxy: what a decode at max_side returns (and what a batch holds) is under 2 × max_side on its long
    side in every format; a 2400 px PNG came back at 2400 px."""
    picture = Image.new("RGB", (2400, 1600), (20, 20, 230))
    picture.paste(RED, (0, 0, 1200, 1600))
    if mode == "I;16":
        picture = Image.fromarray(np.asarray(picture.convert("L"), np.uint16) * 257)
    else:
        picture = picture.convert(mode)
    path = tmp_path / f"big.{fmt.lower()}"
    picture.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    rgb = load_rgb(path, max_side=300)
    assert 300 <= max(rgb.shape[:2]) < 600 and rgb.shape[1] * 2 == rgb.shape[0] * 3  # aspect kept: 3:2
    left, right = rgb[rgb.shape[0] // 2, 5], rgb[rgb.shape[0] // 2, -5]
    if mode == "I;16":
        assert left[0] > right[0] + 20  # red is lighter than blue in grey
    else:
        assert is_red(left) and right[2] > 180 and right[0] < 80


def test_max_side_reduces_after_orientation_is_read(tmp_path):
    path = draw(tmp_path / "big6.png", size=(1600, 1200), fmt="PNG", orientation=6)
    rgb = load_rgb(path, max_side=200)
    assert rgb.shape == (200, 150, 3)  # reduced by 8, then turned upright
    assert is_red(rgb[3, 150 - 4])  # the stored top-left is the upright top-right


def test_a_fifo_named_jpg_is_a_bad_image_at_once(tmp_path):
    from tests.data.test_files import feed_fifo, returns_within

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    for read in (probe_image, load_rgb, upright_size):
        with pytest.raises(BadImage, match=r"pipe\.jpg: not a regular file: a FIFO") as raised:
            returns_within(5, lambda read=read: read(fifo), unblock=lambda: feed_fifo(fifo))
        assert raised.value.kind == "not a regular file"


def test_a_16_bit_tiff_is_scaled_to_8_bit_as_a_16_bit_png_is(tmp_path):
    grey = np.array([[0, 256, 100 * 256, 32768, 65535]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey.tif")
    assert probe_image(tmp_path / "grey.tif").mode == "I;16"
    assert load_rgb(tmp_path / "grey.tif")[0, :, 1].tolist() == [0, 1, 100, 128, 255]
    colour = np.array([[[65535, 32768, 0], [256, 100 * 256, 65535]]], np.uint16)
    assert cv2.imwrite(str(tmp_path / "colour.tif"), colour[..., ::-1])  # PIL writes no 16-bit RGB; OpenCV does
    assert load_rgb(tmp_path / "colour.tif").tolist() == [[[255, 128, 0], [1, 100, 255]]]  # each channel's high byte


@pytest.mark.parametrize("mode", ["RGB", "I;16"])
def test_a_tiff_is_turned_upright_once(tmp_path, mode):
    """Pillow turns a TIFF upright itself when it loads it, and (from Pillow 11) gives its size upright already when
    it opens it: the header size must not be turned a second time."""
    path = draw(tmp_path / "rot6.tif", size=(400, 300), fmt="TIFF", orientation=6)
    if mode == "I;16":  # the same picture, stored in 16-bit grey
        stored = np.asarray(Image.open(draw(tmp_path / "stored.png", fmt="PNG")).convert("L"), np.uint16)
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(stored * 257).save(path, exif=exif)
    assert upright_size(path) == (300, 400)
    assert probe_image(path) == ImageInfo(300, 400, 6, "TIFF", mode)
    for max_side in (None, 100):
        rgb = load_rgb(path, max_side=max_side)
        assert rgb.shape == ((400, 300, 3) if max_side is None else (100, 75, 3))
        corner = rgb[2, rgb.shape[1] - 3]  # the stored top-left is the upright top-right
        assert is_red(corner) if mode == "RGB" else corner[0] < 100  # red is darker than grey in grey


def test_a_tiff_of_floats_is_refused_not_clipped_black(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(path)
    with pytest.raises(BadImage, match=r"float\.tif: unsupported image: mode F .*floating-point") as raised:
        load_rgb(path)
    assert raised.value.kind == "unsupported image"

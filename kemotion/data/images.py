"""Probing and loading dataset images: the one place that opens them.

Every path here applies EXIF orientation, because AI-Hub's face boxes are in the upright (EXIF-applied) frame
and about a third of its selfies carry a non-identity orientation. Truncated files are refused, never padded. Only
regular files are opened, and only as one of `FORMATS`: PIL knows dozens of formats by their content, some of which
hand the file to other programs (EPS to Ghostscript), so an EPS named `.jpg` is refused, not decoded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from kemotion.data.files import NotARegularFile, open_regular

log = logging.getLogger(__name__)

EXIF_ORIENTATION_TAG = 0x0112
TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # the upright frame swaps width and height
PROBE_SCALE = 8  # JPEG DCT scaling 1/8: decodes every byte (truncation shows) at ~1/64 of the pixels
# PIL format names kemotion decodes: a camera's MPO opens as JPEG; a TIFF is read at its first page, 16-bit channels
# as their high bytes (as 16-bit PNG)
FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF")
TIFF_WIDTH, TIFF_LENGTH = 256, 257  # the tags of a TIFF's stored size
DCT_FORMATS = frozenset({"JPEG", "MPO"})  # decoded reduced by PIL's draft (DCT scaling)
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})  # 16-bit greyscale PNG ("I" in older PIL)


class BadImage(ValueError):
    """An image that cannot be used; `kind` is the report category, the message names the file."""

    def __init__(self, path: str | Path, kind: str, reason: str) -> None:
        super().__init__(f"{path}: {kind}: {reason}")
        self.path = str(path)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    width: int  # upright frame, after EXIF orientation
    height: int
    orientation: int  # EXIF orientation 1-8; 1 when absent or invalid
    format: str  # PIL format of the content, e.g. "JPEG" (a PNG named .jpg says "PNG")
    mode: str  # PIL mode of the content, e.g. "RGB", "L", "CMYK"


def probe_image(path: str | Path) -> ImageInfo:
    """Size, orientation, format and mode of an image that decodes completely; BadImage otherwise.

    Cheap: JPEGs are decoded at 1/8 scale, which still reads every byte, so truncation is detected.
    """
    with _opened(path) as img:
        try:
            (w, h), image_format, mode = _stored_size(img), img.format or "", img.mode  # before draft changes them
            tiff_orientation = _orientation(img) if image_format == "TIFF" else None  # Pillow drops it once applied
            img.draft("RGB", (max(1, w // PROBE_SCALE), max(1, h // PROBE_SCALE)))
            img.load()
            orientation = tiff_orientation or _orientation(img)  # after load: a PNG's eXIf chunk may follow its pixels
        except Exception as exc:
            raise _bad_decode(path, exc) from exc
    if orientation in TRANSPOSED_ORIENTATIONS:
        w, h = h, w
    return ImageInfo(w, h, orientation, image_format, mode)


def upright_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the upright (EXIF-applied) image from its header alone, nothing decoded; BadImage when it
    does not open. Decoding errors show later, in `load_rgb`."""
    with _opened(path) as img:
        try:
            (w, h), orientation = _stored_size(img), _orientation(img)
        except Exception as exc:
            raise _bad_decode(path, exc) from exc
    return (h, w) if orientation in TRANSPOSED_ORIENTATIONS else (w, h)


def load_rgb(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """The upright image as RGB uint8 H×W×3 (greyscale, 16-bit greyscale, CMYK, palette and alpha converted).

    With `max_side`, the result's long side is at least max_side (unless the image is smaller) and bounded: JPEGs are
    decoded at the smallest DCT scale that keeps max_side (at most 1/8: the rest of the resolution often spares a
    face crop a second decode), other formats are decoded whole and box-reduced by the largest whole factor that keeps
    max_side, before any conversion, so a 12000 px PNG is held at full size once, in its own mode, and never returned
    at that size. The caller resizes, and scales boxes by the returned shape.
    """
    with _opened(path) as img:
        try:
            if max_side is not None:
                img.draft("RGB", _draft_size(img.size, max_side))
            img.load()
        except Exception as exc:
            raise _bad_decode(path, exc) from exc
        mode, drafted = img.mode, img.format in DCT_FORMATS
        try:
            img = _eight_bit(img)
            if max_side is not None and not drafted:
                img = _reduced(img, max_side)
            return np.asarray(_to_rgb(ImageOps.exif_transpose(img)), dtype=np.uint8)
        except Exception as exc:
            raise BadImage(path, "unsupported image", f"mode {mode} cannot be converted to RGB: {exc}") from exc


@contextlib.contextmanager
def _opened(path: str | Path) -> Iterator[Image.Image]:
    """A regular file opened by PIL as one of FORMATS, with strict decoding; every failure to open is a BadImage
    naming the file."""
    _require_strict_decoding()
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(open_regular(path))
            img = stack.enter_context(_pil_open()(handle, formats=FORMATS))
        except FileNotFoundError as exc:
            raise BadImage(path, "image missing", "no such file") from exc
        except NotARegularFile as exc:
            raise BadImage(path, "not a regular file", str(exc).removeprefix(f"{path}: ")) from exc
        except UnidentifiedImageError as exc:
            raise _unidentified(path, handle) from exc
        except Image.DecompressionBombError as exc:
            raise BadImage(path, "unsupported image", str(exc)) from exc
        except OSError as exc:
            raise BadImage(path, "unreadable image", str(exc)) from exc
        yield img


def _pil_open() -> Callable[..., Image.Image]:
    """PIL's own `Image.open`. ultralytics replaces it when imported with one that, on a file PIL cannot identify,
    tries to install pi-heif and, offline, raises ModuleNotFoundError instead of UnidentifiedImageError: a corrupt
    JPEG would then crash a run instead of being reported. Its patch keeps the original as `_image_open`."""
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open) if patches is not None else Image.open


def _require_strict_decoding() -> None:
    # Many libraries set this global True to "fix" truncated files; we must see truncation to report it.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        log.warning("PIL ImageFile.LOAD_TRUNCATED_IMAGES was set True by other code; resetting it to False")
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def _orientation(img: Image.Image) -> int:
    value = img.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the pixels as stored, before orientation. Pillow turns a TIFF upright itself as it loads it
    (and drops its orientation tag), and from Pillow 11 gives its size upright already when it opens it; its own tags
    give the stored size in every version."""
    if img.format == "TIFF":
        return img.tag_v2[TIFF_WIDTH], img.tag_v2[TIFF_LENGTH]
    return img.size


def _draft_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The draft request keeping the aspect ratio, so that the decoded longer side stays >= max_side."""
    scale = min(1.0, max_side / max(size))
    return max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))


def _eight_bit(img: Image.Image) -> Image.Image:
    """Modes that must change before pixels are averaged: palette → RGBA (an average of palette indices is another
    colour), 1-bit → L, and 16-bit greyscale → L scaled to 0-255 (PIL's own conversion clips every value above 255,
    so a 16-bit PNG would come out white). Floating-point pixels (TIFF) are refused."""
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(img)
        if values.dtype.itemsize != 2:  # "I": 32-bit integers holding 16-bit values
            values = np.clip(values, 0, 65535).astype(np.uint16)
        high = values.astype("<u2", copy=False).view(np.uint8)[..., 1::2]  # each value's high byte: value // 256
        eight = Image.fromarray(np.ascontiguousarray(high))
        eight.info = img.info  # the EXIF orientation
        return eight
    if img.mode == "F":  # a TIFF of floats: PIL's conversion clips them to 0-255, so 0.0-1.0 would come out black
        raise ValueError("32-bit floating-point pixels have no fixed range; save it with 8 or 16 bits")
    if img.mode in ("P", "PA"):
        return img.convert("RGBA")  # palette transparency must go through RGBA
    return img.convert("L") if img.mode == "1" else img


def _reduced(img: Image.Image, max_side: int) -> Image.Image:
    """Box-reduced by the largest whole factor that keeps the long side >= max_side: below 2 × max_side after."""
    factor = max(img.size) // max(1, max_side)
    return img.reduce(factor) if factor >= 2 else img


def _to_rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


def _bad_decode(path: str | Path, exc: Exception) -> BadImage:
    message = str(exc) or type(exc).__name__
    if "truncated" in message:
        return BadImage(path, "truncated image", f"{message}; an interrupted download or copy?")
    return BadImage(path, "corrupt image", message)


def _unidentified(path: str | Path, handle: BinaryIO) -> BadImage:
    """Random bytes, an empty file, a format PIL cannot read (HEIC from iPhones), or one kemotion does not open."""
    handle.seek(0)
    head = handle.read(16)
    if not head:
        return BadImage(path, "corrupt image", "empty file")
    if head[4:8] == b"ftyp":
        return BadImage(path, "unsupported image", "HEIF/HEIC content; convert it to JPEG")
    known = _format_of(head)
    if known is not None:
        return BadImage(path, "unsupported image", f"{known} content; kemotion reads {', '.join(FORMATS)} only "
                                                   "(not opened)")
    return BadImage(path, "corrupt image", "not a readable image (cannot identify the format)")


def _format_of(head: bytes) -> str | None:
    """The format whose signature `head` carries, asked of PIL's plugins' own signature checks (which only compare
    bytes; nothing is opened or decoded)."""
    Image.init()
    for name, (_, accept) in Image.OPEN.items():
        if accept is not None and accept(head) is True:
            return name
    return None

"""What prediction reads: an image file, a folder (recursive), a glob, a video file or a webcam, as a stream of
`Frame`s decoded only when the pipeline asks (images: at the size it needs, EXIF applied; video: one frame at a time).

A file that cannot be opened becomes a `Skip` with its reason, and the stream goes on; a source that is not there, a
video that will not open or a folder without images is an error naming it. A frame's `source` is an absolute path, and
`frame_key` (its real path and frame index) is what a resumed run compares, however the source was spelled.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kemotion.data import images
from kemotion.data.files import Listing, glob_files, walk_files

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")
FRAME_COUNT_SLACK = 1  # a header's frame count may be estimated from duration × fps: one frame short is not truncation


@dataclass(frozen=True)
class Frame:
    """One image or video frame, decoded on demand."""

    source: str  # the file (or "webcam:N", "<array>")
    index: int  # frame number in a video (every frame counted, strided or not); 0 for an image
    width: int  # upright, full resolution
    height: int
    decode: Callable[[int | None], np.ndarray]  # max_side → upright RGB uint8 with long side >= max_side (or full)


@dataclass(frozen=True)
class Skip:
    source: str
    reason: str


FrameKey = tuple[str, int]  # (real path of the file, frame index): one image or video frame, however it was spelled


def frame_key(source: str | Path, index: int = 0) -> FrameKey:
    return os.path.realpath(source), index


def image_frame(path: str | Path) -> Frame:
    """A frame of an image file; BadImage when its header does not open."""
    width, height = images.upright_size(path)
    return Frame(str(path), 0, width, height, lambda side: images.load_rgb(path, max_side=side))


def array_frame(array: np.ndarray, source: str = "<array>", index: int = 0, bgr: bool = False) -> Frame:
    """A frame of an H×W×3 uint8 array, RGB unless `bgr` (OpenCV's order); greyscale H×W is accepted too."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    elif array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{source}: need an H×W×3 uint8 image, got shape {array.shape} and dtype {array.dtype}")
    elif bgr:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    array = np.ascontiguousarray(array)
    return Frame(source, index, array.shape[1], array.shape[0], lambda side: array)


def as_frame(image: str | Path | np.ndarray | object, bgr: bool = False) -> Frame:
    """A path, a PIL image (EXIF applied) or a numpy array (RGB unless `bgr`) as a frame."""
    if isinstance(image, str | Path):
        return image_frame(image)
    if isinstance(image, np.ndarray):
        return array_frame(image, bgr=bgr)
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        return array_frame(np.asarray(ImageOps.exif_transpose(image).convert("RGB")), source="<PIL image>")
    raise TypeError(f"an image is a path, a PIL image or a numpy array, not a {type(image).__name__}")


@dataclass(frozen=True)
class Source:
    """A parsed SOURCE: image files (sorted), or one video / webcam."""

    spec: str
    files: tuple[Path, ...] = ()
    video: str | int | None = None  # a video file or a webcam index

    def __len__(self) -> int:
        return len(self.files) if self.video is None else _frame_count(self.video)

    @property
    def resolved(self) -> str:
        """The source however it was spelled (relative, through a link): its real absolute path (a glob: of its
        pattern), or `webcam:N`."""
        if isinstance(self.video, int):
            return f"webcam:{self.video}"
        return os.path.realpath(os.path.expanduser(self.spec))

    @property
    def root(self) -> Path:
        """The folder the files are named relative to in `annotated/`: a folder source itself, a glob's folder
        before its first wildcard, an image's own folder."""
        spec = Path(os.path.abspath(os.path.expanduser(self.spec)))
        if spec.is_dir():
            return spec
        if glob.has_magic(self.spec):
            return Path(*itertools.takewhile(lambda part: not glob.has_magic(part), spec.parts))
        return spec.parent

    def frames(self, vid_stride: int = 1, keep: Callable[[FrameKey], bool] | None = None) -> Iterator[Frame | Skip]:
        """The frames, lazily, named by absolute path; only those whose `frame_key` `keep` accepts (a resumed run
        leaves out what it finished)."""
        if self.video is not None:
            video = self.video if isinstance(self.video, int) else os.path.abspath(self.video)
            yield from video_frames(video, vid_stride, keep)
            return
        for path in self.files:
            path = os.path.abspath(path)
            if keep is not None and not keep(frame_key(path)):
                continue
            try:
                yield image_frame(path)
            except images.BadImage as error:
                yield Skip(str(path), f"{error.kind}: {error.reason}")


def open_source(spec: str | int | Path) -> Source:
    """SOURCE as the command takes it: an image, a video, a folder (recursive, any-case extensions), a glob or a
    webcam index. An existing file or folder wins over a webcam index: `source=2024` is the folder 2024 if there is
    one. Symlinked folders are followed, each real folder read once."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        files = _listed(walk_files(path), f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}, any case)",
                        IMAGE_SUFFIXES)
        return Source(text, files=tuple(files))
    if path.exists():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return Source(text, video=str(path))
        return Source(text, files=(path,))
    if text.isdigit():
        return Source(text, video=int(text))
    if glob.has_magic(text):
        return Source(text, files=tuple(_listed(glob_files(text), f"no file matches {text}")))
    raise FileNotFoundError(f"source {text} not found: give an image, a folder, a glob, a video "
                            f"({', '.join(VIDEO_SUFFIXES)}) or a webcam index")


def _listed(listing: Listing, none_found: str, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The files of a listing with one of `suffixes` (any case; None: all), sorted. A FIFO or a broken link named .jpg
    is listed too: opening it is a Skip with the reason. The folders it reached twice by links are said once each."""
    for folder, first in listing.repeated:
        log.warning("%s is the same folder as %s (symlink): read once", folder, first)
    files = sorted(path for path in listing.files if suffixes is None or path.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(none_found)
    return files


def video_frames(video: str | int, vid_stride: int = 1,
                 keep: Callable[[FrameKey], bool] | None = None) -> Iterator[Frame | Skip]:
    """Every `vid_stride`-th frame of a video file or webcam (those whose `frame_key` `keep` accepts), decoded one at
    a time; a video file that ends before the frame count its header gives (truncated, damaged) ends with a Skip
    saying how many frames were read."""
    if vid_stride < 1:
        raise ValueError(f"vid_stride must be >= 1, got {vid_stride}")
    capture = _capture(video)
    name = f"webcam:{video}" if isinstance(video, int) else str(video)
    real = frame_key(name)[0]
    try:
        index = 0
        while capture.grab():
            if index % vid_stride == 0 and (keep is None or keep((real, index))):
                ok, bgr = capture.retrieve()
                if ok:
                    yield array_frame(bgr, source=name, index=index, bgr=True)
            index += 1
        expected = 0 if isinstance(video, int) else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if index < expected - FRAME_COUNT_SLACK:
            yield Skip(name, f"truncated video: {index} of the {expected} frames its header gives could be read")
    finally:
        capture.release()


def video_fps(video: str | int) -> float:
    capture = _capture(video)
    try:
        return capture.get(cv2.CAP_PROP_FPS) or 25.0
    finally:
        capture.release()


def _frame_count(video: str | int) -> int:
    if isinstance(video, int):
        return 0  # a webcam has no end
    capture = _capture(video)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def _capture(video: str | int) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        what = f"webcam {video}" if isinstance(video, int) else f"video {video}"
        raise OSError(f"cannot open the {what}: not a video OpenCV can decode, or no such device")
    return capture

"""What prediction reads: an image, a video, a folder of them (recursive), a glob, a `.txt` list of paths, an
http(s) URL or a webcam, as a stream of `Frame`s decoded only when the pipeline asks (images: at the size it needs,
EXIF applied; video: one frame at a time).

`open_source` checks a SOURCE before anything is predicted, so that a typo costs no model loading: a path that is not
there, an extension that is no image, video or list, a list naming a missing file, a video that will not open and an
unreachable URL are errors naming them. Inside a folder, a glob or a list, a file that cannot be read (corrupt, a FIFO,
a video OpenCV cannot decode) becomes a `Skip` with its reason, and the stream goes on. A frame's `source` is an
absolute path (or the URL), and `frame_key` (its real path and frame index) is what a resumed run compares, however
the source was spelled.

The formats and the `.txt` list follow ultralytics' (`ultralytics.data.utils.VID_FORMATS`, `LoadImagesAndVideos`),
but its loaders are not used: importing `ultralytics.data` imports torch, which `backend=onnx` never loads, and they
read images with OpenCV, bypassing what `kemotion.data.images` checks (only regular files, only the formats kemotion
lists, decoded reduced, an unreadable file reported rather than dropped), list a folder without its subfolders and
follow symlink loops in `**` globs. Every image here, a downloaded one too, is opened by `kemotion.data.images`.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.client import HTTPException
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import cv2
import numpy as np

from kemotion.data import images
from kemotion.data.files import Listing, NotARegularFile, glob_files, open_regular, read_bounded, walk_files

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what kemotion.data.images decodes
# ultralytics' VID_FORMATS, as `yolo predict` takes them (written out: ultralytics.data imports torch)
VIDEO_SUFFIXES = (".asf", ".avi", ".gif", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".ts", ".wmv", ".webm")
LIST_SUFFIX = ".txt"  # one path (file, folder or glob) a line, as `yolo predict source=list.txt`
URL_SCHEMES = ("http://", "https://")
URL_TIMEOUT_S = 10  # to connect, and between two reads: a machine without internet fails fast instead of hanging
MAX_DOWNLOAD_BYTES = 256 * 2**20  # far above any photo; a URL must not fill the memory
MAX_LIST_BYTES = 16 * 2**20  # about 200,000 paths
DEFAULT_FPS = 25.0  # a video whose header gives no (or an absurd) frame rate
FRAME_COUNT_SLACK = 1  # a header's frame count may be estimated from duration × fps: one frame short is not truncation

ACCEPTED = (f"an image ({' '.join(IMAGE_SUFFIXES)}), a video ({' '.join(VIDEO_SUFFIXES)}), a folder of them, a glob, a "
            f"{LIST_SUFFIX} list of paths, an http(s) URL or a webcam index")


@dataclass(frozen=True)
class Frame:
    """One image or video frame, decoded on demand."""

    source: str  # the file (or the URL, "webcam:N", "<array>")
    index: int  # frame number in a video (every frame counted, strided or not); 0 for an image
    width: int  # upright, full resolution
    height: int
    decode: Callable[[int | None], np.ndarray]  # max_side → upright RGB uint8 with long side >= max_side (or full)
    fps: float | None = None  # a video frame: the rate of its annotated video (the video's, over the stride)


@dataclass(frozen=True)
class Skip:
    source: str
    reason: str


FrameKey = tuple[str, int]  # (real path of the file, frame index): one image or video frame, however it was spelled


def frame_key(source: str | Path, index: int = 0) -> FrameKey:
    return (str(source) if is_url(source) else os.path.realpath(source)), index


def is_url(source: str | Path | int) -> bool:
    return isinstance(source, str) and source.lower().startswith(URL_SCHEMES)


def image_frame(path: str | Path) -> Frame:
    """A frame of an image file; BadImage when its header does not open."""
    width, height = images.upright_size(path)
    return Frame(str(path), 0, width, height, lambda side: images.load_rgb(path, max_side=side))


def downloaded_frame(url: str, content: bytes) -> Frame:
    """A frame of an image downloaded from `url`, read through a temporary file by `kemotion.data.images` like any
    image on disk (the formats it lists, EXIF, reduced decoding); BadImage when its header does not open."""
    width, height = _through_file(content, images.upright_size)
    return Frame(url, 0, width, height, lambda side: _through_file(content, lambda path: images.load_rgb(path, side)))


Decoded = TypeVar("Decoded")


def _through_file(content: bytes, read: Callable[[Path], Decoded]) -> Decoded:
    with tempfile.TemporaryDirectory(prefix="kemotion-download-") as folder:
        path = Path(folder) / "image"
        path.write_bytes(content)
        return read(path)


def array_frame(array: np.ndarray, source: str = "<array>", index: int = 0, bgr: bool = False,
                fps: float | None = None) -> Frame:
    """A frame of an H×W×3 uint8 array, RGB unless `bgr` (OpenCV's order); greyscale H×W is accepted too."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    elif array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{source}: need an H×W×3 uint8 image, got shape {array.shape} and dtype {array.dtype}")
    elif bgr:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    array = np.ascontiguousarray(array)
    return Frame(source, index, array.shape[1], array.shape[0], lambda side: array, fps)


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
    """A parsed SOURCE: image files (sorted), videos (files by absolute path, a video URL or a webcam index), or an
    image downloaded from the URL `spec`."""

    spec: str
    images: tuple[Path, ...] = ()
    videos: tuple[str | int, ...] = ()
    downloaded: bytes | None = field(default=None, repr=False)
    root: Path | None = None  # the folder files are named relative to in `annotated/` (None: by their names)

    @property
    def resolved(self) -> str:
        """The source however it was spelled (relative, through a link): its real absolute path (a glob: of its
        pattern), the URL, or `webcam:N`."""
        if self.videos and isinstance(self.videos[0], int):
            return f"webcam:{self.videos[0]}"
        return self.spec if is_url(self.spec) else os.path.realpath(os.path.expanduser(self.spec))

    @property
    def live(self) -> bool:
        """A webcam: it has no end, and no frame of it comes again (no resume)."""
        return any(isinstance(video, int) for video in self.videos)

    def count(self, vid_stride: int = 1) -> int | None:
        """How many frames `frames(vid_stride)` gives (a video: as its header says); None when a webcam or a video
        URL is among them (no end, or not asked for before it is read)."""
        counts = [_frame_count(video) for video in self.videos]
        if None in counts:
            return None
        return len(self.images) + (self.downloaded is not None) + sum(-(-count // vid_stride) for count in counts)

    def parts(self) -> list[Source]:
        """The source as the pieces predicted one after the other: its images, then each video alone (a video's
        frames are batched with no other's, and its annotated copy is drawn whole before the next begins)."""
        still = [replace(self, videos=())] if self.images or self.downloaded is not None else []
        return still + [replace(self, images=(), downloaded=None, videos=(video,)) for video in self.videos]

    def frames(self, vid_stride: int = 1, keep: Callable[[FrameKey], bool] | None = None) -> Iterator[Frame | Skip]:
        """The frames, lazily: the images, then each video's; only those whose `frame_key` `keep` accepts (a resumed
        run leaves out what it finished)."""
        if self.downloaded is not None and (keep is None or keep(frame_key(self.spec))):
            try:
                yield downloaded_frame(self.spec, self.downloaded)
            except images.BadImage as error:
                yield Skip(self.spec, f"{error.kind}: {error.reason}")
        for path in self.images:
            path = os.path.abspath(path)
            if keep is not None and not keep(frame_key(path)):
                continue
            try:
                yield image_frame(path)
            except images.BadImage as error:
                yield Skip(str(path), f"{error.kind}: {error.reason}")
        for video in self.videos:
            yield from video_frames(video, vid_stride, keep)


def open_source(spec: str | int | Path) -> Source:
    """SOURCE as the command takes it (`ACCEPTED`), checked: an error naming it when it is not there, has an
    extension that is no image, video or list, or cannot be opened (a video) or reached (a URL). A folder is read
    recursively (any-case extensions, symlinked folders followed, each real folder once). An existing folder wins
    over a webcam index: `source=2024` is the folder 2024 if there is one."""
    text = str(spec)
    if is_url(text):
        return _url_source(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _files_source(text, _in_folder(path, f"source={text}"), Path(os.path.abspath(path)))
    if text.isdigit():
        _capture(int(text)).release()  # no such camera: said now, not after the models load
        return Source(text, videos=(int(text),))
    if path.exists() or path.is_symlink():  # a broken link named .jpg: a skip row, as in a folder
        suffix = path.suffix.lower()
        if suffix == LIST_SUFFIX:
            return _list_source(text, path)
        if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            raise ValueError(f"source={text}: a {suffix or 'file without an extension'} is no image "
                             f"({' '.join(IMAGE_SUFFIXES)}), video ({' '.join(VIDEO_SUFFIXES)}) or list of paths "
                             f"({LIST_SUFFIX})")
        if suffix in VIDEO_SUFFIXES:
            _capture(os.path.abspath(path)).release()  # one that will not open fails now, not after the models load
        return _files_source(text, [path], Path(os.path.abspath(path)).parent)
    if glob.has_magic(text):
        root = Path(*itertools.takewhile(lambda part: not glob.has_magic(part), Path(os.path.abspath(path)).parts))
        return _files_source(text, _listed(glob_files(text), f"source={text}: no file matches it"), root)
    raise FileNotFoundError(f"source={text}: no such file or folder; give {ACCEPTED}")


def _files_source(spec: str, files: list[Path], root: Path | None) -> Source:
    """The images and the videos among `files` (a file of any other name: an image, whose opening says what it is)."""
    videos = tuple(os.path.abspath(path) for path in files if path.suffix.lower() in VIDEO_SUFFIXES)
    return Source(spec, images=tuple(path for path in files if path.suffix.lower() not in VIDEO_SUFFIXES),
                  videos=videos, root=root)


def _in_folder(folder: Path, where: str) -> list[Path]:
    return _listed(walk_files(folder), f"{where}: {folder} holds no images or videos ({' '.join(IMAGE_SUFFIXES)} "
                                       f"{' '.join(VIDEO_SUFFIXES)}, any case)", IMAGE_SUFFIXES + VIDEO_SUFFIXES)


def _listed(listing: Listing, none_found: str, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The files of a listing with one of `suffixes` (any case; None: all), sorted. A FIFO or a broken link named .jpg
    is listed too: opening it is a Skip with the reason. The folders it reached twice by links are said once each."""
    for folder, first in listing.repeated:
        log.warning("%s is the same folder as %s (symlink): read once", folder, first)
    files = sorted(path for path in listing.files if suffixes is None or path.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(none_found)
    return files


def _list_source(spec: str, path: Path) -> Source:
    """The files a `.txt` list names, a path a line (an image, a video, a folder or a glob; blank lines ignored), each
    relative to the working folder or, when not there, to the list's own folder (as ultralytics reads one). A line
    naming nothing is an error naming the list and the line: a list is made by hand, and a typo should not cost a
    run. Annotated pictures are named below the folder all the files share."""
    try:
        text = read_bounded(path, MAX_LIST_BYTES).decode("utf-8-sig")  # a BOM from Windows' Notepad
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"source={spec}: not a readable list of paths ({error})") from None
    files: set[Path] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if entry := line.strip():
            files.update(_named_in_list(entry, path.parent, f"source={spec} line {number}"))
    if not files:
        raise FileNotFoundError(f"source={spec}: the list names no file")
    ordered = sorted(files)
    return _files_source(spec, ordered, Path(os.path.commonpath([path.parent for path in ordered])))


def _named_in_list(entry: str, list_folder: Path, where: str) -> list[Path]:
    """The absolute files one line of a list names."""
    for base in (Path.cwd(), list_folder):
        path = base / Path(entry).expanduser()
        if path.is_dir():
            return [Path(os.path.abspath(file)) for file in _in_folder(path, where)]
        if path.exists() or path.is_symlink():
            if path.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                raise ValueError(f"{where}: {entry} is no image ({' '.join(IMAGE_SUFFIXES)}) or video "
                                 f"({' '.join(VIDEO_SUFFIXES)})")
            return [Path(os.path.abspath(path))]
        if glob.has_magic(entry) and (matched := glob_files(str(path))).files:
            return [Path(os.path.abspath(file)) for file in _listed(matched, "")]
    raise FileNotFoundError(f"{where}: {entry} not found (here or beside the list)")


def _url_source(url: str) -> Source:
    """A video URL is read by OpenCV as it streams (checked reachable first); any other URL is downloaded now, as an
    image, so that a machine without internet says so before the models load."""
    if urlsplit(url).path.lower().endswith(VIDEO_SUFFIXES):
        with _opened_url(url):
            pass
        return Source(url, videos=(url,))
    with _opened_url(url) as response:
        content = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(content) > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"source={url}: larger than {MAX_DOWNLOAD_BYTES:,} bytes; download it and give its path")
    return Source(url, downloaded=content)


@contextlib.contextmanager
def _opened_url(url: str) -> Iterator[urllib.request.addinfourl]:
    """The response to `url`, within URL_TIMEOUT_S; a failure (no network, no such host, 404, a timeout) is one
    ConnectionError naming the URL, without the network library's traceback."""
    request = urllib.request.Request(url, headers={"User-Agent": "kemotion"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
            yield response
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as error:
        reason = error if isinstance(error, urllib.error.HTTPError) else getattr(error, "reason", error)
        raise ConnectionError(f"source={url}: cannot download it ({reason}); without internet, copy the file here "
                              "and give its path") from None


def video_frames(video: str | int, vid_stride: int = 1,
                 keep: Callable[[FrameKey], bool] | None = None) -> Iterator[Frame | Skip]:
    """Every `vid_stride`-th frame of a video file, a video URL or a webcam (those whose `frame_key` `keep` accepts),
    decoded one at a time. A video that will not open is a Skip; one that ends before the frame count its header gives
    (truncated, damaged) ends with a Skip saying how many frames were read."""
    if vid_stride < 1:
        raise ValueError(f"vid_stride must be >= 1, got {vid_stride}")
    name = f"webcam:{video}" if isinstance(video, int) else str(video)
    try:
        capture = _capture(video)
    except OSError as error:
        yield Skip(name, str(error))
        return
    real = frame_key(name)[0]
    rate = capture.get(cv2.CAP_PROP_FPS)
    fps = (rate if 0 < rate < 1000 else DEFAULT_FPS) / vid_stride  # NaN, 0, or a 90 kHz RTP clock: not a frame rate
    try:
        index = 0
        while capture.grab():
            if index % vid_stride == 0 and (keep is None or keep((real, index))):
                ok, bgr = capture.retrieve()
                if ok:
                    yield array_frame(bgr, source=name, index=index, bgr=True, fps=fps)
            index += 1
        expected = 0 if isinstance(video, int) else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if index < expected - FRAME_COUNT_SLACK:
            yield Skip(name, f"truncated video: {index} of the {expected} frames its header gives could be read")
    finally:
        capture.release()


def _frame_count(video: str | int) -> int | None:
    if isinstance(video, int) or is_url(video):
        return None  # a webcam has no end; a stream is not opened twice
    try:
        capture = _capture(video)
    except OSError:
        return 0  # a skip row
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def _capture(video: str | int) -> cv2.VideoCapture:
    """An opened OpenCV capture; OSError naming the video otherwise. A file must be a regular one (OpenCV would wait
    for ever on a FIFO named .mp4); a URL gets URL_TIMEOUT_S to connect and to deliver each frame."""
    if isinstance(video, int):
        with _opencv_silent():  # each of its camera backends logs its own failure; the error below says it once
            capture = cv2.VideoCapture(video)
        what, why = f"webcam {video}", "no such device, or it is in use"
    elif is_url(video):
        milliseconds = URL_TIMEOUT_S * 1000
        capture = cv2.VideoCapture(video, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds,
                                                           cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds])
        what, why = f"video {video}", "OpenCV could not read a video from it"
    else:
        try:
            with open_regular(video):
                pass
        except NotARegularFile as error:
            raise OSError(f"cannot open the video {error}") from None
        except OSError as error:
            raise OSError(f"cannot open the video {video}: {error.strerror or error}") from None
        capture, what, why = cv2.VideoCapture(video), f"video {video}", "not a video OpenCV can decode"
    if not capture.isOpened():
        raise OSError(f"cannot open the {what}: {why}")
    return capture


@contextlib.contextmanager
def _opencv_silent() -> Iterator[None]:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)

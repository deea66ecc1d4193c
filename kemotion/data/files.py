"""Finding and opening input files: each real folder visited once, and only regular files opened.

Datasets and prediction sources are folders someone else made. A symlink loop must not make a walk endless or list
an image forty times, and a FIFO or a device named `.jpg` or `.json` (a link to `/dev/zero`) must not block a reader
or fill its memory: each is refused with an error naming the file, which the callers turn into a skip row.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

NON_BLOCKING = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to wait on


class NotARegularFile(OSError):
    """A path that exists but is a FIFO, a device, a socket or a folder: never opened for reading."""


@dataclass
class Listing:
    """The files under a folder (links followed), and the folders reached a second time and not read again."""

    files: list[Path] = field(default_factory=list)
    repeated: list[tuple[Path, Path]] = field(default_factory=list)  # (folder, the first route to the same folder)


def walk_files(root: str | Path, max_depth: int | None = None) -> Listing:
    """Every non-folder entry under `root` (files, broken links, FIFOs: opening them says what they are), down to
    `max_depth` folder levels below it. Symlinked folders are followed, but each real folder is read once: a link loop
    or a second link to a folder ends at the second route, which `repeated` names."""
    listing = Listing()
    first: dict[str, Path] = {}
    root_depth = len(Path(root).parts)
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in first:
            subfolders[:] = []  # not descended into: a loop would never end
            listing.repeated.append((Path(folder), first[real]))
            continue
        first[real] = Path(folder)
        if max_depth is not None and len(Path(folder).parts) - root_depth >= max_depth:
            subfolders[:] = []
        listing.files += [Path(folder, name) for name in names]
    return listing


def glob_files(pattern: str) -> Listing:
    """The files a glob matches (`**`: any folders, as `glob.glob(recursive=True)`; names starting with `.` only when
    the pattern spells the dot), walked with `walk_files`, so a symlink loop is read once instead of without end."""
    parts = Path(pattern).parts
    static = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root, wanted = Path(*parts[:static]) if static else Path("."), parts[static:]
    depth = None if "**" in wanted else max(len(wanted) - 1, 0)
    listing = walk_files(root, max_depth=depth) if root.is_dir() else Listing()
    listing.files = [path for path in listing.files if _matches(path.relative_to(root).parts, wanted)]
    return listing


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a relative path's parts match a glob's parts, `**` standing for zero or more visible folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return _matches(parts, pattern[1:]) or (bool(parts) and not parts[0].startswith(".")
                                                and _matches(parts[1:], pattern))
    if not parts or (parts[0].startswith(".") and not pattern[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


@contextlib.contextmanager
def open_regular(path: str | Path) -> Iterator[BinaryIO]:
    """`path` opened for binary reading; NotARegularFile when it is anything but a regular file (after links).

    The check is on the opened descriptor, so nothing can swap the file in between, and the open never waits: a
    FIFO opened without O_NONBLOCK blocks until someone writes to it."""
    fd = os.open(path, os.O_RDONLY | NON_BLOCKING)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path}: {_kind(mode)}, not a regular file; not read")
        if NON_BLOCKING:
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


class TooLarge(OSError):
    """A file larger than what its reader accepts."""


def read_bounded(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; TooLarge (naming the file and both sizes) otherwise.
    The read itself is bounded too, in case the file grows while it is read."""
    with open_regular(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"{path}: larger than {max_bytes:,} bytes; not read")
    return data


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")

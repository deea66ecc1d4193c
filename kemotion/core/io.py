"""Atomic file writes and builds done once: a killed run leaves either the old output or the new one, never half of
one, and processes that need the same output at the same time build it once between them."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from filelock import FileLock

log = logging.getLogger(__name__)

T = TypeVar("T")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success rename it over `path` (same filesystem, atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); the file gets what `open` would give it
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_once(target: Path, build: Callable[[], T], *, done: Callable[[], bool], reuse: Callable[[], T], what: str,
               lock: Path | None = None, leftovers: Iterable[Path] = ()) -> T:
    """`reuse()` if `done()` says `target` was finished, else `build()` it; under a file lock (`<target>.lock` unless
    `lock` names another), so of the processes asking at once one builds and the others wait, then reuse.

    `done` checks what the build makes last and atomically (a marker file, the renamed folder), so a build killed
    midway is never taken for a finished one; a build that raises leaves it unmade and the next call builds again.
    `leftovers` (iterated under the lock: a glob then sees no live build's files) are what a killed build leaves that
    the next one must not find, removed before it starts. Logs `Reusing <what> in <target>` or `Building <what> into
    <target>`."""
    lock = Path(lock) if lock is not None else Path(f"{target}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        if done():
            log.info("Reusing %s in %s", what, target)
            return reuse()
        for leftover in leftovers:
            if os.path.lexists(leftover):
                log.warning("Removing what an interrupted build of %s left: %s", what, leftover)
                _remove(Path(leftover))
        log.info("Building %s into %s", what, target)
        return build()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()

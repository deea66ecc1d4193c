"""Generate a synthetic dataset once: in a staging folder renamed into place in one step, under a file lock.

The dataset's folder therefore exists only when complete, and a killed generation is redone. Its summary goes beside
it (`<name>.json`), not inside, where a reader of the real layout would see a stray file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kemotion.core.io import atomic_write, build_once

log = logging.getLogger(__name__)


def generate_once(target: Path, generate: Callable[[Path], dict], what: str) -> Path:
    """`target`, made by `generate(staging folder) -> summary` unless it is there already."""
    if target.is_dir():  # finished, and never written again: reused without the lock (nor a writable parent)
        log.info("Reusing %s in %s", what, target)
        return target
    return build_once(target, lambda: _generate_into(target, generate, what), done=target.is_dir,
                      reuse=lambda: target, what=what, lock=target.parent / f".{target.name}.lock",
                      leftovers=target.parent.glob(f".{target.name}.partial-*"))


def _generate_into(target: Path, generate: Callable[[Path], dict], what: str) -> Path:
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        summary = generate(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with atomic_write(target.parent / f"{target.name}.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    log.info("generated %s in %.1f s at %s: %s", what, time.perf_counter() - started, target,
             {k: v for k, v in summary.items() if k != "params"})
    return target

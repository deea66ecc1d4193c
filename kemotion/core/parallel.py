"""`process_map`: tqdm's `process_map` (a ProcessPoolExecutor with a progress bar), with what kemotion's work needs
around it.

Shared by the synthetic-data generator and the crop cache: both are numpy/OpenCV/PIL (and, for YOLO crops, torch)
work that the GIL would serialise in threads. tqdm gives the pool, the ordered results, a worker's exception raised
here and the bar; kemotion adds:

- fork where the platform has it (as torch's DataLoader does): spawn re-imports the caller's main module in each
  worker, and a script without an `if __name__ == "__main__"` guard would start the whole job again there;
- chunks of about an eighth of a worker's share, so a few thousand small items are not sent one at a time;
- one thread per process, in workers and inline alike (`workers <= 1`, or a single item, runs here without a pool):
  one process per core is the parallelism, and neither OpenCV's nor torch's (OpenMP) thread pool survives a fork. A
  forked child that touches a pool its parent ran waits forever (OpenCV on a condition variable, OpenMP at its
  barrier), so both are wound down to one thread in this process before the workers fork, and restored after.
  Inline work runs single-threaded too, so a result never depends on the worker count (and torch's float results,
  which depend on its thread count, never on the machine's cores). Where the platform has no fork, a spawned worker
  starts afresh, with the libraries' own thread counts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import cv2
import torch
from tqdm.auto import tqdm
from tqdm.contrib import concurrent

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_WORKER = 8


def process_map(function: Callable[[T], R], items: Iterable[T], max_workers: int, **tqdm_kwargs) -> list[R]:
    """[function(item) for item in items], over `max_workers` processes (here, serially, when max_workers <= 1);
    `tqdm_kwargs` (desc=, unit=, ...) go to the progress bar."""
    items = list(items)
    with _single_threaded():
        if max_workers <= 1 or len(items) < 2:
            return [function(item) for item in tqdm(items, disable=not items, **tqdm_kwargs)]
        chunksize = max(1, len(items) // (CHUNKS_PER_WORKER * max_workers))
        return concurrent.process_map(function, items, max_workers=max_workers, chunksize=chunksize,
                                      mp_context=_context(), **tqdm_kwargs)


def _context() -> multiprocessing.context.BaseContext:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """OpenCV and torch on one thread while the block runs (and in the processes it forks); their settings after."""
    opencv, intra_op = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(opencv)
        torch.set_num_threads(intra_op)

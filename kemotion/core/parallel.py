"""`process_map`: a function over items in worker processes, in order, with a progress bar.

Shared by the synthetic-data generator and the crop cache: both are numpy/OpenCV/PIL (and, for YOLO crops, torch)
work that the GIL would serialise in threads. The workers are forked and run single-threaded: one process per core
is the parallelism, and neither OpenCV's nor torch's (OpenMP) thread pool survives a fork.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import cv2
import torch
from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


def process_map(function: Callable[[T], R], items: Iterable[T], workers: int, desc: str, unit: str = "img") -> list[R]:
    """[function(item) for item in items], over `workers` processes (serially when workers <= 1)."""
    items = list(items)
    with tqdm(total=len(items), desc=desc, unit=unit, disable=not items) as bar:
        if workers <= 1 or len(items) < 2:
            return [_advanced(bar, function(item)) for item in items]
        chunk = max(1, len(items) // (8 * workers))
        with _opencv_single_threaded(), ProcessPoolExecutor(workers, mp_context=_context(),
                                                            initializer=_torch_single_threaded) as pool:
            return [_advanced(bar, result) for result in pool.map(function, items, chunksize=chunk)]


def _context() -> multiprocessing.context.BaseContext:
    # fork where the platform has it (as torch's DataLoader does): spawn re-imports the caller's main module in each
    # worker, and a script without an `if __name__ == "__main__"` guard would start the whole job again there.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    """OpenCV's thread pool does not survive fork: a child that touches it (even cv2.setNumThreads) can wait
    forever on a condition variable of the parent's threads. Wind the pool down in the parent before forking, so
    the workers inherit none and run single-threaded (one process per core is the parallelism here)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _torch_single_threaded() -> None:
    """In each worker, as torch's DataLoader does in its own: with one thread torch never enters an OpenMP parallel
    region, whose pool, inherited from a parent that ran one (training the face detector, say), waits forever at its
    barrier in the child."""
    torch.set_num_threads(1)


def _advanced(bar: tqdm, result: R) -> R:
    bar.update()
    return result

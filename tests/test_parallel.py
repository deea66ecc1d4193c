"""process_map: tqdm's, in order; one thread per process, inline and in workers; no deadlock after OpenCV or torch
have used their thread pools."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cv2
import pytest
import torch

from kemotion.core.parallel import process_map


def square(x: int) -> int:
    return x * x


def threads(_: int) -> tuple[int, int]:
    return torch.get_num_threads(), cv2.getNumThreads()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x


def test_results_come_back_in_order_in_parallel_and_serially():
    assert process_map(square, range(20), max_workers=2, desc="test") == [x * x for x in range(20)]
    assert process_map(square, range(5), max_workers=1, desc="test") == [0, 1, 4, 9, 16]
    assert process_map(square, range(5), max_workers=0, desc="test") == [0, 1, 4, 9, 16]
    assert process_map(square, [], max_workers=2, desc="test") == []


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_the_work_runs_on_one_thread_inline_and_in_workers_and_the_caller_keeps_its_own(workers):
    """So a result never depends on the worker count, nor torch's float sums on the machine's cores."""
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    assert process_map(threads, range(4), max_workers=workers, desc="test") == [(1, 1)] * 4
    assert threads(0) == (2, 2)


def test_a_workers_error_is_raised_here_and_the_caller_keeps_its_threads():
    torch.set_num_threads(2)
    for workers in (1, 2):
        with pytest.raises(ValueError, match="item 3 is bad"):
            process_map(fail_on_three, range(6), max_workers=workers, desc="test")
        assert torch.get_num_threads() == 2


def test_workers_forked_after_opencv_ran_its_thread_pool_do_not_hang():
    """The generator used to call cv2.setNumThreads in each forked worker, which waits forever in this situation."""
    script = textwrap.dedent("""
        import cv2, numpy as np
        from kemotion.core.parallel import process_map
        image = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), np.uint8)
        for _ in range(3):
            cv2.GaussianBlur(image, (31, 31), 5)  # the parent's OpenCV threads are now alive
        threads = cv2.getNumThreads()
        def blur(i):
            return round(float(cv2.GaussianBlur(image[:300, :300], (31, 31), 5).mean()), 3) + i
        results = process_map(blur, range(4), max_workers=2, desc="blur")
        assert results == [results[0] + i for i in range(4)], results
        assert cv2.getNumThreads() == threads  # the parent's setting is restored
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_workers_forked_after_torch_ran_its_openmp_threads_do_not_hang():
    """Training the face detector and then cropping with it in forked workers hung in gomp_team_barrier_wait_end."""
    script = textwrap.dedent("""
        import torch
        from kemotion.core.parallel import process_map
        torch.set_num_threads(2)
        big = torch.rand(2000, 2000)
        for _ in range(3):
            (big @ big).float()  # the parent's OpenMP team is now alive
        def work(i):
            return float((big[:500] * 2).sum()) + i  # an element-wise op large enough to go parallel
        results = process_map(work, range(4), max_workers=2, desc="torch")
        assert results == [results[0] + i for i in range(4)], results
        assert torch.get_num_threads() == 2  # the parent keeps its threads
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")

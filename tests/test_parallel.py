"""process_map: ordered results over worker processes, and no deadlock after OpenCV has used its thread pool."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from kemotion.core.parallel import process_map


def square(x: int) -> int:
    return x * x


def test_results_come_back_in_order_in_parallel_and_serially():
    assert process_map(square, range(20), workers=2, desc="test") == [x * x for x in range(20)]
    assert process_map(square, range(5), workers=1, desc="test") == [0, 1, 4, 9, 16]
    assert process_map(square, [], workers=2, desc="test") == []


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
        results = process_map(blur, range(4), workers=2, desc="blur")
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
        results = process_map(work, range(4), workers=2, desc="torch")
        assert results == [results[0] + i for i in range(4)], results
        assert torch.get_num_threads() == 2  # the parent keeps its threads
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")

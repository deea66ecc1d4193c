"""`trainer=ddp` on CPU, end to end: `python -m kemotion.train +experiment=yolo_kemo trainer=ddp` as a user runs it.

Two gloo processes (Lightning's launcher runs the command again for rank 1, in rank 0's run folder), each on half the
training batches, every test image counted once; the face detector, which the YOLO crop needs first, trains once in
one process (rank 0, before the classifier's fit starts rank 1), and rank 1 reuses it. One run checks all of it: DDP
costs two interpreters and a process group, and CI has 2 cores. torch's SyncBatchNorm runs on GPUs only, so this CPU
run adds `trainer.sync_batchnorm=false`.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TINY_CLI = ["debug=tiny", "model.net.width=8"]
TINY_DETECTOR = ["data.detector.image_size=64", "data.detector.batch_size=4", "data.detector.epochs=1",
                 "preprocess.conf=0.0"]  # a 1-epoch detector is unsure: keep every face it proposes
RANKS = [f"Initializing distributed: GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" for rank in range(2)]  # Lightning's


def run_train(root: Path, overrides: list[str], timeout: float = 300) -> str:
    """`python -m kemotion.train paths.root_dir=ROOT OVERRIDES` in a process group of its own (killed whole on a
    timeout: a hung DDP rank or sweep job must not outlive the test); the output, which every rank and job writes to."""
    env = {k: v for k, v in os.environ.items() if k not in {"KEMOTION_ROOT", "KEMOTION_CACHE"}}
    env |= {"WANDB_MODE": "disabled", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "kemotion.train", *overrides, f"paths.root_dir={root}"]  # flags (-m) first
    with subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"{' '.join(command)} still running after {timeout} s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return output


def test_ddp_runs_two_ranks_on_half_the_batches_after_a_single_process_detector_stage(tmp_path):
    batch_size, epochs = 8, 2
    output = run_train(tmp_path, ["+experiment=yolo_kemo", "trainer=ddp", "trainer.sync_batchnorm=false", *TINY_CLI,
                                  *TINY_DETECTOR, f"data.batch_size={batch_size}", f"trainer.max_epochs={epochs}"])
    (run,) = (tmp_path / "outputs" / "runs").iterdir()  # rank 1 ran in rank 0's folder

    # Two ranks, for the classifier only: the detector stage trained in one process, and rank 1 reused its detector.
    assert [line for line in output.splitlines() if "Initializing distributed" in line] == RANKS
    (weights,) = (tmp_path / ".cache" / "detectors").glob("*/*/face_detector.ckpt")
    assert output.count("Building the face detector into") == 1
    assert output.count(f"Reusing the face detector {weights}") == 1
    detector = pd.read_csv(next((weights.parent / "run" / "csv").rglob("metrics.csv")))
    assert detector["test/map50"].notna().sum() == 1

    # The DistributedSampler gives each rank half the training images (one process would take 7 steps an epoch).
    (crops,) = (tmp_path / ".cache" / "crops").glob("*/yolo-*/classification.csv")
    images = pd.read_csv(crops)
    steps = math.ceil((images["split"] == "train").sum() / 2) // batch_size  # per rank and epoch, drop_last
    assert steps < (images["split"] == "train").sum() // batch_size
    history = pd.read_csv(next((run / "csv").rglob("metrics.csv")))
    assert history["step"][history["train/loss_epoch"].notna()].tolist() == [steps * (e + 1) - 1 for e in range(epochs)]
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    saved = torch.load(best, map_location="cpu", weights_only=False)
    assert saved["global_step"] == steps * (saved["epoch"] + 1)

    # Both ranks tested, each test image once (Lightning's padding sampler would repeat one of the 7).
    test = images.query("split == 'test'")
    confusion = pd.read_csv(run / "confusion_matrix_test.csv", index_col=0).to_numpy()
    assert confusion.sum(axis=1).tolist() == test["label"].value_counts().reindex(range(7), fill_value=0).tolist()
    accuracy = history["test/acc"].dropna()
    assert len(accuracy) == 1 and accuracy.iloc[0] == pytest.approx(confusion.trace() / len(test))
    assert f"Test accuracy {accuracy.iloc[0]:.4f}" in output

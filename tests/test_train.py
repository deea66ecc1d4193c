"""`python -m kemotion.train` end to end on a tiny synthetic AI-Hub set: fit, best checkpoint, test, reuse."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from kemotion.engine.training import train
from tests.conftest import compose_config

pytestmark = pytest.mark.slow

TINY_RUN = ["debug=tiny", "trainer.max_epochs=4", "model.net.width=8"]


def test_resize_kemo_trains_tests_and_reuses_its_caches(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN])
    with caplog.at_level(logging.INFO):
        metrics, _ = train(cfg)
    run = tmp_path / "run"
    assert 0 <= metrics["test/acc"] <= 1 and 0 <= metrics["test/acc_macro"] <= 1
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in checkpoints and any(name.startswith("epoch") for name in checkpoints)
    (manifest,) = (tmp_path / ".cache" / "manifests").glob("*/classification.csv")
    test_split = pd.read_csv(manifest).query("split == 'test'")
    confusion = pd.read_csv(run / "confusion_matrix_test.csv", index_col=0)
    assert confusion.to_numpy().sum(axis=1).tolist() == test_split["label"].value_counts().reindex(
        range(7), fill_value=0).tolist()  # every test image counted once, in its true class's row
    history = pd.read_csv(next((run / "csv").rglob("metrics.csv")))
    losses = history["train/loss_epoch"].dropna().to_numpy()
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert "Building manifest" in caplog.text

    caplog.clear()
    cfg = compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN, "trainer.max_epochs=1"])
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert "Reusing manifest" in caplog.text and "Reusing resize crops of the classification subset" in caplog.text
    assert "Building manifest" not in caplog.text


def test_the_same_seed_trains_the_same_classifier(tmp_path):
    """Augmentations included (albumentations has its own random state), across two DataLoader workers."""
    runs = [train(compose_config(tmp_path / name, ["+experiment=resize_kemo", *TINY_RUN, "trainer.max_epochs=2",
                                                   "data.num_workers=2", f"seed={seed}"]))[0]
            for name, seed in [("first", 0), ("again", 0), ("other", 1)]]
    assert runs[0] == runs[1]
    assert runs[0]["test/loss"] != runs[2]["test/loss"]


def test_a_run_gives_the_same_numbers_whatever_the_machines_thread_count(tmp_path):
    """torch's float sums depend on how many threads share them: `threads` (2 by default) fixes the count, so a
    one-core machine (OMP_NUM_THREADS=1) trains what a two-core one does. Without it, test/loss differed in the
    sixth digit, and `make demo`'s test accuracy by 0.04-0.14 between machines."""
    script = textwrap.dedent("""
        import json, sys, torch
        from pathlib import Path
        from kemotion.engine.training import train
        from tests.conftest import compose_config
        metrics, _ = train(compose_config(Path(sys.argv[1]), sys.argv[2:]))
        print(json.dumps({"threads": torch.get_num_threads(),
                          **{key: value for key, value in metrics.items() if key.startswith("test/")}}))
    """)
    found = []
    for machine in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / machine), "+experiment=resize_kemo",
                               *TINY_RUN, "trainer.max_epochs=2"], capture_output=True, text=True, timeout=900,
                              cwd=Path(__file__).parents[1], env={**os.environ, "OMP_NUM_THREADS": machine})
        assert done.returncode == 0, done.stderr[-3000:]
        found.append(json.loads(done.stdout.splitlines()[-1]))
    assert found[0] == found[1] and found[0]["threads"] == 2 and "test/loss" in found[0]


TINY_DETECTOR = ["debug=tiny", "data.detector.image_size=64", "data.detector.batch_size=4", "data.detector.epochs=2"]


def test_face_detector_trains_on_the_detector_subset_and_reports_map(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=face_detector", *TINY_DETECTOR])
    with caplog.at_level(logging.INFO):
        metrics, _ = train(cfg)
    assert 0 <= metrics["test/map"] <= metrics["test/map50"] <= 1
    assert 0 <= metrics["val/map"] <= 1
    best = [p.name for p in (tmp_path / "run" / "checkpoints").glob("epoch*-val_map*.ckpt")]
    assert len(best) == 1, best
    made = [line for line in caplog.messages if line.startswith("resize crops:")]
    assert len(made) == 1 and "0 cached" in made[0]  # the letterboxes were made once, for the detector subset
    assert "Reusing resize crops of the detector subset" in caplog.text  # ... and reused for testing
    assert "Face detector on the test split: mAP@0.5" in caplog.text


def test_detector_table4_prints_the_before_and_after_rows(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=detector_table4", *TINY_DETECTOR, "detector.freeze_backbone_epochs=1",
                                    "~detector_data@also_test.wider"])  # WIDER val too: tests/test_wider_pretraining.py
    with caplog.at_level(logging.INFO):
        metrics, _ = train(cfg)
    table = caplog.text[caplog.text.index("Before and after training"):]
    assert "| weights | test/map | test/map50 |" in table
    assert f"| trained | {metrics['test/map']:.4f}" in table
    assert "Freezing the backbone at epoch 0" in caplog.text and "Unfreezing the backbone at epoch 1" in caplog.text


def test_train_false_tests_the_checkpoint_it_is_given_not_fresh_weights(tmp_path):
    trained, best = train(compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN, "trainer.max_epochs=3"]))
    tested, named = train(compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN, "train=false",
                                                    f"ckpt_path={best}"]))
    assert named == best
    assert tested["test/acc"] == trained["test/acc"] and tested["test/loss"] == pytest.approx(trained["test/loss"])


def test_train_false_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train=false tests a trained model: give its checkpoint, ckpt_path=PATH"):
        train(compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN, "train=false"]))
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=.*nothing\.ckpt: no such checkpoint file"):
        train(compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN, "train=false",
                                        f"ckpt_path={tmp_path / 'nothing.ckpt'}"]))


def test_debug_fdr_runs_one_batch_of_each_step_and_scores_the_weights_in_memory(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=resize_kemo", "debug=[tiny,fdr]", "model.net.width=8"])
    with caplog.at_level(logging.INFO):
        metrics, best = train(cfg)
    assert best is None and 0 <= metrics["test/acc"] <= 1  # fast_dev_run saves no checkpoint
    assert "Testing the current weights" in caplog.text and "Running in `fast_dev_run` mode" in caplog.text
    run = tmp_path / "run"
    assert not list(run.glob("checkpoints/*.ckpt")) and not list(run.rglob("metrics.csv"))  # Lightning's DummyLogger
    assert json.loads((run / "result.json").read_text())["best_checkpoint"] is None

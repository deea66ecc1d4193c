"""`python -m kemotion.train` end to end on a tiny synthetic AI-Hub set: fit, best checkpoint, test, reuse."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from kemotion.train import train
from tests.conftest import TINY_DATA, compose_config

pytestmark = pytest.mark.slow

TINY_RUN = [*TINY_DATA, "logger=csv", "trainer.max_epochs=4", "model.net.width=8", "+trainer.enable_progress_bar=false"]


def test_resize_kemo_trains_tests_and_reuses_its_caches(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=resize_kemo", *TINY_RUN])
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
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
    assert "Reusing manifest" in caplog.text and "Reusing resize crops" in caplog.text
    assert "Building manifest" not in caplog.text

"""A classical Table 5 cell end to end: `+experiment=resize_hogsvm` on a tiny synthetic set, recorded like a deep
cell and read by the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kemotion.engine.training import train
from kemotion.report import collect_runs
from tests.conftest import compose_config

pytestmark = pytest.mark.slow  # ~25 s: a tiny synthetic set made, cropped and fitted


def test_resize_hogsvm_fits_tests_and_records_a_table5_cell(tmp_path):
    cfg = compose_config(tmp_path, ["+experiment=resize_hogsvm", "debug=tiny"])
    metrics, best = train(cfg)
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result["cell"]["model"] == "hog_svm" and result["best_checkpoint"] == best and best.endswith(".npz")
    assert 0 <= metrics["test/acc"] <= 1 and metrics["svm/C"] in (0.001, 0.01, 0.1, 1.0)
    validation = pd.read_csv(run / "validation.csv")
    assert metrics["val/acc_best"] == validation["val_acc"].max()
    (manifest,) = (tmp_path / ".cache" / "manifests").glob("*/classification.csv")
    test_labels = pd.read_csv(manifest).query("split == 'test'")["label"]
    confusion = np.array(result["confusion"])
    assert confusion.sum(axis=1).tolist() == test_labels.value_counts().reindex(range(7), fill_value=0).tolist()
    assert metrics["test/acc"] == pytest.approx(np.trace(confusion) / confusion.sum())
    runs = collect_runs(tmp_path)
    assert runs[["preprocess", "model"]].values.tolist() == [["resize", "hog_svm"]]
    assert train(cfg)[0] == metrics  # a finished cell is not fitted again

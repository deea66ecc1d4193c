"""python -m kemotion.prepare builds the same crop cache a training run reads, and a second call reuses it."""

from __future__ import annotations

import logging

import cv2

from kemotion.prepare import prepare
from tests.conftest import compose_config


def test_it_builds_the_training_runs_cache_then_reuses_it(tmp_path, caplog, capsys):
    cfg = compose_config(tmp_path, ["debug=tiny", "preprocess=opencv"])
    crops = prepare(cfg)
    assert crops["split"].value_counts().to_dict() == {"train": 56, "val": 7, "test": 7}  # 7 classes × 10
    assert all(cv2.imread(p).shape == (64, 64, 3) for p in crops["crop_path"])
    assert f"70 opencv crops of {tmp_path}" in capsys.readouterr().out
    with caplog.at_level(logging.INFO):
        again = prepare(compose_config(tmp_path, ["debug=tiny", "preprocess=opencv"]))
    assert "Reusing opencv crops of the classification subset" in caplog.text
    assert again["crop_path"].tolist() == crops["crop_path"].tolist()

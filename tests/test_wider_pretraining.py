"""Paper §4.2 end to end on tiny data: pre-train on the synthetic WIDER-layout set, then Table 4 on Korean faces."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from kemotion.engine.training import train
from tests.conftest import compose_config

pytestmark = pytest.mark.slow

TINY_WIDER = ["logger=csv", "detector_data.source.n_train=8", "detector_data.source.n_val=4",
              "detector_data.source.long_side=160", "detector_data.source.workers=1", "detector_data.image_size=64",
              "detector_data.batch_size=4", "detector.epochs=1", "data.num_workers=0", "data.crop_workers=1",
              "+trainer.enable_progress_bar=false"]


WIDER_VAL_TOO = [o.replace("detector_data.", "also_test.wider.", 1)  # the same tiny set, scored before and after
                 for o in TINY_WIDER if o.startswith("detector_data.")]


def test_pretraining_on_wider_feeds_table4_with_wider_and_coco_rows(tmp_path, caplog):
    cfg = compose_config(tmp_path / "wider", ["+experiment=detector_pretrain_wider", *TINY_WIDER])
    with caplog.at_level(logging.INFO):
        metrics, best = train(cfg)
    for subset in ("easy", "medium", "hard"):  # scored by the WIDER protocol on WIDER val, beside COCO mAP
        assert 0 <= metrics[f"test/wider_{subset}"] <= 1 and f"val/wider_{subset}" in metrics
    assert 0 <= metrics["test/map"] <= 1
    assert "WIDER FACE training targets:" in caplog.text and "invalid" in caplog.text
    caplog.clear()

    table4 = compose_config(tmp_path / "table4", [
        "+experiment=detector_table4", f"detector.pretrained={best}", "detector.freeze_backbone_epochs=1", "debug=tiny",
        "data.detector.image_size=64", "data.detector.batch_size=4", "data.detector.epochs=1", *WIDER_VAL_TOO])
    with caplog.at_level(logging.INFO):
        after, _ = train(table4)
    assert "loaded" in caplog.text and str(best) in caplog.text  # the WIDER detector is the start
    table = caplog.text[caplog.text.index("Before and after training"):].splitlines()
    # the Korean faces' COCO mAP (no WIDER ground truth there), then WIDER val's COCO mAP and easy / medium / hard AP
    assert table[1] == ("| weights | test/map | test/map50 | wider/test/map | wider/test/map50 | wider/test/wider_easy"
                        " | wider/test/wider_medium | wider/test/wider_hard |")
    assert table[4].startswith(f"| trained | {after['test/map']:.4f}")
    assert f"{after['wider/test/wider_hard']:.4f}" in table[4] and "wider/test/wider_easy" in after
    logged = pd.read_csv(next((tmp_path / "table4").rglob("metrics.csv")))
    assert logged["test/map"].notna().sum() == 2  # before and after on Korean faces: WIDER's never logged as test/map
    assert logged["wider/test/map"].notna().sum() == 2 and "wider/test/wider_easy" in logged

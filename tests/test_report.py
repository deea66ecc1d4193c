"""`python -m kemotion.report`: runs found in run folders or W&B run folders alone, aggregated into Table 5."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import wandb

from kemotion.core.emotions import EMOTIONS
from kemotion.engine.training import train
from kemotion.report import Table5Report, collect_runs, main
from tests.conftest import compose_config


def record(folder, preprocess, model, seed, accuracy, diagonal=1, split=None):
    folder.mkdir(parents=True, exist_ok=True)
    confusion = [[diagonal if i == j else 0 for j in range(7)] for i in range(7)]
    metrics = {"test/acc": accuracy, "test/acc_macro": accuracy, "val/acc_best": accuracy,
               **{f"test/acc_{e.english}": accuracy for e in EMOTIONS}}
    cell = {"preprocess": preprocess, "model": model, "seed": seed} | ({"split": split} if split else {})
    (folder / "result.json").write_text(json.dumps({"key": "k", "cell": cell,
                                                    "metrics": metrics, "best_checkpoint": None,
                                                    "confusion": confusion}), encoding="utf-8")


def test_runs_come_from_run_folders_or_wandb_folders_alone_never_twice(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, accuracy in [(0, 0.5), (1, 0.7)]:
        run = sweep / f"yolo_kemotionnet_seed{seed}"
        record(run, "yolo", "kemotionnet", seed, accuracy)
        record(run / "wandb" / "offline-run-x" / "files", "yolo", "kemotionnet", seed, accuracy)  # its W&B copy
    record(tmp_path / "copied" / "wandb" / "offline-run-y" / "files", "resize", "kemotionnet", 0, 0.1)  # W&B only
    (sweep / "broken").mkdir()
    (sweep / "broken" / "result.json").write_text("{", encoding="utf-8")  # unreadable: skipped with a warning
    record(sweep / "detector", "yolo", "kemotionnet", 0, 0.0)
    (sweep / "detector" / "result.json").write_text(json.dumps({"cell": {}, "metrics": {"test/map": 0.9}}))

    runs = collect_runs(tmp_path)
    assert runs[["preprocess", "seed", "test_acc"]].values.tolist() == [["resize", 0, 0.1], ["yolo", 0, 0.5],
                                                                        ["yolo", 1, 0.7]]
    report = Table5Report.of(runs)
    assert report.best_cell == "yolo/kemotionnet"
    yolo = report.table.set_index("preprocess").loc["yolo"]
    assert (yolo["runs"], yolo["mean"], yolo["std"]) == (2, pytest.approx(0.6), pytest.approx(0.1414, abs=1e-4))
    markdown = report.markdown()
    assert "| YOLO face crop | 60.00 ± 14.14 |" in markdown and "| Resize | 10.00 (1 run) |" in markdown
    assert "| YOLO face crop | 84.37 ± 0.17 |" in markdown  # the paper's, below


def test_the_report_writes_table_confusion_and_per_class(tmp_path, capsys):
    for seed, diagonal in [(0, 2), (1, 3)]:
        record(tmp_path / "sweep" / f"opencv_vgg19_seed{seed}", "opencv", "vgg19", seed, 0.4 + seed / 10, diagonal)
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    out = tmp_path / "out"
    assert (out / "best_cell.txt").read_text(encoding="utf-8").strip() == "opencv/vgg19"
    confusion = pd.read_csv(out / "confusion_best.csv", index_col=0)
    assert confusion.index[0] == "happy 기쁨" and confusion.to_numpy().trace() == 7 * 5  # summed over the seeds
    per_class = pd.read_csv(out / "per_class_accuracy.csv", index_col=0)
    assert per_class.loc["hurt", "opencv/vgg19"] == pytest.approx(0.45)
    assert pd.read_csv(out / "table5.csv")["mean"].tolist() == pytest.approx([0.45])
    assert "best cell: opencv/vgg19" in capsys.readouterr().out


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no finished classifier runs"):
        collect_runs(tmp_path)


@pytest.mark.slow
def test_a_wandb_run_carries_the_record_or_none_when_disabled(tmp_path, monkeypatch):
    wandb.teardown()  # W&B reads its mode once per process setup
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(tmp_path, ["debug=tiny", "+experiment=resize_kemo", "logger=wandb", "trainer.max_epochs=1",
                                    "model.net.width=8"])
    train(cfg)
    (copy,) = (tmp_path / "run" / "wandb").glob("offline-run-*/files/result.json")
    assert copy.read_text(encoding="utf-8") == (tmp_path / "run" / "result.json").read_text(encoding="utf-8")
    (tmp_path / "run" / "result.json").unlink()  # the W&B folder alone
    assert collect_runs(tmp_path / "run")[["preprocess", "model", "seed"]].values.tolist() == [
        ["resize", "kemotionnet", 42]]

    wandb.teardown()
    monkeypatch.setenv("WANDB_MODE", "disabled")  # W&B makes no run folder: the run still finishes and records
    cfg = compose_config(tmp_path, ["debug=tiny", "+experiment=resize_kemo", "logger=wandb", "trainer.max_epochs=1",
                                    "model.net.width=8"])
    train(cfg)
    assert (tmp_path / "run-1" / "result.json").exists()
    assert not list((tmp_path / "run-1").glob("wandb/**/result.json"))
    wandb.teardown()


def test_both_splits_are_reported_apart_with_the_leakage_per_cell(tmp_path, capsys):
    for seed in (0, 1):
        for split, accuracy in (("random", 0.8), ("subject", 0.5)):
            record(tmp_path / "sweep" / f"yolo_kemotionnet_{split}_seed{seed}", "yolo", "kemotionnet", seed,
                   accuracy + seed / 10, split=split)
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    out = tmp_path / "out"
    assert pd.read_csv(out / "table5.csv")["mean"].tolist() == [pytest.approx(0.85)]
    assert pd.read_csv(out / "subject_split" / "table5.csv")["mean"].tolist() == [pytest.approx(0.55)]
    leakage = pd.read_csv(out / "leakage.csv")
    assert leakage["gap"].tolist() == [pytest.approx(0.30)] and leakage["runs_subject"].tolist() == [2]
    printed = capsys.readouterr().out
    assert "| YOLO face crop + K-EmotionNet | 85.00 ± 7.07 | 55.00 ± 7.07 | +30.00 |" in printed
    assert "## random split" in printed and "## subject split" in printed


def test_a_cell_outside_the_table5_sweep_is_shown_under_its_own_name(tmp_path):
    record(tmp_path / "a", "yolo", "kemotionnet", 0, 0.8)
    record(tmp_path / "b", "onestage", "yolo_facev2", 0, 0.7)
    report = Table5Report.of(collect_runs(tmp_path))
    assert "| One-stage (detector's own class) | – | 70.00 (1 run) |" in report.markdown()  # after Table 5's


def test_the_beyond_the_paper_cells_get_a_row_and_columns_of_their_own(tmp_path):
    sweep = tmp_path / "sweep"
    record(sweep / "yolo_kemotionnet_seed0", "yolo", "kemotionnet", 0, 0.8)
    record(sweep / "onestage_yolo_facev2_seed0", "onestage", "yolo_facev2", 0, 0.6)
    record(sweep / "yolo_context_kemo_seed0", "yolo", "context_kemo", 0, 0.9)
    report = Table5Report.of(collect_runs(sweep))
    lines = report.markdown().splitlines()
    assert "| preprocessing | K-EmotionNet | Face + scene + place loss | YOLO-FaceV2 |" in lines
    assert "| YOLO face crop | 80.00 (1 run) | 90.00 (1 run) | – |" in lines
    assert "| One-stage (detector's own class) | – | – | 60.00 (1 run) |" in lines
    assert report.best_cell == "yolo/context_kemo"


def test_the_report_gives_each_preprocessing_the_best_deep_margin_over_the_baseline(tmp_path, capsys):
    for model, accuracies in [("hog_svm", (0.6, 0.6)), ("resnet18", (0.7, 0.8)), ("kemotionnet", (0.5, 0.5))]:
        for seed, accuracy in enumerate(accuracies):
            record(tmp_path / "sweep" / f"resize_{model}_seed{seed}", "resize", model, seed, accuracy)
    record(tmp_path / "sweep" / "opencv_hog_svm_seed0", "opencv", "hog_svm", 0, 0.9)
    record(tmp_path / "sweep" / "opencv_resnet18_seed0", "opencv", "resnet18", 0, 0.95)
    record(tmp_path / "sweep" / "yolo_resnet18_seed0", "yolo", "resnet18", 0, 0.9)  # no baseline here: no row
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    margins = pd.read_csv(tmp_path / "out" / "baseline.csv", keep_default_na=False)
    assert margins[["preprocess", "best_deep", "below"]].values.tolist() == [["resize", "resnet18", "kemotionnet"],
                                                                              ["opencv", "resnet18", ""]]
    assert margins["margin"].tolist() == pytest.approx([0.15, 0.05])
    printed = capsys.readouterr().out
    assert "| Resize | 60.00 | ResNet18 75.00 | +15.00 |" in printed
    assert "Resize: BELOW THE BASELINE: K-EmotionNet scored less than HOG + a linear SVM (60.00 %)" in printed
    assert "OpenCV face crop: BELOW" not in printed


def test_soft_label_runs_are_a_column_beside_their_models_hard_runs(tmp_path):
    record(tmp_path / "hard", "resize", "mobilenet_v2", 0, 0.5)
    record(tmp_path / "soft", "resize", "mobilenet_v2", 0, 0.6)
    result = json.loads((tmp_path / "soft" / "result.json").read_text(encoding="utf-8"))
    result["cell"]["labels"] = "soft"  # as +experiment=soft_labels records it
    (tmp_path / "soft" / "result.json").write_text(json.dumps(result), encoding="utf-8")
    report = Table5Report.of(collect_runs(tmp_path))
    assert report.table[["model", "mean"]].values.tolist() == [["mobilenet_v2", 0.5], ["mobilenet_v2_soft", 0.6]]
    assert "| preprocessing | MobileNetV2 | MobileNetV2 (soft labels) |" in report.markdown()

"""The report reads every `result.json` below a folder, and notebooks/02_results.ipynb shows its Markdown table: a
record is data. Its cell names go into that Markdown (rendered as HTML in the notebook, where `<img onerror=...>`
runs script beside the kernel) and into `best_cell.txt` (split at "/"): a record whose names are no config option
names is skipped with its reason, as an unreadable one is, and the report goes on."""

from __future__ import annotations

import logging

import pytest

from kemotion.report import Table5Report, collect_runs, main
from tests.test_report import record

HOSTILE_NAMES = ['<img src=x onerror="alert(1)">', "yolo | 99.00 |", "a/b", ["yolo"]]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_cell_name_that_is_no_option_name_is_skipped(tmp_path, caplog, name):
    record(tmp_path / "sweep" / "good", "yolo", "kemotionnet", 0, 0.8)
    record(tmp_path / "sweep" / "hostile", name, "kemotionnet", 1, 0.99)
    with caplog.at_level(logging.WARNING):
        report = Table5Report.of(collect_runs(tmp_path / "sweep"))
    assert "hostile/result.json: its cell names no config options" in caplog.text
    assert report.runs["preprocess"].tolist() == ["yolo"] and report.best_cell == "yolo/kemotionnet"
    assert "<" not in report.markdown() and "99.00" not in report.markdown()
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])  # the whole report is written
    assert (tmp_path / "out" / "best_cell.txt").read_text(encoding="utf-8").strip() == "yolo/kemotionnet"


@pytest.mark.parametrize("value", ["0.9", None, [0.9]])
def test_a_test_accuracy_that_is_no_number_is_skipped(tmp_path, caplog, value):
    record(tmp_path / "sweep" / "good", "yolo", "kemotionnet", 0, 0.8)
    record(tmp_path / "sweep" / "odd", "yolo", "kemotionnet", 1, value)
    with caplog.at_level(logging.WARNING):
        report = Table5Report.of(collect_runs(tmp_path / "sweep"))
    assert "odd/result.json: its test accuracy" in caplog.text
    assert report.table["mean"].tolist() == [pytest.approx(0.8)]


def test_a_report_whose_markdown_holds_html_is_refused_by_the_notebook_reader(tmp_path):
    """notebooks/02_results.ipynb shows `Markdown(report.markdown)`, rendered as HTML beside the kernel: a report
    folder from elsewhere is data too. kemotion's reports hold no HTML (names are option names), so one is refused."""
    from kemotion.notebooks.results import read_report

    record(tmp_path / "sweep" / "good", "yolo", "kemotionnet", 0, 0.8)
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    assert read_report(tmp_path / "out").best == "yolo/kemotionnet"
    table = tmp_path / "out" / "table5.md"
    table.write_text(table.read_text(encoding="utf-8") + '<img src=x onerror="alert(1)">\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"table5.md holds HTML \('<'\)"):
        read_report(tmp_path / "out")

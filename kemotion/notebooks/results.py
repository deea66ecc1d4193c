"""What notebooks/02_results.ipynb shows of a Table-5 report directory (`python -m kemotion.report`): test accuracy
per preprocess × model (the paper's Table 5) as grouped bars and as the report's Markdown table, and the best
cell's confusion matrix and per-class accuracy.

The report directory holds `table5.csv` (preprocess, model, runs, mean, std: test accuracy as a fraction),
`table5.md`, `runs.csv` (a row per run, with acc_<class> columns), `confusion_best.csv` (the best cell's counts
summed over its runs; absent if its runs recorded none), `per_class_accuracy.csv` (a column per cell, the mean over
its runs) and `best_cell.txt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kemotion.core.config import table5_grid
from kemotion.core.emotions import EMOTIONS, ENGLISH_NAMES, NUM_CLASSES, parse_emotion
from kemotion.notebooks.style import class_names, new_figure, plot_labels

REPORT_FILES = ("table5.csv", "table5.md", "runs.csv", "per_class_accuracy.csv", "best_cell.txt")
CONFUSION_FILE = "confusion_best.csv"  # absent when the best cell's runs recorded no confusion matrix
PREPROCESS_ORDER = table5_grid("preprocess")  # the paper's Table 5 rows: baseline, Haar crop, YOLO crop
MODEL_ORDER = table5_grid("model")  # its columns
CHANCE = 1 / NUM_CLASSES


@dataclass
class ReportFolder:
    directory: Path
    table5: pd.DataFrame  # a row per cell: preprocess, model, runs, mean, std (fractions), cell
    markdown: str  # table5.md as written
    runs: pd.DataFrame  # a row per run, with its cell
    confusion: pd.DataFrame | None  # the best cell's counts, rows true class ('happy 기쁨'), columns predicted,
    # both in label order; None when the report has no confusion_best.csv
    per_class: pd.DataFrame  # mean per-class accuracy: rows class (English, label order), a column per cell
    best: str  # '<preprocess>/<model>'


def read_report(directory: str | Path) -> ReportFolder:
    """The report in `directory`, checked for completeness and with its classes in label order."""
    directory = Path(directory)
    missing = [name for name in REPORT_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory.resolve()} is not a Table-5 report: no {', '.join(missing)} "
                                "(`python -m kemotion.report` writes one)")
    table5 = _with_cell(pd.read_csv(directory / "table5.csv"))
    best = (directory / "best_cell.txt").read_text(encoding="utf-8").strip()
    if best not in set(table5["cell"]):
        raise ValueError(f"best_cell.txt names {best!r}, which is not a cell of table5.csv")
    confusion = _read_confusion(directory / CONFUSION_FILE) if (directory / CONFUSION_FILE).is_file() else None
    per_class = pd.read_csv(directory / "per_class_accuracy.csv", index_col="class")
    per_class = per_class.loc[list(ENGLISH_NAMES)]
    markdown = (directory / "table5.md").read_text(encoding="utf-8")
    if "<" in markdown:  # the notebook renders it as HTML, beside the kernel; kemotion's reports hold none
        raise ValueError(f"{directory / 'table5.md'} holds HTML ('<'), which the notebook would render and run; "
                         "kemotion's reports hold none: write the report again (python -m kemotion.report)")
    return ReportFolder(directory, table5, markdown, _with_cell(pd.read_csv(directory / "runs.csv")), confusion,
                        per_class, best)


def _read_confusion(path: Path) -> pd.DataFrame:
    """The counts with rows and columns in label order, whatever order and naming ('happy 기쁨', 'happy') they have."""
    confusion = pd.read_csv(path, index_col="true", encoding="utf-8")
    confusion.index = [parse_emotion(str(name).split()[0]).index for name in confusion.index]
    confusion.columns = [parse_emotion(name).index for name in confusion.columns]
    confusion = confusion.loc[range(NUM_CLASSES), range(NUM_CLASSES)]
    confusion.index = pd.Index(class_names(), name="true")
    confusion.columns = pd.Index(ENGLISH_NAMES, name="predicted")
    return confusion


def best_summary(report: ReportFolder) -> str:
    """One line: the best cell (as best_cell.txt names it), its test accuracy and how many runs it is over."""
    cell = report.table5.set_index("cell").loc[report.best]
    runs = int(cell["runs"])
    spread = f" ± {100 * cell['std']:.1f} % over {runs} runs" if runs > 1 else " % (1 run)"
    return f"best cell: {report.best}: test accuracy {100 * cell['mean']:.1f}{spread} (chance {100 * CHANCE:.1f} %)"


def row_normalised(confusion: pd.DataFrame) -> pd.DataFrame:
    """Each true class's row as fractions of its images (a row without images stays zero)."""
    return confusion.div(confusion.sum(axis=1).clip(lower=1), axis=0)


def best_cell_per_class(report: ReportFolder) -> pd.DataFrame:
    """Per class, in %: the best cell's mean accuracy over its runs, the lowest and highest run, and (when the report
    has the confusion matrix) the recall of the matrix summed over the runs, with the test images behind that sum."""
    runs = report.runs[report.runs["cell"] == report.best]
    per_run = runs[[f"acc_{name}" for name in ENGLISH_NAMES]].to_numpy()
    table = pd.DataFrame({
        "mean over runs %": 100 * report.per_class[report.best].to_numpy(),
        "lowest run %": 100 * per_run.min(axis=0),
        "highest run %": 100 * per_run.max(axis=0),
    }, index=pd.Index(class_names(), name="class"))
    if report.confusion is not None:
        table["summed confusion %"] = 100 * np.diag(row_normalised(report.confusion).to_numpy())
        table["test images"] = report.confusion.sum(axis=1)
    return table.round(1)


def per_class_all_cells(report: ReportFolder) -> pd.DataFrame:
    """Mean per-class accuracy (%) of every cell, in Table 5's order."""
    cells = [c for c in _ordered_cells(report.table5) if c in report.per_class.columns]
    return (100 * report.per_class[cells]).set_axis(class_names(), axis=0).rename_axis("class").round(1)


def plot_table5(report: ReportFolder) -> Figure:
    """Grouped bars: test accuracy mean ± std per preprocess (groups) and model (bars), each run a dot."""
    table = report.table5
    preprocesses = _ordered(table["preprocess"], PREPROCESS_ORDER)
    models = _ordered(table["model"], MODEL_ORDER)
    width = 0.8 / len(models)
    figure = new_figure(figsize=(8, 4.5))
    axes = figure.subplots()
    for i, model in enumerate(models):
        cells = table[table["model"] == model].set_index("preprocess").reindex(preprocesses)
        where = np.arange(len(preprocesses)) + (i - (len(models) - 1) / 2) * width
        bars = axes.bar(where, 100 * cells["mean"], width, yerr=100 * cells["std"].fillna(0), capsize=3,
                        label=model)
        for x, preprocess, bar in zip(where, preprocesses, bars, strict=True):
            accuracy = report.runs.loc[report.runs["cell"] == f"{preprocess}/{model}", "test_acc"]
            axes.scatter(np.full(len(accuracy), x), 100 * accuracy, color="black", s=10, zorder=3)
            if f"{preprocess}/{model}" == report.best:
                bar.set(edgecolor="black", linewidth=2)
    axes.axhline(100 * CHANCE, color="grey", linestyle="--", linewidth=1, label="chance (1/7)")
    axes.set_xticks(np.arange(len(preprocesses)), preprocesses)
    axes.set(xlabel="preprocess", ylabel="test accuracy (%)", ylim=(0, 100),
             title=f"Table 5: test accuracy, mean ± std over runs (dots: runs; outlined: best, {report.best})")
    axes.legend(title="model", fontsize="small")
    return figure


def plot_confusion(report: ReportFolder) -> Figure | None:
    """The best cell's confusion matrix summed over its runs, each row normalised to 1 (the paper's Fig. 4)."""
    if report.confusion is None:
        print(f"{report.directory / CONFUSION_FILE} is missing: the best cell's runs recorded no confusion matrix")
        return None
    rates = row_normalised(report.confusion).to_numpy()
    figure = new_figure(figsize=(7.5, 6.5))
    axes = figure.subplots()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (row, column), rate in np.ndenumerate(rates):
        axes.text(column, row, f"{rate:.2f}", ha="center", va="center", fontsize="small",
                  color="white" if rate > 0.5 else "black")
    labels = plot_labels()
    axes.set_xticks(range(NUM_CLASSES), labels, fontsize="small")
    axes.set_yticks(range(NUM_CLASSES), labels, fontsize="small")
    axes.set(xlabel="predicted", ylabel="true",
             title=f"{report.best}: confusion matrix over its runs ({int(report.confusion.to_numpy().sum())} test "
                   "images), rows normalised")
    figure.colorbar(image, ax=axes, shrink=0.8)
    return figure


def plot_per_class(report: ReportFolder) -> Figure:
    """The best cell's accuracy per class: the mean over its runs as bars, each run as a dot."""
    runs = report.runs[report.runs["cell"] == report.best]
    figure = new_figure(figsize=(8, 4))
    axes = figure.subplots()
    positions = np.arange(NUM_CLASSES)
    axes.bar(positions, 100 * report.per_class[report.best].to_numpy(), color="tab:blue", label="mean over runs")
    for position, emotion in zip(positions, EMOTIONS, strict=True):
        accuracy = runs[f"acc_{emotion.english}"]
        axes.scatter(np.full(len(accuracy), position), 100 * accuracy, color="black", s=10, zorder=3)
    axes.axhline(100 * CHANCE, color="grey", linestyle="--", linewidth=1, label="chance (1/7)")
    axes.set_xticks(positions, plot_labels())
    axes.set(ylabel="test accuracy (%)", ylim=(0, 100), title=f"{report.best}: accuracy per class (dots: runs)")
    axes.legend(fontsize="small")
    return figure


def _with_cell(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(cell=frame["preprocess"] + "/" + frame["model"])


def _ordered(values: pd.Series, order: tuple[str, ...]) -> list[str]:
    """The distinct values, the known ones in Table 5's order first, any others after them as they come."""
    present = list(dict.fromkeys(values))
    return [v for v in order if v in present] + [v for v in present if v not in order]


def _ordered_cells(table5: pd.DataFrame) -> list[str]:
    return [f"{p}/{m}" for p in _ordered(table5["preprocess"], PREPROCESS_ORDER)
            for m in _ordered(table5["model"], MODEL_ORDER) if f"{p}/{m}" in set(table5["cell"])]

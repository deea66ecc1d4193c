"""python -m kemotion.report PATH [--name NAME]: a sweep's runs as the paper's Table 5, Fig. 4 and per-class accuracy.

PATH is a multirun folder (`outputs/multiruns/table5`), any folder above run folders, or a folder of W&B run folders:
every run leaves its record, `result.json` (`kemotion/engine/runs.py`), in its run folder and in its W&B run's files, so
either is enough. Written to `experiments/NAME/` (NAME defaults to PATH's folder name):
- `table5.md`, `table5.csv`: test accuracy mean ± std (sample std over seeds) per preprocessing × classifier,
  beside the paper's;
- `runs.csv`: one row per run;
- `confusion_best.{csv,png}`: the best cell's test confusion matrix summed over its seeds (Fig. 4; the PNG
  row-normalised), `best_cell.txt`;
- `per_class_accuracy.csv`: per-class test accuracy per cell, mean over seeds;
- `baseline.{md,csv}`, when the classical baseline ran (`model=hog_svm`): per preprocessing, the best deep cell's
  margin over HOG + a linear SVM on the same crops, and every deep cell that scored below it, said in words.

Runs on the paper's random split and on a subject-disjoint one (`data.selection.subject_disjoint=true`; a run's
`cell.split`) are reported apart: the random split's report as above, the subject split's in `subject_split/`, and,
when both are there, `leakage.{md,csv}`: per cell, what the random split's accuracy gains from the same people being
in train and test ("identity leakage"). Rows and columns are in the order of Table 5's sweep (its config);
a cell it does not list is shown after, under its own name.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from kemotion.core.config import table5_grid
from kemotion.core.confusion import save_confusion
from kemotion.core.emotions import EMOTIONS
from kemotion.core.io import atomic_write

log = logging.getLogger(__name__)

PREPROCESS, MODELS = table5_grid("preprocess"), table5_grid("model")
OPTION_NAME = re.compile(r"[\w.-]+", re.ASCII)  # a config option's name: what a record's cell may name
NAMES = {  # how the paper names them (and the cells beyond it); any other cell by its config name
    "resize": "Resize", "opencv": "OpenCV face crop", "yolo": "YOLO face crop", "vgg19": "VGG19",
    "resnet18": "ResNet18", "kemotionnet": "K-EmotionNet",
    # beyond the paper: the one-stage row (its model = the detector) and the face + scene columns
    "onestage": "One-stage (detector's own class)", "yolo_facev2": "YOLO-FaceV2", "yolov8n": "YOLOv8n",
    "yolo11n": "YOLO11n", "context_kemo": "Face + scene + place loss", "context_kemo_scene": "Face + scene",
    "context_kemo_face": "Face only (context head)", "mobilenet_v2": "MobileNetV2",
    "mobilenet_v2_imagenet": "MobileNetV2 (ImageNet start)", "hog_svm": "HOG + linear SVM",
}
BASELINE = "hog_svm"  # the classical cell every deep cell is measured against
SOFT = "_soft"  # a run trained on annotator soft labels (data.labels=soft): its model's column, with this suffix
PAPER = {  # paper Table 5: test accuracy %, mean (± std) over repeated runs
    ("resize", "vgg19"): (14.30, 0.42), ("resize", "resnet18"): (15.60, 0.30), ("resize", "kemotionnet"): (15.09, 0.23),
    ("opencv", "vgg19"): (58.95, 0.45), ("opencv", "resnet18"): (60.35, 0.43), ("opencv", "kemotionnet"): (61.81, 0.55),
    ("yolo", "vgg19"): (82.76, 0.37), ("yolo", "resnet18"): (81.72, 1.06), ("yolo", "kemotionnet"): (84.37, 0.17),
}
RECORD = "result.json"
SPLITS = ("random", "subject")  # the paper's split first


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kemotion report", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a multirun folder, or any folder above run or W&B run folders")
    parser.add_argument("--name", help="experiments/NAME to write (default: PATH's folder name)")
    parser.add_argument("--out", type=Path, help="write here instead of experiments/NAME")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or Path("experiments") / (args.name or args.path.resolve().name)
    runs = collect_runs(args.path)
    reports = {split: Table5Report.of(runs[runs.split == split].reset_index(drop=True))
               for split in sorted(set(runs.split), key=lambda split: (SPLITS + (split,)).index(split))}
    for number, (split, report) in enumerate(reports.items()):
        folder = out if number == 0 else out / f"{split}_split"
        report.write(folder)
        print(f"## {split} split\n\n{report.markdown()}\n\nbest cell: {report.best_cell}; written to {folder}\n")
        margins = baseline_margins(report.table)
        if len(margins):
            _write_markdown(folder / "baseline.md", baseline_markdown(margins))
            margins.to_csv(folder / "baseline.csv", index=False)
            print(baseline_markdown(margins) + "\n")
    if {"random", "subject"} <= reports.keys():
        leakage = leakage_table(reports["random"], reports["subject"])
        _write_markdown(out / "leakage.md", leakage_markdown(leakage))
        leakage.to_csv(out / "leakage.csv", index=False)
        print(leakage_markdown(leakage))


def collect_runs(path: Path) -> pd.DataFrame:
    """One row per finished run below `path`: its cell, test metrics and confusion matrix. A W&B run folder's copy
    of a record counts only where its run folder has none (the W&B folders alone)."""
    rows = []
    for record in sorted(Path(path).rglob(RECORD)):
        if "wandb" in record.parts:
            owner = Path(*record.parts[: record.parts.index("wandb")])
            if (owner / RECORD).exists():
                continue
        rows.append(_row(record))
    rows = [row for row in rows if row is not None]
    if not rows:
        raise SystemExit(f"no finished classifier runs (a {RECORD} with a test accuracy) below {path}")
    return pd.DataFrame(rows).sort_values(["preprocess", "model", "seed"], key=_order).reset_index(drop=True)


def _row(record: Path) -> dict | None:
    try:
        result = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("Skipping %s: unreadable (%s)", record, error)
        return None
    metrics, cell = (result.get("metrics", {}), result.get("cell", {})) if isinstance(result, dict) else ({}, {})
    if not isinstance(metrics, dict) or not isinstance(cell, dict) or "test/acc" not in metrics or not {
            "preprocess", "model", "seed"} <= cell.keys():
        log.info("Skipping %s: not a tested classifier run", record)
        return None
    problem = _record_problem(cell, metrics)
    if problem:
        log.warning("Skipping %s: %s", record, problem)
        return None
    model = cell["model"] + (SOFT if cell.get("labels") == "soft" else "")  # soft labels: a column of their own
    return {"preprocess": cell["preprocess"], "model": model, "seed": cell["seed"],
            "split": cell.get("split", "random"),
            "test_acc": metrics["test/acc"],
            "test_acc_macro": metrics.get("test/acc_macro"), "val_acc_best": metrics.get("val/acc_best"),
            **{f"acc_{e.english}": metrics.get(f"test/acc_{e.english}") for e in EMOTIONS},
            "confusion": result.get("confusion"), "run": str(record.parent)}


def _name(cell: str) -> str:
    """How the report names a preprocessing or a model (`NAMES`, else the config name; soft-label runs marked)."""
    if cell.endswith(SOFT) and cell.removesuffix(SOFT) in NAMES:
        return f"{NAMES[cell.removesuffix(SOFT)]} (soft labels)"
    return NAMES.get(cell, cell)


def _record_problem(cell: dict, metrics: dict) -> str | None:
    """Why a tested run's record cannot be a row, or None. Its names go into the Markdown table (HTML in the results
    notebook) and into `best_cell.txt` (split at "/"), so they must be config option names."""
    names = [cell["preprocess"], cell["model"], cell.get("split", "random")]
    if not all(isinstance(name, str) and OPTION_NAME.fullmatch(name) for name in names):
        return f"its cell names no config options ({names!r}: letters, digits, '_', '-', '.' only)"
    if not isinstance(cell["seed"], int) or isinstance(cell["seed"], bool):
        return f"its seed {cell['seed']!r} is no integer"
    if not isinstance(metrics["test/acc"], (int, float)) or isinstance(metrics["test/acc"], bool):
        return f"its test accuracy {metrics['test/acc']!r} is no number"
    return None


def _order(column: pd.Series) -> pd.Series:
    rank = {name: i for i, name in enumerate((*PREPROCESS, *MODELS))}
    return column.map(lambda value: rank.get(value, len(rank))) if column.name != "seed" else column


class Table5Report:
    """Table 5 from the runs: a row per (preprocess, model) cell with its runs' mean and std."""

    def __init__(self, runs: pd.DataFrame, table: pd.DataFrame) -> None:
        self.runs, self.table = runs, table
        best = table.sort_values("mean", ascending=False, kind="stable").iloc[0]
        self.best_cell = f"{best.preprocess}/{best.model}"

    @classmethod
    def of(cls, runs: pd.DataFrame) -> Table5Report:
        grouped = runs.groupby(["preprocess", "model"], sort=False)["test_acc"]
        table = grouped.agg(runs="count", mean="mean", std="std").reset_index()
        return cls(runs, table)

    def markdown(self) -> str:
        cells = {(r.preprocess, r.model): r for r in self.table.itertuples()}
        models = [m for m in (*MODELS, *sorted(set(self.table.model) - set(MODELS))) if m in set(self.table.model)]
        rows = [p for p in (*PREPROCESS, *sorted(set(self.table.preprocess) - set(PREPROCESS)))
                if p in set(self.table.preprocess)]
        header = ["| preprocessing | " + " | ".join(_name(m) for m in models) + " |",
                  "|---|" + "---:|" * len(models)]
        ours = [f"| {_name(p)} | " + " | ".join(_cell(cells.get((p, m))) for m in models) + " |" for p in rows]
        paper = [f"| {_name(p)} | " + " | ".join(_paper(p, m) for m in models) + " |" for p in rows]
        low, high = self.table["runs"].min(), self.table["runs"].max()
        count = f"{low}" if low == high else f"{low}–{high}"
        return "\n".join([f"Test accuracy %, mean ± std over seeds ({count} runs per cell):", "",
                          *header, *ours, "", "The paper's Table 5 (AI-Hub, 7,000 images per class):", "",
                          *header, *paper])

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "table5.csv", index=False)
        self.runs.drop(columns="confusion").to_csv(out / "runs.csv", index=False)
        _write_markdown(out / "table5.md", self.markdown())
        _write_markdown(out / "best_cell.txt", self.best_cell)
        self.per_class().to_csv(out / "per_class_accuracy.csv")
        preprocess, model = self.best_cell.split("/")
        best = self.runs[(self.runs.preprocess == preprocess) & (self.runs.model == model)]
        matrices = [torch.tensor(m) for m in best["confusion"] if m is not None]
        if matrices:
            title = (f"{_name(preprocess)} + {_name(model)}: test confusion over "
                     f"{len(matrices)} seeds (rows: true class, row-normalised)")
            save_confusion(torch.stack(matrices).sum(dim=0), out / "confusion_best", title=title)

    def per_class(self) -> pd.DataFrame:
        columns = [f"acc_{e.english}" for e in EMOTIONS]
        means = self.runs.groupby(["preprocess", "model"], sort=False)[columns].mean()
        frame = means.T.set_axis([f"{p}/{m}" for p, m in means.index], axis=1)
        return frame.set_axis([e.english for e in EMOTIONS]).rename_axis("class")


def _cell(row) -> str:
    if row is None:
        return "–"
    spread = f" ± {100 * row.std:.2f}" if row.runs > 1 else " (1 run)"
    return f"{100 * row.mean:.2f}{spread}"


def _paper(preprocess: str, model: str) -> str:
    mean, std = PAPER.get((preprocess, model), (None, None))
    return "–" if mean is None else f"{mean:.2f} ± {std:.2f}"


def baseline_margins(table: pd.DataFrame) -> pd.DataFrame:
    """Per preprocessing with a baseline cell: its mean test accuracy, the best deep cell and its margin over it
    (points, + = the deep cell is better), and the deep cells below the baseline (`below`, names joined by ", ")."""
    rows = []
    for preprocess, cells in table.groupby("preprocess", sort=False):
        baseline, deep = cells[cells.model == BASELINE], cells[cells.model != BASELINE]
        if baseline.empty or deep.empty:
            continue
        base = float(baseline["mean"].iloc[0])
        best = deep.sort_values("mean", ascending=False, kind="stable").iloc[0]
        rows.append({"preprocess": preprocess, "baseline": base, "best_deep": best.model,
                     "best_deep_mean": best["mean"], "margin": best["mean"] - base,
                     "below": ", ".join(deep.model[deep["mean"] < base])})
    return pd.DataFrame(rows, columns=["preprocess", "baseline", "best_deep", "best_deep_mean", "margin", "below"])


def baseline_markdown(margins: pd.DataFrame) -> str:
    rows = [f"| {_name(r.preprocess)} | {100 * r.baseline:.2f} | "
            f"{_name(r.best_deep)} {100 * r.best_deep_mean:.2f} | {100 * r.margin:+.2f} |"
            for r in margins.itertuples()]
    warnings = [f"- {_name(r.preprocess)}: BELOW THE BASELINE: "
                + ", ".join(_name(m) for m in r.below.split(", "))
                + f" scored less than HOG + a linear SVM ({100 * r.baseline:.2f} %) on the same crops"
                for r in margins.itertuples() if r.below]
    verdict = warnings or ["- every deep cell beats the baseline on its crops"]
    return "\n".join(["The classical baseline (HOG + a linear SVM on the same crops and split): test accuracy %, mean "
                      "over seeds, and the best deep cell's margin over it:", "",
                      "| preprocessing | HOG + linear SVM | best deep cell | margin (points) |", "|---|---:|---|---:|",
                      *rows, "", *verdict])


def leakage_table(random: Table5Report, subject: Table5Report) -> pd.DataFrame:
    """Per cell run on both splits: test accuracy mean and std on each, and the gap (random − subject)."""
    both = random.table.merge(subject.table, on=["preprocess", "model"], suffixes=("_random", "_subject"))
    return both.assign(gap=both.mean_random - both.mean_subject)


def leakage_markdown(leakage: pd.DataFrame) -> str:
    rows = [f"| {_name(r.preprocess)} + {_name(r.model)} | "
            f"{_cell(_split(r, 'random'))} | {_cell(_split(r, 'subject'))} | {100 * r.gap:+.2f} |"
            for r in leakage.itertuples()]
    return "\n".join(["Identity leakage: test accuracy %, mean ± std over seeds, on the paper's random split (a "
                      "person's images in train and test) and on a subject-disjoint split:", "",
                      "| cell | random split | subject-disjoint | gap (points) |", "|---|---:|---:|---:|", *rows])


def _split(row, split: str) -> SimpleNamespace:
    return SimpleNamespace(**{key: getattr(row, f"{key}_{split}") for key in ("runs", "mean", "std")})


def _write_markdown(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()

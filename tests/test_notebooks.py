"""notebooks/*.ipynb run headless on tiny data (nbclient, a kernel on this venv's Python) and show the right
numbers; their code (kemotion/notebooks/) holds on its own; the committed notebooks carry no outputs."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sys
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from torch import nn

import kemotion.preprocess.yolo as yolo
from kemotion.core.config import table5_grid
from kemotion.core.emotions import EMOTIONS, ENGLISH_NAMES
from kemotion.data import images
from kemotion.engine import detector_stage
from kemotion.notebooks import crops, dataset, results, style
from kemotion.preprocess.cropper import SourceImage
from kemotion.preprocess.detector_runtime import TorchDetector
from kemotion.preprocess.opencv import OpenCVCropper
from kemotion.preprocess.resize import letterbox

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "kemotion-venv"
CELL_TIMEOUT = 300  # seconds; a tiny notebook cell takes a few


def tiny_overrides(tiny_aihub: Path, tmp_path: Path) -> list[str]:
    """debug=tiny on the session's tiny_aihub set (its generator parameters, so nothing is generated again)."""
    return ["debug=tiny", f"paths.root_dir={tmp_path}", f"data.source.root={tiny_aihub.parent}", "data.source.seed=3",
            "data.source.missing_image_fraction=0.05"]


def run_notebook(name: str, tmp_path: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """Execute notebooks/<name> as Jupyter would (working directory notebooks/), on a kernel of this Python: a
    kernelspec written here, so whatever kernels the machine has installed play no part."""
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL, "language": "python"}))
    manager = KernelManager(kernel_name=KERNEL,
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, km=manager, timeout=CELL_TIMEOUT, resources={"metadata": {"path": NOTEBOOKS}})
    inherited = {k: v for k, v in os.environ.items() if k not in {"KEMOTION_ROOT", "KEMOTION_CACHE"}}  # tmp_path's
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's kemotion
    client.execute(env={**inherited, "PYTHONPATH": pythonpath, **env})
    assert manager.kernel_spec.argv[0] == sys.executable
    return notebook


def cell_text(notebook: nbformat.NotebookNode, source: str) -> str:
    """The printed and returned text of the one code cell whose source contains `source`."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def pngs(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def numbers(text: str, row: str) -> list[float]:
    """The numbers on the lines of a printed table that start with `row` (a wide table may wrap into blocks)."""
    return [float(n) for line in text.splitlines() if re.match(re.escape(row) + r"\s", line)
            for n in re.findall(r"-?\d+(?:\.\d+)?", line[len(row):])]


# --- 01_dataset.ipynb -------------------------------------------------------------------------------------------

def test_the_dataset_notebook_shows_the_manifest_of_the_config_it_is_given(tiny_aihub, tmp_path):
    overrides = tiny_overrides(tiny_aihub, tmp_path)
    notebook = run_notebook("01_dataset.ipynb", tmp_path, {"KEMOTION_NOTEBOOK_OVERRIDES": shlex.join(overrides)})

    loaded = cell_text(notebook, "dataset.load_manifest(")
    assert f"dataset: {tiny_aihub}\n" in loaded  # the session's set itself: nothing was generated
    directory = Path(re.search(r"^manifest: (\S+)$", loaded, re.MULTILINE).group(1))
    assert directory.is_relative_to(tmp_path)
    classification, detector = (pd.read_csv(directory / f"{name}.csv") for name in ("classification", "detector"))

    balance = cell_text(notebook, "dataset.class_balance(")
    expected = {}
    for emotion in EMOTIONS:
        expected[emotion] = []
        for frame in (classification, detector):
            of_class = frame[frame["label"] == emotion.index]
            expected[emotion] += [(of_class["split"] == split).sum() for split in ("train", "val", "test")]
            expected[emotion].append(len(of_class))
        assert numbers(balance, f"{emotion.english} {emotion.korean}") == expected[emotion], emotion.english
        assert expected[emotion][3] == 10  # data.selection.n_per_class of debug=tiny
    assert numbers(balance, "all") == np.sum(list(expected.values()), axis=0).tolist()
    assert numbers(balance, "all")[:4] == [56, 7, 7, 70] and numbers(balance, "all")[7] == 28  # n_detector

    agreement = cell_text(notebook, "dataset.agreement_levels(")
    for emotion in EMOTIONS:
        agreeing = classification.loc[classification["label"] == emotion.index, "agreement"]
        tiers = [(agreeing == n).sum() for n in (3, 2, 1, 0)]
        assert numbers(agreement, f"{emotion.english} {emotion.korean}") == tiers, emotion.english

    fraction = (classification.eval("(box_x2 - box_x1) * (box_y2 - box_y1)")
                / (classification["width"] * classification["height"]))
    face_area = numbers(cell_text(notebook, "dataset.face_fraction_by_class("), "all")
    assert face_area[0] == 70 and face_area[2] == pytest.approx(100 * fraction.median(), abs=0.051)
    assert 10 <= face_area[2] <= 40  # the synthetic faces fill 10-40 % of the frame, as in the real data

    cropped = cell_text(notebook, "crops.crop_table(")
    assert "yolo: no face detector given" in cropped and "Showing resize, opencv only" in cropped
    assert not re.search(r"^\d \w+ +yolo\s", cropped, re.MULTILINE)
    rows = {(r[0], r[2]): r for r in (line.split() for line in cropped.splitlines())
            if len(r) > 2 and r[2] in ("resize", "opencv")}  # image number, class, cropper, faces found, ...
    samples = crops.sample_images(classification, 3)
    sources = [SourceImage(str(tiny_aihub / row.path), row.width, row.height) for row in samples.itertuples()]
    haar = OpenCVCropper(size=64).crop_files(sources)  # conf/preprocess/opencv.yaml's settings are its defaults
    for number, (sample, cut) in enumerate(zip(samples.itertuples(), haar, strict=True), start=1):
        resize, opencv = rows[str(number), "resize"], rows[str(number), "opencv"]
        assert resize[1] == opencv[1] == EMOTIONS[sample.label].english
        assert resize[3] == "<NA>" and opencv[3] == str(len(cut.faces))  # resize detects nothing
        assert resize[-1] == opencv[-1] == "64×64"  # preprocess.size of debug=tiny
    assert pngs(notebook) == 5  # class balance, agreement, sizes, face fraction, crops


def test_cropper_overrides_reach_only_the_croppers_that_have_the_key():
    overrides = ["preprocess=opencv", "preprocess.min_neighbors=3", "preprocess.size=64", "preprocess.checkpoint=x.pt"]
    chosen = dataset.compose_config(overrides)
    assert chosen.preprocess.min_neighbors == 3 and chosen.preprocess.size == 64
    resize = dataset.compose_config(overrides, preprocess="resize").preprocess
    assert resize._target_.endswith("ResizeCropper") and resize.size == 64 and "min_neighbors" not in resize
    assert dataset.compose_config(overrides, preprocess="yolo").preprocess.checkpoint == "x.pt"
    assert dataset.compose_config(["preprocess.checkpoint=x.pt"]).preprocess._target_.endswith("ResizeCropper")


class AnnotatedFaces(nn.Module):
    """A stand-in face detector that finds each image's annotated face: one box per image of the batch, in the
    letterbox the detector sees, laid out as ultralytics' raw output (x, y, w, h, confidence)."""

    def __init__(self, boxes: list[tuple[float, float, float, float]]) -> None:
        super().__init__()
        self.prediction = torch.tensor([[[(x1 + x2) / 2], [(y1 + y2) / 2], [x2 - x1], [y2 - y1], [0.9]]
                                        for x1, y1, x2, y2 in boxes])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        assert len(batch) == len(self.prediction)
        return self.prediction


def test_the_yolo_crops_use_the_face_detector_the_pipeline_cached(tiny_aihub, tmp_path, monkeypatch, capsys):
    overrides = tiny_overrides(tiny_aihub, tmp_path)
    cfg = dataset.compose_config([*overrides, "preprocess=yolo"])
    manifest = dataset.load_manifest(cfg)
    assert not detector_stage.face_detector_path(cfg).exists()

    def trained(run):  # what the detector stage caches, without the minutes of training
        (tmp_path / "best.ckpt").write_bytes(b"a face detector")
        return {}, str(tmp_path / "best.ckpt")

    monkeypatch.setattr(detector_stage, "train", trained)
    weights = detector_stage.run(cfg)
    assert detector_stage.face_detector_path(cfg) == weights and weights.exists()

    samples = crops.sample_images(manifest.classification, 3)
    assert samples["label"].is_unique and list(samples["label"]) == sorted(samples["label"])
    side = cfg.data.detector.image_size
    boxes = []
    for sample in samples.itertuples():  # the annotated box, in the letterbox of the decode the detector gets
        seen = images.load_rgb(sample.path, max_side=side)
        scale = seen.shape[1] / sample.width
        boxed = letterbox(seen.shape[1], seen.shape[0], side)
        boxes.append(boxed.map_box(*(scale * v for v in (sample.box_x1, sample.box_y1, sample.box_x2,
                                                         sample.box_y2))))
    monkeypatch.setattr(yolo, "detector_runtime", lambda *key: TorchDetector(AnnotatedFaces(boxes)))

    made = crops.croppers(overrides)
    assert list(made) == ["resize", "opencv", "yolo"] and made["yolo"].checkpoint == str(weights)
    assert "no face detector" not in capsys.readouterr().out
    cut = crops.crop_samples(samples, made)
    table = crops.crop_table(cut).xs("yolo", level="cropper")
    assert table["faces found"].tolist() == [1, 1, 1] and (table["picked IoU"] >= 0.95).all()
    assert all(c.image.shape == (64, 64, 3) for c in cut.crops["yolo"])
    figure = crops.plot_crops(cut)
    assert len(figure.axes) == 3 * 4  # a row per image: the source, then resize, opencv and yolo
    assert figure.axes[3].get_title() == "yolo"


def test_class_labels_are_drawn_in_korean_without_missing_glyphs():
    assert style.korean_font()  # koreanize-matplotlib is a dependency: its NanumGothic is bundled
    assert style.plot_labels()[4] == "embarrassed\n당황"
    balance = pd.DataFrame(1, index=[*style.class_names(), "all"],
                           columns=pd.MultiIndex.from_product([["classification"], ["train", "val", "test", "all"]],
                                                              names=["subset", "split"]))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing")
        dataset.plot_class_balance(balance).savefig(io.BytesIO(), format="png")


# --- 02_results.ipynb -------------------------------------------------------------------------------------------

CELLS = [(p, m) for p in table5_grid("preprocess") for m in table5_grid("model")]
SEEDS = (0, 1, 2)
# The best cell's confusion counts over its 3 seeds: rows (true) in label order, an off-diagonal count per row, so no
# column sums to what its row does.
CONFUSION = np.repeat([[1], [2], [3], [1], [2], [3], [1]], 7, axis=1) + np.diag([30, 25, 18, 20, 16, 19, 27])


def write_report(directory: Path) -> None:
    """A Table-5 report as `python -m kemotion.report` writes it, with made-up numbers: yolo/kemotionnet is best."""
    directory.mkdir()
    base = {"resize": 0.15, "opencv": 0.55, "yolo": 0.70}
    bonus = {"vgg19": 0.0, "resnet18": 0.03, "kemotionnet": 0.06}
    runs = []
    for (preprocess, model), seed in ((cell, seed) for cell in CELLS for seed in SEEDS):
        accuracy = base[preprocess] + bonus[model] + 0.01 * (seed - 1)
        per_class = {f"acc_{name}": round(accuracy + 0.02 * (i - 3), 4)
                     for i, name in enumerate(ENGLISH_NAMES)}
        runs.append({"preprocess": preprocess, "model": model, "seed": seed, "test_acc": round(accuracy, 4),
                     "test_acc_macro": round(accuracy, 4), "val_acc_best": round(accuracy + 0.02, 4), **per_class,
                     "run": f"outputs/multiruns/x/{preprocess}_{model}_{seed}"})
    runs = pd.DataFrame(runs)
    runs.to_csv(directory / "runs.csv", index=False)
    table5 = runs.groupby(["preprocess", "model"], sort=False)["test_acc"].agg(["count", "mean", "std"])
    table5 = table5.rename(columns={"count": "runs"}).reset_index()
    table5.to_csv(directory / "table5.csv", index=False)
    cells = {f"{p}/{m}": f"{100 * mean:.1f} ± {100 * std:.1f}" for p, m, _, mean, std in table5.itertuples(index=False)}
    models = table5_grid("model")
    (directory / "table5.md").write_text("\n".join(
        [f"| preprocess | {' | '.join(models)} |", "| --- | --- | --- | --- |",
         *(f"| {p} | " + " | ".join(cells[f"{p}/{m}"] for m in models) + " |" for p in table5_grid("preprocess"))])
        + "\n", encoding="utf-8")
    confusion = pd.DataFrame(CONFUSION, index=pd.Index([f"{e.english} {e.korean}" for e in EMOTIONS], name="true"),
                             columns=pd.Index(ENGLISH_NAMES, name="predicted"))
    confusion.to_csv(directory / "confusion_best.csv", encoding="utf-8")
    per_class = runs.assign(cell=runs["preprocess"] + "/" + runs["model"]).groupby("cell", sort=False)[
        [f"acc_{name}" for name in ENGLISH_NAMES]].mean().T
    per_class.index = pd.Index(ENGLISH_NAMES, name="class")
    per_class.to_csv(directory / "per_class_accuracy.csv")
    (directory / "best_cell.txt").write_text("yolo/kemotionnet\n", encoding="utf-8")


@pytest.fixture()
def report_dir(tmp_path) -> Path:
    write_report(tmp_path / "table5")
    return tmp_path / "table5"


def test_the_results_notebook_shows_table5_and_the_best_cell(report_dir, tmp_path):
    notebook = run_notebook("02_results.ipynb", tmp_path, {"KEMOTION_REPORT_DIR": str(report_dir)})

    summary = cell_text(notebook, "results.read_report(")
    assert f"report: {report_dir}\n" in summary
    # yolo/kemotionnet: runs 0.75, 0.76, 0.77
    assert "best cell: yolo/kemotionnet: test accuracy 76.0 ± 1.0 % over 3 runs (chance 14.3 %)" in summary
    (markdown,) = [o.data["text/markdown"] for c in notebook.cells if c.cell_type == "code" for o in c.outputs
                   if "text/markdown" in o.get("data", {})]
    assert markdown == (report_dir / "table5.md").read_text(encoding="utf-8")
    assert "| yolo | 70.0 ± 1.0 | 73.0 ± 1.0 | 76.0 ± 1.0 |" in markdown

    per_class = cell_text(notebook, "results.best_cell_per_class(")
    for emotion, counts in zip(EMOTIONS, CONFUSION, strict=True):
        mean, lowest, highest, recall, test_images = numbers(per_class, f"{emotion.english} {emotion.korean}")
        assert (recall, test_images) == (round(100 * counts[emotion.index] / counts.sum(), 1), counts.sum())
        assert lowest <= mean <= highest and highest - lowest == pytest.approx(2.0)  # 3 runs, 1 % apart
    assert pngs(notebook) == 3  # Table 5 bars, confusion matrix, per-class accuracy


def test_the_report_is_read_in_label_order_and_the_confusion_rows_normalised(report_dir):
    confusion = pd.read_csv(report_dir / "confusion_best.csv", index_col="true")
    confusion.iloc[::-1].to_csv(report_dir / "confusion_best.csv", encoding="utf-8")  # rows in another order
    report = results.read_report(report_dir)
    assert list(report.confusion.index) == style.class_names()
    assert report.confusion.loc["hurt 상처", "hurt"] == 3 + 19 and report.confusion.loc["hurt 상처", "sad"] == 3
    rates = results.row_normalised(report.confusion)
    assert np.allclose(rates.sum(axis=1), 1) and rates.loc["sad 슬픔", "sad"] == pytest.approx(21 / 39)
    figure = results.plot_confusion(report)
    assert np.allclose(figure.axes[0].images[0].get_array(), rates.to_numpy())
    bars = results.plot_table5(report).axes[0].patches
    assert len(bars) == 9 and max(bar.get_height() for bar in bars) == pytest.approx(76.0)
    assert results.per_class_all_cells(report).columns[0] == "resize/vgg19"


def test_a_report_without_a_confusion_matrix_shows_the_rest(report_dir, capsys):
    (report_dir / "confusion_best.csv").unlink()
    report = results.read_report(report_dir)
    assert results.plot_confusion(report) is None and "confusion_best.csv is missing" in capsys.readouterr().out
    per_class = results.best_cell_per_class(report)
    assert list(per_class.columns) == ["mean over runs %", "lowest run %", "highest run %"]
    assert per_class.loc["neutral 중립"].tolist() == [82.0, 81.0, 83.0]  # 0.76 + 0.02 · 3, runs 1 % apart


def test_an_incomplete_or_inconsistent_report_is_named(report_dir):
    (report_dir / "best_cell.txt").write_text("yolo/vit\n")
    with pytest.raises(ValueError, match="'yolo/vit', which is not a cell of table5.csv"):
        results.read_report(report_dir)
    (report_dir / "runs.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"no runs\.csv .*python -m kemotion\.report"):
        results.read_report(report_dir)


# --- the committed notebooks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["01_dataset.ipynb", "02_results.ipynb"])
def test_the_committed_notebooks_are_valid_and_cleared(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    (parameters,) = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert "os.environ.get(" in parameters.source


def test_the_results_notebook_shows_the_committed_synthetic_sweep(tmp_path):
    """Its default: experiments/table5_synthetic, the real output of the Table 5 sweep on the synthetic data."""
    committed = REPO / "experiments" / "table5_synthetic"
    notebook = run_notebook("02_results.ipynb", tmp_path, {})
    summary = cell_text(notebook, "results.read_report(")
    best = (committed / "best_cell.txt").read_text(encoding="utf-8").strip()
    assert f"best cell: {best}: test accuracy" in summary and "over 3 runs" in summary
    assert pngs(notebook) == 3

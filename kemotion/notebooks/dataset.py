"""What notebooks/01_dataset.ipynb shows of the dataset a config names: its manifest's class balance, annotator
agreement, image sizes and how much of each frame the face fills.

The config is composed as `python -m kemotion.train OVERRIDES` composes it, and the manifest is the one a training
run reads (built once, then reused from the cache), so the notebook shows exactly what runs train and test on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from omegaconf import DictConfig, open_dict

from kemotion.core.config import CONFIG_NAME, CONFIG_PACKAGE
from kemotion.core.emotions import NUM_CLASSES
from kemotion.data.manifest import Manifest, load_or_build
from kemotion.data.split import SPLITS
from kemotion.notebooks.style import class_names, new_figure, plot_labels

AGREEMENT_TIERS = (3, 2, 1, 0)  # annotators (of three) agreeing with the uploader's label; 3 = unanimous
FACE_FRACTION_RANGE = (0.10, 0.40)  # the real data: the face fills 10-40 % of the frame
PERCENTILES = (5, 50, 95)
LABELLED_SIZES = 10  # the most common image sizes get their count written beside them


def compose_config(overrides: list[str] = (), preprocess: str | None = None) -> DictConfig:
    """The training config as `python -m kemotion.train OVERRIDES` sees it (Hydra's runtime choices included).

    `preprocess` chooses the cropper (a conf/preprocess/ name) over the overrides' choice. Of the `preprocess.KEY=`
    overrides, those whose KEY the chosen cropper lacks are left out, so one set of overrides serves every cropper
    (`preprocess.checkpoint=CKPT` is only yolo's, `preprocess.min_neighbors=N` only opencv's).
    """
    choice = [f"preprocess={preprocess}"] if preprocess else [o for o in overrides if _key(o) == "preprocess"]
    general = [o for o in overrides if not _key(o).startswith("preprocess")]
    cropper = _compose([*general, *choice]).preprocess
    own = [o for o in overrides if _key(o).startswith("preprocess.")
           and (o.startswith("+") or _key(o).split(".")[1] in cropper)]
    return _compose([*general, *choice, *own])


def _compose(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):  # a run folder is never made: nothing here trains
        cfg.hydra.runtime.output_dir = str(Path(cfg.paths.log_dir) / "notebook")
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def _key(override: str) -> str:
    """The config key or group an override sets: `preprocess.size` of `preprocess.size=64` or `++preprocess.size=64`."""
    return override.lstrip("+~").split("=", 1)[0]


def load_manifest(cfg: DictConfig) -> Manifest:
    """The config's dataset (the synthetic one is generated on first use) and its manifest, as a run reads them."""
    root = instantiate(cfg.data.source).prepare()
    manifest = load_or_build(root, instantiate(cfg.data.selection), cfg.paths.cache_dir)
    print(f"dataset: {root}\nmanifest: {manifest.directory}\n"
          f"classification subset: {len(manifest.classification)} images, "
          f"detector subset: {len(manifest.detector)} images, skip report: {len(manifest.report)} entries")
    return manifest


def class_balance(manifest: Manifest) -> pd.DataFrame:
    """Images per class (rows, then 'all') and split, for the classification and the detector subset (columns)."""
    subsets = {name: _per_class(frame, "split", SPLITS) for name, frame in
               (("classification", manifest.classification), ("detector", manifest.detector))}
    for table in subsets.values():
        table["all"] = table.sum(axis=1)
    balance = pd.concat(subsets, axis=1, names=["subset", "split"])
    balance.loc["all"] = balance.sum()
    return balance


def agreement_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per class (rows, then 'all') by how many of the three annotators agree with the uploader's label."""
    table = _per_class(frame, "agreement", AGREEMENT_TIERS)
    table.columns = pd.Index([f"{n}/3" for n in AGREEMENT_TIERS], name="annotators agreeing")
    table.loc["all"] = table.sum()
    return table


def image_sizes(frame: pd.DataFrame) -> pd.DataFrame:
    """How many images have each upright size, most common first."""
    counts = frame.groupby(["width", "height"]).size().sort_values(ascending=False, kind="stable")
    sizes = counts.rename("images").reset_index()
    sizes["orientation"] = np.select([sizes["width"] > sizes["height"], sizes["width"] < sizes["height"]],
                                     ["landscape", "portrait"], "square")
    sizes["share %"] = (100 * sizes["images"] / len(frame)).round(1)
    return sizes


def face_fraction(frame: pd.DataFrame) -> pd.Series:
    """The annotated face box's area over the image's area, per image (the box is the annotators' median)."""
    box_area = (frame["box_x2"] - frame["box_x1"]) * (frame["box_y2"] - frame["box_y1"])
    return box_area / (frame["width"] * frame["height"])


def face_fraction_by_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Percentiles of the face-area fraction (in %) per class and over all images, and the share inside 10-40 %."""
    fraction = face_fraction(frame)
    low, high = FACE_FRACTION_RANGE
    groups = [(name, fraction[frame["label"] == index]) for index, name in enumerate(class_names())]
    rows = {}
    for name, values in [*groups, ("all", fraction)]:
        percentiles = {f"p{q} %": 100 * values.quantile(q / 100) for q in PERCENTILES}
        inside = 100 * values.between(low, high).mean()
        rows[name] = {"images": len(values), **percentiles, f"share in {100 * low:.0f}-{100 * high:.0f} %": inside}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class").round(1)


def plot_class_balance(balance: pd.DataFrame) -> Figure:
    """Stacked bars of the images per class and split, one panel per subset."""
    subsets = list(dict.fromkeys(balance.columns.get_level_values("subset")))
    figure = new_figure(figsize=(11, 3.8))
    for axes, subset in zip(figure.subplots(1, len(subsets), sharey=True, squeeze=False)[0], subsets, strict=True):
        table = balance.loc[class_names(), subset][list(SPLITS)]
        _stacked_bars(axes, table, plot_labels(), legend=subset == subsets[-1])
        axes.set_title(f"{subset} subset ({int(balance.loc['all', (subset, 'all')])} images)")
    figure.axes[0].set_ylabel("images")
    return figure


def plot_agreement(agreement: pd.DataFrame) -> Figure:
    """Stacked bars per class: how many images each level of annotator agreement contributes."""
    figure = new_figure(figsize=(7, 3.8))
    axes = figure.subplots()
    _stacked_bars(axes, agreement.loc[class_names()], plot_labels(), colormap="viridis_r")
    axes.set(ylabel="images", title="annotators agreeing with the uploader's label")
    return figure


def plot_image_sizes(frame: pd.DataFrame) -> Figure:
    """Each upright image size as a point, its area by how many images have it (the most common ones labelled)."""
    sizes = image_sizes(frame)
    figure = new_figure(figsize=(5, 4.5))
    axes = figure.subplots()
    axes.scatter(sizes["width"], sizes["height"], s=20 + 400 * sizes["images"] / sizes["images"].max(), alpha=0.6)
    for size in sizes.head(LABELLED_SIZES).itertuples():
        axes.annotate(f" {size.images}", (size.width, size.height), fontsize="small", va="center")
    side = max(sizes["width"].max(), sizes["height"].max()) * 1.1
    axes.plot([0, side], [0, side], color="grey", linewidth=0.8, linestyle=":")  # square images
    axes.set(xlim=(0, side), ylim=(0, side), xlabel="width (px)", ylabel="height (px)", aspect="equal",
             title=f"upright image sizes ({len(sizes)} distinct)")
    return figure


def plot_face_fraction(frame: pd.DataFrame) -> Figure:
    """Histogram of the face-area fraction and its spread per class, with the real data's 10-40 % shaded."""
    fraction = 100 * face_fraction(frame)
    low, high = (100 * f for f in FACE_FRACTION_RANGE)
    figure = new_figure(figsize=(11, 3.8))
    histogram, by_class = figure.subplots(1, 2, width_ratios=[3, 2])
    histogram.hist(fraction, bins=np.linspace(0, max(50.0, fraction.max() * 1.05), 41), color="tab:blue")
    histogram.set(xlabel="face box area / image area (%)", ylabel="images", title="face-area fraction")
    per_class = [fraction[frame["label"] == index].to_numpy() for index in range(NUM_CLASSES)]
    by_class.boxplot(per_class, orientation="horizontal", tick_labels=plot_labels())
    by_class.invert_yaxis()  # label order from the top
    by_class.set(xlabel="face box area / image area (%)", title="per class")
    for axes in (histogram, by_class):
        axes.axvspan(low, high, color="tab:green", alpha=0.15, zorder=0, label=f"real data: {low:.0f}-{high:.0f} %")
    histogram.legend()
    return figure


def _per_class(frame: pd.DataFrame, column: str, values: tuple) -> pd.DataFrame:
    """Counts of class (rows: every class, 'english 한국어') × `column` (the given values, zeros included)."""
    table = pd.crosstab(frame["label"], frame[column]).reindex(index=range(NUM_CLASSES), columns=list(values),
                                                                fill_value=0)
    table.index = pd.Index(class_names(), name="class")
    table.columns.name = column
    return table


def _stacked_bars(axes: Axes, table: pd.DataFrame, labels: list[str], colormap: str = "tab10",
                  legend: bool = True) -> None:
    bottom = np.zeros(len(table))
    for position, column in enumerate(table.columns):
        values = table[column].to_numpy()
        colour = _colour(colormap, position, len(table.columns))
        axes.bar(labels, values, bottom=bottom, label=str(column), color=colour)
        bottom += values
    if legend:  # beside the axes, where it hides no bar
        axes.legend(title=table.columns.name, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    axes.tick_params(axis="x", labelsize="small")


def _colour(colormap: str, position: int, n: int) -> tuple[float, float, float, float]:
    """The position-th of n colours: consecutive ones of a qualitative map, evenly spaced ones of a continuous one."""
    cmap = colormaps[colormap]
    return cmap(position) if cmap.N < 256 else cmap(position / max(1, n - 1))

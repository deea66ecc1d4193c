"""What notebooks/01_dataset.ipynb shows of the three croppers (conf/preprocess/): the same few images, cut by each.

Each cropper is its conf/preprocess/ file instantiated under the notebook's overrides, and crops as the crop cache
does (`crop_files`: reduced decodes, the detector's boxes mapped back), so the pictures are what training reads.
The YOLO cropper needs a face detector: `preprocess.checkpoint=CKPT` among the overrides, or the one
`python -m kemotion.train +experiment=yolo_kemo` trained and cached for this data and detector config. Training
one takes minutes, so the notebook never does; without one it says so and shows the other two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from kemotion.core.config import table5_grid
from kemotion.core.emotions import EMOTIONS
from kemotion.data import images
from kemotion.engine import detector_stage
from kemotion.notebooks.dataset import compose_config
from kemotion.notebooks.style import class_label, new_figure
from kemotion.preprocess import crop_report
from kemotion.preprocess.cropper import Cropped, Cropper, SourceImage

CROPPERS = table5_grid("preprocess")  # the croppers Table 5 compares (conf/preprocess/)
PREVIEW_SIDE = 480  # long side the source images are drawn at
ANNOTATED_COLOUR = "lime"
FACE_COLOURS = {"opencv": "orange", "yolo": "red"}  # the face each detecting cropper picked


@dataclass
class CropSamples:
    images: pd.DataFrame  # the manifest rows cropped, in display order
    crops: dict[str, list[Cropped]]  # per cropper: one Cropped per row of `images`


def croppers(overrides: list[str]) -> dict[str, Cropper]:
    """Every cropper of CROPPERS that can run, by name, each under the overrides that apply to it; the YOLO one only
    with a face detector (else a notice)."""
    made = {}
    for name in CROPPERS:
        cfg = compose_config(overrides, preprocess=name)
        if detector_stage.needs_stage(cfg):
            weights = detector_stage.face_detector_path(cfg)
            if not weights.exists():
                print(f"{name}: no face detector given (preprocess.checkpoint=CKPT) and none cached for this data and "
                      f"detector config (it would be {weights}). `python -m kemotion.train +experiment=yolo_kemo` "
                      f"trains and caches one (minutes on a CPU). Showing {', '.join(made)} only.")
                continue
            cfg.preprocess.checkpoint = str(weights)
        made[name] = instantiate(cfg.preprocess)
        print(f"{name}: {made[name]}")
    return made


def sample_images(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """n images of n different classes (at most one per class), picked reproducibly by seed, in class order."""
    one_per_class = frame.groupby("label").sample(1, random_state=seed)
    return one_per_class.sample(frac=1, random_state=seed).head(n).sort_values("label").reset_index(drop=True)


def crop_samples(samples: pd.DataFrame, made: dict[str, Cropper]) -> CropSamples:
    """Each cropper's crops of the sample images, made as the crop cache makes them."""
    sources = [SourceImage(row.path, int(row.width), int(row.height)) for row in samples.itertuples()]
    return CropSamples(samples, {name: cropper.crop_files(sources) for name, cropper in made.items()})


def crop_table(samples: CropSamples) -> pd.DataFrame:
    """Per sample image and cropper: faces found, the best and the picked face's IoU with the annotated box, and
    the fallback used (the preprocessing report's columns; resize detects nothing)."""
    parts = []
    for name, crops in samples.crops.items():
        seen = [{"faces": c.faces, "picked": c.picked, "square_side": c.square_side, "fallback": c.fallback}
                for c in crops]
        found = crop_report.per_image(samples.images, seen)
        parts.append(pd.DataFrame({
            "image": [f"{i + 1} {EMOTIONS[label].english}" for i, label in enumerate(samples.images["label"])],
            "cropper": name,
            "faces found": pd.to_numeric(found["faces_found"]).astype("Int64"),  # <NA>: resize detects nothing
            "best IoU": pd.to_numeric(found["best_iou"]).round(2),
            "picked IoU": pd.to_numeric(found["picked_iou"]).round(2),
            "fallback": found["fallback"],
            "crop": [f"{c.image.shape[1]}×{c.image.shape[0]}" if c.image is not None else "dropped" for c in crops],
        }))
    return pd.concat(parts, ignore_index=True).set_index(["image", "cropper"])


def plot_crops(samples: CropSamples) -> Figure:
    """A row per sample image: the source with its annotated face box (and each detector's picked face), then
    each cropper's crop."""
    names = list(samples.crops)
    rows, columns = len(samples.images), 1 + len(names)
    figure = new_figure(figsize=(2.6 * columns, 2.6 * rows))
    grid = np.asarray(figure.subplots(rows, columns, squeeze=False))
    for row, sample in enumerate(samples.images.itertuples()):
        _draw_source(grid[row, 0], sample, {name: samples.crops[name][row] for name in names})
        grid[row, 0].set_ylabel(class_label(sample.label))
        for axes, name in zip(grid[row, 1:], names, strict=True):
            cropped = samples.crops[name][row]
            if cropped.image is not None:
                axes.imshow(cropped.image)
            fallback = f" (no face: {cropped.fallback})" if cropped.fallback else ""
            axes.set_title(f"{name}{fallback}", fontsize="small")
            axes.set(xticks=[], yticks=[])
    picked = "".join(f", the face {name} picked ({FACE_COLOURS[name]})" for name in names if name in FACE_COLOURS)
    figure.suptitle(f"source with the annotated face box ({ANNOTATED_COLOUR}){picked}; then each cropper's crop")
    return figure


def _draw_source(axes: Axes, sample: tuple, crops: dict[str, Cropped]) -> None:
    picture = images.load_rgb(sample.path, max_side=PREVIEW_SIDE)
    scale = picture.shape[1] / sample.width  # preview pixels per full-resolution pixel
    axes.imshow(picture)
    boxes = [(sample.box_x1, sample.box_y1, sample.box_x2, sample.box_y2, ANNOTATED_COLOUR)]
    boxes += [(*c.faces[c.picked], FACE_COLOURS.get(name, "white")) for name, c in crops.items()
              if c.picked is not None]
    for x1, y1, x2, y2, colour in boxes:
        axes.add_patch(Rectangle((x1 * scale, y1 * scale), (x2 - x1) * scale, (y2 - y1) * scale, fill=False,
                                 edgecolor=colour, linewidth=1.5))
    axes.set(xticks=[], yticks=[])


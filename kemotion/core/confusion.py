"""Confusion matrices as a person reads them: a text table (Korean and English names), a CSV and a PNG.

The PNG is labelled in English and Korean: matplotlib's default font has no Hangul glyphs, so koreanize-matplotlib
(a dependency that bundles NanumGothic) sets its font; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs write files, never open windows
import koreanize_matplotlib  # noqa: E402, F401  (registers NanumGothic as matplotlib's font)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

from kemotion.core.emotions import EMOTIONS  # noqa: E402

HANGUL_FONT = plt.rcParams["font.family"]  # NanumGothic, as koreanize-matplotlib set it


def confusion_frame(confusion: torch.Tensor) -> pd.DataFrame:
    """Rows = true class, columns = predicted class, both named 'english 한국어'."""
    names = [f"{e.english} {e.korean}" for e in EMOTIONS]
    return pd.DataFrame(confusion.int().numpy(), index=pd.Index(names, name="true"),
                        columns=pd.Index([e.english for e in EMOTIONS], name="predicted"))


def row_normalised(confusion: torch.Tensor) -> torch.Tensor:
    totals = confusion.sum(dim=1, keepdim=True).clamp(min=1)
    return confusion.float() / totals


def save_confusion(confusion: torch.Tensor, stem: str | Path, title: str = "") -> Path:
    """Write `<stem>.csv` (counts) and `<stem>.png` (row-normalised, the paper's Fig. 4); return the PNG path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    confusion_frame(confusion).to_csv(stem.with_suffix(".csv"), encoding="utf-8")
    metric = MulticlassConfusionMatrix(num_classes=len(EMOTIONS))
    labels = [f"{e.english}\n{e.korean}" for e in EMOTIONS]
    figure, axes = metric.plot(val=row_normalised(confusion).round(decimals=2), labels=labels, cmap="Blues")
    for label in (*axes.get_xticklabels(), *axes.get_yticklabels()):
        label.set_fontfamily(HANGUL_FONT)  # torchmetrics plots in matplotlib's "default" style: a font without Hangul
    axes.set_title(title or "confusion matrix (rows: true class, row-normalised)")
    figure.set_size_inches(7, 6)
    png = stem.with_suffix(".png")
    figure.savefig(png, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return png

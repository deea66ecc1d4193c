"""How the notebooks name classes and make figures: English names, plus Korean where matplotlib has a Hangul font.

The Hangul font is NanumGothic, bundled with koreanize-matplotlib (never downloaded), which makes it the default
family. Without it matplotlib would draw Korean names as empty boxes, so plot labels fall back to English.
Figures are `matplotlib.figure.Figure` objects, outside pyplot's global state: a notebook shows the one a cell
returns (after `%matplotlib inline`), and nothing accumulates when code or tests make many.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from matplotlib.figure import Figure

from kemotion.core.emotions import EMOTIONS

KOREAN_FONT = "NanumGothic"  # what koreanize-matplotlib registers


@functools.cache
def korean_font() -> bool:
    """Whether plots can draw Hangul: koreanize-matplotlib imported, its font registered and made the default."""
    from matplotlib import font_manager

    try:
        with warnings.catch_warnings():  # it imports distutils' LooseVersion, deprecated
            warnings.simplefilter("ignore")
            import koreanize_matplotlib  # noqa: F401
        font_manager.findfont(KOREAN_FONT, fallback_to_default=False)
    except (ImportError, ValueError):  # not installed, or the font did not register
        return False
    return True


def new_figure(**kwargs: Any) -> Figure:
    """A constrained-layout Figure whose text can draw Hangul if any font can: each text takes its font when it is
    created, so the Hangul font is made the default first."""
    korean_font()
    return Figure(layout="constrained", **kwargs)


def class_names(sep: str = " ") -> list[str]:
    """Every class in label order as 'happy 기쁨' (the manifest summary's and the confusion CSV's naming)."""
    return [f"{e.english}{sep}{e.korean}" for e in EMOTIONS]


def plot_labels() -> list[str]:
    """Tick labels in label order: 'happy' over '기쁨' with a Hangul font, 'happy' without one."""
    return class_names(sep="\n") if korean_font() else [e.english for e in EMOTIONS]


def class_label(index: int) -> str:
    """One class's label for a plot: 'happy 기쁨' with a Hangul font, 'happy' without one."""
    emotion = EMOTIONS[index]
    return f"{emotion.english} {emotion.korean}" if korean_font() else emotion.english

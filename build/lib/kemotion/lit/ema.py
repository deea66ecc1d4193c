"""EMA weights the ultralytics way, as a Lightning `WeightAveraging` callback.

Lightning's `EMAWeightAveraging` uses a constant decay; ultralytics ramps it up, decay × (1 - exp(-updates / tau)),
so the average follows the fast-moving early weights and only settles once training does. Without the ramp a
short run (the CPU demo makes a few hundred steps) would validate weights dominated by its first, random steps.
"""

from __future__ import annotations

import math

import torch
from lightning.pytorch.callbacks import WeightAveraging


class RampedEMA(WeightAveraging):
    def __init__(self, decay: float = 0.9999, tau: float = 2000.0, **kwargs) -> None:
        super().__init__(avg_fn=ramped_ema(decay, tau), **kwargs)


def ramped_ema(decay: float, tau: float):
    """An `AveragedModel` avg_fn: average ← d·average + (1 - d)·current, with d = decay·(1 - exp(-n / tau))."""

    def update(average: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int) -> torch.Tensor:
        d = decay * (1 - math.exp(-float(num_averaged) / tau))
        return average * d + current * (1 - d)

    return update

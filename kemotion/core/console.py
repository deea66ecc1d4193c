"""The libraries' banners, quieted on `import kemotion` (`quiet`): what they print about themselves says nothing about
the run, and buries what does (kemotion's own lines, the model summary, the progress bars, the libraries' warnings).
A user's mistake is said in one line by `kemotion.core.mistakes`."""

from __future__ import annotations

import logging
import os
import warnings

# Lightning's info lines that say nothing about this run: which accelerators exist, a plug for its cloud, and that
# the model summary kemotion configures replaces the default one. The model summary, the progress bars and Lightning's
# warnings stay. Filtered on the loggers that emit them (`rank_zero_info` logs through one of the two).
LIGHTNING_NOISE = ("GPU available:", "TPU available:", "💡 Tip:", "Trainer already configured with model summary")
LIGHTNING_RANK_ZERO = ("lightning.fabric.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")
# Loggers whose every info line is noise: "Seed set to 42" (the seed is in the run's name and config) and
# "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]".
INFO_IS_NOISE = ("lightning.fabric.utilities.seed", "lightning.pytorch.accelerators.cuda")


def quiet() -> None:
    """Quiet the banners of W&B, ultralytics and Lightning. Loggers are configured by name, so this runs before those
    libraries are imported (a logger's filters and level outlive the library's own set-up)."""
    os.environ.setdefault("WANDB_SILENT", "true")
    # ultralytics' info lines (the settings file it creates on first use, summaries) go; its warnings stay, which its
    # own switch, YOLO_VERBOSE=false, would hide as well.
    logging.getLogger("ultralytics").addFilter(_at_least_warning)
    for name in LIGHTNING_RANK_ZERO:
        logging.getLogger(name).addFilter(_not_lightning_noise)
    for name in INFO_IS_NOISE:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 builds a LeafSpec, which torch deprecates: a warning for Lightning's developers, at every fit.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)


def _at_least_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _not_lightning_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(LIGHTNING_NOISE)

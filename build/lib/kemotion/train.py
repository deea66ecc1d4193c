"""python -m kemotion.train [+experiment=NAME] [group=option ...] [key=value ...]: one run, or a sweep with -m.

Composes the config (`kemotion/conf/`, see `kemotion.config`) and hands each job to `kemotion.training.train`;
returns the metric a sweeper optimises.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from kemotion.config import CONFIG_NAME, CONFIG_PATH
from kemotion.training import train


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float | None:
    metrics, _ = train(cfg)
    return metrics.get(cfg.get("optimized_metric", "val/acc_best"))


if __name__ == "__main__":
    main()

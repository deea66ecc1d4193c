"""python -m kemotion.train [+experiment=NAME] [group=option ...] [key=value ...]: one run, or a sweep with -m.

Composes the config (`kemotion/conf/`, see `kemotion.core.config`); for each job runs the stage before it (the face
detector a YOLO crop needs, `kemotion.engine.detector_stage`), then the run itself (`kemotion.engine.training.train`);
returns the metric a sweeper optimises.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from kemotion.core.config import CONFIG_NAME, CONFIG_PATH, validate
from kemotion.core.mistakes import reports_user_mistakes
from kemotion.engine import detector_stage
from kemotion.engine.training import train


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
@reports_user_mistakes
def main(cfg: DictConfig) -> float | None:
    metrics, _ = job(cfg)
    return metrics.get(cfg.get("optimized_metric", "val/acc_best"))


def job(cfg: DictConfig) -> tuple[dict[str, float], str | None]:
    """One job: the stage the run asks for (its face detector), then the run; `train`'s metrics and checkpoint."""
    validate(cfg)  # before the stage: a size that cannot work fails before a detector trains for it
    return train(cfg, face_detector=detector_stage.run(cfg))


if __name__ == "__main__":
    main()

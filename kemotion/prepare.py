"""python -m kemotion.prepare [preprocess=yolo preprocess.checkpoint=CKPT] [data=...]: build a crop cache now.

The same cache a training run's DataModule builds in `prepare_data` (what is already there is reused), made up
front, for instance before a sweep whose runs all read it.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from kemotion.core.config import CONFIG_NAME, CONFIG_PATH, validate
from kemotion.core.mistakes import reports_user_mistakes
from kemotion.datamodules.classification import ClassificationDataModule
from kemotion.engine import detector_stage
from kemotion.engine.training import data_config


def prepare(cfg: DictConfig) -> pd.DataFrame:
    """Build (or reuse) the crops of the configured data × preprocess; print where they are; return their table.
    `preprocess=yolo` without a checkpoint first gets kemotion's own face detector
    (`kemotion.engine.detector_stage`)."""
    validate(cfg)
    datamodule: ClassificationDataModule = instantiate(data_config(cfg, detector_stage.run(cfg)))
    datamodule.prepare_data()
    crops = datamodule.table
    folder = Path(crops["crop_path"].iloc[0]).parent if len(crops) else "-"
    print(f"{len(crops)} {datamodule.cropper.name} crops of {datamodule.manifest.directory} in {folder}")
    return crops


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
@reports_user_mistakes
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()

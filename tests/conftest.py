"""Shared fixtures: real configs composed with Hydra's compose API, and small synthetic AI-Hub folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from kemotion.core.config import CONFIG_NAME, CONFIG_PACKAGE

os.environ["WANDB_MODE"] = "disabled"  # tests never start W&B; they log to CSV or nowhere


def compose_config(tmp_path: Path, overrides: list[str] = ()) -> DictConfig:
    """The training config as `python -m kemotion.train OVERRIDES` would see it, writing under tmp_path: in
    `tmp_path/run`, or as Hydra gives each run a folder of its own, `run-1`, `run-2`, … once that one exists."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[f"paths.root_dir={tmp_path}", *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(_fresh(tmp_path / "run"))
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def _fresh(folder: Path) -> Path:
    return next(f for f in (folder, *(folder.with_name(f"{folder.name}-{n}") for n in range(1, 100))) if not f.exists())


@pytest.fixture(scope="session")
def tiny_aihub(tmp_path_factory) -> Path:
    """A synthetic dataset in the AI-Hub layout at debug=tiny's size (7 classes × 16 images, long side 320), made once
    per session."""
    from kemotion.data.synthetic import SyntheticAIHub

    root = tmp_path_factory.mktemp("aihub")
    return SyntheticAIHub(root, seed=3, n_subjects=6, images_per_class=16, long_side=320,
                          missing_image_fraction=0.05, workers=1).prepare()

"""Runs to predict with: recorded as `kemotion.train` records them, with untrained weights (cheap), and one tiny
trained run whose test step prediction must reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from kemotion.engine.runs import RunFolder, pipeline_record
from kemotion.engine.training import train
from kemotion.models.yolo import build_detector, save_detector
from tests.conftest import compose_config

TINY_NET = ["model.net.width=8", "model.net.stages=[1,1,1,1]"]


def recorded_run(root: Path, experiment: str, overrides: list[str] = ()) -> Path:
    """A run folder of `experiment` holding what a finished run holds (run.json with its pipeline record,
    result.json, a checkpoint), with a freshly initialised classifier (and, for yolo, face detector)."""
    return record_run(compose_config(root, [f"+experiment={experiment}", "debug=tiny", *TINY_NET, *overrides]), root)


def record_run(cfg, root: Path, architecture: str = "yolov8n.yaml") -> Path:
    """`cfg`'s run folder as a finished run leaves it, with untrained weights (a face detector file in `root`)."""
    if "checkpoint" in cfg.preprocess and cfg.preprocess.checkpoint is None:
        with open_dict(cfg):
            cfg.preprocess.checkpoint = str(detector_checkpoint(root / "face_detector.ckpt", architecture))
    net = instantiate(cfg.module.net)
    folder = RunFolder.of(cfg)
    folder.directory.mkdir(parents=True)
    best = folder.directory / "checkpoints" / "best.ckpt"
    best.parent.mkdir()
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, best)
    folder.start({}, pipeline_record(cfg, folder.directory))
    folder.finish({"metrics": {}, "best_checkpoint": str(best)})
    return folder.directory


def detector_checkpoint(path: Path, architecture: str = "yolov8n.yaml") -> Path:
    """A face detector checkpoint as `+experiment=face_detector` saves it: weights under `net.` and the architecture."""
    return save_detector(build_detector(architecture, scale="n", num_classes=1), path)


@pytest.fixture(scope="session")
def trained_opencv_run(tmp_path_factory) -> tuple[Path, object]:
    """A tiny `opencv_kemo` run trained for an epoch and tested: (its folder, its config)."""
    root = tmp_path_factory.mktemp("opencv_run")
    cfg = compose_config(root, ["+experiment=opencv_kemo", "debug=tiny", *TINY_NET, "logger=none",
                                "trainer.max_epochs=1"])
    train(cfg)
    return Path(cfg.paths.output_dir), cfg

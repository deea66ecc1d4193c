"""The face + scene data: the run's face crops beside the resize cache's whole frames, by file name, with the place."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.utils import instantiate

from kemotion.datamodules.context import UNKNOWN_BACKGROUND, ContextDataModule, background_codes
from kemotion.engine.training import train
from tests.conftest import compose_config

TINY_CONTEXT = ["+experiment=context_kemo", "preprocess=opencv", "debug=tiny"]  # the Haar crop: no detector to train


def test_background_codes_number_the_sorted_places_and_leave_unknown_out():
    places = pd.Series(["자연환경", "", "도심 환경", "자연환경"])
    assert background_codes(places).tolist() == [1, UNKNOWN_BACKGROUND, 0, 1]
    with pytest.raises(ValueError, match="num_backgrounds=2"):
        background_codes(places, num_backgrounds=1)


def test_faces_and_whole_frames_are_joined_by_file_name(tmp_path):
    cfg = compose_config(tmp_path, TINY_CONTEXT)
    module = instantiate(cfg.datamodule)
    assert isinstance(module, ContextDataModule)
    module.prepare_data()
    module.setup("fit")
    table = module.table
    faces, scenes = (table[column].map(lambda p: Path(p)) for column in ("crop_path", "scene_path"))
    assert all(f.parent.name.startswith("opencv-") for f in faces)
    assert all(s.parent.name.startswith("resize-") for s in scenes)  # the resize cropper's cache, as resize_* reads
    assert (faces.map(lambda p: p.name) == scenes.map(lambda p: p.name)).all()
    assert len(table) == len(module.manifest.classification)
    faces_batch, scenes_batch, labels, backgrounds = next(iter(module.train_dataloader()))
    assert faces_batch.shape == scenes_batch.shape == (8, 3, 32, 32)
    assert labels.dtype == backgrounds.dtype == torch.long
    train_rows = table[table["split"] == "train"]
    expected = background_codes(table["background_majority"])[(table["split"] == "train").to_numpy()]
    dataset = module.datasets["train"]
    assert dataset.backgrounds.tolist() == expected.tolist() and len(dataset) == len(train_rows)
    assert set(expected) <= set(range(7))  # the synthetic set's 7 places, all known


@pytest.mark.slow
def test_context_kemo_trains_and_records_its_cell(tmp_path):
    cfg = compose_config(tmp_path, [*TINY_CONTEXT, "trainer.max_epochs=1", "model.net.face.width=8",
                                    "model.net.face.stages=[1,1,1,1]"])
    metrics, _ = train(cfg)
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["cell"] == {"preprocess": "opencv", "model": "context_kemo", "split": "random", "seed": cfg.seed}
    assert 0 <= metrics["test/acc"] <= 1 and metrics["train/background_loss"] > 0
    assert sum(map(sum, record["confusion"])) == int((pd.read_csv(next(
        (tmp_path / ".cache" / "manifests").glob("*/classification.csv")))["split"] == "test").sum())

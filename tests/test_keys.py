"""The one list of runtime settings: every worker, thread or progress setting of every config is in it, and changing
one changes no cache's or run's key (a new thread count never re-crops, retrains or refuses a sweep's folder)."""

from __future__ import annotations

import os
import re

import pytest
from omegaconf import OmegaConf

from kemotion.core.config import options
from kemotion.core.keys import RUNTIME_SETTINGS, settings_key, short_hash
from kemotion.engine import detector_stage
from tests.conftest import compose_config

RUNTIME_LIKE = re.compile(r"worker|thread|progress|pin_memory|log_every|summary")
SECTIONS = ("data", "preprocess", "model", "detector", "trainer", "callbacks", "datamodule", "module")


def _keys(tree: object) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {key for value in tree.values() for key in _keys(value)}
    if isinstance(tree, list):
        return {key for value in tree for key in _keys(value)}
    return set()


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_runtime_setting_of_every_config_is_in_the_one_list(tmp_path, experiment):
    cfg = compose_config(tmp_path, [f"+experiment={experiment}", "trainer=ddp"])
    found = _keys({s: OmegaConf.to_container(cfg[s], resolve=False) for s in SECTIONS if s in cfg})
    runtime = {key for key in found if RUNTIME_LIKE.search(key)}
    assert runtime and runtime <= RUNTIME_SETTINGS, runtime - RUNTIME_SETTINGS


@pytest.mark.parametrize("change", ["data.selection.workers=7", "data.source.workers=7", "data.crop_workers=7",
                                    "data.num_workers=7", "data.pin_memory=true", "+trainer.enable_progress_bar=false"])
def test_a_runtime_setting_changes_no_run_or_detector_key(tmp_path, change):
    base = compose_config(tmp_path, ["+experiment=yolo_kemo"])
    changed = compose_config(tmp_path, ["+experiment=yolo_kemo", change])
    assert settings_key(changed) == settings_key(base)
    assert (detector_stage.detector_key(detector_stage.detector_run(changed), changed)
            == detector_stage.detector_key(detector_stage.detector_run(base), base))


def test_the_table5_sweep_reuses_the_demos_face_detector(tmp_path):
    """table5 keeps a real last.ckpt for its classifier runs; the face detector behind its yolo cells is the one
    `make demo` (+experiment=yolo_kemo) trained, not a second one."""
    demo = compose_config(tmp_path, ["+experiment=yolo_kemo"])
    cell = compose_config(tmp_path, ["+experiment=table5", "preprocess=yolo", "model=kemotionnet", "seed=1"])
    assert cell.callbacks.model_checkpoint.save_last != demo.callbacks.model_checkpoint.save_last
    assert (detector_stage.detector_key(detector_stage.detector_run(cell), cell)
            == detector_stage.detector_key(detector_stage.detector_run(demo), demo))


def test_a_short_hash_keeps_its_values_and_takes_any_file_name():
    # The WIDER tables' key of a root at /data/wider: the digest `widerface._key` gave when it hashed by itself.
    assert short_hash([1, "/data/wider", [["wider_face_split/wider_face_train_bbx_gt.txt", 2000]]]) == "1b2d9a85d207"
    not_utf8 = [os.fsdecode(b"/data/wider-\xff"), os.fsdecode(b"/data/wider-\xfe")]  # names Linux allows
    assert short_hash(not_utf8[0]) != short_hash(not_utf8[1])

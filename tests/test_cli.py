"""The `kemotion` command: its listing, each command's own --help (read from the comments of its config), a user's
mistake in one line (a bug, and HYDRA_FULL_ERROR=1, keep the traceback), and the libraries' banners quieted."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from kemotion.__main__ import main
from kemotion.core.commands import COMMANDS, documented
from kemotion.core.config import CONFIG_DIR, options, validate
from kemotion.core.mistakes import is_user_mistake
from tests.conftest import compose_config

# `kemotion COMMAND` runs the command's module as __main__; runpy warns when a test module imported it before.
pytestmark = pytest.mark.filterwarnings("ignore:'kemotion.:RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE_MISTAKE = "kemotion train: error: data.batch_size=0: images per batch must be a whole number >= 1"


def run(*arguments: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`python ARGUMENTS` in a fresh process with this checkout's kemotion, in `cwd`; HYDRA_FULL_ERROR only if given."""
    environment = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, *arguments], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def in_process(capsys):
    """`kemotion ARGUMENTS` in this process, ended by Hydra's or kemotion's SystemExit: its exit status, stdout and
    stderr. Hydra's logging set-up is undone after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def kemotion(*arguments: str) -> tuple[int, str, str]:
        GlobalHydra.instance().clear()
        with pytest.raises(SystemExit) as exit_:
            main(list(arguments))
        captured = capsys.readouterr()
        return exit_.value.code, captured.out, captured.err

    yield kemotion
    GlobalHydra.instance().clear()
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def kemotion_help(in_process):
    """What `kemotion COMMAND --help` prints (Hydra exits with status 0 after it)."""

    def show(command: str) -> str:
        status, out, _ = in_process(command, "--help")
        assert status == 0
        return out

    return show


def test_every_entry_point_is_a_command():  # the console script itself: tests/test_packaging.py
    assert set(COMMANDS) == {path.stem for path in (ROOT / "kemotion").glob("*.py")} - {"__init__", "__main__"}


def test_kemotion_alone_or_with_help_lists_every_command_in_one_line(capsys):
    assert main([]) == 0
    listing = capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out == listing
    for name, line in COMMANDS.items():
        assert re.search(rf"^  {name} +{re.escape(line)}$", listing, re.MULTILINE), name


def test_an_unknown_command_is_refused_with_the_commands_there_are(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["trian", "seed=1"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'trian'" in error and all(name in error for name in COMMANDS)


def test_an_option_is_a_key_or_a_group_with_a_comment_on_its_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("# python -m kemotion.x\n"
                      "defaults:\n"
                      "  - data: synthetic  # the images\n"
                      "  - paths: default\n"
                      "  - override hydra/help: kemotion  # Hydra's, not an option\n"
                      "  - _self_\n"
                      "run: ???  # a run folder\n"
                      "          # or a checkpoint\n"
                      "plain: 1\n"
                      "# a block comment, not a meaning\n"
                      "block:  # a mapping, not one option\n"
                      "  inner: 2  # nested\n"
                      "name: ${now:%H}  # the time\n", encoding="utf-8")
    keys, groups = documented(config)
    assert [(key.name, key.default, key.meaning) for key in keys] == [
        ("run", "???", "a run folder or a checkpoint"), ("name", "${now:%H}", "the time")]
    assert [(group.name, group.default, group.meaning) for group in groups] == [("data", "synthetic", "the images")]


@pytest.mark.parametrize("command", ["predict", "export"])
def test_predict_and_export_help_list_their_own_options_with_their_meaning(kemotion_help, command):
    text = kemotion_help(command)
    config = OmegaConf.load(CONFIG_DIR / f"{command}.yaml")
    keys, groups = documented(CONFIG_DIR / f"{command}.yaml")
    assert [key.name for key in keys] == [name for name in config if name not in ("defaults", "hydra")]  # all of them
    required = " ".join(f"{name}=..." for name in config if OmegaConf.is_missing(config, name))
    assert text.startswith(f"kemotion {command}: {COMMANDS[command]}\n\nusage: kemotion {command} {required} [key")
    flat = " ".join(text.split())
    for key in keys:
        assert f"\n  {key.name}={key.default}" in text and " ".join(key.meaning.split()) in flat, key.name
    assert "  name=${now:%Y-%m-%d}_${now:%H-%M-%S}" in text  # `$` survives Hydra's string.Template
    assert not groups and "Config groups" not in text and "experiment" not in text and "kemotionnet" not in text


@pytest.mark.parametrize("command", ["train", "prepare", "inspect"])
def test_the_training_configs_help_lists_its_groups_options_and_keys(kemotion_help, command):
    text = kemotion_help(command)
    assert text.startswith(f"kemotion {command}: {COMMANDS[command]}\n\n"
                           f"usage: kemotion {command} [+experiment=NAME] [group=option ...] [key=value ...]")
    keys, groups = documented(CONFIG_DIR / "train.yaml")
    assert {"data", "preprocess", "model", "trainer", "logger"} <= {group.name for group in groups}
    flat = " ".join(text.split())
    for group in groups:
        choices = ", ".join(f"{o}*" if o == group.default else o for o in options(group.name))
        assert f"{group.name} {' '.join(group.meaning.split())} options: {choices}" in flat, group.name
    assert "+experiment a paper table's cell" in flat and "yolo_kemo" in flat
    assert "\n  seed=42 " in text and "\n  ckpt_path=null " in text and "also_test={}" in text
    assert "datamodule=" not in text and "\n  cell" not in text  # plumbing, not options


def test_a_user_mistake_is_kemotions_own_value_or_os_error_or_a_missing_value(tmp_path):
    cfg = OmegaConf.create({"data": {"batch_size": 0}, "run": "???"})
    with pytest.raises(ValueError) as raised:
        validate(cfg)
    assert is_user_mistake(raised.value)
    with pytest.raises(MissingMandatoryValue) as raised:
        _ = cfg.run
    assert is_user_mistake(raised.value)
    with pytest.raises(ValueError) as raised:
        json.loads("{")  # raised inside a library
    assert not is_user_mistake(raised.value)
    with pytest.raises(FileNotFoundError) as raised:
        (tmp_path / "none").read_text()  # raised inside Python
    assert not is_user_mistake(raised.value)


def test_a_mistake_is_one_line_and_exit_status_2(tmp_path):
    result = run("-m", "kemotion.train", "data.batch_size=0", cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (2, [BATCH_SIZE_MISTAKE]), result.stderr


def test_hydra_full_error_shows_the_mistakes_traceback(tmp_path):
    result = run("-m", "kemotion", "train", "data.batch_size=0", cwd=tmp_path, HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "kemotion/core/config.py" in result.stderr
    assert "ValueError: data.batch_size=0: images per batch must be a whole number >= 1" in result.stderr


def _photo(folder: Path) -> Path:
    """An image predict's source check accepts (it runs before the run is read)."""
    cv2.imwrite(str(folder / "photo.png"), np.full((32, 32, 3), 128, np.uint8))
    return folder / "photo.png"


def test_predict_with_no_run_folder_says_so_in_one_line(tmp_path):
    missing = tmp_path / "no_run"
    result = run("-m", "kemotion", "predict", f"run={missing}", f"source={_photo(tmp_path)}", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"kemotion predict: error: run {missing} not found")


def test_a_missing_mandatory_value_is_named_with_where_its_meaning_is(in_process, tmp_path):
    assert in_process("predict", f"source={_photo(tmp_path)}", f"project={tmp_path / 'out'}") == (
        2, "", "kemotion predict: error: run is missing: give run=... (`kemotion predict --help` says what it is)\n")


APP = """
import hydra

from kemotion.core.config import validate
from kemotion.core.mistakes import reports_user_mistakes


@hydra.main(version_base="1.3", config_path=None, config_name=None)
@reports_user_mistakes
def main(cfg):
    if cfg.get("bug"):
        raise RuntimeError("a bug")
    validate(cfg)
    print("ran with batch size", cfg.data.batch_size)


main()
"""


def test_a_bug_keeps_its_traceback_and_a_sweeps_mistake_fails_only_its_job(tmp_path):
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    result = run("app.py", "+bug=true", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr
    result = run("app.py", "-m", "+data.batch_size=0,8", cwd=tmp_path)
    assert result.returncode == 1 and "ran with batch size 8" in result.stdout
    assert "kemotion app: error: data.batch_size=0: images per batch must be a whole number >= 1" in result.stderr
    assert "Traceback" not in result.stderr


NOISY_FIT = """
import sys
import warnings

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.demos.boring_classes import BoringModel

sys.stdout = sys.stderr  # one stream, in the order things are said
warnings.simplefilter("always")  # every warning each time, so the second fit would repeat the first one's


def fit():
    L.seed_everything(1)
    CUDAAccelerator.set_nvidia_flags(0)  # what a GPU run's setup says, on CPU
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        callbacks=[ModelSummary()], enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(BoringModel())


fit()
print("==== import kemotion", file=sys.stderr, flush=True)
import kemotion  # noqa: E402

fit()
from ultralytics.utils import LOGGER  # noqa: E402  first use: creates its settings file

LOGGER.info("an ultralytics info line")
LOGGER.warning("an ultralytics warning")
"""
NOISE = ["Seed set to", "LOCAL_RANK:", "Trainer already configured with model summary", "GPU available:",
         "TPU available:", "💡 Tip:", "LeafSpec"]


def test_the_libraries_banners_are_quiet_and_the_model_summary_and_warnings_stay(tmp_path):
    (tmp_path / "fit.py").write_text(NOISY_FIT, encoding="utf-8")
    result = run("fit.py", cwd=tmp_path, YOLO_CONFIG_DIR=str(tmp_path / "ultralytics"))
    assert result.returncode == 0, result.stderr
    before, after = result.stderr.split("==== import kemotion")
    assert all(noise in before for noise in NOISE)  # Lightning says all this without kemotion
    assert not [noise for noise in NOISE if noise in after]
    assert "Total params" in after and "an ultralytics warning" in after
    assert list((tmp_path / "ultralytics").rglob("settings.json"))  # the occasion of its banner came and went
    assert "Ultralytics Settings" not in after and "an ultralytics info line" not in after


def test_a_composed_config_with_hydras_node_still_resolves_whole(tmp_path):  # as train() logs the tests' configs
    cfg = compose_config(tmp_path)
    template = OmegaConf.to_container(cfg, resolve=True)["hydra"]["help"]["template"]
    assert template.startswith(f"kemotion {cfg.hydra.job.name}\n\nusage: kemotion {cfg.hydra.job.name} [+experiment")

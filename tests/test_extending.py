"""README "Extending kemotion" is true: a cropper added as it says (a module and a config file, here outside the
package through `hydra.searchpath`) trains, is cached under its own key and gets its own row in the report."""

from __future__ import annotations

import json
import textwrap

import cv2
import pytest

from kemotion.report import Table5Report, collect_runs
from kemotion.training import train
from tests.conftest import TINY_DATA, compose_config

pytestmark = pytest.mark.slow

CROPPER = '''
from dataclasses import dataclass

import cv2
import numpy as np

from kemotion.data import images
from kemotion.preprocess.cropper import Cropped, SourceImage


@dataclass(frozen=True)
class CentreCropper:
    """The centre square of the frame: no detection."""

    size: int = 500
    name: str = "centre"
    batch_size: int = 1

    def crop_files(self, sources: list[SourceImage]) -> list[Cropped]:
        return [Cropped(self(images.load_rgb(source.path))) for source in sources]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top: top + side, left: left + side]
        return cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
'''


def test_a_toy_cropper_added_as_the_readme_says_trains_and_reports(tmp_path, monkeypatch):
    plugins, conf = tmp_path / "plugins", tmp_path / "my_conf" / "preprocess"
    plugins.mkdir()
    conf.mkdir(parents=True)
    (plugins / "toy_cropper.py").write_text(CROPPER, encoding="utf-8")
    (conf / "centre.yaml").write_text(textwrap.dedent("""\
        _target_: toy_cropper.CentreCropper
        size: 500
        """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(plugins))
    cfg = compose_config(tmp_path, [f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "preprocess=centre",
                                    *TINY_DATA, "logger=csv", "trainer.max_epochs=1", "model.net.width=8",
                                    "+trainer.enable_progress_bar=false"])
    metrics, _ = train(cfg)
    result = json.loads((tmp_path / "run" / "result.json").read_text(encoding="utf-8"))
    assert result["cell"]["preprocess"] == "centre" and result["metrics"]["test/acc"] == metrics["test/acc"]
    (crops,) = [p for p in (tmp_path / ".cache" / "crops").glob("*/centre-*") if p.is_dir()]
    first = sorted(crops.glob("*.jpg"))[0]
    assert cv2.imread(str(first)).shape == (64, 64, 3)  # TINY_DATA's preprocess.size
    assert "| centre |" in Table5Report.of(collect_runs(tmp_path / "run")).markdown()

"""README "Extending kemotion" is true: a cropper added as it says (a module of `kemotion.preprocess` and a config
file, here both written into tmp_path: the package's search path extended, the config through `hydra.searchpath`)
trains, is cached under its own key, gets its own row in the report, predicts and exports, with nothing else
changed."""

from __future__ import annotations

import json
import sys
import textwrap

import cv2
import numpy as np
import pandas as pd
import pytest

import kemotion.preprocess
from kemotion import EmotionPipeline
from kemotion.engine.training import train
from kemotion.inference.exporter import export_run
from kemotion.preprocess.cache import read_crop
from kemotion.report import Table5Report, collect_runs
from tests.conftest import compose_config

pytestmark = pytest.mark.slow

MODULE = "kemotion.preprocess.centre"
CROPPER = '''
from dataclasses import dataclass

import cv2
import numpy as np

from kemotion.preprocess.cropper import WholeFrameCropper


@dataclass(frozen=True)
class CentreCropper(WholeFrameCropper):
    """The centre square of the frame: no detection."""

    size: int = 500
    name: str = "centre"
    batch_size: int = 1

    def __call__(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top: top + side, left: left + side]
        return cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
'''


@pytest.fixture
def toy_cropper(tmp_path, monkeypatch):
    """`kemotion/preprocess/centre.py` and `preprocess/centre.yaml`, as a user adds them (written into tmp_path)."""
    package, conf = tmp_path / "package", tmp_path / "my_conf" / "preprocess"
    package.mkdir()
    conf.mkdir(parents=True)
    (package / "centre.py").write_text(CROPPER, encoding="utf-8")
    (conf / "centre.yaml").write_text(textwrap.dedent(f"""\
        _target_: {MODULE}.CentreCropper
        size: 500
        """), encoding="utf-8")
    monkeypatch.setattr(kemotion.preprocess, "__path__", [*kemotion.preprocess.__path__, str(package)])
    yield tmp_path / "my_conf"
    sys.modules.pop(MODULE, None)


def test_a_toy_cropper_added_as_the_readme_says_trains_reports_predicts_and_exports(tmp_path, toy_cropper):
    cfg = compose_config(tmp_path, [f"hydra.searchpath=[file://{toy_cropper}]", "preprocess=centre",
                                    "debug=tiny", "trainer.max_epochs=1", "model.net.width=8"])
    metrics, _ = train(cfg)
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result["cell"]["preprocess"] == "centre" and result["metrics"]["test/acc"] == metrics["test/acc"]
    (crops,) = [p for p in (tmp_path / ".cache" / "crops").glob("*/centre-*") if p.is_dir()]
    first = sorted(crops.glob("*.jpg"))[0]
    assert cv2.imread(str(first)).shape == (64, 64, 3)  # debug=tiny's preprocess.size
    assert "| centre |" in Table5Report.of(collect_runs(run)).markdown()

    table = pd.read_csv(crops / "classification.csv").head(4)
    pipe = EmotionPipeline.from_run(run)
    faces = [result.faces for result in pipe.predict(table["path"].tolist())]
    assert [len(found) for found in faces] == [1] * 4 and all(f[0].detector_confidence is None for f in faces)
    cached = pipe.classify([read_crop(path) for path in table["crop_path"]])  # what the test step saw
    np.testing.assert_allclose([[f[0].probabilities[k] for k in f[0].probabilities] for f in faces], cached,
                               atol=1e-6)

    pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]' (make install does)")
    export = export_run(run, tmp_path / "export")
    assert json.loads((export / "pipeline.json").read_text())["cropper"]["_target_"] == f"{MODULE}.CentreCropper"
    exported = [result.faces for result in EmotionPipeline.from_export(export).predict(table["path"].tolist())]
    assert [[f.label for f in found] for found in exported] == [[f.label for f in found] for found in faces]
    assert [[f.box for f in found] for found in exported] == [[f.box for f in found] for found in faces]

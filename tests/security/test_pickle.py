"""Item 1 of issue 20: the restricted unpickler that reads the YOLO-FaceV2 release has no unrestricted path.

The hostile file is a pickle followed by a valid zip whose `data.pkl` names the release's `models.yolo.Model`.
`zipfile` finds an archive behind leading bytes, so the file used to pass as the release; `torch.load` looks at the
first bytes instead, saw no zip, took its legacy path and ran the leading pickle with plain `pickle.load`.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest
import torch

from kemotion.models.yolo import build_detector
from kemotion.models.yolo_facev2_weights import _RestrictedPickle, is_original_checkpoint, read_original_state
from tests.security.conftest import hostile_pickle

RELEASE_PICKLE = b"\x80\x02cmodels.yolo\nModel\nq\x00)\x81q\x01."  # protocol 2: GLOBAL models.yolo Model, NEWOBJ


def polyglot(path, marker):
    """`path`: a hostile pickle, then a zip that looks like the YOLO-FaceV2 release."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("release/data.pkl", RELEASE_PICKLE)
    path.write_bytes(hostile_pickle(marker) + archive.getvalue())
    return path


def test_a_pickle_then_zip_is_not_taken_for_the_release(tmp_path, marker):
    path = polyglot(tmp_path / "yolov5s-face.pt", marker)
    assert zipfile.is_zipfile(path)  # what fooled the old check
    assert not is_original_checkpoint(path)
    with pytest.raises(ValueError, match="yolov5s-face.pt.*not a zip"):
        read_original_state(path)
    assert not marker.exists()


def test_detector_pretrained_never_runs_the_leading_pickle(tmp_path, marker):
    """`detector.pretrained=FILE` is `build_detector(checkpoint=FILE)`: refused, as any pickle of objects is."""
    path = polyglot(tmp_path / "yolov5s-face.pt", marker)
    with pytest.raises(ValueError, match="yolov5s-face.pt holds pickled Python objects .* trust_checkpoint=true"):
        build_detector("yolov8n.yaml", scale="n", checkpoint=str(path))
    assert not marker.exists()


def test_the_restricted_unpickler_restricts_every_load(tmp_path, marker):
    """torch.load calls `pickle_module.load` as well as `pickle_module.Unpickler`: both are the restricted one."""
    loaded = _RestrictedPickle.load(io.BytesIO(hostile_pickle(marker)))
    assert not marker.exists()
    assert type(loaded["model"]).__module__ == "inert.io"  # `open` became an inert stand-in, never called


class _MarksOnLoad(torch.nn.Module):
    """Scripted, its `__setstate__` runs when `torch.jit.load` reads it: it creates the file it holds the name of."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return self.marker, self.training

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = bool(torch.from_file(state[0], True, 1).numel() > 0)  # shared=True creates the file


def torchscript_release(path, marker):
    """`path`: a TorchScript archive whose first entry is a pickle naming the release's Model (what the old check
    read); `torch.load(weights_only=False)` hands any archive holding `constants.pkl` to `torch.jit.load`."""
    scripted = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, not gone
        torch.jit.save(torch.jit.script(_MarksOnLoad(str(marker))), scripted)
    with zipfile.ZipFile(scripted) as archive, zipfile.ZipFile(path, "w") as writer:
        prefix = archive.namelist()[0].split("/")[0]
        writer.writestr(f"{prefix}/release_data.pkl", RELEASE_PICKLE)
        for name in archive.namelist():
            writer.writestr(name, archive.read(name))
    return path


def test_a_torchscript_archive_is_not_taken_for_the_release(tmp_path, marker):
    path = torchscript_release(tmp_path / "yolov5s-face.pt", marker)
    assert not is_original_checkpoint(path)
    with pytest.raises(ValueError, match="yolov5s-face.pt.*TorchScript"):
        read_original_state(path)
    assert not marker.exists()


@pytest.mark.parametrize("trust", [False, True])
def test_detector_pretrained_refuses_a_torchscript_archive_by_name(tmp_path, marker, trust):
    """Not the release, so loaded as weights: torch refuses TorchScript with weights_only=True, said as kemotion says
    it, naming the file; trust_checkpoint (which allows pickled objects) does not make kemotion run TorchScript."""
    path = torchscript_release(tmp_path / "yolov5s-face.pt", marker)
    with pytest.raises(ValueError, match="yolov5s-face.pt is a TorchScript archive"):
        build_detector("yolov8n.yaml", scale="n", checkpoint=str(path), trust_checkpoint=trust)
    assert not marker.exists()

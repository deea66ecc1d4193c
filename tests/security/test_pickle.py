"""Item 1 of issue 20: the restricted unpickler that reads the YOLO-FaceV2 release has no unrestricted path.

The hostile file is a pickle followed by a valid zip whose `data.pkl` names the release's `models.yolo.Model`.
`zipfile` finds an archive behind leading bytes, so the file used to pass as the release; `torch.load` looks at the
first bytes instead, saw no zip, took its legacy path and ran the leading pickle with plain `pickle.load`.
"""

from __future__ import annotations

import io
import zipfile

import pytest

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

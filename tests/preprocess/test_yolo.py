"""The YOLO cropper: the detector's letterbox boxes map back to the full image, and the weights are in the key."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

import kemotion.preprocess.yolo as yolo
from kemotion.core.keys import cropper_key
from kemotion.preprocess.detector_runtime import TorchDetector
from kemotion.preprocess.face_crop import crop_square, square_around
from kemotion.preprocess.yolo import YoloCropper


class OneFace(nn.Module):
    """A 'detector' whose eval output is one face at a fixed place of its letterboxed input (xywh, confidence)."""

    def __init__(self, cx: float, cy: float, w: float, h: float, confidence: float = 0.9) -> None:
        super().__init__()
        self.prediction = torch.tensor([[[cx], [cy], [w], [h], [confidence]]])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.prediction.expand(len(images), -1, -1)


@pytest.fixture()
def checkpoint(tmp_path):
    path = tmp_path / "detector.pt"
    path.write_bytes(b"weights v1")
    return path


def test_boxes_found_in_the_letterbox_land_on_the_face_in_the_full_image(checkpoint, monkeypatch):
    image = np.zeros((200, 400, 3), np.uint8)
    image[80:140, 250:310] = 255  # the "face": 60 px square in a 400×200 landscape image
    # detect_side 100: scale 0.25, the image fills rows 25-75 of the letterbox, so the face is at (62.5, 45)-(77.5, 60)
    monkeypatch.setattr(yolo, "detector_runtime", lambda *key: TorchDetector(OneFace(70.0, 52.5, 15.0, 15.0)))
    cropper = YoloCropper(str(checkpoint), size=64, detect_side=100, margin=0.2)
    boxes, scores = cropper.detect(image)
    assert boxes.tolist() == [pytest.approx([250, 80, 310, 140])] and scores.tolist() == [pytest.approx(0.9)]
    crop = cropper(image)
    expected = crop_square(image, square_around((250, 80, 310, 140), 0.2, 400, 200), 64)
    assert np.array_equal(crop, expected)
    white = np.argwhere(crop.min(axis=2) > 200)
    assert white.min(axis=0).tolist() == [9, 9] and white.max(axis=0).tolist() == [54, 54]  # centred, margin kept


def test_no_face_above_the_confidence_falls_back(checkpoint, monkeypatch):
    monkeypatch.setattr(yolo, "detector_runtime", lambda *key: TorchDetector(OneFace(50, 50, 20, 20, confidence=0.1)))
    image = np.full((120, 160, 3), 40, np.uint8)
    assert YoloCropper(str(checkpoint), size=32, detect_side=100, conf=0.25).detect(image)[0].shape == (0, 4)
    resized = YoloCropper(str(checkpoint), size=32, detect_side=100, conf=0.25, fallback="resize")(image)
    assert resized.shape == (32, 32, 3) and (resized == 40).all()
    with pytest.raises(ValueError, match="no face"):
        YoloCropper(str(checkpoint), size=32, detect_side=100, fallback="drop")(image)


def test_the_cache_key_follows_the_weights_not_just_the_path(checkpoint):
    first = cropper_key(YoloCropper(str(checkpoint)))
    assert cropper_key(YoloCropper(str(checkpoint))) == first
    checkpoint.write_bytes(b"weights v2")  # retrained in place
    assert cropper_key(YoloCropper(str(checkpoint))) != first
    assert cropper_key(YoloCropper(str(checkpoint), conf=0.5)) != cropper_key(YoloCropper(str(checkpoint)))
    second = cropper_key(YoloCropper(str(checkpoint)))
    moved = checkpoint.rename(checkpoint.with_name("moved.pt"))  # the same weights elsewhere: the same crops
    assert cropper_key(YoloCropper(str(moved))) == cropper_key(YoloCropper(str(moved), batch_size=2)) == second


def test_it_pickles_for_the_worker_processes(checkpoint):
    cropper = YoloCropper(str(checkpoint))
    assert pickle.loads(pickle.dumps(cropper)) == cropper


def test_a_missing_checkpoint_is_named_with_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.ckpt not found: train one with"):
        YoloCropper(str(tmp_path / "nowhere.ckpt"))


def test_a_real_detector_checkpoint_runs(tmp_path):
    from kemotion.models.yolo import build_detector

    path = tmp_path / "yolov8n_faces.pt"
    torch.save({"model": build_detector("yolov8n.yaml", num_classes=1)}, path)  # an ultralytics-format file
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    with pytest.raises(ValueError, match="yolov8n_faces.pt holds pickled Python objects .* trust_checkpoint=true"):
        YoloCropper(str(path), size=48, detect_side=64, conf=0.0).detect(image)  # unpickling runs code: opt in
    cropper = YoloCropper(str(path), size=48, detect_side=64, conf=0.0, trust_checkpoint=True)
    boxes, scores = cropper.detect(image)
    assert boxes.shape[1] == 4 and len(boxes) == len(scores) > 0  # conf 0: an untrained net still proposes boxes
    assert cropper(image).shape == (48, 48, 3)

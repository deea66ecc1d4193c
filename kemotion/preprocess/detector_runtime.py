"""The face detector's runtime, chosen by its file as ultralytics' AutoBackend chooses by the weights' suffix: an
`.onnx` graph runs on onnxruntime (torch is never imported), anything else (a kemotion `.ckpt`, an ultralytics `.pt`
with `trust_checkpoint`) on torch. Both take a batch of letterboxes and give each one's faces after NMS, so the YOLO
cropper is one class in training, prediction and export.

What each runtime does after the network is its own library's: ultralytics' NMS on torch, OpenCV's
(`cv2.dnn.NMSBoxes`) on onnxruntime; the ONNX graph is the detector's decoded head (B, 4 + 1, anchors: centre x, y,
width, height in letterbox pixels, face score), as `export_detector` writes it.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from kemotion.core.io import atomic_write

ONNX_SUFFIX = ".onnx"
DETECTOR_FILE = "face_detector.onnx"  # the face detector's name in an export folder
MAX_DETECTIONS = 300  # ultralytics' max_det


class DetectorRuntime(Protocol):
    def __call__(self, letterboxes: np.ndarray, conf: float, iou: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(B, S, S, 3) RGB uint8 letterboxes → for each, (n, 4) xyxy boxes in its pixels and (n,) scores."""


@functools.cache
def detector_runtime(path: str, sha256: str, device: str = "cpu", trust_checkpoint: bool = False) -> DetectorRuntime:
    """The runtime of face-detector file `path`, loaded once per process, file version and device (a module cache:
    the cropper stays a plain, picklable dataclass)."""
    if Path(path).suffix.lower() == ONNX_SUFFIX:
        from kemotion.models.onnx_runtime import session

        return OnnxDetector(session(Path(path)))
    from kemotion.models.yolo import load_detector

    return TorchDetector(load_detector(path, trust_checkpoint).to(device), device)


class TorchDetector:
    def __init__(self, net, device: str = "cpu") -> None:
        self.net, self.device = net, device

    def __call__(self, letterboxes: np.ndarray, conf: float, iou: float) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch
        from ultralytics.utils.nms import non_max_suppression  # after kemotion's import: offline settings

        with torch.no_grad():
            tensor = torch.from_numpy(letterboxes).to(self.device).permute(0, 3, 1, 2).float() / 255
            found = non_max_suppression(self.net(tensor), conf_thres=conf, iou_thres=iou)
        faces = [image.cpu().double().numpy() for image in found]
        return [(image[:, :4], image[:, 4]) for image in faces]


class OnnxDetector:
    def __init__(self, session) -> None:
        self.session = session

    def __call__(self, letterboxes: np.ndarray, conf: float, iou: float) -> list[tuple[np.ndarray, np.ndarray]]:
        inputs = np.ascontiguousarray(letterboxes.transpose(0, 3, 1, 2), dtype=np.float32) / 255
        output = self.session.run(None, {self.session.get_inputs()[0].name: inputs})[0]  # (B, 4 + 1, anchors)
        return [_after_nms(prediction.T, conf, iou) for prediction in output]


def _after_nms(prediction: np.ndarray, conf: float, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """(anchors, 4 + 1) centre-size boxes and scores → the faces above `conf` that OpenCV's NMS keeps."""
    scores = prediction[:, 4:].max(axis=1)
    kept = scores > conf
    centre, size, scores = prediction[kept, :2], prediction[kept, 2:4], scores[kept]
    corners = np.concatenate([centre - size / 2, size], axis=1)  # x, y, w, h as OpenCV's NMS takes them
    chosen = np.asarray(cv2.dnn.NMSBoxes(corners.tolist(), scores.tolist(), conf, iou),
                        dtype=np.int64).reshape(-1)[:MAX_DETECTIONS]
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[chosen]
    return xyxy, scores[chosen].astype(np.float64)


def export_detector(path: str, side: int, directory: Path, opset: int, trust_checkpoint: bool = False) -> str:
    """Face-detector file `path` as `DETECTOR_FILE` in export folder `directory` (an `.onnx` one copied, a torch
    one exported at side × side, batch size free); its name there."""
    target = directory / DETECTOR_FILE
    if Path(path).suffix.lower() == ONNX_SUFFIX:
        with open(path, "rb") as source, atomic_write(target, "wb") as handle:
            shutil.copyfileobj(source, handle)
        return DETECTOR_FILE
    import torch

    from kemotion.models.onnx_export import DecodedHead, to_onnx
    from kemotion.models.yolo import load_detector

    to_onnx(DecodedHead(load_detector(path, trust_checkpoint)), torch.zeros(2, 3, side, side), target, "detections",
            opset)
    return DETECTOR_FILE

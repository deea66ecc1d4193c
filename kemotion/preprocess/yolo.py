"""The YOLO face crop (the paper's proposal): a trained face detector finds the face, the crop policy cuts it.

The detector sees the image letterboxed to `detect_side` (its training size: `data.detector.image_size`); its
boxes are mapped back to full resolution, where the margin square is cut. The detector is loaded once per process
from `checkpoint` (a kemotion face-detector checkpoint or an ultralytics `.pt`, `kemotion.models.yolo.load_detector`)
and the file's SHA-256 is a field, so the cache key changes whenever the weights do.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kemotion.preprocess.face_crop import DEFAULT_MARGIN, FaceCropper, NoFace, PickRule
from kemotion.preprocess.resize import ResizeCropper, letterbox

FILE_CHUNK = 1 << 20


@dataclass(frozen=True)
class YoloCropper(FaceCropper):
    checkpoint: str  # the trained face detector
    size: int = 500  # paper §3.3: crops are 500×500
    margin: float = DEFAULT_MARGIN  # fraction of the face box's longer side added on each side
    detect_side: int = 640  # letterbox side the detector runs at: its training size
    conf: float = 0.25  # lowest face confidence kept
    iou: float = 0.7  # NMS IoU threshold
    pick: PickRule = "confident"  # several faces: the most "confident", or the "largest"
    fallback: NoFace = "resize"  # no face: "resize" (the paper's whole-image baseline), "centre" square, or "drop"
    name: str = "yolo"
    checkpoint_sha256: str = field(init=False)  # part of the cache key: new weights, new crops

    def __post_init__(self) -> None:
        self.check_policy()
        if not 0 <= self.conf <= 1 or not 0 < self.iou <= 1 or self.detect_side < 32:
            raise ValueError("need 0 <= conf <= 1, 0 < iou <= 1 and detect_side >= 32")
        object.__setattr__(self, "checkpoint_sha256", file_sha256(self.checkpoint))

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces in an H×W×3 RGB image: (n, 4) float xyxy boxes in its pixels and (n,) confidences."""
        from ultralytics.utils.nms import non_max_suppression  # after kemotion's import: offline settings

        height, width = image.shape[:2]
        boxed = ResizeCropper(size=self.detect_side, keep_aspect=True)(image)
        batch = torch.from_numpy(np.ascontiguousarray(boxed.transpose(2, 0, 1))).float().unsqueeze(0) / 255
        (found,) = non_max_suppression(_detector(self.checkpoint, self.checkpoint_sha256)(batch),
                                       conf_thres=self.conf, iou_thres=self.iou)
        geometry = letterbox(width, height, self.detect_side)
        offset = np.array([geometry.left, geometry.top] * 2, dtype=np.float64)
        boxes = (found[:, :4].double().numpy() - offset) / geometry.scale
        return boxes, found[:, 4].double().numpy()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(FILE_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise FileNotFoundError(f"face-detector checkpoint {path} not found: train one with "
                                "`python -m kemotion.train +experiment=face_detector`") from None
    return digest.hexdigest()


@functools.cache
def _detector(checkpoint: str, sha256: str) -> nn.Module:
    """The detector in eval mode, loaded once per process and file version (a module cache: the cropper pickles)."""
    from kemotion.models.yolo import load_detector

    return load_detector(checkpoint)

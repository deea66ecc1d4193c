"""The YOLO face crop (the paper's proposal): a trained face detector finds the face, the crop policy cuts it.

The detector sees the image letterboxed to `detect_side` (its training size: `data.detector.image_size`), a batch
of `batch_size` images per forward pass; its boxes are mapped back to full resolution, where the margin square is
cut (from a decode just large enough for the crop, see `FaceCropper`). `checkpoint` is the detector's file, and its
suffix chooses the runtime (`kemotion.preprocess.detector_runtime`): a kemotion face-detector checkpoint (or an
ultralytics `.pt` with `trust_checkpoint=true`, `kemotion.models.yolo.load_detector`) on torch, an exported
`face_detector.onnx` on onnxruntime, which is how an export predicts without torch. The detector is loaded once per
process, and the file's SHA-256 is a field, so the cache key changes whenever the weights do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from kemotion.core import keys
from kemotion.core.keys import CROP_NEUTRAL, RUNTIME_SETTING
from kemotion.preprocess.detector_runtime import detector_runtime, export_detector
from kemotion.preprocess.face_crop import DEFAULT_MARGIN, FaceCropper, NoFace, PickRule
from kemotion.preprocess.resize import ResizeCropper, letterbox


@dataclass(frozen=True)
class YoloCropper(FaceCropper):
    checkpoint: str = field(metadata=CROP_NEUTRAL)  # the face detector's file; its SHA-256 goes into the key
    size: int = 500  # paper §3.3: crops are 500×500
    margin: float = DEFAULT_MARGIN  # fraction of the face box's longer side added on each side
    detect_side: int = 640  # letterbox side the detector runs at: its training size
    conf: float = 0.25  # lowest face confidence kept
    iou: float = 0.7  # NMS IoU threshold
    pick: PickRule = "confident"  # several faces: the most "confident", or the "largest"
    fallback: NoFace = "resize"  # no face: "resize" (the paper's whole-image baseline), "centre" square, or "drop"
    batch_size: int = field(default=8, metadata=RUNTIME_SETTING)  # images per detector forward pass
    device: str = field(default="cpu", metadata=RUNTIME_SETTING)  # where a torch detector runs (cpu, cuda, mps)
    trust_checkpoint: bool = field(default=False, metadata=RUNTIME_SETTING)  # allow a pickled ultralytics .pt
    name: str = "yolo"
    checkpoint_sha256: str = field(init=False)  # part of the cache key: new weights, new crops
    needs_face_detector: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.check_policy()
        if not 0 <= self.conf <= 1 or not 0 < self.iou <= 1 or self.detect_side < 32:
            raise ValueError("need 0 <= conf <= 1, 0 < iou <= 1 and detect_side >= 32")
        object.__setattr__(self, "checkpoint_sha256", file_sha256(self.checkpoint))

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (found,) = self.detect_batch([image])
        return found

    def detect_batch(self, batch: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces in each H×W×3 RGB image, one forward pass for all: (n, 4) xyxy boxes in its pixels, (n,) scores."""
        if not batch:
            return []
        boxed = np.stack([ResizeCropper(size=self.detect_side, keep_aspect=True)(image) for image in batch])
        runtime = detector_runtime(self.checkpoint, self.checkpoint_sha256, self.device, self.trust_checkpoint)
        return [(letterbox(image.shape[1], image.shape[0], self.detect_side).unmap_boxes(boxes), scores)
                for (boxes, scores), image in zip(runtime(boxed, self.conf, self.iou), batch, strict=True)]

    def export(self, directory: Path, opset: int) -> dict:
        """The face detector as ONNX beside `pipeline.json`: the export's cropper is this one on that file."""
        return {"checkpoint": export_detector(self.checkpoint, self.detect_side, directory, opset,
                                              self.trust_checkpoint)}


def file_sha256(path: str | Path) -> str:
    try:
        return keys.file_sha256(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"face-detector checkpoint {path} not found: train one with "
                                "`python -m kemotion.train +experiment=face_detector`") from None

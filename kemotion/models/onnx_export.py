"""A torch network as an ONNX graph: the classifier and the face detector of `python -m kemotion.export`, with what
a reader of the file alone needs (class names, input size, normalisation) in its `metadata_props`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from kemotion.core.io import atomic_write


class DecodedHead(nn.Module):
    """A detector in eval mode returning only its decoded output (ultralytics' Detect returns it with the raw maps)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector(images)[0]


def to_onnx(model: nn.Module, example: torch.Tensor, path: Path, output: str, opset: int) -> None:
    """`model` (eval mode) as ONNX at `path`, batch size free, written atomically."""
    with atomic_write(path, "wb") as handle:
        torch.onnx.export(model.eval(), (example,), handle, input_names=["images"], output_names=[output],
                          dynamic_axes={"images": {0: "batch"}, output: {0: "batch"}}, opset_version=opset,
                          dynamo=False)


def set_metadata(path: Path, metadata: dict[str, str]) -> None:
    """ONNX file `path` with `metadata` as its `metadata_props` (what onnxruntime's `get_modelmeta()
    .custom_metadata_map` gives), and `input_size`, the side of its square image input, rewritten atomically."""
    import onnx

    model = onnx.load(str(path))
    side = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value  # (batch, 3, side, side)
    onnx.helper.set_model_props(model, {**metadata, "input_size": str(side)})
    with atomic_write(path, "wb") as handle:
        handle.write(model.SerializeToString())

"""The original YOLO-FaceV2 release checkpoint into kemotion's architecture, read without running its pickle.

No release file is available offline, so the test writes one in its format. How: kemotion's own YOLO-FaceV2 (scale
n, random weights) is renamed tensor by tensor into the names the original's modules give them — its
`models/yolov5s_v2_RFEM_MultiSEAM.yaml` rows (the same indices as ours) and `models/common.py` at 89fef437: Focus
(`conv.conv`, a (c, 12, 3, 3) weight), RFEM's `layer.0.share_weightconv1/2`, `bn1`, `bn2`, MultiSEAM's `DCovN{k}`
sequentials and `fc` — plus the anchor Detect layer (`m.{0,1,2}` 1×1 convs of 3 × (5 + 1) outputs, `anchors`,
`anchor_grid`). These tensors sit in a module tree whose classes are named `models.yolo.Model` and
`models.common.*`, saved in half precision under "model" like YOLOv5's train.py, beside an object whose unpickling
would delete a file if the pickle were executed.
"""

from __future__ import annotations

import logging
import os
import sys
import types

import pytest
import torch
from torch import nn

from kemotion.models.checkpoint import load_weights
from kemotion.models.yolo import build_detector
from kemotion.models.yolo_facev2_weights import ORIGINAL_RELEASE, is_original_checkpoint, read_original_state

HEAD = 34  # the Detect row of the original's layer table
ORIGINAL_NAMES = [  # kemotion name part → the original's (inverse of what the loader does, written out here)
    ("shared_1x1.conv.weight", "layer.0.share_weightconv1"), ("shared_1x1.bn.", "layer.0.bn1."),
    ("shared_3x3.weight", "layer.0.share_weightconv2"), ("shared_bn.", "layer.0.bn2."),
    ("gate_mlp.fc.", "fc."),
]


def original_name(name: str) -> str:
    if name.startswith("model.0."):
        return "model.0.conv." + name.removeprefix("model.0.")
    for ours, theirs in ORIGINAL_NAMES:
        name = name.replace(ours, theirs)
    for ours, theirs in ((".3.fn.", ".3.0.fn."), (".4.", ".3.1."), (".6.", ".3.3.")):
        if ".heads." in name and ours in name:
            name = name.replace(ours, theirs)
    return name.replace(".heads.", ".DCovN")


def conv6_to_focus(weight: torch.Tensor) -> torch.Tensor:
    return torch.cat([weight[:, :, a::2, b::2] for a, b in ((0, 0), (1, 0), (0, 1), (1, 1))], dim=1)


class _Deleter:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.remove, (self.path,)


def release_checkpoint(tmp_path, kemotion_model: nn.Module) -> tuple:
    common, yolo = types.ModuleType("models.common"), types.ModuleType("models.yolo")
    Model = type("Model", (nn.Module,), {"__module__": "models.yolo"})
    Node = type("Conv", (nn.Module,), {"__module__": "models.common"})
    common.Conv, yolo.Model = Node, Model
    state = {}
    for name, tensor in kemotion_model.state_dict().items():
        if name.startswith(f"model.{HEAD}."):
            continue
        state[original_name(name)] = conv6_to_focus(tensor) if name == "model.0.conv.weight" else tensor.clone()
    channels = [kemotion_model.model[i].conv.out_channels for i in (29, 31, 33)]
    for level, c in enumerate(channels):
        state[f"model.{HEAD}.m.{level}.weight"] = torch.randn(3 * 6, c, 1, 1)
        state[f"model.{HEAD}.m.{level}.bias"] = torch.randn(3 * 6)
    state[f"model.{HEAD}.anchors"] = torch.rand(3, 3, 2)
    state[f"model.{HEAD}.anchor_grid"] = torch.rand(3, 1, 3, 1, 1, 2)
    root = Model()
    for name, tensor in state.items():
        *path, leaf = name.split(".")
        node = root
        for part in path:
            if part not in node._modules:
                node.add_module(part, Node())
            node = node._modules[part]
        if tensor.is_floating_point() and "running" not in leaf and "anchor" not in leaf:
            node.register_parameter(leaf, nn.Parameter(tensor))
        else:
            node.register_buffer(leaf, tensor)
    canary = tmp_path / "canary"
    canary.write_text("still here")
    path = tmp_path / "yolov5s-face-v2.pt"
    sys.modules.update({"models": types.ModuleType("models"), "models.common": common, "models.yolo": yolo})
    try:
        torch.save({"epoch": -1, "model": root.half(), "optimizer": None, "opt": _Deleter(str(canary))}, path)
    finally:
        for name in ("models", "models.common", "models.yolo"):
            sys.modules.pop(name)
    return path, state, canary


@pytest.fixture(scope="module")
def kemotion_n() -> nn.Module:
    torch.manual_seed(0)
    return build_detector("yolo-facev2", "n")


def test_the_release_loads_backbone_and_neck_by_layer_and_shape(tmp_path, kemotion_n):
    path, state, canary = release_checkpoint(tmp_path, kemotion_n)
    assert is_original_checkpoint(path)
    assert read_original_state(path).keys() == state.keys()
    assert canary.read_text() == "still here"  # the pickle's os.remove was never called
    torch.manual_seed(1)
    fresh = build_detector("yolo-facev2", "n")
    report = load_weights(fresh, path, adapter=ORIGINAL_RELEASE)
    body = [n for n in kemotion_n.state_dict() if not n.startswith(f"model.{HEAD}.")]
    assert sorted(report.loaded) == sorted(body)  # every backbone and neck tensor
    assert len(report.not_transferable) == 8  # 3 convs × (weight, bias), anchors ×2
    assert all(n.startswith(f"model.{HEAD}.") for n in report.not_transferable)
    assert (report.skipped_shape, report.unexpected) == ((), ())
    assert report.missing and all(n.startswith(f"model.{HEAD}.") for n in report.missing)
    loaded = fresh.state_dict()
    for name in body:  # the values, through the half precision the release is stored in
        expected = kemotion_n.state_dict()[name]
        if expected.is_floating_point():
            assert torch.equal(loaded[name], expected.half().float()), name
    x = torch.rand(1, 3, 128, 128)
    fresh.eval(), kemotion_n.eval()
    with torch.no_grad():  # the stem: Focus turned back into the 6×6 conv computes the same features
        assert torch.allclose(fresh.model[0](x), kemotion_n.model[0].half().float()(x), atol=1e-4)


def test_detector_pretrained_takes_the_release(tmp_path, kemotion_n, caplog):
    path, _, _ = release_checkpoint(tmp_path, kemotion_n)
    with caplog.at_level("INFO"):
        build_detector("yolo-facev2", "n", checkpoint=str(path))
    assert "(the original YOLO-FaceV2 release, by layer index): loaded " in caplog.text
    assert "8 not transferable [model.34.anchors, model.34.anchor_grid, model.34.m.0.weight" in caplog.text
    loader = [r for r in caplog.records if r.name == "kemotion.models.checkpoint"]
    assert [r.levelno for r in loader] == [logging.INFO]  # the head keeping its initialisation is the expected outcome


def test_another_scale_is_refused_by_name(tmp_path, kemotion_n):
    path, _, _ = release_checkpoint(tmp_path, kemotion_n)
    with pytest.raises(ValueError, match=r"yolov5s-face-v2\.pt \(the original YOLO-FaceV2 release, by layer index\) "
                                         r"does not fit DetectionModel: \d+ of its tensors .* differ in shape"):
        load_weights(build_detector("yolo-facev2", "s"), path, adapter=ORIGINAL_RELEASE)


def test_kemotion_and_ultralytics_checkpoints_are_not_taken_for_the_release(tmp_path, kemotion_n):
    plain = tmp_path / "plain.pt"
    torch.save({"model": kemotion_n, "note": "models.yolo Model"}, plain)  # an ultralytics-style pickled model
    assert not is_original_checkpoint(plain)
    assert not is_original_checkpoint(tmp_path / "absent.pt")

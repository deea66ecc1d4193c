"""Item 2 of issue 20: a face-detector checkpoint that loads with `weights_only=True` still must not run code.

Its architecture dict is rebuilt by ultralytics' parse_model, which `eval`s the `activation` string and calls any
name of its module globals as a layer. Every path that reads such a dict — `load_detector`, the YOLO cropper of
`preprocess.checkpoint=` and of a yolo run's predict and export, a model YAML given as `architecture=` — checks it
first (`kemotion.models.yolo_architecture`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from kemotion.models.yolo import ARCHITECTURE_KEY, build_detector, load_detector, save_detector
from kemotion.models.yolo_architecture import check_architecture
from kemotion.preprocess.yolo import YoloCropper
from tests.security.conftest import hostile_pickle


def code_activation(marker) -> str:
    """An `activation` whose evaluation creates `marker`, then returns a real activation."""
    return f"__import__('builtins').open({str(marker)!r}, 'w') and nn.SiLU()"


@pytest.fixture(scope="module")
def architecture(tmp_path_factory) -> dict:
    """The architecture dict kemotion writes for a small detector."""
    path = save_detector(build_detector("yolov8n.yaml", scale="n"), tmp_path_factory.mktemp("net") / "net.ckpt")
    return torch.load(path, weights_only=True)[ARCHITECTURE_KEY]


def hostile_detector(tmp_path, architecture, **changes):
    """A face-detector checkpoint as kemotion saves it (tensors and plain containers only), its architecture
    changed by `changes`."""
    path = save_detector(build_detector("yolov8n.yaml", scale="n"), tmp_path / "face_detector.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint[ARCHITECTURE_KEY] = {**architecture, **changes}
    torch.save(checkpoint, path)
    return path


def test_an_activation_carrying_code_is_refused_by_load_detector(tmp_path, marker, architecture):
    path = hostile_detector(tmp_path, architecture, activation=code_activation(marker))
    torch.load(path, weights_only=True)  # the file itself is only tensors and strings: weights_only passes it
    with pytest.raises(ValueError, match=r"face_detector.ckpt .*key 'activation'"):
        load_detector(path)
    assert not marker.exists()


def test_a_layer_naming_a_loader_function_is_refused(tmp_path, marker, architecture, monkeypatch):
    """parse_model resolves a row's module name in its globals: `torch_safe_load` would unpickle any file."""
    (tmp_path / "payload.pt").write_bytes(hostile_pickle(marker))
    monkeypatch.chdir(tmp_path)  # "payload.pt" stays a string in parse_model ("/tmp/..." fails ast.literal_eval)
    head = [*architecture["head"][:-1], [-1, 1, "torch_safe_load", ["payload.pt"]]]
    path = hostile_detector(tmp_path, architecture, head=head)
    with pytest.raises(ValueError, match=r"face_detector.ckpt .*key 'head\[\d+\] module' 'torch_safe_load'"):
        load_detector(path)
    assert not marker.exists()


def test_preprocess_checkpoint_refuses_it_before_detecting(tmp_path, marker, architecture):
    path = hostile_detector(tmp_path, architecture, activation=code_activation(marker))
    cropper = YoloCropper(str(path), size=48, detect_side=64)
    with pytest.raises(ValueError, match="key 'activation'"):
        cropper.detect(np.zeros((64, 64, 3), np.uint8))
    assert not marker.exists()


def test_detector_pretrained_takes_only_its_tensors(tmp_path, marker, architecture):
    """`detector.pretrained=FILE` builds the configured architecture and copies tensors: the stored dict is unused."""
    path = hostile_detector(tmp_path, architecture, activation=code_activation(marker))
    net = build_detector("yolov8n.yaml", scale="n", checkpoint=str(path))
    assert "activation" not in net.yaml
    assert not marker.exists()


def test_a_model_yaml_file_is_checked_too(tmp_path, marker, architecture):
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump({**architecture, "activation": code_activation(marker)}))
    with pytest.raises(ValueError, match=r"detector.yaml: .*key 'activation'"):
        build_detector(str(path), scale="n")
    assert not marker.exists()


@pytest.mark.parametrize(("key", "value"), [
    ("activation", "eval('nn.SiLU()')"),
    ("activation", "nn.Module()"),
    ("scale", "z"),
    ("nc", "1"),
    ("text_model", "mobileclip"),
])
def test_each_field_parse_model_reads_is_checked(architecture, key, value):
    with pytest.raises(ValueError, match=f"net.ckpt: detector architecture key '{key}'"):
        check_architecture({**architecture, key: value}, "net.ckpt")


def test_string_arguments_are_literals_or_known_names(architecture):
    row = [-1, 1, "nn.Upsample", ["__import__('os')", 2, "nearest"]]
    with pytest.raises(ValueError, match=r"key 'head\[0\] args'"):
        check_architecture({**architecture, "head": [row, *architecture["head"][1:]]}, "net.ckpt")


@pytest.mark.parametrize("name", ["yolov8n.yaml", "yolo11n.yaml", "yolo-facev2"])
def test_what_kemotion_writes_passes(name):
    net = build_detector(name, scale="n")
    assert check_architecture(net.yaml, name) == net.yaml
    for activation in ("nn.LeakyReLU(0.1)", "torch.nn.ReLU()", "nn.LeakyReLU(negative_slope=0.1, inplace=True)"):
        assert check_architecture({**net.yaml, "activation": activation}, name)["activation"] == activation


@pytest.mark.parametrize(("edit", "key"), [
    (lambda arch: arch | {"nc": 10**9}, "nc"),
    (lambda arch: arch | {"width_multiple": 1e6}, "width_multiple"),
    (lambda arch: arch | {"scales": {"n": [1.0, 1.0, 10**7]}}, "scales.n"),
    (lambda arch: arch | {"head": [[-1, 10**6, "nn.Identity", []], *arch["head"]]}, r"head\[0\] repeats"),
    (lambda arch: arch | {"head": [[-1, 1, "nn.Identity", [10**9]], *arch["head"]]}, r"head\[0\] args"),
    (lambda arch: arch | {"head": [[-1, 1, "nn.Identity", ["[" * 5000 + "]" * 5000]], *arch["head"]]},
     r"head\[0\] args"),
    (lambda arch: arch | {"head": [[-1, 1, "nn.Identity", [[[[[1]]]]]], *arch["head"]]}, r"head\[0\] args"),
    (lambda arch: arch | {"head": [[-1, 1, "nn.Identity", []]] * 1000}, "head"),
])
def test_sizes_that_would_fill_the_memory_or_the_stack_are_refused(architecture, edit, key):
    """The dict may also ask for a model that fills the memory or a parse that overflows the stack."""
    with pytest.raises(ValueError, match=f"net.ckpt: detector architecture key '{key}'"):
        check_architecture(edit(dict(architecture)), "net.ckpt")

"""The torchvision baselines: 7-class heads, small and paper-size inputs, and never a download."""

from __future__ import annotations

import pytest
import torch
import torchvision.models._api

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.resnet import resnet18
from kemotion.models.vgg import vgg19


@pytest.fixture
def no_download(tmp_path, monkeypatch):
    """Any weight download fails the test, and nothing may appear in the (temporary) torch hub dir."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"weights download attempted: {args}")

    hub_dir = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(hub_dir))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    yield
    assert not hub_dir.exists() or not any(hub_dir.rglob("*"))


@pytest.mark.parametrize("size", [64, 224])
def test_resnet18_shapes(no_download, size):
    model = resnet18().eval()
    assert model.fc.out_features == NUM_CLASSES
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("size", [64, 224])
def test_vgg19_shapes(no_download, size):
    model = vgg19().eval()
    assert model.classifier[-1].out_features == NUM_CLASSES
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, NUM_CLASSES)


def test_vgg19_dropout_is_configurable(no_download):
    model = vgg19(dropout=0.2)
    assert [m.p for m in model.classifier if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


def test_parameter_counts_are_torchvisions_with_a_7_class_head(no_download):
    """Pins the architectures: any change would also break loading torchvision's ImageNet weights."""
    assert sum(p.numel() for p in resnet18().parameters()) == 11_180_103
    assert sum(p.numel() for p in vgg19().parameters()) == 139_598_919

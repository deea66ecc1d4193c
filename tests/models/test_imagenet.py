"""ImageNet starts from the torch hub cache: a state dict placed in a temporary TORCH_HOME, never a download."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18 as torchvision_resnet18

from kemotion.models import imagenet
from kemotion.models.kemotionnet import kemotionnet
from kemotion.models.resnet import resnet18
from kemotion.models.vgg import vgg19

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's file name for ResNet18_Weights.IMAGENET1K_V1 (= DEFAULT)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A temporary TORCH_HOME; offline, and any download attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(imagenet.OFFLINE_VARIABLE, "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.fixture
def placed_resnet18(torch_home) -> dict[str, torch.Tensor]:
    torch.manual_seed(5)
    state = torchvision_resnet18(weights=None).state_dict()  # stands in for the ImageNet file: same names and shapes
    torch_home.mkdir(parents=True)
    torch.save(state, torch_home / RESNET18_FILE)
    return state


def test_resnet18_takes_the_cached_imagenet_weights_but_its_head(placed_resnet18):
    model = resnet18(pretrained="imagenet").state_dict()
    for name, tensor in placed_resnet18.items():
        if name.startswith("fc."):
            assert model[name].shape[0] == 7  # the 1000-class head does not fit 7 emotions
        else:
            assert torch.equal(model[name], tensor), name


def test_an_enum_member_name_selects_the_same_file(placed_resnet18):
    assert imagenet.weights_file("resnet18", "IMAGENET1K_V1").name == RESNET18_FILE
    with pytest.raises(ValueError, match="not one of torchvision's ResNet18_Weights"):
        imagenet.weights_file("resnet18", "IMAGENET9K")


def test_a_missing_file_offline_names_the_file_and_where_to_put_it(torch_home):
    with pytest.raises(FileNotFoundError) as error:
        vgg19(pretrained="imagenet")
    message = str(error.value)
    assert str(torch_home / "vgg19-dcbb9e9d.pth") in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message and "TORCH_HOME" in message


def test_kemotionnet_starts_its_matching_stem_and_first_blocks_from_resnet18(placed_resnet18, caplog):
    torch.manual_seed(0)
    scratch = kemotionnet().state_dict()
    with caplog.at_level("INFO"):
        torch.manual_seed(0)
        model = kemotionnet(pretrained="imagenet").state_dict()
    assert torch.equal(model["stem.1.weight"], placed_resnet18["bn1.weight"])
    assert torch.equal(model["stages.2.1.conv2.weight"], placed_resnet18["layer3.1.conv2.weight"])
    assert torch.equal(model["stages.1.0.shortcut.0.weight"], placed_resnet18["layer2.0.downsample.0.weight"])
    assert torch.equal(model["stages.2.2.conv1.weight"], scratch["stages.2.2.conv1.weight"])  # ResNet18 has 2 blocks
    assert torch.equal(model["stem.0.weight"], scratch["stem.0.weight"])  # 3×3 stem vs ResNet's 7×7: skipped
    assert "skipped for shape (stem.0.weight, head.weight" in caplog.text
    loaded = int(caplog.text.split("into K-EmotionNet: loaded ")[1].split(" ")[0])
    assert loaded == len(placed_resnet18) - 3  # all of ResNet18 but conv1 and the fc weight and bias

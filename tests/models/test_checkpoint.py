"""load_weights: plain, Lightning and torchvision-style files, and foreign ones through their adapters; what is
loaded, skipped and refused."""

from __future__ import annotations

import functools
import logging
import re

import pytest
import torch
import torchvision
from torch import nn

from kemotion.models.checkpoint import LoadResult, load_weights
from kemotion.models.kemotionnet import RESNET18_IMAGENET, kemotionnet
from kemotion.models.resnet import resnet18
from kemotion.models.vgg import vgg19
from kemotion.models.yolo import build_detector
from kemotion.models.yolo_facev2_weights import ORIGINAL_RELEASE
from tests.models.test_yolo_facev2_weights import release_checkpoint

SMALL = {"width": 8, "stages": (1, 1, 1, 1)}
IMAGENET_CLASSES = 1000


def trained_like(model: nn.Module) -> nn.Module:
    """Randomise every float tensor (BN γ and running stats included) so a fresh model differs from it."""
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) * 0.5 + 0.1)
    return model.eval()


@pytest.fixture
def source() -> nn.Module:
    return trained_like(kemotionnet(**SMALL))


def outputs(model: nn.Module) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: sd, id="plain"),
        pytest.param(lambda sd: {"state_dict": {f"net.{k}": v for k, v in sd.items()}}, id="lightning-net"),
        pytest.param(lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}}, id="lightning-model"),
        pytest.param(lambda sd: {"model": sd, "epoch": 3}, id="model-entry"),
    ],
)
def test_round_trip_gives_identical_outputs(tmp_path, source, wrap):
    path = tmp_path / "weights.pt"
    torch.save(wrap(source.state_dict()), path)
    fresh = kemotionnet(**SMALL)
    assert not torch.allclose(outputs(fresh), outputs(source))
    result = load_weights(fresh, path)
    assert torch.equal(outputs(fresh), outputs(source))
    assert len(result.loaded) == len(source.state_dict())
    assert (result.skipped_shape, result.missing, result.unexpected) == ((), (), ())


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda model: {"model": model, "ema": None}, id="ultralytics-final"),
        pytest.param(lambda model: {"model": None, "ema": model, "epoch": 3}, id="ultralytics-mid-training"),
    ],
)
def test_pickled_model_entries_load(tmp_path, source, wrap):
    """ultralytics' .pt pickles the model itself; mid-training its "model" is None and the weights are the EMA's."""
    path = tmp_path / "last.pt"
    torch.save(wrap(source), path)
    fresh = kemotionnet(**SMALL)
    with pytest.raises(ValueError, match="last.pt holds pickled Python objects .* trust_checkpoint=true"):
        load_weights(fresh, path)  # unpickling runs code: never unasked
    result = load_weights(fresh, path, trust_checkpoint=True)
    assert torch.equal(outputs(fresh), outputs(source))
    assert len(result.loaded) == len(source.state_dict())


def test_builder_checkpoint_argument_loads(tmp_path, source):
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    assert torch.equal(outputs(kemotionnet(**SMALL, checkpoint=str(path))), outputs(source))


def test_a_checkpoint_with_pickled_objects_loads_only_when_trusted(tmp_path, source, caplog):
    """A Lightning checkpoint whose hyper_parameters pickle an optimizer partial is not loadable weights_only (ours
    keep it out: see test_classifier)."""
    checkpoint = {
        "state_dict": {f"net.{k}": v for k, v in source.state_dict().items()} | {"criterion.weight": torch.ones(7)},
        "hyper_parameters": {"optimizer": functools.partial(torch.optim.Adam, lr=1e-3)},
        "epoch": 5,
    }
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)
    fresh = kemotionnet(**SMALL)
    with pytest.raises(ValueError, match="functools.partial"):
        load_weights(fresh, path)
    with caplog.at_level(logging.WARNING, logger="kemotion.models.checkpoint"):
        result = load_weights(fresh, path, trust_checkpoint=True)
    assert "as trust_checkpoint=true says" in caplog.text
    assert torch.equal(outputs(fresh), outputs(source))
    assert result.unexpected == ("criterion.weight",)


def test_imagenet_resnet18_loads_all_but_the_head(tmp_path, caplog):
    imagenet = trained_like(torchvision.models.resnet18(weights=None, num_classes=IMAGENET_CLASSES))
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = resnet18()
    head_before = model.fc.weight.clone()
    with caplog.at_level(logging.INFO, logger="kemotion.models.checkpoint"):
        result = load_weights(model, path)
    assert result.skipped_shape == ("fc.weight", "fc.bias")
    assert len(result.loaded) == len(imagenet.state_dict()) - 2
    assert (result.missing, result.unexpected) == ((), ())
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert torch.equal(model.fc.weight, head_before)
    assert f"loaded {len(result.loaded)} tensors, skipped 2 for shape mismatch [fc.weight, fc.bias]" in caplog.text


def test_vgg19_builder_skips_an_imagenet_head(tmp_path):
    """A slice of a torchvision VGG19 file (the full one is 550 MB): first conv fits, 1000-class head not."""
    first_conv = trained_like(nn.Conv2d(3, 64, 3, padding=1))
    checkpoint = {
        "features.0.weight": first_conv.weight.detach(),
        "features.0.bias": first_conv.bias.detach(),
        "classifier.6.weight": torch.zeros(IMAGENET_CLASSES, 4096),
        "classifier.6.bias": torch.zeros(IMAGENET_CLASSES),
    }
    path = tmp_path / "vgg19-slice.pth"
    torch.save(checkpoint, path)
    model = vgg19(checkpoint=str(path))
    assert torch.equal(model.features[0].weight, first_conv.weight)
    assert model.classifier[6].weight.shape == (7, 4096) and model.classifier[6].weight.abs().sum() > 0


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "best.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_weights(kemotionnet(**SMALL), path)


def test_file_with_no_matching_tensor_raises_value_error_naming_it(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.ones(3, 3)}, path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_weights(kemotionnet(**SMALL), path)


def test_same_names_but_other_width_is_refused(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(kemotionnet(width=16, stages=(1, 1, 1, 1)).state_dict(), path)
    with pytest.raises(ValueError, match=r"wide\.pt does not fit KEmotionNet: \d+ of its tensors .* differ in shape"):
        load_weights(kemotionnet(**SMALL), path)


def test_file_without_tensors_is_refused(tmp_path):
    path = tmp_path / "empty.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_weights(kemotionnet(**SMALL), path)


def test_bn_step_counters_alone_are_not_loadable(tmp_path):
    path = tmp_path / "counters.pt"
    torch.save({"stem.1.num_batches_tracked": torch.tensor(5)}, path)
    with pytest.raises(ValueError, match=r"counters\.pt holds nothing loadable"):
        load_weights(kemotionnet(**SMALL), path)


def test_backbone_only_file_reports_the_head_missing(tmp_path, source, caplog):
    path = tmp_path / "backbone.pt"
    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("head.")}, path)
    with caplog.at_level(logging.WARNING, logger="kemotion.models.checkpoint"):
        result = load_weights(kemotionnet(**SMALL), path)
    assert result.missing == ("head.weight", "head.bias")
    assert "2 missing [head.weight, head.bias]" in caplog.text


def test_one_loader_serves_every_source(tmp_path, source):
    """kemotion's state dict and Lightning checkpoint, torchvision's ResNet18 file into K-EmotionNet and the original
    YOLO-FaceV2 release: one `load_weights`, one `LoadResult`; a foreign source differs only by the adapter passed."""
    plain, lightning = tmp_path / "weights.pt", tmp_path / "last.ckpt"
    torch.save(source.state_dict(), plain)
    torch.save({"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, lightning)
    for path in (plain, lightning):
        fresh = kemotionnet(**SMALL)
        result = load_weights(fresh, path)
        assert torch.equal(outputs(fresh), outputs(source))
        assert (len(result.loaded), result.source, result.not_transferable) == (len(source.state_dict()), None, ())

    imagenet = trained_like(torchvision.models.resnet18(weights=None, num_classes=IMAGENET_CLASSES))
    torch.save(imagenet.state_dict(), tmp_path / "resnet18-imagenet.pth")
    model = kemotionnet()
    result = load_weights(model, tmp_path / "resnet18-imagenet.pth", adapter=RESNET18_IMAGENET)
    assert torch.equal(model.stages[3][1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert torch.equal(model.stages[1][0].shortcut[0].weight, imagenet.layer2[0].downsample[0].weight)
    assert result.skipped_shape == ("stem.0.weight", "head.weight", "head.bias")  # 7×7 stem, 1000-class head
    assert len(result.loaded) == len(imagenet.state_dict()) - 3 and result.unexpected == ()

    torch.manual_seed(0)
    detector = build_detector("yolo-facev2", "n")
    release, _, _ = release_checkpoint(tmp_path, detector)
    torch.manual_seed(1)
    fresh = build_detector("yolo-facev2", "n")
    result = load_weights(fresh, release, adapter=ORIGINAL_RELEASE)
    stem = fresh.model[0].conv.weight  # the release's Focus conv, turned into the 6×6 stem conv
    assert torch.equal(stem, detector.model[0].conv.weight.half().float())
    assert len(result.not_transferable) == 8 and result.source == "the original YOLO-FaceV2 release, by layer index"
    assert isinstance(result, LoadResult) and not result.skipped_shape


def test_an_adapted_file_of_another_architecture_is_refused_naming_it(tmp_path):
    """The release's names mapped into a YOLOv8n: what matches by name mostly differs in shape."""
    torch.manual_seed(0)
    release, _, _ = release_checkpoint(tmp_path, build_detector("yolo-facev2", "n"))
    with pytest.raises(ValueError, match=r"yolov5s-face-v2\.pt \(the original YOLO-FaceV2 release, by layer index\) "
                                         r"(does not fit|holds nothing loadable into) DetectionModel"):
        load_weights(build_detector("yolov8n.yaml", "n"), release, adapter=ORIGINAL_RELEASE)

"""The face + scene network uses both inputs, and the ablation's variants are what their names say."""

from __future__ import annotations

import pytest
import torch

from kemotion.models.context import ContextNet
from kemotion.models.kemotionnet import kemotionnet
from kemotion.models.resnet import resnet18

FEATURES = 16


def net(scene: bool = True, num_backgrounds: int = 0) -> ContextNet:
    torch.manual_seed(0)
    return ContextNet(kemotionnet(FEATURES, stages=(1, 1, 1, 1), width=8), resnet18(FEATURES) if scene else None,
                      FEATURES, num_backgrounds=num_backgrounds).eval()


def inputs(seed: int) -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_the_emotion_logits_change_with_either_input():
    model = net()
    faces, scenes = inputs(0), inputs(1)
    out = model(faces, scenes).emotions
    assert out.shape == (2, 7)
    assert not torch.allclose(out, model(inputs(2), scenes).emotions)  # another face, the same scene
    assert not torch.allclose(out, model(faces, inputs(3)).emotions)  # the same face, another scene


def test_the_emotion_loss_trains_both_branches_and_the_background_loss_the_scene_branch():
    model = net(num_backgrounds=7).train()
    emotions, _ = model(inputs(0), inputs(1))
    torch.nn.functional.cross_entropy(emotions, torch.tensor([0, 3])).backward()
    for branch in (model.face, model.scene):  # down to each branch's first conv, through the whole branch
        first = next(p for p in branch.parameters() if p.ndim > 1)
        assert first.grad is not None and first.grad.abs().sum() > 0
    model.zero_grad()
    backgrounds = model(inputs(0), inputs(1)).backgrounds
    torch.nn.functional.cross_entropy(backgrounds, torch.tensor([1, 6])).backward()
    assert backgrounds.shape == (2, 7)
    assert model.scene.fc.weight.grad.abs().sum() > 0
    assert model.face.head.weight.grad is None or model.face.head.weight.grad.abs().sum() == 0


def test_face_only_ignores_the_scene_and_has_no_background_head():
    model = net(scene=False)
    out = model(inputs(0), inputs(1))
    assert out.backgrounds is None
    assert torch.equal(out.emotions, model(inputs(0), inputs(5)).emotions)
    with pytest.raises(ValueError, match="scene"):
        net(scene=False, num_backgrounds=7)

"""K-EmotionNet: the paper's 54 weighted layers, basic blocks only, shapes, init, and that it can learn."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.kemotionnet import BasicBlock, KEmotionNet, kemotionnet

PAPER_WEIGHTED_LAYERS = 54  # paper §3.4
SMALL_WIDTH = 8  # keeps the 26-block net fast on CPU


def weighted_layers(model: nn.Module) -> int:
    """Convs with a kernel larger than 1×1 plus linear layers: He et al.'s count (projections excluded)."""
    convs = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1)
    return convs + sum(1 for m in model.modules() if isinstance(m, nn.Linear))


def test_default_stages_have_the_papers_54_weighted_layers():
    model = kemotionnet(width=SMALL_WIDTH)
    assert weighted_layers(model) == PAPER_WEIGHTED_LAYERS
    assert sum(1 for m in model.modules() if isinstance(m, BasicBlock)) == 3 + 4 + 16 + 3


@pytest.mark.parametrize(("stages", "expected"), [((2, 2, 2, 2), 18), ((3, 4, 6, 3), 34), ((1, 1, 1, 1), 10)])
def test_other_stages_give_the_matching_layer_count(stages, expected):
    assert weighted_layers(kemotionnet(stages=stages, width=SMALL_WIDTH)) == expected


def test_blocks_are_basic_not_bottleneck():
    model = kemotionnet(width=SMALL_WIDTH)
    for block in (m for m in model.modules() if isinstance(m, BasicBlock)):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        branch = [c for c in convs if not any(c is s for s in block.shortcut.modules())]
        assert [c.kernel_size for c in branch] == [(3, 3), (3, 3)]
        assert all(c.kernel_size == (1, 1) for c in convs if c not in branch)  # only projections are 1×1
    # projections exactly where the shape changes: the first block of stages 2-4
    projections = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(projections) == 3


def test_stage_widths_follow_width():
    model = kemotionnet(width=16, stages=(1, 1, 1, 1))
    assert [stage[-1].conv2.out_channels for stage in model.stages] == [16, 32, 64, 128]
    assert model.head.in_features == model.num_features == 128


@pytest.mark.parametrize(("height", "width"), [(32, 32), (64, 64), (224, 224), (40, 72)])
def test_output_shape_for_any_input_of_at_least_32_px(height, width):
    model = kemotionnet(width=SMALL_WIDTH).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, height, width))
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()


def test_classes_channels_and_dropout_are_configurable():
    model = kemotionnet(num_classes=3, in_channels=1, width=SMALL_WIDTH, stages=(1, 1, 1, 1), dropout=0.3)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 3)
    assert model.dropout.p == 0.3


def test_bad_stages_are_refused():
    with pytest.raises(ValueError, match="stages"):
        KEmotionNet(stages=(3, 4, 16))


def test_last_bn_of_each_block_starts_at_zero_so_blocks_start_as_identity():
    model = kemotionnet(width=SMALL_WIDTH)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert all(torch.all(block.bn2.weight == 0) for block in blocks)
    assert all(torch.all(block.bn1.weight == 1) for block in blocks)
    identity_block = model.stages[2][5].eval()  # not the first of its stage: identity shortcut
    x = torch.relu(torch.randn(2, 4 * SMALL_WIDTH, 4, 4))  # blocks see post-ReLU inputs
    with torch.no_grad():
        assert torch.equal(identity_block(x), x)


def test_convs_are_kaiming_normal_fan_out():
    model = kemotionnet(width=16, stages=(1, 1, 1, 1))
    conv = model.stages[3][0].conv2  # 128 → 128, 3×3: 147k weights, a tight std estimate
    expected_std = math.sqrt(2 / (conv.out_channels * 9))
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)


def test_paper_size_parameter_count():
    model = kemotionnet()  # width 64, 7 classes
    assert sum(p.numel() for p in model.parameters()) == 33_087_303


def test_hydra_config_instantiates_it():
    config = OmegaConf.create(
        {"_target_": "kemotion.models.kemotionnet.kemotionnet", "width": SMALL_WIDTH, "stages": [1, 2, 2, 1]}
    )
    model = instantiate(config)
    assert isinstance(model, KEmotionNet)
    assert weighted_layers(model) == 2 + 2 * 6


def test_deep_net_overfits_two_small_batches():
    """A broken 54-layer net (no residual, bad init, detached branch) cannot fit 16 random images this fast."""
    torch.manual_seed(0)
    images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, NUM_CLASSES, (16,))
    batches = [(images[:8], labels[:8]), (images[8:], labels[8:])]
    model = kemotionnet(width=SMALL_WIDTH)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        x, y = batches[step % 2]
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()  # inference mode: BN running statistics must have followed too
    with torch.no_grad():
        accuracy = (model(images).argmax(dim=1) == labels).float().mean().item()
    assert accuracy >= 0.9

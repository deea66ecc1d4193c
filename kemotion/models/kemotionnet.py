"""K-EmotionNet: the paper's proposed classifier, a 54-layer ResNet of basic blocks (no bottleneck).

Paper §3.4: "based on the ResNet structure, a network of 54 layers without the bottleneck structure". The paper
gives no stage layout; we keep ResNet-34's (3, 4, 6, 3) and deepen the third stage to 16 blocks, the way
ResNet-101/152 grow theirs, so the weighted layers are

    stem conv (1) + 2 convs × (3 + 4 + 16 + 3 = 26 blocks) (52) + linear head (1) = 54,

counting as He et al. do: the 1×1 projection shortcuts are not layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kemotion.core.emotions import NUM_CLASSES
from kemotion.models.checkpoint import WeightAdapter, load_weights, read_tensors
from kemotion.models.imagenet import weights_file

PAPER_STAGES: tuple[int, ...] = (3, 4, 16, 3)  # blocks per stage → 54 weighted layers (paper §3.4)
STAGE_WIDTH_MULTIPLIERS: tuple[int, ...] = (1, 2, 4, 8)  # stage widths = width × these, as in ResNet
DEFAULT_WIDTH = 64  # ResNet's first-stage width
STEM_KERNEL = 3
STEM_STRIDE = 2
STEM_POOL_STRIDE = 2  # stem downsamples ×4 and each later stage ×2: ×32 overall, like ResNet
MIN_INPUT_SIZE = 32  # ×32 downsampling leaves a 1×1 map at 32 px; adaptive pooling handles anything larger


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers and a residual shortcut (identity, or 1×1 conv + BN when shape changes).

    (B, in_channels, H, W) → (B, out_channels, ⌈H / stride⌉, ⌈W / stride⌉).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class KEmotionNet(nn.Module):
    """A ResNet of basic blocks: stem, four stages, global average pool, dropout, linear head.

    (B, in_channels, H, W) with H, W ≥ 32 → (B, num_classes) logits.

    Stem: one 3×3 stride-2 conv + BN + ReLU + 3×3 stride-2 max-pool. It keeps ResNet's ×4 stem downsampling, so
    at the paper's 224 px the stages run at ResNet's 56/28/14/7 resolutions and cost, and 32 px inputs still
    reach a 1×1 map. We use 3×3 rather than ResNet's 7×7 kernel because at the 32–64 px inputs of quick runs a
    7×7 window at stride 2 reads mostly zero padding along the borders, while the receptive field it adds is
    irrelevant after 52 further 3×3 convs (the net's receptive field already exceeds 224 px).

    Init: Kaiming-normal convs (fan-out, ReLU), BN γ = 1, β = 0, except the last BN of every block starts at
    γ = 0, so each residual branch starts as zero and each block as the identity (Goyal et al. 2017): a
    26-block basic-block net then trains from the first step like a shallow one.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        stages: Sequence[int] = PAPER_STAGES,
        width: int = DEFAULT_WIDTH,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(stages) != len(STAGE_WIDTH_MULTIPLIERS) or min(stages) < 1:
            raise ValueError(f"stages must be {len(STAGE_WIDTH_MULTIPLIERS)} positive block counts, got {stages}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, STEM_KERNEL, stride=STEM_STRIDE, padding=STEM_KERNEL // 2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=STEM_POOL_STRIDE, padding=1),
        )
        layers: list[nn.Module] = []
        channels = width
        for index, (blocks, multiplier) in enumerate(zip(stages, STAGE_WIDTH_MULTIPLIERS, strict=True)):
            out_channels = width * multiplier
            first_stride = 1 if index == 0 else 2  # the stem already downsampled before the first stage
            stage = [BasicBlock(channels, out_channels, first_stride)]
            stage += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            channels = out_channels
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)
        self.num_features = channels
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)  # zero-init residual: every block starts as the identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) → (B, 8·width, ⌈H/32⌉, ⌈W/32⌉) feature map of the last stage."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) → (B, num_classes) logits."""
        features = self.pool(self.forward_features(x)).flatten(1)
        return self.head(self.dropout(features))


def kemotionnet(
    num_classes: int = NUM_CLASSES,
    stages: Sequence[int] = PAPER_STAGES,
    width: int = DEFAULT_WIDTH,
    in_channels: int = 3,
    dropout: float = 0.0,
    checkpoint: str | None = None,
    pretrained: str | None = None,
) -> nn.Module:
    """K-EmotionNet (54 weighted layers with the default stages); `pretrained="imagenet"` starts its matching stem
    BN and first blocks from ResNet18's ImageNet weights (the file kemotion.models.imagenet finds, through the
    `RESNET18_IMAGENET` adapter below), then `checkpoint` loads."""
    model = KEmotionNet(num_classes, tuple(stages), width, in_channels, dropout)
    if pretrained is not None:
        load_weights(model, weights_file("resnet18", pretrained), adapter=RESNET18_IMAGENET)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model


def resnet18_names(tensors: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], tuple[()]]:
    """torchvision ResNet18's tensors under K-EmotionNet's names: `conv1` → `stem.0`, `bn1` → `stem.1`, `fc` →
    `head`, `layer{i}.{j}` → `stages.{i-1}.{j}` (its `downsample` → `shortcut`). Each has a place by name in the
    paper's stages (a stage of one block lacks the second: reported unexpected); the loader keeps those whose shapes
    fit (not the 7×7 stem conv, nor the 1000-class head)."""
    return {_kemotionnet_name(name): tensor for name, tensor in tensors.items()}, ()


def _kemotionnet_name(name: str) -> str:
    if name.startswith("conv1."):
        return "stem.0." + name.removeprefix("conv1.")
    if name.startswith("bn1."):
        return "stem.1." + name.removeprefix("bn1.")
    if name.startswith("fc."):
        return "head." + name.removeprefix("fc.")
    if name.startswith("layer"):
        stage, rest = name.removeprefix("layer").split(".", 1)
        return f"stages.{int(stage) - 1}.{rest.replace('downsample.', 'shortcut.')}"
    return name


# ResNet18's ImageNet file (kemotion.models.imagenet finds it) as a start: the stem BN and the first two blocks of
# each stage fit; the deeper blocks, the 3×3 stem conv and the head keep their initialisation.
RESNET18_IMAGENET = WeightAdapter("ResNet18's ImageNet weights into K-EmotionNet", read=read_tensors,
                                  rename=resnet18_names)

"""YOLO-FaceV2's own blocks — RFEM / C3RFEM (receptive-field enhancement), SEAM, MultiSEAM — for ultralytics' parser.

YOLO-FaceV2 (Yu et al. 2022, arXiv:2208.02019; github.com/Krasjet-Yu/YOLO-FaceV2) is a YOLOv5 with three changes:
an RFE block at the last backbone stage, a neck one level deeper (detection at strides 4, 8, 16) and a MultiSEAM
attention block before each detection level. Everything else — Conv, C3, SPP, Concat, the Detect head — is
ultralytics' own, so only these blocks live here. The architecture itself is data:
`kemotion/models/architectures/yolo-facev2.yaml`, built by `kemotion.models.yolo.build_detector`.

How ultralytics finds them. `ultralytics.nn.tasks.parse_model` has no registry: it looks a YAML module name up in
its own module globals, so `register_with_ultralytics()` (run on import) sets our classes there. That alone is not
enough: a module outside parse_model's hard-coded sets gets its YAML arguments raw (no width scaling, no repeat
count inserted, `n` turned into `n` stacked copies) and `c2 = ch[f]`. So `resolve_rows(cfg)` rewrites our rows
first, the way parse_model treats its own C3: channels `make_divisible(min(c, max_channels) × width, 8)`, and for
C3RFEM the depth-scaled repeat count moved into the arguments. Our blocks keep their input's channel count (as in
the original: MultiSEAM forces `c2 = c1`, and C3RFEM only ever follows an SPP of the same width), so parse_model's
`c2 = ch[f]` is right and the YAML's first argument states that count at width 1.0. A resolved dict is a fixed
point: ultralytics can rebuild the model from `model.yaml` (as stored in its checkpoints) without kemotion's help,
as long as this module has been imported (unpickling a model imports it). A kemotion-side copy of parse_model
would have to track ultralytics' growing list of special cases; this keeps us to two documented facts about it.

Deviations from the original (commit 89fef437, the version of `models/common.py` and
`models/yolov5s_v2_RFEM_MultiSEAM.yaml` that uses C3RFEM):
- Head: ultralytics' anchor-free, decoupled `Detect` (DFL box bins, task-aligned assignment in its loss) instead
  of YOLOv5's anchor head with RetinaFace anchors. At scale s it holds 2.1 M parameters where the anchor head held
  16 k: 20.5 M in all against the original's 18.4 M.
- Stem: the original's Focus as its exact equivalent, a 6×6 stride-2 Conv (see the YAML; tested).
- Scale n: the original's n file swaps in a YOLOv5 v6.0 backbone without C3RFEM; ours is the s layout at n's
  multiples (depth 0.33, width 0.25).
- The original's shared RFE weights are `nn.Parameter`s named `share_weightconv1/2`, so they receive gradient, but
  its YOLOv5 `train.py` builds the optimizer from module attributes named `.weight` / `.bias` (and BatchNorm) only:
  those two tensors are in no parameter group and keep their initial values for the whole training. Here they are
  the `.weight` of an ultralytics `Conv` and of a `SharedDilationConv` (an `nn.Conv2d`), so every optimizer
  builder — ours, ultralytics', YOLOv5's — trains them.
- The original computes the shared 1×1 conv three times on the same input (once per branch, identical results);
  here once. Outputs are the same; the 1×1's BatchNorm running statistics take one momentum step per batch
  instead of three identical ones.
- The 3×3 branches run through one module call per dilation (not `F.conv2d` on a bare tensor) so FLOP counters
  that hook modules (thop, hence ultralytics' `get_flops`) see all three.
- MultiSEAM/SEAM refuse `c2 != c1` instead of silently using `c1`; the depthwise conv pads `kernel_size // 2`
  (the original hard-codes 1, the same for its kernel size 3); MultiSEAM zero-pads a map smaller than a patch to
  one patch, where the original fails (so inputs under 128 px work; at and above 128 px nothing changes).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import C3, Conv
from ultralytics.utils.ops import make_divisible

DILATIONS = (1, 2, 3)  # the RFE's three branches share one kernel at these rates (original TridentBlock dilate=)
PATCH_SIZES = (6, 7, 8)  # original YAML: MultiSEAM [c, 1, 3, [6, 7, 8], 16]
SE_REDUCTION = 16  # squeeze-excitation bottleneck of the channel gate, as in the original


class SharedDilationConv(nn.Conv2d):
    """One k×k kernel applied at a dilation chosen per call, padded to keep H×W.

    An `nn.Conv2d` (so its `.weight` is found by every optimizer builder and FLOP counter); `forward(x, d)` maps
    (B, C_in, H, W) → (B, C_out, H, W) with dilation `d` and padding `d·(k // 2)`.
    """

    def forward(self, x: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        padding = dilation * (self.kernel_size[0] // 2)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, dilation, self.groups)


class RFEM(nn.Module):
    """Receptive-field enhancement: one shared 1×1 → 3×3 conv pair run at dilations 1, 2, 3, summed with the input.

    Each branch is `SiLU(BN(conv3×3_d(h)) + x)` with `h = Conv1×1(x)`; the block returns
    `SiLU(BN(branch_1 + branch_2 + branch_3 + x))`. Weights and BatchNorms are shared across the branches, as in
    the original (TridentNet-style). (B, c1, H, W) → (B, c2, H, W), with c1 == c2 (the residuals need it).
    """

    def __init__(self, c1: int, c2: int, e: float = 0.5, dilations: Sequence[int] = DILATIONS) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"RFEM adds its input to every branch: c1 ({c1}) must equal c2 ({c2})")
        hidden = int(c2 * e)
        self.dilations = tuple(dilations)
        self.shared_1x1 = Conv(c1, hidden, 1)  # conv + BN + SiLU
        self.shared_3x3 = SharedDilationConv(hidden, c2, 3, bias=False)
        self.shared_bn = nn.BatchNorm2d(c2)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()
        for weight in (self.shared_1x1.conv.weight, self.shared_3x3.weight):  # the original's initialisation
            nn.init.kaiming_uniform_(weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.shared_1x1(x)
        branches = sum(self.act(self.shared_bn(self.shared_3x3(hidden, d)) + x) for d in self.dilations)
        return self.act(self.bn(branches + x))


class C3RFEM(C3):
    """ultralytics' C3 with RFEM blocks in place of its bottlenecks (YOLO-FaceV2's last backbone stage).

    (B, c1, H, W) → (B, c2, H, W). `shortcut` is accepted for C3's signature and unused: RFEM has its own residuals.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        hidden = int(c2 * e)
        self.m = nn.Sequential(*(RFEM(hidden, hidden, e=e) for _ in range(n)))


def _mixer(c: int, depth: int, kernel_size: int, act: type[nn.Module]) -> list[nn.Module]:
    """`depth` × [residual depthwise k×k → act → BN, pointwise 1×1 → act → BN] (the original's act-before-BN)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        depthwise = nn.Conv2d(c, c, kernel_size, padding=kernel_size // 2, groups=c)
        layers += [_Residual(nn.Sequential(depthwise, act(), nn.BatchNorm2d(c)))]
        layers += [nn.Conv2d(c, c, 1), act(), nn.BatchNorm2d(c)]
    return layers


class _Residual(nn.Module):
    """x → x + fn(x)."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class _ChannelGate(nn.Module):
    """Squeeze-excitation MLP whose sigmoid output goes through exp: (B, C) pooled → (B, C, 1, 1) in [1, e]."""

    def __init__(self, c: int, reduction: int) -> None:
        super().__init__()
        hidden = max(c // reduction, 1)
        self.fc = nn.Sequential(
            nn.Linear(c, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, c, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.fc(pooled))[..., None, None]


class SEAM(nn.Module):
    """Separated-and-enhancement attention (single scale): depthwise/pointwise mixing → pooled channel gate → x·gate.

    (B, c1, H, W) → (B, c1, H, W); `gate(x)` is (B, c1, 1, 1) in [1, e]. GELU and Xavier init as in the original.
    """

    def __init__(self, c1: int, c2: int, depth: int = 1, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        _check_same_channels("SEAM", c1, c2)
        self.mixer = nn.Sequential(*_mixer(c1, depth, 3, nn.GELU))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate_mlp = _ChannelGate(c1, reduction)
        for module in self.mixer.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate_mlp(self.pool(self.mixer(x)).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MultiSEAM(nn.Module):
    """Multi-head SEAM: patch embeddings at several patch sizes, each mixed, pooled and averaged into one gate.

    Per patch size p: conv p×p stride p (patch embedding) → SiLU → BN → `depth` depthwise/pointwise mixing stages →
    global average pool. The mean of those pools and the input's own pool drives a squeeze-excitation MLP whose
    sigmoid goes through exp. (B, c1, H, W) → (B, c1, H, W); `gate(x)` is (B, c1, 1, 1) in [1, e].
    A map smaller than a patch (the stride-16 level of inputs under 128 px) is zero-padded up to one patch.
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        depth: int = 1,
        kernel_size: int = 3,
        patch_sizes: Sequence[int] = PATCH_SIZES,
        reduction: int = SE_REDUCTION,
    ) -> None:
        super().__init__()
        _check_same_channels("MultiSEAM", c1, c2)
        self.patch_sizes = tuple(patch_sizes)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c1, c1, p, stride=p), nn.SiLU(), nn.BatchNorm2d(c1), *_mixer(c1, depth, kernel_size, nn.SiLU)
            )
            for p in patch_sizes
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gate_mlp = _ChannelGate(c1, reduction)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [self.pool(head(_at_least(x, p))) for head, p in zip(self.heads, self.patch_sizes, strict=True)]
        return self.gate_mlp(torch.stack([*pooled, self.pool(x)]).mean(0).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def _at_least(x: torch.Tensor, size: int) -> torch.Tensor:
    """`x` zero-padded at the bottom and right to at least size × size."""
    height, width = x.shape[-2:]
    if height >= size and width >= size:
        return x
    return F.pad(x, (0, max(size - width, 0), 0, max(size - height, 0)))


def _check_same_channels(name: str, c1: int, c2: int) -> None:
    if c1 != c2:
        raise ValueError(f"{name} gates its input channel-wise: c1 ({c1}) must equal c2 ({c2})")


# What parse_model does for its own C3 (width-scaled channels, repeats as an argument) we do for these beforehand.
CHANNEL_MODULES: dict[str, type[nn.Module]] = {m.__name__: m for m in (RFEM, C3RFEM, SEAM, MultiSEAM)}
REPEAT_MODULES = frozenset({"C3RFEM"})


def register_with_ultralytics() -> None:
    """Make our blocks nameable in ultralytics model YAMLs (parse_model resolves names in its module globals)."""
    from ultralytics.nn import tasks

    for name, module in CHANNEL_MODULES.items():
        setattr(tasks, name, module)


def resolve_rows(cfg: dict) -> dict:
    """A copy of model dict `cfg` whose rows naming our blocks carry final arguments for `cfg["scale"]`.

    Row `[f, n, Name, [c, *rest]]` becomes `[f, n, Name, [c', c', *rest]]`, c' = make_divisible(min(c, max_ch) ×
    width, 8); for C3RFEM `[f, 1, C3RFEM, [c', c', n', *rest]]`, n' = max(round(n × depth), 1) if n > 1 — exactly
    parse_model's arithmetic for C3. Other rows are left to parse_model.
    """
    cfg = copy.deepcopy(cfg)
    depth, width, max_channels = _multiples(cfg)
    for row in cfg["backbone"] + cfg["head"]:
        _, n, name, args = row
        if name not in CHANNEL_MODULES:
            continue
        channels = make_divisible(min(args[0], max_channels) * width, 8)
        if name in REPEAT_MODULES:
            repeats = max(round(n * depth), 1) if n > 1 else n
            row[1], row[3] = 1, [channels, channels, repeats, *args[1:]]
        else:
            row[3] = [channels, channels, *args[1:]]
    return cfg


def _multiples(cfg: dict) -> tuple[float, float, float]:
    """(depth, width, max_channels) as parse_model reads them: from `scales[scale]`, else the *_multiple keys."""
    scales = cfg.get("scales")
    if scales:
        return tuple(scales[cfg.get("scale") or next(iter(scales))])
    return cfg.get("depth_multiple", 1.0), cfg.get("width_multiple", 1.0), math.inf


register_with_ultralytics()

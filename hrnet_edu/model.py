"""HRNet for pose estimation (Sun et al., CVPR 2019): the whole network, its config, and checkpoint loading.

The network (paper Fig. 1), with r = 0 the highest-resolution branch (the paper's r is ours + 1):

    stem      two 3×3 stride-2 convs (3 → 64 → 64)              (N, 3, H, W) → (N, 64, H/4, W/4)
    stage 1   4 bottlenecks (``layer1``), width 64 → 256          (N, 256, H/4, W/4)
    stage s   (s = 2, 3, 4): a transition opens branch s−1 (resolution halved, width doubled), then
              ``num_modules`` HR modules = multi-resolution block (4 basic blocks per branch)
              + exchange unit; branch r has width C·2^r at H/2^(r+2) × W/2^(r+2)
    head      1×1 conv on branch 0 → K heatmaps                     (N, K, H/4, W/4)

Stages 2–4 are built by one loop over the config. Module names are the reference implementation's
state-dict keys (``conv1``, ``layer1.0.conv1``, ``transition1.1.0.0``, ``stage2.0.branches.0.0.conv1``,
``stage2.0.fuse_layers.0.1.0``, ``final_layer`` …) so ``pose_hrnet_w32_256x192.pth`` and friends
load strictly with ``load_reference_weights`` and no renaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from hrnet_edu.blocks import Bottleneck, MultiResolutionBlock, batch_norm, conv3x3, make_units
from hrnet_edu.checkpoints import load_reference_weights  # noqa: F401 (re-exported: a public entry point)
from hrnet_edu.fusion import ExchangeUnit, Transition


@dataclass(frozen=True)
class HRNetConfig:
    """Everything that defines an HRNet. Presets ``W32``, ``W48`` (the paper), ``W16``, ``W8`` (CPU teaching).

    Attributes:
        width: C, the width of branch 0; branch r has width C·2^r.
        num_joints: K, the number of heatmaps.
        num_stages: how many stages to build (1–4); with fewer than 4 the head reads branch 0 of
            the last built stage (with 1 stage: the 4P-wide output of ``layer1``, 256 in the paper).
        num_modules: HR modules in stages 2, 3, 4 (paper: 1, 4, 3).
        num_blocks: basic blocks per branch in every module of stages 2, 3, 4 (paper: 4, 4, 4).
        stem_width: width of the two stem convolutions (64).
        stage1_units: bottlenecks in stage 1 (4).
        stage1_planes: inner width P of the stage-1 bottlenecks; stage 1 outputs 4P (64 → 256).
    """

    width: int = 32
    num_joints: int = 17
    num_stages: int = 4
    num_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: tuple[int, int, int] = (4, 4, 4)
    stem_width: int = 64
    stage1_units: int = 4
    stage1_planes: int = 64

    def __post_init__(self):
        # Configs come back from checkpoints and JSON with lists: store tuples so the config stays hashable.
        object.__setattr__(self, "num_modules", tuple(self.num_modules))
        object.__setattr__(self, "num_blocks", tuple(self.num_blocks))
        if not 1 <= self.num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {self.num_stages}")
        if len(self.num_modules) != 3 or len(self.num_blocks) != 3:
            raise ValueError("num_modules and num_blocks give one number for each of stages 2, 3, 4")
        if min(self.width, self.num_joints, self.stem_width, self.stage1_units, self.stage1_planes,
               *self.num_modules, *self.num_blocks) < 1:
            raise ValueError(f"all sizes must be positive: {self}")

    def widths(self, s: int) -> tuple[int, ...]:
        """Branch widths of stage s: stage 1 → (4P,), stage s ≥ 2 → (C, 2C, …, 2^(s−1)C)."""
        if s == 1:
            return (self.stage1_planes * Bottleneck.expansion,)
        return tuple(self.width * 2**r for r in range(s))


W32 = HRNetConfig(width=32)
W48 = HRNetConfig(width=48)
# CPU teaching presets: same topology (4 stages, 1..4 branches, exchange units), but one module per
# stage and fewer, thinner residual units, so a forward pass takes milliseconds on a laptop.
W16 = HRNetConfig(width=16, num_modules=(1, 1, 1), num_blocks=(2, 2, 2), stem_width=32, stage1_units=2,
                  stage1_planes=32)
W8 = HRNetConfig(width=8, num_modules=(1, 1, 1), num_blocks=(1, 1, 1), stem_width=16, stage1_units=1,
                 stage1_planes=16)
# The network of the CPU recipe (configs.synthpose_w16_128x96_cpu): W16's widths with W8's depth —
# one HR module per stage, one residual unit per branch, one stage-1 bottleneck, stem 32, 0.74 M
# parameters. Per CPU-minute it learned faster than both W8 and W16 (benchmarks/bench_cpu_recipes.py).
W16_1UNIT = HRNetConfig(width=16, num_modules=(1, 1, 1), num_blocks=(1, 1, 1), stem_width=32, stage1_units=1,
                        stage1_planes=32)
PRESETS = {"w32": W32, "w48": W48, "w16": W16, "w16_1unit": W16_1UNIT, "w8": W8}


class HRModule(nn.Module):
    """One HR module (the reference's ``HighResolutionModule``): multi-resolution block + exchange unit.

    Shapes: [X_0 … X_{R−1}], X_r (N, C_r, H_r, W_r) → [Y_0 … Y_{R'−1}], R' = R or 1 (``multi_scale_output``).
    """

    def __init__(self, widths: Sequence[int], num_blocks: int, multi_scale_output: bool = True):
        super().__init__()
        self.branches = MultiResolutionBlock(widths, num_blocks)
        # A single branch has nothing to exchange (never the case in HRNet proper).
        num_outputs = None if multi_scale_output else 1
        self.fuse_layers = ExchangeUnit(widths, num_outputs) if len(widths) > 1 else None

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        xs = self.branches(xs)
        return xs if self.fuse_layers is None else self.fuse_layers(xs)


class Stage(nn.Sequential):
    """A stage s ≥ 2: ``num_modules`` HR modules in sequence (keys ``stage{s}.{m}.…`` as in the reference)."""

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        for module in self:
            xs = module(xs)
        return list(xs)


class HRNet(nn.Module):
    """HRNet: (N, 3, H, W) → heatmaps (N, K, H/4, W/4); H and W must be divisible by 32.

    Attributes named as the reference: ``conv1, bn1, conv2, bn2`` (stem), ``layer1`` (stage 1),
    ``transition{s−1}`` and ``stage{s}`` for s = 2..num_stages, ``final_layer`` (head).
    """

    def __init__(self, cfg: HRNetConfig = W32):
        super().__init__()
        self.cfg = cfg
        # Stem: two stride-2 3×3 convs, H×W → H/4×W/4.
        self.conv1 = conv3x3(3, cfg.stem_width, stride=2)
        self.bn1 = batch_norm(cfg.stem_width)
        self.conv2 = conv3x3(cfg.stem_width, cfg.stem_width, stride=2)
        self.bn2 = batch_norm(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        # Stage 1: one high-resolution branch of bottlenecks.
        self.layer1 = make_units(Bottleneck, cfg.stem_width, cfg.stage1_planes, cfg.stage1_units)
        # Stages 2..S, one loop: a transition adds a branch, then HR modules run and exchange.
        for s in range(2, cfg.num_stages + 1):
            setattr(self, f"transition{s - 1}", Transition(cfg.widths(s - 1), cfg.widths(s)))
            n_modules, n_blocks = cfg.num_modules[s - 2], cfg.num_blocks[s - 2]
            last_stage = s == cfg.num_stages
            # The very last module outputs only branch 0, the one the head reads.
            modules = [HRModule(cfg.widths(s), n_blocks, not (last_stage and m == n_modules - 1))
                       for m in range(n_modules)]
            setattr(self, f"stage{s}", Stage(*modules))
        self.final_layer = nn.Conv2d(cfg.widths(cfg.num_stages)[0], cfg.num_joints, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's initialisation: conv weights ~ N(0, 0.001²), biases 0, BN weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[tuple[Transition, Stage]]:
        """(transition{s−1}, stage{s}) for s = 2..num_stages."""
        return [(getattr(self, f"transition{s - 1}"), getattr(self, f"stage{s}"))
                for s in range(2, self.cfg.num_stages + 1)]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """(N, 3, H, W) → the last built stage's outputs, a list [(N, C_r, H/2^(r+2), W/2^(r+2))].

        For 4 stages (and any num_stages ≥ 2) this is [branch 0] only, as in the reference.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be divisible by 32 (5 halvings: stem ×4, then ×2 "
                             f"per new branch), got H×W = {h}×{w}; e.g. use 256×192 or 384×288")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))  # (N, 64, H/4, W/4)
        xs = [self.layer1(x)]  # [(N, 256, H/4, W/4)]
        for transition, stage in self.stages():
            xs = stage(transition(xs))
        return xs

    def forward(self, x: Tensor) -> Tensor:
        # The head reads the high-resolution branch 0 only.
        return self.final_layer(self.forward_features(x)[0])


def build_model(cfg: HRNetConfig) -> HRNet:
    """The HRNet described by ``cfg`` (freshly initialised as in the reference)."""
    return HRNet(cfg)


def hrnet_w32(num_joints: int = 17) -> HRNet:
    """HRNet-W32 of the paper: 28,536,113 parameters with K = 17."""
    return HRNet(HRNetConfig(width=32, num_joints=num_joints))


def hrnet_w48(num_joints: int = 17) -> HRNet:
    """HRNet-W48 of the paper: 63,595,745 parameters with K = 17."""
    return HRNet(HRNetConfig(width=48, num_joints=num_joints))

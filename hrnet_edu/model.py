"""HRNet for pose estimation (Sun et al., CVPR 2019): the whole network and its config.

The network (paper Fig. 1), with r = 0 the highest-resolution branch (notation of ``blocks``):

    stem      two 3×3 stride-2 convs (3 → 64 → 64)              (N, 3, H, W) → (N, 64, H/4, W/4)
    stage 1   4 bottlenecks (``layer1``), width 64 → 256          (N, 256, H/4, W/4)
    stage s   (s = 2, 3, 4): a transition opens branch s−1 (resolution halved, width doubled), then
              ``num_modules`` HR modules = multi-resolution block (4 residual units per branch)
              + exchange unit; branch r has width C·2^r at H/2^(r+2) × W/2^(r+2)
    head      1×1 conv on branch 0 → K heatmaps                     (N, K, H/4, W/4)

Stages 2–4 are built by one loop over the config. Module names are the reference implementation's
state-dict keys (``conv1``, ``layer1.0.conv1``, ``transition1.1.0.0``, ``stage2.0.branches.0.0.conv1``,
``stage2.0.fuse_layers.0.1.0``, ``final_layer`` …) so ``pose_hrnet_w32_256x192.pth`` and friends
load strictly with ``checkpoints.load_reference_weights`` and no renaming. Code that walks the
network uses the accessors ``stage1``, ``stages()`` and ``head``
(and ``HRModule.branches`` / ``.exchange``), not those key names.

Building a network: ``HRNet(cfg)`` with one of the presets below; ``build_model(cfg)`` for any
network config (an ``HRNetConfig`` or the high-to-low ``baseline.BaselineConfig``, as training
and checkpoints do); ``hrnet_w32()`` and ``hrnet_w48()``, the paper's two networks for K joints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from hrnet_edu.baseline import BaselineConfig, SimpleBaseline
from hrnet_edu.blocks import Bottleneck, MultiResolutionBlock, batch_norm, conv3x3, make_units
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
        num_units: residual units (``BasicBlock``) per branch in every module of stages 2, 3, 4
            (paper: 4, 4, 4). Checkpoints of earlier versions call it ``num_blocks``.
        stem_width: width of the two stem convolutions (64).
        stage1_units: bottlenecks in stage 1 (4).
        stage1_planes: inner width P of the stage-1 bottlenecks; stage 1 outputs 4P (64 → 256).
        head_branch: the branch r the 1×1 head reads (0, the paper's): heatmaps at output stride
            4·2^r. r > 0 exists to measure what a lower-resolution read-out costs.
        exchange_units: where the HR modules exchange (the paper's ablation study):
            "all" — every module ends with an exchange unit (the paper's HRNet: 8 in W32);
            "across_stages" — only the last module of each stage (3), no exchange within a stage;
            "final" — only the network's last module (1): parallel branches that never talk
            until the end.
    """

    width: int = 32
    num_joints: int = 17
    num_stages: int = 4
    num_modules: tuple[int, int, int] = (1, 4, 3)
    num_units: tuple[int, int, int] = (4, 4, 4)
    stem_width: int = 64
    stage1_units: int = 4
    stage1_planes: int = 64
    head_branch: int = 0
    exchange_units: str = "all"

    def __post_init__(self):
        # Configs come back from checkpoints and JSON with lists: store tuples so the config stays hashable.
        object.__setattr__(self, "num_modules", tuple(self.num_modules))
        object.__setattr__(self, "num_units", tuple(self.num_units))
        if not 1 <= self.num_stages <= 4:
            raise ValueError(f"num_stages must be 1..4, got {self.num_stages}")
        if len(self.num_modules) != 3 or len(self.num_units) != 3:
            raise ValueError("num_modules and num_units give one number for each of stages 2, 3, 4")
        if min(self.width, self.num_joints, self.stem_width, self.stage1_units, self.stage1_planes,
               *self.num_modules, *self.num_units) < 1:
            raise ValueError(f"all sizes must be positive: {self}")
        if not 0 <= self.head_branch < self.num_stages:
            raise ValueError(f"head_branch must be a branch of the last stage, 0..{self.num_stages - 1}, "
                             f"got {self.head_branch}")
        if self.exchange_units not in ("all", "across_stages", "final"):
            raise ValueError(f"exchange_units must be 'all', 'across_stages' or 'final', "
                             f"got {self.exchange_units!r}")

    @property
    def output_stride(self) -> int:
        """Input pixels per heatmap pixel: 4 on branch 0, ×2 per branch below."""
        return 4 * 2**self.head_branch

    def has_exchange_unit(self, s: int, m: int) -> bool:
        """Whether module m (0-based) of stage s ends with an exchange unit (``exchange_units``)."""
        last_in_stage = m == self.num_modules[s - 2] - 1
        if self.exchange_units == "all":
            return True
        if self.exchange_units == "across_stages":
            return last_in_stage
        return last_in_stage and s == self.num_stages

    def widths(self, s: int) -> tuple[int, ...]:
        """Branch widths of stage s: stage 1 → (4P,), stage s ≥ 2 → (C, 2C, …, 2^(s−1)C)."""
        if s == 1:
            return (self.stage1_planes * Bottleneck.expansion,)
        return tuple(self.width * 2**r for r in range(s))


W32 = HRNetConfig(width=32)
W48 = HRNetConfig(width=48)
# CPU teaching presets: same topology (4 stages, 1..4 branches, exchange units), so a forward pass
# takes milliseconds on a laptop. Not the paper's width-only scaling: besides the width C (the
# number in the name) they also thin the stem and stage 1 and have one module per stage and fewer
# residual units.
W16 = HRNetConfig(width=16, num_modules=(1, 1, 1), num_units=(2, 2, 2), stem_width=32, stage1_units=2,
                  stage1_planes=32)
W8 = HRNetConfig(width=8, num_modules=(1, 1, 1), num_units=(1, 1, 1), stem_width=16, stage1_units=1,
                 stage1_planes=16)
# The network of the CPU recipe (configs.synthpose_w16_128x96_cpu): W16's widths with W8's depth —
# one HR module per stage, one residual unit per branch, one stage-1 bottleneck, stem 32, 0.74 M
# parameters. Per CPU-minute it learned faster than both W8 and W16 (benchmarks/bench_cpu_recipes.py).
W16_1UNIT = HRNetConfig(width=16, num_modules=(1, 1, 1), num_units=(1, 1, 1), stem_width=32, stage1_units=1,
                        stage1_planes=32)
# The network configs by name (the training configs' presets are ``configs.PRESETS``).
MODEL_PRESETS = {"w32": W32, "w48": W48, "w16": W16, "w16_1unit": W16_1UNIT, "w8": W8}


class HRModule(nn.Module):
    """One HR module (the reference's ``HighResolutionModule``): multi-resolution block + exchange unit.

    Shapes: [X_0 … X_{R−1}], X_r (N, C_r, H_r, W_r) → R outputs of the same shapes: the exchange
    unit's fused Y_k for k < R' and, for k ≥ R', branch k's own output after its residual units.
    R' = R, except in the network's very last module, whose exchange unit computes only
    ``num_outputs`` outputs — Y_0, the branch the head reads (Y_0 … Y_r for a head on branch r);
    the reference's module returns just those there, and the other branches' outputs (which it
    computes too) are passed on here so that ``HRNet.forward_features`` can return every branch.
    ``exchange=False`` (the fusion ablation) leaves the branches side by side, unfused.
    """

    def __init__(self, widths: Sequence[int], num_units: int, num_outputs: int | None = None,
                 exchange: bool = True):
        super().__init__()
        self.branches = MultiResolutionBlock(widths, num_units)
        # A single branch has nothing to exchange (never the case in HRNet proper).
        fuse = exchange and len(widths) > 1
        self.fuse_layers = ExchangeUnit(widths, num_outputs) if fuse else None

    @property
    def exchange(self) -> ExchangeUnit | None:
        """The exchange unit (the reference's ``fuse_layers``); None for a single branch."""
        return self.fuse_layers

    @property
    def num_fused(self) -> int:
        """R': how many of the outputs the exchange unit fuses (all R but in the last module)."""
        return len(self.branches) if self.fuse_layers is None else len(self.fuse_layers)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        xs = self.branches(xs)
        if self.fuse_layers is None:
            return xs
        fused = self.fuse_layers(xs)  # [Y_0 … Y_{R'−1}]
        return fused + xs[len(fused):]


class Stage(nn.Sequential):
    """A stage s ≥ 2: ``num_modules`` HR modules in sequence (keys ``stage{s}.{m}.…`` as in the reference)."""

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        for module in self:
            xs = module(xs)
        return list(xs)


class HRNet(nn.Module):
    """HRNet: (N, 3, H, W) → heatmaps (N, K, H/4, W/4); H and W must be divisible by 32.

    (N, K, H/s, W/s) at ``cfg.output_stride`` s when ``cfg.head_branch`` > 0.

    Attributes named as the reference: ``conv1, bn1, conv2, bn2`` (stem), ``layer1`` (stage 1),
    ``transition{s−1}`` and ``stage{s}`` for s = 2..num_stages, ``final_layer`` (head). Read them
    through ``stage1``, ``stages()`` and ``head``.
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
            n_modules, n_units = cfg.num_modules[s - 2], cfg.num_units[s - 2]
            last_stage = s == cfg.num_stages
            # The very last module fuses only branches 0..head_branch (branch 0 alone in HRNet).
            modules = [HRModule(cfg.widths(s), n_units,
                                cfg.head_branch + 1 if last_stage and m == n_modules - 1 else None,
                                cfg.has_exchange_unit(s, m))
                       for m in range(n_modules)]
            setattr(self, f"stage{s}", Stage(*modules))
        head_width = cfg.widths(cfg.num_stages)[cfg.head_branch]
        self.final_layer = nn.Conv2d(head_width, cfg.num_joints, kernel_size=1)
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

    @property
    def stage1(self) -> nn.Sequential:
        """Stage 1: the stage-1 bottlenecks (the reference's ``layer1``); its input is the stem's output."""
        return self.layer1

    def stages(self) -> list[tuple[Transition, Stage]]:
        """(transition{s−1}, stage{s}) for s = 2..num_stages, in order."""
        return [(getattr(self, f"transition{s - 1}"), getattr(self, f"stage{s}"))
                for s in range(2, self.cfg.num_stages + 1)]

    @property
    def head(self) -> nn.Conv2d:
        """The 1×1 heatmap head on branch ``cfg.head_branch`` (0; the reference's ``final_layer``)."""
        return self.final_layer

    def forward_features(self, x: Tensor, return_stages: bool = False) -> list:
        """(N, 3, H, W) → every branch at the end of the network, [(N, C·2^r, H/2^(r+2), W/2^(r+2))].

        Branch 0 is the exchange unit's fused Y_0, the input of the head; with 4 stages branches
        1–3 are the outputs of the last module's residual units (its exchange unit fuses only
        output 0, or outputs 0..``head_branch``; see ``HRModule``). ``return_stages``: the outputs
        of every stage instead, [[stage 1 (N, 4P, H/4, W/4)], [stage 2's 2 branches], …, [the last
        stage's branches]].
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input height and width must be divisible by 32 (5 halvings: stem ×4, then ×2 "
                             f"per new branch), got H×W = {h}×{w}; e.g. use 256×192 or 384×288")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))  # (N, 64, H/4, W/4)
        outputs = [[self.layer1(x)]]  # [(N, 256, H/4, W/4)]
        for transition, stage in self.stages():
            outputs.append(stage(transition(outputs[-1])))  # branch r: (N, C·2^r, H/2^(r+2), W/2^(r+2))
        return outputs if return_stages else outputs[-1]

    def forward(self, x: Tensor) -> Tensor:
        # The head reads the high-resolution branch 0 only (``head_branch`` in the stride study).
        return self.final_layer(self.forward_features(x)[self.cfg.head_branch])


def build_model(cfg) -> nn.Module:
    """The network ``cfg`` describes, freshly initialised: an ``HRNet`` for an ``HRNetConfig``, the
    high-to-low ``SimpleBaseline`` for a ``baseline.BaselineConfig`` (the comparison of notebook 05)."""
    return SimpleBaseline(cfg) if isinstance(cfg, BaselineConfig) else HRNet(cfg)


def hrnet_w32(num_joints: int = 17) -> HRNet:
    """HRNet-W32 of the paper (``HRNet(W32)`` for K joints): 28,536,113 parameters with K = 17."""
    return HRNet(dataclasses.replace(W32, num_joints=num_joints))


def hrnet_w48(num_joints: int = 17) -> HRNet:
    """HRNet-W48 of the paper (``HRNet(W48)`` for K joints): 63,595,745 parameters with K = 17."""
    return HRNet(dataclasses.replace(W48, num_joints=num_joints))

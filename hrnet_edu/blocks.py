"""Residual units and the multi-resolution block (HRNet paper, Sec. 3, "Parallel multi-resolution
subnetworks").

Notation used throughout hrnet-edu: N batch, C width (channels), H×W spatial size, r branch index
with r = 0 the highest resolution. The paper counts branches from 1: its r is our r + 1, and
this is the one place that says so (the other modules refer here). Branch r runs at 1/2^(r+2)
of the input resolution with width C·2^r.

Residual units (He et al. 2016), both computing  x_out = ReLU(F(x) + shortcut(x)):

- ``BasicBlock``: F = 3×3 conv → BN → ReLU → 3×3 conv → BN (width stays C). Used in stages 2–4.
- ``Bottleneck``: F = 1×1 conv (C_in → P) → 3×3 conv (P → P) → 1×1 conv (P → 4P), each with BN and
  ReLU except the last. Used in stage 1 (P = 64, output 256).

"Residual unit" is the one name for either, here and everywhere (``num_units``, ``make_units``);
"block" is kept for the classes' names, which are the reference's and ResNet's.

The multi-resolution block runs R branches side by side, each a sequence of residual units at its
own resolution; the branches do not talk to each other here (that is the exchange unit's job,
``hrnet_edu.fusion``). Module names match the reference implementation's state-dict keys
(``conv1``, ``bn1``, …, ``downsample.0``), so published checkpoints load without any renaming.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

BN_MOMENTUM = 0.1  # the reference's BatchNorm momentum (PyTorch's default, written out because it matters)


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (a BatchNorm follows, which has its own shift)."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution without bias: mixes channels at each pixel, changes the width only."""
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False)


def batch_norm(c: int) -> nn.BatchNorm2d:
    """BatchNorm over C channels with the reference's momentum 0.1."""
    return nn.BatchNorm2d(c, momentum=BN_MOMENTUM)


def projection(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential | None:
    """The projection shortcut W_s·x (1×1 conv + BN) needed when width or stride change; else None.

    In HRNet only the first bottleneck of stage 1 needs it (64 → 256); the baseline ResNet uses more.
    """
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(conv1x1(c_in, c_out, stride), batch_norm(c_out))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or projection) shortcut.

    Shapes: (N, C_in, H, W) → (N, C, H/stride, W/stride).
    Args:
        c_in: input width C_in.
        c: output width C.
        stride: stride of the first convolution (1 in HRNet; 2 in the baseline ResNet).
    """

    expansion = 1

    def __init__(self, c_in: int, c: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c_in, c, stride)
        self.bn1 = batch_norm(c)
        self.conv2 = conv3x3(c, c)
        self.bn2 = batch_norm(c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, c, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        # x_out = ReLU(F(x) + shortcut(x)); in place on F(x), a fresh tensor (saves memory traffic)
        out += shortcut
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (×4) with an identity (or projection) shortcut.

    Shapes: (N, C_in, H, W) → (N, 4·P, H/stride, W/stride).
    Args:
        c_in: input width C_in.
        planes: inner width P; the output width is ``expansion``·P = 4P.
        stride: stride of the 3×3 convolution.
    """

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = conv1x1(c_in, planes)
        self.bn1 = batch_norm(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = batch_norm(planes)
        self.conv3 = conv1x1(planes, c_out)
        self.bn3 = batch_norm(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, c_out, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        # x_out = ReLU(F(x) + shortcut(x)); in place on F(x), a fresh tensor
        out += shortcut
        return self.relu(out)


def make_units(block: type[BasicBlock] | type[Bottleneck], c_in: int, c: int, num_units: int,
               stride: int = 1) -> nn.Sequential:
    """A chain of ``num_units`` residual units; only the first may change stride or width.

    Shapes: (N, C_in, H, W) → (N, block.expansion·c, H/stride, W/stride).
    Keys ``0.conv1`` … as in the reference.
    """
    c_out = c * block.expansion
    units = [block(c_in, c, stride)] + [block(c_out, c) for _ in range(num_units - 1)]
    return nn.Sequential(*units)


class MultiResolutionBlock(nn.ModuleList):
    """R parallel branches; branch r is ``num_units`` residual units (``BasicBlock``) at width C_r
    (the reference's ``branches``).

    Shapes: [(N, C_0, H_0, W_0), …, (N, C_{R−1}, H_{R−1}, W_{R−1})] → the same shapes, branch by branch.
    Args:
        widths: C_r for every branch, e.g. (32, 64, 128) in stage 3 of HRNet-W32.
        num_units: residual units per branch (4 in the paper).
    """

    def __init__(self, widths: Sequence[int], num_units: int):
        super().__init__([make_units(BasicBlock, c, c, num_units) for c in widths])

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        if len(xs) != len(self):
            raise ValueError(f"multi-resolution block has {len(self)} branches but got {len(xs)} inputs")
        # Each branch is called as a module (not a loop over its units) so forward hooks can see it.
        return [branch(x) for branch, x in zip(self, xs)]

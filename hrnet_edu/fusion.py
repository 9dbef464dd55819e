"""Multi-scale fusion: the exchange unit, and the transition that opens a new branch (paper Sec. 3).

The exchange unit takes R inputs X_0 … X_{R−1} (branch r at resolution 1/2^(r+2), width C_r) and
produces outputs Y_0 … Y_{R'−1} (R' = R, or 1 in the very last module of the network). In the
paper's notation, input i and output k:

    Y_k = ReLU( Σ_i a(X_i, k) )                                   (paper Eq. 1 followed by the ReLU)

where the transform a(X_i, k) brings input i to the resolution and width of output k:

- i = k: identity;
- i > k (lower resolution in, "upsampling"): 1×1 conv C_i → C_k, BN, nearest upsampling ×2^(i−k);
- i < k (higher resolution in, "downsampling"): k − i strided 3×3 convs (stride 2), each halving the
  resolution; the intermediate ones keep C_i and are followed by BN + ReLU, the last goes to C_k
  with BN and *no* ReLU (the ReLU comes after the sum).

Branch indices i, k: 0 is the highest resolution (counted as in ``blocks``, from 0 where the paper
counts from 1). ``ExchangeUnit`` is a nested ``nn.ModuleList`` — row k (output), entry i (input) —
laid out exactly as the reference's ``fuse_layers`` (identity entries are parameter-free
``nn.Identity`` where the reference stores ``None``), so the state-dict keys
``fuse_layers.{k}.{i}.{0,1}`` (upsampling) and ``fuse_layers.{k}.{i}.{n}.{0,1}`` (n-th stride-2
conv of the chain) are the reference's.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from hrnet_edu.blocks import batch_norm, conv1x1, conv3x3


def upsample_transform(c_in: int, c_out: int, factor: int) -> nn.Sequential:
    """a(X_i, k) for i > k: (N, C_i, H, W) → (N, C_k, H·f, W·f) with f = 2^(i−k).

    The 1×1 conv aligns the widths *before* upsampling, so it runs on the small map (cheap).
    Nearest upsampling copies each pixel into an f×f patch (no parameters, key index 2).
    """
    upsample = nn.Upsample(scale_factor=factor, mode="nearest")
    return nn.Sequential(conv1x1(c_in, c_out), batch_norm(c_out), upsample)


def downsample_transform(c_in: int, c_out: int, steps: int) -> nn.Sequential:
    """a(X_i, k) for i < k: (N, C_i, H, W) → (N, C_k, H/2^s, W/2^s), s = k − i strided 3×3 convs.

    Intermediate steps keep the input width C_i and have BN + ReLU; the last step goes to C_k and
    ends with BN only, because the exchange unit applies the ReLU after summing all contributions.
    """
    chain = [nn.Sequential(conv3x3(c_in, c_in, stride=2), batch_norm(c_in), nn.ReLU(inplace=True))
             for _ in range(steps - 1)]
    chain.append(nn.Sequential(conv3x3(c_in, c_out, stride=2), batch_norm(c_out)))
    return nn.Sequential(*chain)


def make_transform(widths: Sequence[int], i: int, k: int) -> nn.Module:
    """The transform a(·, k) applied to input branch i (widths[r] = C_r)."""
    if i == k:
        return nn.Identity()
    if i > k:
        return upsample_transform(widths[i], widths[k], 2 ** (i - k))
    return downsample_transform(widths[i], widths[k], k - i)


class ExchangeUnit(nn.ModuleList):
    """Fuse R parallel representations: Y_k = ReLU(Σ_i a(X_i, k)) (the reference's ``fuse_layers``).

    Shapes: xs = [X_0 … X_{R−1}], X_r (N, C_r, H/2^r, W/2^r) relative to branch 0's H×W →
    [Y_0 … Y_{R'−1}] with Y_k of the same shape as X_k.
    Args:
        widths: C_r of every input branch.
        num_outputs: R' outputs (default R); the last module of HRNet keeps only output 0.
    ``self[k][i]`` is the transform a(·, k) applied to input i.
    """

    def __init__(self, widths: Sequence[int], num_outputs: int | None = None):
        num_outputs = len(widths) if num_outputs is None else num_outputs
        if len(widths) < 2:
            raise ValueError(f"an exchange unit needs at least 2 branches, got widths {list(widths)}")
        if not 1 <= num_outputs <= len(widths):
            raise ValueError(f"num_outputs must be in 1..{len(widths)}, got {num_outputs}")
        inputs = range(len(widths))
        rows = [nn.ModuleList([make_transform(widths, i, k) for i in inputs]) for k in range(num_outputs)]
        super().__init__(rows)

    def contributions(self, xs: Sequence[Tensor]) -> list[list[Tensor]]:
        """Each input's contribution to each output: result[k][i] = a(X_i, k), shape of Y_k.

        These are exactly the terms ``forward`` sums, exposed for inspection and visualisation.
        """
        if len(xs) != len(self[0]):
            raise ValueError(f"exchange unit expects {len(self[0])} inputs, got {len(xs)}")
        return [[a(x) for a, x in zip(row, xs)] for row in self]

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        if len(xs) != len(self[0]):
            raise ValueError(f"exchange unit expects {len(self[0])} inputs, got {len(xs)}")
        outputs = []
        for row in self:
            terms = (a(x) for a, x in zip(row, xs))
            # The first addition is out of place (a term may be an input itself, through the identity,
            # and inputs must not change); the rest accumulate in place into that fresh tensor.
            total = next(terms) + next(terms)
            for term in terms:
                total += term
            # Y_k = ReLU(Σ_i a(X_i, k))
            outputs.append(total.relu_())
        return outputs


class Transition(nn.ModuleList):
    """Between stages: adapt existing branches where the width changes, and open the new branch.

    Shapes: [X_0 … X_{R−1}] → [X'_0 … X'_{R}] (one more branch). Entry r of the list:
    - r < R and width unchanged: ``nn.Identity`` (the reference stores ``None``: no keys);
    - r < R and width changes (only after stage 1, 256 → C): 3×3 conv stride 1 + BN + ReLU (keys r.{0,1});
    - r = R (the new branch): a 3×3 stride-2 conv + BN + ReLU from the *lowest*-resolution input
      X_{R−1}, wrapped in one more Sequential as in the reference (keys R.0.{0,1}).
    Args:
        widths_in: C_r of the R input branches.
        widths_out: C_r of the R + 1 output branches.
    """

    def __init__(self, widths_in: Sequence[int], widths_out: Sequence[int]):
        if len(widths_out) != len(widths_in) + 1:
            raise ValueError(f"a transition adds exactly one branch: {list(widths_in)} → {list(widths_out)}")
        layers: list[nn.Module] = []
        for r, c_out in enumerate(widths_out):
            if r < len(widths_in):
                c_in = widths_in[r]
                same = c_in == c_out
                layers.append(nn.Identity() if same else nn.Sequential(
                    conv3x3(c_in, c_out), batch_norm(c_out), nn.ReLU(inplace=True)))
            else:
                c_in = widths_in[-1]
                layers.append(nn.Sequential(nn.Sequential(
                    conv3x3(c_in, c_out, stride=2), batch_norm(c_out), nn.ReLU(inplace=True))))
        super().__init__(layers)

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        # The new (last) branch is computed from the lowest-resolution input X_{R−1}.
        return [layer(xs[min(r, len(xs) - 1)]) for r, layer in enumerate(self)]

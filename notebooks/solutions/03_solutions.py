# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions · 03 Residual units and the multi-resolution block
#
# Worked solutions to the three exercises of notebook 03 (`../03_multi_resolution_block.ipynb`). Try each exercise
# first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that needs
# training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for CI
# (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only
# that it runs.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrnet_edu.blocks import Bottleneck, MultiResolutionBlock, make_units
from hrnet_edu.flops import count_parameters
from hrnet_edu.model import W8, W32, build_model

torch.manual_seed(0)
torch.set_num_threads(2)
INPUT_H, INPUT_W = 256, 192


def macs_of(module, x):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    return counter.get_total_flops() // 2  # two FLOPs per multiply-add


# %% [markdown]
# ## Exercise 1 · Bottlenecks everywhere? — ★ · < 0.1 min
#
# A bottleneck with P = C/4 has weights C·P + 9P² + P·4P = C²/4 + 9C²/16 + C²/4 = 17C²/16 ≈ 1.06 C²
# (plus BN), a basic block 2·9C² = 18C²: about **17× fewer parameters and multiply-adds** per unit.

# %%
widths = W32.widths(4)
print(f"{'branch':>6} {'C_r':>4} {'P':>3} | {'params basic':>12} {'bottleneck':>10} {'ratio':>6} | "
      f"{'MACs basic':>10} {'bottleneck':>10} {'ratio':>6}")
ratios = []
basic_branches = MultiResolutionBlock(widths, num_units=4)
for r, c in enumerate(widths):
    x = torch.randn(1, c, INPUT_H // 2 ** (r + 2), INPUT_W // 2 ** (r + 2))
    bottle = make_units(Bottleneck, c, c // 4, 4)  # P = C_r / 4, output width 4P = C_r
    assert bottle(x).shape == x.shape
    p_basic, p_bottle = count_parameters(basic_branches[r]), count_parameters(bottle)
    m_basic, m_bottle = macs_of(basic_branches[r], x), macs_of(bottle, x)
    ratios.append((p_basic / p_bottle, m_basic / m_bottle))
    print(f"{r:6d} {c:4d} {c // 4:3d} | {p_basic:12,d} {p_bottle:10,d} {p_basic / p_bottle:6.1f} | "
          f"{m_basic / 1e6:8.1f} M {m_bottle / 1e6:8.1f} M {m_basic / m_bottle:6.1f}")

# %% [markdown]
# So bottlenecks would make stage 4 about 17× cheaper. Reasons to keep basic blocks anyway:
# - **The widths are already small.** At C = 32 a bottleneck works at P = 8 channels: the 3×3
#   convolution — the only one that looks at neighbours — would see 8 channels. Stage 1 uses
#   bottlenecks because it runs at width 256, where the squeeze to 64 still leaves room.
# - **Half the receptive field.** A basic block has two 3×3 convolutions, a bottleneck one: the
#   branch's receptive field would shrink from 17 to 9 of its own pixels (below).
# - **The cost is not where the network spends it.** Compute per branch is flat (notebook 03,
#   section 2) and the paper's budget is dominated by the high-resolution branches and the head;
#   halving stage 4 buys little accuracy per FLOP saved (an empirical claim the paper does not test).

# %%
def receptive_field(module, width, size=41):
    """Width (own pixels) of the input region that influences the centre output pixel; positive
    weights keep every ReLU open (the chapter's gradient method)."""
    module = module.eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
    x = torch.rand(1, width, size, size, requires_grad=True)
    y = module(x)
    cy, cx = y.shape[-2] // 2, y.shape[-1] // 2
    y[0, :, cy, cx].sum().backward()
    cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1))).flatten()
    return int(cols.max() - cols.min() + 1)


rf_bottle = receptive_field(make_units(Bottleneck, 32, 8, 4), 32)
print(f"receptive field of a branch of 4 units: basic {1 + 2 * 2 * 4}, bottleneck {rf_bottle} (own pixels)")
assert all(abs(m - 18 * 16 / 17) < 1e-9 for _, m in ratios)  # 18 C² / (17 C² / 16) exactly
assert all(15 < p < 17 for p, _ in ratios)  # the BN parameters (2 per channel) count a little
assert rf_bottle == 1 + 2 * 4

# %% [markdown]
# ## Exercise 2 · Receptive field of the whole stem + stage 1 — ★★ · < 0.1 min
#
# Track the receptive field $R$ and the *jump* $J$ (input pixels between neighbouring outputs):
# a k×k convolution with stride t gives $R \leftarrow R + (k-1)J$, then $J \leftarrow tJ$.
#
# | layer | k, stride | R (input px) | J |
# |---|---|---|---|
# | input | | 1 | 1 |
# | stem conv1 | 3, 2 | 3 | 2 |
# | stem conv2 | 3, 2 | 7 | 4 |
# | each bottleneck (1×1, **3×3**, 1×1) | | +2·4 = +8 | 4 |
#
# So $R = 7 + 8u$ for $u$ stage-1 units: **39 input px** for the paper's 4 bottlenecks, 15 for
# `W8` (1 unit). The high-resolution branch starts stage 2 seeing only a 39×39 patch of a 256×192
# crop — everything wider comes from the lower branches and the exchange.

# %%
def stem_and_stage1(model):
    return nn.Sequential(model.conv1, model.bn1, model.relu, model.conv2, model.bn2, model.relu, model.layer1)


for cfg in (W8, W32):
    analytic = 7 + 8 * cfg.stage1_units
    measured = receptive_field(stem_and_stage1(build_model(cfg)), 3, size=97)
    print(f"{cfg.width=}: {cfg.stage1_units} stage-1 units, analytic {analytic} px, measured {measured} px")
    assert measured == analytic


# %% [markdown]
# ## Exercise 3 · Effective receptive field — ★★ · ≈ 0.15 min
#
# A freshly initialised branch (PyTorch's default initialisation, BN in evaluation mode with its
# initial statistics, i.e. the identity), real signed weights and a random input: the |gradient| of
# the centre output pixel, averaged over 20 random inputs.

# %%
torch.manual_seed(0)
branch = MultiResolutionBlock([32], num_units=4)[0].eval()
size = 41
grad = torch.zeros(size, size)
for _ in range(20):
    x = torch.randn(1, 32, size, size, requires_grad=True)
    y = branch(x)
    y[0, :, size // 2, size // 2].sum().backward()
    grad += x.grad[0].abs().sum(0)
erf = (grad / grad.sum()).numpy()
offsets = np.arange(size) - size // 2
dist = np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :])  # Chebyshev distance to the centre
mass_within = {r: erf[dist <= r].sum() for r in (0, 2, 4, 8)}
profile = erf[size // 2]
std = np.sqrt((erf.sum(0) * offsets**2).sum())  # std of the horizontal marginal
uniform_std = np.sqrt((17**2 - 1) / 12)  # a flat 17-px window

fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
fig.colorbar(axes[0].imshow(erf, cmap="magma"), ax=axes[0], label="share of |gradient|")
axes[0].add_patch(plt.Rectangle((size // 2 - 8.5, size // 2 - 8.5), 17, 17, fill=False, ec="c", lw=1.5))
axes[0].set_title("|∂ centre output / ∂ input| (cyan: theoretical 17×17)")
axes[1].semilogy(offsets, profile, "o-")
axes[1].axvspan(-8.5, 8.5, color="c", alpha=0.15, label="theoretical RF")
axes[1].set(xlabel="offset from the centre (px)", ylabel="share (log)", title="row through the centre")
axes[1].legend()
plt.show()
print("share of |gradient| within Chebyshev radius r:", {r: round(float(v), 3) for r, v in mass_within.items()})
print(f"std of the horizontal marginal {std:.2f} px; a flat 17-px window would have {uniform_std:.2f} px")

# %% [markdown]
# Yes: the gradient is concentrated at the centre (the residual identity path alone contributes a
# spike there) and decays smoothly, roughly like a Gaussian on the log plot, to values orders of
# magnitude smaller near the edge of the theoretical window; nothing leaks outside it. The spread
# (std of the marginal) is well below that of a flat 17-pixel window: the *effective* receptive
# field is a fraction of the theoretical one, as Luo et al. found. One more reason HRNet needs its
# low-resolution branches to see the whole person.

# %%
assert mass_within[8] > 0.999999  # nothing outside the theoretical 17×17 window
assert mass_within[2] > 0.5 and std < 0.6 * uniform_std

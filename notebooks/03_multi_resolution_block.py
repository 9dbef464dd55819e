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

# %% [markdown] slideshow={"slide_type": "slide"}
# # 03 · Residual units and the multi-resolution block
#
# **Time:** about 25 min of reading (the exercises extra; their solutions say what each costs) · **Needs:** convolution and BatchNorm; notebook 00 · course map and glossary: README, `docs/glossary.md`.
#
# HRNet is built from one repeated pattern: **several branches at different resolutions running
# side by side** (the multi-resolution block), followed by an **exchange** of information between
# them (notebook 04). This notebook is about the first half: what a branch is made of, how wide and
# how large each branch is, what it costs, and how far each branch "sees".
#
# **What you will learn**
# - the two residual units HRNet uses — the basic block (stages 2–4) and the bottleneck (stage 1) —
#   written from scratch and checked against `hrnet_edu.blocks`;
# - the multi-resolution block: branch r runs at 1/2^(r+2) of the input with width C·2^r, and the
#   branches do not talk to each other inside the block;
# - a measured table of shapes, parameters and multiply-adds per branch (a surprise: every branch
#   costs the same compute, but the parameters grow 4× per branch);
# - the receptive field of each branch, computed analytically and measured with gradients;
# - a drawing of the block, and of where it sits in the whole network.
#
# Notation: N batch, C width, H×W size, r branch with **r = 0 the highest resolution** (the paper
# counts from 1: its branch r is our r − 1). Input crops are 256×192 (H×W) as in the paper.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrnet_edu.blocks import BasicBlock, Bottleneck, MultiResolutionBlock
from hrnet_edu.flops import count_parameters
from hrnet_edu.model import W32
from hrnet_edu.notebook_utils import columns, show_source
from hrnet_edu.viz import draw_hrnet

torch.manual_seed(0)
rng = np.random.default_rng(0)
INPUT_H, INPUT_W = 256, 192


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The residual unit
#
# A residual unit learns a correction F(x) to its input instead of a whole new representation:
#
# $$x_{out} = \mathrm{ReLU}\big(F(x) + x\big)$$
#
# In the **basic block** F is two 3×3 convolutions, each followed by BatchNorm, with a ReLU between:
# $F(x) = \mathrm{BN}(W_2 * \mathrm{ReLU}(\mathrm{BN}(W_1 * x)))$. The convolutions have no bias:
# the BatchNorm that follows has its own shift β. Here it is from scratch, with plain tensor
# operations, next to the library's module.

# %%
def bn_eval(x, bn):
    # BN(x) = γ (x − μ) / sqrt(σ² + ε) + β, per channel, with the running statistics (eval mode)
    s = (1, -1, 1, 1)
    return (x - bn.running_mean.view(s)) / torch.sqrt(bn.running_var.view(s) + bn.eps) * bn.weight.view(s) + bn.bias.view(s)


def basic_block_from_scratch(x, w1, bn1, w2, bn2):
    f = torch.relu(bn_eval(torch.conv2d(x, w1, padding=1), bn1))
    f = bn_eval(torch.conv2d(f, w2, padding=1), bn2)
    return torch.relu(f + x)  # x_out = ReLU(F(x) + x)


block = BasicBlock(16, 16).eval()
for bn in (block.bn1, block.bn2):  # non-trivial statistics, so the check means something
    bn.running_mean.normal_(0, 0.1); bn.running_var.uniform_(0.5, 1.5); bn.weight.data.uniform_(0.5, 1.5)
x = torch.randn(2, 16, 24, 20)
with torch.no_grad():
    ours = basic_block_from_scratch(x, block.conv1.weight, block.bn1, block.conv2.weight, block.bn2)
    lib = block(x)
assert torch.allclose(ours, lib, atol=1e-5)
print("input", tuple(x.shape), "-> output", tuple(lib.shape), "| from scratch == library:", torch.allclose(ours, lib, atol=1e-5))

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(BasicBlock)

# %% [markdown]
# The **bottleneck** (stage 1 only) squeezes the width with a 1×1 convolution, does the 3×3 work at
# the reduced width P, and expands back to 4P with another 1×1. When the input width differs from
# 4P, the shortcut becomes a projection (1×1 conv + BN). In HRNet this happens exactly once: the
# first unit of stage 1 (64 → 256). Compare the two units at the same output width:

# %%
rows = []
for name, unit in [("basic block, C=64 → 64", BasicBlock(64, 64)),
                   ("basic block, C=256 → 256", BasicBlock(256, 256)),
                   ("bottleneck, 256 → P=64 → 256", Bottleneck(256, 64)),
                   ("bottleneck with projection, 64 → 256", Bottleneck(64, 64))]:
    x = torch.randn(1, unit.conv1.in_channels, 64, 48)  # the 1/4 resolution of a 256×192 crop
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = unit(x)
    rows.append((name, count_parameters(unit), counter.get_total_flops() // 2, tuple(y.shape)))
print(f"{'unit':40} {'params':>9} {'MACs @64×48':>13}  output")
for name, p, macs, shape in rows:
    print(f"{name:40} {p:9,d} {macs / 1e6:11.1f} M  {shape}")

# %% [markdown]
# At width 256 a bottleneck has about 17× fewer parameters and multiply-adds than a basic block — that is why stage 1, which runs
# at the highest resolution with 256 channels, uses bottlenecks, while stages 2–4 (widths 32…256)
# use basic blocks.
#
# ## 2 · Parallel branches: the multi-resolution block
#
# In stage s there are s branches. Branch r runs at 1/2^(r+2) of the input resolution with width
# C·2^r (C = 32 for HRNet-W32). Each branch is a sequence of 4 basic blocks, and **the branches do
# not exchange anything inside the block**: that is the job of the exchange unit that follows.

# %%
widths = W32.widths(4)  # stage 4 of HRNet-W32: (32, 64, 128, 256)
mrb = MultiResolutionBlock(widths, num_units=4).eval()
xs = [torch.randn(1, c, INPUT_H // 2 ** (r + 2), INPUT_W // 2 ** (r + 2)) for r, c in enumerate(widths)]
with torch.no_grad():
    ys = mrb(xs)
for r, (x, y) in enumerate(zip(xs, ys)):
    print(f"branch {r}: in {tuple(x.shape)} -> out {tuple(y.shape)}")

# Independence: change only input 3, and outputs 0..2 do not move at all.
xs2 = xs[:3] + [torch.randn_like(xs[3])]
with torch.no_grad():
    ys2 = mrb(xs2)
print("outputs unchanged when only input 3 changes:", [torch.equal(a, b) for a, b in zip(ys[:3], ys2[:3])])

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### What each branch costs
#
# A 3×3 convolution from C to C channels on an H×W map has 9C² weights and 9C²·H·W multiply-adds.
# Going one branch down, C doubles and H·W is divided by 4, so **the compute per branch stays the
# same while the parameters grow 4×**. Measured with PyTorch's FLOP counter (which counts two FLOPs
# per multiply-add):

# %%
print(f"{'branch r':>8} {'stride':>6} {'resolution':>10} {'width C_r':>9} {'params':>10} {'MACs':>10} {'analytic MACs':>14}")
for r, (c, branch, x) in enumerate(zip(widths, mrb, xs)):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        branch(x)
    macs = counter.get_total_flops() // 2
    h, w = x.shape[-2:]
    analytic = 4 * 2 * 9 * c * c * h * w  # 4 blocks × 2 convs × 9C² per pixel
    assert macs == analytic
    print(f"{r:8d} {2 ** (r + 2):6d} {f'{h}×{w}':>10} {c:9d} {count_parameters(branch):10,d} "
          f"{macs / 1e6:8.1f} M {analytic / 1e6:12.1f} M")


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · How far does each branch see? The receptive field
#
# Every 3×3 convolution (stride 1) widens the receptive field by 2 pixels *of its own resolution*.
# A branch of 4 basic blocks has 8 such convolutions, so one output pixel depends on a
# (1 + 2·8) = 17 × 17 window of the branch's input. Measured in input-image pixels, a pixel of
# branch r is 2^(r+2) input pixels wide, so the same 17-pixel window covers 17·2^(r+2) input pixels:
# 68 px on branch 0 but 544 px on branch 3 — more than the whole 256×192 crop.
#
# We can *measure* the receptive field too: take the gradient of one output pixel with respect to
# the input and see which input pixels receive a non-zero gradient. (To make sure no ReLU blocks a
# path, all weights and inputs are made positive for this experiment.)

# %%
def measured_receptive_field(branch: nn.Module, width: int, size: int = 41) -> int:
    # Width (in the branch's own pixels) of the input region that influences the centre output pixel.
    probe = branch.eval()
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()  # positive weights: every ReLU stays open
    x = torch.rand(1, width, size, size, requires_grad=True)
    y = probe(x)
    y[0, :, size // 2, size // 2].sum().backward()
    cols = torch.nonzero(x.grad[0].abs().sum(dim=0).sum(dim=0)).flatten()
    return int(cols.max() - cols.min() + 1)


print(f"{'branch r':>8} {'stride':>6} {'RF (own px) analytic':>21} {'measured':>9} {'RF (input px)':>14}")
for r, c in enumerate(widths):
    analytic = 1 + 2 * 2 * 4  # 4 basic blocks × 2 convs × 2 px
    measured = measured_receptive_field(MultiResolutionBlock([c], num_units=4)[0], c)
    assert measured == analytic
    print(f"{r:8d} {2 ** (r + 2):6d} {analytic:21d} {measured:9d} {analytic * 2 ** (r + 2):14d}")


# %% [markdown]
# So within one block the low-resolution branches see the global layout of the person (which arm is
# which, where the body is), while branch 0 keeps the precise 4-pixel grid but only sees locally.
# The exchange unit (notebook 04) lets each branch borrow what the others see.
#
# ## 4 · Drawing the block
#
# The figure shows the stage-4 multi-resolution block of HRNet-W32: four parallel branches of four
# basic blocks each. Box height is proportional to the resolution, the label gives width and size.

# %%
def draw_branch(ax, r, c, y, h, color, num_units, input_size):
    # One row of the figure: branch r's basic blocks (box height h ∝ resolution) at height y.
    hh, ww = input_size[0] // 2 ** (r + 2), input_size[1] // 2 ** (r + 2)
    for b in range(num_units):
        ax.add_patch(Rectangle((1.2 + b * 1.6, y - h / 2), 1.1, h, color=color, alpha=0.85))
        # a basic block = two 3×3 convolutions; on one line where the box is too flat for two
        label, size = ("3×3\n3×3", 8) if h > 0.5 else ("3×3 · 3×3", 7)
        ink = "white" if color[:3] @ np.array([0.2126, 0.7152, 0.0722]) < 0.45 else "black"  # legible on light boxes
        ax.text(1.75 + b * 1.6, y, label, ha="center", va="center", fontsize=size, color=ink)
        if b:
            ax.add_patch(FancyArrowPatch((b * 1.6 + 0.7, y), (1.2 + b * 1.6, y), arrowstyle="->", mutation_scale=10))
    ax.add_patch(FancyArrowPatch((0.4, y), (1.2, y), arrowstyle="->", mutation_scale=10))
    ax.add_patch(FancyArrowPatch((1.2 + (num_units - 1) * 1.6 + 1.1, y), (8.0, y), arrowstyle="->", mutation_scale=10))
    ax.text(0.3, y, f"X_{r}", ha="right", va="center")
    ax.text(8.1, y, f"branch {r}: C={c}, {hh}×{ww} (1/{2 ** (r + 2)})", va="center", fontsize=9)


# %%
def draw_multi_resolution_block(widths, num_units=4, input_size=(INPUT_H, INPUT_W)):
    fig, ax = plt.subplots(figsize=(10, 4.8))
    colors = plt.cm.viridis(np.linspace(0.15, 0.85, len(widths)))
    y = 0.0
    for r, c in enumerate(widths):
        h = 1.6 / 2 ** r + 0.15  # box height ∝ resolution (with a minimum so labels fit)
        draw_branch(ax, r, c, y, h, colors[r], num_units, input_size)
        y -= max(h, 0.45) + 0.5
    ax.set_xlim(-0.5, 12)
    ax.set_ylim(y + 0.3, 1.4)
    ax.axis("off")
    ax.set_title("multi-resolution block: parallel branches of basic blocks (no exchange inside)")
    return fig


fig = draw_multi_resolution_block(widths)

# %% [markdown]
# In the whole network (the paper's Fig. 1, drawn from the config by `hrnet_edu.viz.draw_hrnet`) the
# block above is one column of four boxes ("4×BB") in stage 4; every stage s ≥ 2 repeats such
# blocks, each followed by an exchange unit (the crossing lines, notebook 04), and a transition (the
# black arrow) opens the next, coarser branch. Row labels give the width C·2^r and the resolution:

# %%
draw_hrnet(W32)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · The same block inside HRNet
#
# In the network, `stage{s}.{m}.branches` *is* a `MultiResolutionBlock`; its branch r is
# `stage{s}.{m}.branches.{r}` and its residual units are `….{r}.{b}` — the reference
# implementation's names, so its checkpoints load directly (notebook 05).

# %%
print("keys of branch 1, unit 0:")
print(columns([k for k in mrb.state_dict() if k.startswith("1.0.")], width=100))
print("parameters of the whole stage-4 block:", f"{count_parameters(mrb):,d}")
assert count_parameters(mrb) == sum(4 * (2 * 9 * c * c + 2 * 2 * c) for c in widths)  # convs + BN γ, β

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - A **residual unit** learns a correction: x_out = ReLU(F(x) + x). Basic blocks (two 3×3) in stages
#   2–4, bottlenecks (1×1, 3×3, 1×1) in stage 1, where the width is 256.
# - A **multi-resolution block** runs branches side by side — branch r at 1/2^(r+2) of the input with
#   width C·2^r — and they do **not** talk inside it (the exchange unit does that, notebook 04).
# - Every branch costs the **same** multiply-adds; its parameters grow 4× per branch.
# - Within a block a branch sees 17 of its own pixels: 68 input pixels on branch 0, 544 on branch 3.
#   The effective receptive field is much smaller than the theoretical one.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Bottlenecks everywhere?** Replace the basic blocks of stage 4 by bottlenecks with P = C_r/4
#    (so the width is unchanged) using `make_units(Bottleneck, …)`. How do parameters and
#    multiply-adds change per branch? Why might the authors have kept basic blocks?
# 2. **Receptive field of the whole stem + stage 1.** Extend the analytic count to the stem (two
#    3×3 stride-2 convolutions) and the four bottlenecks of stage 1, in input pixels, and check it
#    with the gradient method on `build_model(W8)` truncated after `layer1`.
# 3. **Effective receptive field.** With the *random* weights of a freshly initialised block (not
#    made positive), plot |gradient| of the centre output pixel. Luo et al. (2016) found the
#    effective receptive field is Gaussian-shaped and much smaller than the theoretical one — do you see it?

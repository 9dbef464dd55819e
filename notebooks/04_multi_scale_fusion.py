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
# # 04 · Multi-scale fusion: the exchange unit
#
# **Time:** about 30 min of reading on the core path, 35 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebook 03 · course map and glossary: README, `docs/glossary.md`.
#
# After every multi-resolution block (notebook 03), HRNet lets its parallel branches exchange
# information. Output r of the **exchange unit** is the sum, over all inputs r', of input r' brought
# to the resolution and width of branch r, followed by a ReLU:
#
# $$Y_k = \mathrm{ReLU}\Big(\sum_i a(X_i, k)\Big)$$
#
# with the transform a(X_i, k):
# - **i = k**: identity;
# - **i > k** (coarser input, going *up*): a 1×1 convolution that changes the width C_i → C_k,
#   BatchNorm, then **nearest-neighbour upsampling** ×2^(i−k);
# - **i < k** (finer input, going *down*): k − i **3×3 convolutions with stride 2**; the
#   intermediate ones keep the width C_i and have BN + ReLU, the last one goes to C_k with BN only
#   (the ReLU comes after the sum).
#
# **What you will learn**
# - what a strided 3×3 convolution and a 1×1 conv + nearest upsampling do to a feature map, on a
#   real picture, with exact checks;
# - each input's contribution to each output of an exchange unit, computed with the library's
#   `ExchangeUnit.contributions` and checked against a from-scratch version;
# - how much each transform costs (parameters and multiply-adds) in HRNet-W32;
# - interactively, which input dominates which output;
# - the paper's ablation of repeated fusion (exchange units only at the end, across stages, and
#   across and within stages), trained here on the CPU.
#
# Notation: r = 0 is the highest-resolution branch (the paper's r is ours + 1); C_r the width of
# branch r; N batch, H×W size.

# %%
# %matplotlib inline
import json
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrnet_edu.features import contribution_shares
from hrnet_edu.flops import count_parameters
from hrnet_edu.fusion import ExchangeUnit, downsample_transform, upsample_transform
from hrnet_edu.model import W32, W8, HRNet, build_model
from hrnet_edu.notebook_utils import columns, show_source
from hrnet_edu.viz import contribution_figure, draw_hrnet

torch.manual_seed(0)
rng = np.random.default_rng(0)

# %%
# The largest SynthPose figure, cropped to 256×192 (H×W) around its box and reduced to the 1/4
# resolution of branch 0 (64×48). (Notebook 06 does this crop properly, with the affine warp.)
REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
SAMPLES = REPO / "data_samples/synthpose"
annotations = json.loads((SAMPLES / "annotations/person_keypoints_train.json").read_text())
biggest = max(annotations["annotations"], key=lambda a: a["area"])
file_name = next(im["file_name"] for im in annotations["images"] if im["id"] == biggest["image_id"])
x, y, w, h = biggest["bbox"]
cx, cy, half_h = x + w / 2, y + h / 2, max(h, w * 4 / 3) * 1.25 / 2  # a 4:3 (H:W) box, padded ×1.25
box = (cx - half_h * 0.75, cy - half_h, cx + half_h * 0.75, cy + half_h)
image = Image.open(SAMPLES / "images" / file_name).convert("L").crop(box).resize((192, 256), Image.BILINEAR)
picture = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)  # (256, 192)
x0 = F.avg_pool2d(picture[None, None], 4)  # (1, 1, 64, 48): a one-channel "feature map" of branch 0
print("picture", tuple(picture.shape), "-> branch-0 map", tuple(x0.shape))


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Going down: strided 3×3 convolutions
#
# A 3×3 convolution with stride 2 (padding 1) evaluates the kernel at every *second* pixel, so an
# H×W map becomes H/2 × W/2. What it keeps depends on the kernel. Two hand-set kernels make this
# visible (BatchNorm is left at its initial state, which is the identity up to ε):
# - a **centre tap** (1 in the middle, 0 elsewhere): plain subsampling, `x[::2, ::2]` — aliasing and all;
# - a **box filter** (1/9 everywhere): average, then subsample — a smoother, anti-aliased map.
#
# To go down two levels the exchange unit chains two such convolutions (with a ReLU between).
# In training the kernels are learned, and they can do both and more.

# %%
def set_kernel(chain: nn.Sequential, kernel: torch.Tensor) -> nn.Sequential:
    # Put the same 3×3 kernel into every stride-2 conv of a one-channel downsampling chain.
    with torch.no_grad():
        for step in chain:
            step[0].weight.copy_(kernel.view(1, 1, 3, 3))
    return chain.eval()


centre = torch.zeros(3, 3); centre[1, 1] = 1.0
box = torch.full((3, 3), 1 / 9)
bn_scale = 1 / np.sqrt(1 + 1e-5)  # BN in eval mode at its initial state: x / sqrt(1 + ε)

with torch.no_grad():
    sub2 = set_kernel(downsample_transform(1, 1, steps=1), centre)(x0)
    avg2 = set_kernel(downsample_transform(1, 1, steps=1), box)(x0)
    sub4 = set_kernel(downsample_transform(1, 1, steps=2), centre)(x0)

assert torch.allclose(sub2, x0[..., ::2, ::2] * bn_scale, atol=1e-6)
assert torch.allclose(sub4, x0[..., ::4, ::4] * bn_scale**2, atol=1e-6)  # the picture is ≥ 0: the ReLU is inactive
print("1 step :", tuple(x0.shape), "->", tuple(sub2.shape), "| centre tap == x[::2, ::2]")
print("2 steps:", tuple(x0.shape), "->", tuple(sub4.shape), "| == x[::4, ::4]")

# %%
fig, axes = plt.subplots(1, 4, figsize=(11, 3.4))
for ax, (title, m) in zip(axes, [("branch 0 input (64×48)", x0), ("centre tap, stride 2 (32×24)", sub2),
                                 ("box filter, stride 2 (32×24)", avg2), ("two centre taps (16×12)", sub4)]):
    ax.imshow(m[0, 0], cmap="gray", interpolation="nearest"); ax.set_title(title, fontsize=9); ax.axis("off")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Going up: 1×1 convolution, then nearest-neighbour upsampling
#
# Upsampling has no parameters: nearest-neighbour copies every pixel into an f×f block
# (f = 2^(i−k)). The width is aligned *before* upsampling, by a 1×1 convolution on the small map,
# which is f² times cheaper than doing it after. With a 1×1 weight of 1 we see the pure upsampling:

# %%
x2 = F.avg_pool2d(x0, 4)  # a branch-2 map, 16×12
up = upsample_transform(1, 1, factor=4).eval()
with torch.no_grad():
    up[0].weight.fill_(1.0)
    y = up(x2)
expected = x2.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3) * bn_scale  # each pixel → a 4×4 block
assert torch.allclose(y, expected, atol=1e-6)
print(tuple(x2.shape), "-> 1×1 conv -> BN -> nearest ×4 ->", tuple(y.shape), "| == repeat_interleave")

fig, axes = plt.subplots(1, 2, figsize=(6, 3.4))
axes[0].imshow(x2[0, 0], cmap="gray", interpolation="nearest"); axes[0].set_title("branch 2 (16×12)", fontsize=9)
axes[1].imshow(y[0, 0], cmap="gray", interpolation="nearest"); axes[1].set_title("upsampled to branch 0 (64×48)", fontsize=9)
for ax in axes:
    ax.axis("off")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The exchange unit, input by input
#
# Now a whole exchange unit with three branches of widths (4, 8, 16), with random weights (the
# reference's N(0, 0.001²) initialisation would make every contribution but the identity nearly
# zero). Its inputs are the picture at 1/4, 1/8 and 1/16 resolution, each spread over C_r channels
# with random gains. `contributions(xs)[k][i]` returns a(X_i, k), the very terms `forward` sums.

# %%
widths = (4, 8, 16)
unit = ExchangeUnit(widths).eval()
with torch.no_grad():
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):  # He-like scale so every contribution is visible
            m.weight.normal_(0, (2 / (m.in_channels * m.kernel_size[0] ** 2)) ** 0.5)
gains = [torch.from_numpy(rng.normal(1.0, 0.5, size=(1, c, 1, 1)).astype(np.float32)) for c in widths]
xs = [F.avg_pool2d(x0, 2**r) * g for r, g in enumerate(gains)]  # X_r: (1, C_r, 64/2^r, 48/2^r)

with torch.no_grad():
    parts = unit.contributions(xs)  # parts[k][i] = a(X_i, k)
    ys = unit(xs)
for k, row in enumerate(parts):
    print(f"output {k}:", "  ".join(f"a(X_{i}, {k}) {tuple(p.shape[1:])}" for i, p in enumerate(row)),
          f"-> Y_{k} {tuple(ys[k].shape[1:])}")

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(ExchangeUnit)


# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Check: the same unit from scratch
#
# Writing a(X_i, k) with plain tensor operations, using only the unit's weights, must give the
# library's contributions, and ReLU of their sum must give its outputs.

# %%
def bn_eval(x, bn):
    s = (1, -1, 1, 1)
    return (x - bn.running_mean.view(s)) / torch.sqrt(bn.running_var.view(s) + bn.eps) * bn.weight.view(s) + bn.bias.view(s)


def a_from_scratch(unit, xs, k, i):
    x = xs[i]
    if i == k:
        return x
    if i > k:  # 1×1 conv C_i → C_k, BN, nearest ×2^(i−k)
        f = 2 ** (i - k)
        z = bn_eval(torch.conv2d(x, unit[k][i][0].weight), unit[k][i][1])
        return z.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
    for n in range(k - i):  # k − i stride-2 3×3 convs; ReLU after all but the last
        x = bn_eval(torch.conv2d(x, unit[k][i][n][0].weight, stride=2, padding=1), unit[k][i][n][1])
        x = torch.relu(x) if n < k - i - 1 else x
    return x


with torch.no_grad():
    for k in range(3):
        mine = [a_from_scratch(unit, xs, k, i) for i in range(3)]
        assert all(torch.allclose(m, p, atol=1e-5) for m, p in zip(mine, parts[k]))
        assert torch.allclose(torch.relu(sum(mine)), ys[k], atol=1e-5)  # Y_k = ReLU(Σ_i a(X_i, k))
print("from scratch == library for all 9 contributions and 3 outputs")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Seeing the contributions
#
# Each panel shows the per-pixel size (RMS over channels) of one term a(X_i, k): rows are outputs,
# columns inputs, and the title gives the term's share of the output's total (`contribution_shares`:
# its norm over the sum of the norms). The terms of one output are added, so the panels of a row
# share one colour scale, from 0 to the row's largest value (the row's colour bar): a term with a
# small share, like branch 0's 0.04 of output 2, is nearly black. Upsampled terms are blocky,
# downsampled ones are coarse copies of the fine map.

# %%
shares = contribution_shares(parts)
print("share of input i (columns) in output k (rows):")
print(np.round(shares.numpy(), 3))
assert torch.allclose(shares.sum(dim=1), torch.ones(3, dtype=torch.float64))
contribution_figure(parts, name="3-branch")


# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Interactive: pick an output branch
#
# Choose the output k; the row shows every input's contribution a(X_i, k), their sum, and the
# fused output after the ReLU, all on one colour scale (symmetric about 0, so blue is negative and
# red positive everywhere). Drawn once here for output 0, then as a widget.

# %%
def show_output(k=0):
    row = parts[k]
    panels = [(f"a(X_{i}, {k})", p) for i, p in enumerate(row)] + [("Σ_i a(X_i, k)", sum(row)),
                                                                   (f"Y_{k} = ReLU(Σ)", ys[k])]
    maps = [p[0].mean(dim=0) for _, p in panels]  # the channel mean keeps the sign
    lim = max(float(m.abs().max()) for m in maps)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels) + 0.8, 2.9), layout="constrained")
    for ax, (title, _), m in zip(axes, panels, maps):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(title, fontsize=10); ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.85, label="mean over channels")
    h, w = ys[k].shape[-2:]
    fig.suptitle(f"output branch {k} at {h}×{w}", fontsize=11)
    plt.show()


show_output(0)

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
widgets.interact(show_output, k=widgets.Dropdown(options=[0, 1, 2], value=0, description="output k"));

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · What each transform costs in HRNet-W32 (deeper)
#
# The last exchange unit of stage 4 has four branches of widths (32, 64, 128, 256) at 64×48 … 8×6
# for a 256×192 input (the very last module keeps only output 0; we build the full 4 × 4 unit to
# see all the terms). Parameters and multiply-adds of each a(·, k), measured with PyTorch's FLOP counter:

# %%
w = W32.widths(4)
full = ExchangeUnit(w).eval()
xs32 = [torch.zeros(1, c, 64 // 2**r, 48 // 2**r) for r, c in enumerate(w)]
params = np.zeros((4, 4), dtype=np.int64)
macs = np.zeros((4, 4))
for k in range(4):
    for i in range(4):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            full[k][i](xs32[i])
        params[k, i] = count_parameters(full[k][i])
        macs[k, i] = counter.get_total_flops() / 2 / 1e6
print("parameters of a(X_i, k) (rows k = output, columns i = input):")
print(params)
print("multiply-adds (millions):")
print(np.round(macs, 1))
print(f"whole unit: {count_parameters(full):,d} parameters, {macs.sum():.1f} M multiply-adds")


# %% [markdown]
# The same numbers by hand: a 1×1 conv costs C_i·C_k per pixel of the small input map; step n of a
# chain (n = 0, 1, …) writes 1/4^(n+1) of input i's pixels with 9·C_in·C_out multiply-adds each,
# where C_in = C_i throughout and C_out = C_i except in the last step (C_k).

# %%
def analytic_macs(k, i, area0=64 * 48):
    area = area0 / 4**i  # pixels of input i
    if i == k:
        return 0.0
    if i > k:
        return w[i] * w[k] * area
    steps = k - i
    return sum(9 * w[i] * (w[k] if n == steps - 1 else w[i]) * area / 4 ** (n + 1) for n in range(steps))


steps_macs = {(k, i): [9 * w[i] * (w[k] if n == k - i - 1 else w[i]) * 64 * 48 / 4**i / 4 ** (n + 1) / 1e6
                       for n in range(k - i)] for k in range(4) for i in range(k)}
assert np.allclose([[analytic_macs(k, i) / 1e6 for i in range(4)] for k in range(4)], macs)
print("measured == analytic for all 16 terms")
for (k, i), per_step in steps_macs.items():
    print(f"a(X_{i}, {k}): steps " + " + ".join(f"{m:.2f}" for m in per_step) + f" = {sum(per_step):.2f} M")

# %% [markdown]
# The identity terms (diagonal) are free; going up is cheap because the 1×1 conv runs on the small
# map; going down costs the most compute, 12.4–14.2 M multiply-adds per term whatever the distance.
# The reason is the **first** strided conv of a chain: it keeps the input width C_i and writes a
# quarter of input i's pixels, 9·C_i²·H_iW_i/4 = 7.08 M for *every* i, since C_i doubles from branch
# to branch while H_iW_i is quartered. A one-step chain (which widens to C_k = 2C_i at once) costs
# twice that, 14.16 M. In a longer chain the intermediate convs keep the width C_i on maps 4× smaller
# at each step, so they add little (1.77 M), and only the last one widens to C_k (7.08 M for two
# steps, 3.54 M for three). The chains into the coarsest branch (bottom row) carry most of the
# parameters because their last convolution is a 3×3 into a wide branch (9·C_i·C_k weights).
#
# ## 5 · In the network
#
# In `HRNet`, `stage{s}.{m}.fuse_layers` is an `ExchangeUnit`: its entry `[k][i]` is a(·, k) for
# input i, stored under the reference implementation's keys (`fuse_layers.k.i.0` for the 1×1
# conv of an upsampling term, `fuse_layers.k.i.n.0` for the n-th strided conv of a chain). The
# feature-capture tool (notebook 09) records `stage{s}.module{m}.exchange.out{k}.from{i}` by
# calling this same `contributions` method.

# %%
model = build_model(W8)
unit_in_net = model.stage3[0].fuse_layers
print(type(unit_in_net).__name__, "with", len(unit_in_net), "outputs ×", len(unit_in_net[0]), "inputs")
print("keys of a(X_0, 2), the two-step chain 0 → 2:")
print(columns([n for n in model.state_dict() if n.startswith("stage3.0.fuse_layers.2.0.")], width=100))
print("last module of stage 4 keeps outputs:", len(model.stage4[-1].fuse_layers))

# %% [markdown]
# In the drawing of the whole network (the paper's Fig. 1, `hrnet_edu.viz.draw_hrnet`), every
# bundle of crossing lines is one exchange unit: HRNet-W32 has one per HR module, 1 + 4 + 3 = 8,
# and the last one keeps output 0 only (the branch the head reads).

# %%
with torch.device("meta"):  # shapes only: no memory, no initialisation time
    w32 = HRNet(W32)
units = [m for m in w32.modules() if isinstance(m, ExchangeUnit)]
print(f"exchange units in HRNet-W32: {len(units)} = {' + '.join(map(str, W32.num_modules))};"
      f" outputs of the last one: {len(units[-1])}")
draw_hrnet(W32)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Does repeated fusion matter? The paper's ablation, measured at CPU scale
#
# The paper's ablation study trains HRNet-W32 three ways: with only the final exchange unit (1 fusion:
# the parallel branches never talk until the end), with exchange units between stages only (3), and
# with exchange units also within the stages (8, HRNet itself): COCO val AP 70.8, 71.9 and 73.4.
#
# Here the same three variants of one small network — the CPU recipe's `W16_1UNIT` with 1, 2, 2 HR
# modules in stages 2–4, so 5 exchange units in full — each trained for one epoch of the 37,476
# persons of `make data` on this project's 2-core CPU (2026-12-02), three seeds each
# (`benchmarks/study_paper_evidence.py`; configs and logs in `benchmarks/results/paper_evidence/`).

# %%
from IPython.display import display
from matplotlib.figure import Figure

from hrnet_edu import evidence

variants = {"fusion_final": "final only", "fusion_across": "across stages", "fusion_all": "across + within"}
# one variant per row, at full width, so that stage and box labels stay legible
fig = Figure(figsize=(11, 8.4), dpi=100, layout="constrained")
for ax, (name, label) in zip(fig.subplots(3, 1), variants.items()):
    cfg_v = evidence.study_config(name).model
    n_units = sum(isinstance(m, ExchangeUnit) for m in build_model(cfg_v).modules())
    draw_hrnet(cfg_v, ax=ax, input_size=None, title=f"exchange units {label} ({n_units})")
display(fig)

# %%
study = evidence.load_runs()
fusion = evidence.summarize(study, variants)
paper = {"fusion_final": 70.8, "fusion_across": 71.9, "fusion_all": 73.4}
print(f"{'exchange units':16} {'count':>5} {'AP here (mean)':>14} {'per seed':>15} {'paper AP (W32, COCO)':>21}")
for name, label in variants.items():
    n = sum(isinstance(m, ExchangeUnit) for m in build_model(evidence.study_config(name).model).modules())
    f = fusion[name]
    print(f"{label:16} {n:5d} {f['mean']:14.3f} {', '.join(f'{v:.3f}' for v in f['values']):>15} "
          f"{paper[name]:21.1f}")

# %% [markdown]
# As in the paper, the network whose branches meet only at the end is the weakest: AP 0.367 against
# 0.395 with exchange units across stages and 0.398 with exchange units across and within stages (3
# seeds each; the seeds of one variant differ by up to 0.024). Exchanging only at the end costs
# 0.031 AP here, more than the seed spread, and that variant is the lowest in every seed. The step
# from across-stage to across-and-within (+0.003) is within that spread: with two modules per stage
# and one CPU epoch, this run cannot separate the two as the paper's W32 runs (71.9 → 73.4) do.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - An **exchange unit** (`fuse_layers`) computes Y_k = ReLU(Σ_i a(X_i, k)): identity for i = k, a 1×1
#   conv + BN + **nearest upsampling** from coarser inputs, k − i **strided 3×3 convs** from finer ones.
# - The width is changed on the small map before upsampling (cheaper); going down costs the most
#   compute, into the coarsest branch the most parameters.
# - HRNet-W32 has 8 exchange units (1 + 4 + 3); the last one keeps output 0, the branch the head reads.
# - The paper's ablation — exchange only at the end, across stages, or also within stages — was
#   measured here at CPU scale: exchanging only at the end is clearly the weakest.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Bilinear instead of nearest.** Replace the `nn.Upsample` of every upsampling term by
#    bilinear interpolation (`mode="bilinear", align_corners=False`). Does the output change where
#    you expect? (Keys and parameters stay the same, so a trained checkpoint still loads — try it in
#    notebook 05 and measure how much the heatmaps move.)
# 2. **Sum vs. concatenation.** Write an exchange unit that concatenates the contributions and mixes
#    them with a 1×1 convolution instead of summing. How many extra parameters and multiply-adds
#    does it cost for the stage-4 unit of HRNet-W32?
# 3. **Who talks to whom after training.** Once you have a trained checkpoint (notebook 07), compute
#    `contribution_shares` for every exchange unit on a batch of validation crops. Do the
#    high-resolution outputs rely more on coarse inputs in early or late stages?

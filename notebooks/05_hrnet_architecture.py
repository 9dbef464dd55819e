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
# # 05 · The whole HRNet, stage by stage
#
# **Time:** about 25 min of reading on the core path, 35 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebooks 03 and 04 · course map and glossary: README, `docs/glossary.md`.
#
# Notebooks 03 and 04 built the two halves of HRNet's repeated pattern: parallel branches, then an
# exchange. This notebook assembles the network of the paper (Fig. 1) and measures it.
#
# ```
# stem     2 × (3×3 conv stride 2)            → 1/4 resolution, 64 channels
# stage 1  4 bottlenecks                       → 1/4, 256 channels            (1 branch)
# stage 2  transition + 1 module               → 1/4, 1/8           C, 2C     (2 branches)
# stage 3  transition + 4 modules              → … 1/16             + 4C      (3 branches)
# stage 4  transition + 3 modules              → … 1/32             + 8C      (4 branches)
# head     1×1 conv on branch 0                → K heatmaps at 1/4
# ```
# Each module = a multi-resolution block (4 basic blocks per branch) + an exchange unit; each
# transition opens one new branch from the lowest-resolution one (stride-2 3×3 conv).
#
# **What you will learn**
# - how the network grows stage by stage, with a table per stage of branches, resolutions, widths,
#   parameters and multiply-adds;
# - that our HRNet-W32/W48 match the paper's table exactly — parameters to the unit, and "GFLOPs"
#   once you know they are multiply-adds divided by 1024³;
# - how HRNet compares with the high-to-low design it replaced (SimpleBaseline): in cost, and
#   trained side by side here at equal multiply-adds;
# - that the reference implementation's checkpoints load into our model by name.
#
# Notation: N batch, K = 17 joints, C width (32 or 48), r branch (0 = highest resolution; the
# paper's r is ours + 1), s stage. Input 256×192 (H×W) unless said otherwise.

# %%
# %matplotlib inline
import dataclasses
import tempfile
import time
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from hrnet_edu.baseline import RESNET50, SMALL, SimpleBaseline
from hrnet_edu.checkpoints import load_reference_weights
from hrnet_edu.features import capture
from hrnet_edu.flops import count_macs, count_parameters, macs_by_module, paper_gflops
from hrnet_edu.model import W8, W16_1UNIT, W32, W48, HRNet, build_model
from hrnet_edu.notebook_utils import columns, show_source
from hrnet_edu.viz import draw_hrnet

torch.manual_seed(0)
INPUT = (256, 192)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Growing the network
#
# First the picture. `hrnet_edu.viz.draw_hrnet` draws any `HRNetConfig` as in the paper's Fig. 1,
# reading stages, modules, blocks and widths from the config: rows are the branches (width C·2^r
# at 1/2^(r+2) of the input), boxes the residual units of one HR module, crossing lines its
# exchange unit, black arrows the transitions. Above, the paper's HRNet-W32 (1, 4, 3 modules in
# stages 2–4, 4 basic blocks per branch); below, on the same horizontal scale, the CPU preset
# `W16_1UNIT` of the CPU training recipe (1, 1, 1 modules, 1 basic block per branch; the recipe feeds
# it 128×96 crops, hence the smaller branch sizes): the same four streams, one module per stage.

# %%
fig, (ax_w32, ax_cpu) = plt.subplots(2, 1, figsize=(13, 7.4), layout="constrained")
draw_hrnet(W32, ax=ax_w32, title="HRNet-W32 (the paper): 1-4-3 modules, 4 basic blocks per branch")
draw_hrnet(W16_1UNIT, ax=ax_cpu, input_size=(128, 96),
           title="W16_1UNIT (CPU preset, 128×96 input): 1-1-1 modules, 1 basic block per branch")
ax_cpu.set_xlim(ax_w32.get_xlim())  # same scale: the CPU net is as wide (4 streams) but much shallower
plt.show()

# %% [markdown]
# `HRNetConfig.num_stages` builds only the first s stages; the head then reads branch 0 of the last
# built stage. Every version maps a 256×192 crop to 64×48 heatmaps — what changes is how many
# resolutions the network has worked at before it answers.

# %%
print(f"{'stages':>6} {'branches':>8} {'HRNet-W32 params':>17} {'W8 heatmaps for one 256×192 crop':>34}")
for s in (1, 2, 3, 4):
    cfg = dataclasses.replace(W32, num_stages=s)
    with torch.no_grad():  # the thin W8 runs for real on the CPU in milliseconds
        out = build_model(dataclasses.replace(W8, num_stages=s)).eval()(torch.randn(1, 3, *INPUT))
    print(f"{s:6d} {len(cfg.widths(s)):8d} {count_parameters(build_model(cfg)):17,d} {str(tuple(out.shape)):>34}")

# %% [markdown]
# Now the full HRNet-W32, measured stage by stage in one pass: the feature-capture tool
# (`hrnet_edu.features`, notebook 09) records the branches of each stage's first module, and
# PyTorch's FLOP counter (`hrnet_edu.flops`) counts the multiply-adds of every submodule. Both run
# on the "meta" device: only shapes are propagated, so this is quick even for a 28 M-parameter net.

# %%
w32 = HRNet(W32).to("meta")
with capture(w32, ["stem", "stage1", "stage*.module0.branch*", "heatmaps"]) as feats:
    macs = macs_by_module(w32, INPUT)

parts = {"stem": ["conv1", "bn1", "conv2", "bn2"], "stage 1": ["layer1"], "stage 2": ["transition1", "stage2"],
         "stage 3": ["transition2", "stage3"], "stage 4": ["transition3", "stage4"], "head": ["final_layer"]}
print(f"{'part':8} {'branches':>8}  {'resolutions (H×W)':28} {'widths':18} {'modules':>7} {'params':>11} {'MACs (G)':>9} {'share':>6}")
total_p = total_m = 0
for s, (name, prefixes) in enumerate(parts.items()):
    if name.startswith("stage ") and name != "stage 1":
        shapes = [feats[f"stage{s}.module0.branch{r}"].shape for r in range(s)]
        modules = len(getattr(w32, f"stage{s}"))
    else:
        shapes = [feats[{"stem": "stem", "stage 1": "stage1", "head": "heatmaps"}[name]].shape]
        modules = ""
    res = ", ".join(f"{h}×{w}" for _, _, h, w in shapes)
    wid = ", ".join(str(c) for _, c, _, _ in shapes)
    p = sum(count_parameters(getattr(w32, child)) for child in prefixes)
    m = sum(macs.get(pre, 0) for pre in prefixes)
    total_p += p; total_m += m
    print(f"{name:8} {len(shapes):8d}  {res:28} {wid:18} {modules!s:>7} {p:11,d} {m / 1e9:9.3f} {m / macs[''] :6.1%}")
print(f"{'total':8} {'':8}  {'':28} {'':18} {'':>7} {total_p:11,d} {total_m / 1e9:9.3f}")
assert total_p == count_parameters(w32) == 28_536_113
assert total_m == macs[""]

# %% [markdown]
# Two things stand out. Stages 3 and 4 do three quarters of the compute (seven modules between
# them), and stage 4 alone holds almost three quarters of the parameters (its lowest branch has 256
# channels: 9·256² weights per 3×3 conv, for only 8×6 pixels). And although branch 0 runs at the full 1/4 resolution through the whole network, it is
# only 32 channels wide, so keeping high resolution costs far less than one might fear.
#
# The `HRNet` class builds stages 2–4 with **one loop over the config**; the stage names and the
# module names inside are the reference implementation's:

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(HRNet.__init__)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Our counts beside the paper's table
#
# The paper reports 28.5 M / 63.6 M parameters and 7.1 / 14.6 "GFLOPs" for W32 / W48 at 256×192
# (16.0 / 32.9 at 384×288). PyTorch's FLOP counter counts **2 FLOPs per multiply-add**; the paper's
# numbers are **multiply-adds / 1024³** (a binary "giga"):
#
# $$\text{paper GFLOPs} = \frac{\text{MACs}}{1024^3} = \frac{\text{FLOPs}/2}{1024^3}$$

# %%
paper = {("W32", INPUT): (28.5, 7.1), ("W32", (384, 288)): (28.5, 16.0),
         ("W48", INPUT): (63.6, 14.6), ("W48", (384, 288)): (63.6, 32.9)}
w48 = HRNet(W48).to("meta")
nets = {"W32": w32, "W48": w48}
print(f"{'model':9} {'input':>8} {'params':>12} {'paper':>6} {'FLOPs (G)':>10} {'MACs (G)':>9} {'MACs/1024³':>11} {'paper':>6}")
measured = {("W32", INPUT): macs[""], ("W48", INPUT): count_macs(w48, INPUT)}
for (name, size), (p_paper, g_paper) in paper.items():
    params = count_parameters(nets[name])
    # Every operation is a convolution, so the count is proportional to H·W (checked below for W32).
    m = measured[name, INPUT] * (size[0] * size[1]) // (INPUT[0] * INPUT[1])
    print(f"HRNet-{name} {f'{size[0]}×{size[1]}':>8} {params:12,d} {p_paper:6.1f} {2 * m / 1e9:10.2f} {m / 1e9:9.3f} "
          f"{paper_gflops(m):11.2f} {g_paper:6.1f}")
    assert round(params / 1e6, 1) == p_paper and round(paper_gflops(m), 1) == g_paper
assert count_parameters(w32) == 28_536_113 and count_parameters(w48) == 63_595_745
assert count_macs(w32, (384, 288)) == macs[""] * 9 // 4  # measured, not scaled: 17,201,258,496

# %% [markdown]
# Every number matches. (Read with decimal giga and FLOPs = 2·MACs, W32 would be "15.3 GFLOPs":
# the same network, a factor 2.15 apart — always check which convention a table uses.)
#
# ## 3 · High-to-low vs. high-resolution: SimpleBaseline beside HRNet
#
# SimpleBaseline (Xiao et al. 2018) is the strongest *high-to-low* design of its time: a ResNet goes
# down to 1/32 of the input, then three deconvolutions (transposed convolutions, 4×4, stride 2)
# come back up to 1/4. HRNet instead never leaves 1/4 on branch 0. `hrnet_edu.baseline` holds both
# the paper's ResNet-50 version and a small one for the CPU.

# %%
r50 = SimpleBaseline(RESNET50).to("meta")
b_macs = macs_by_module(r50, INPUT)
deconv = sum(b_macs[f"deconv_layers.{k}"] for k in (0, 3, 6))
# The tool behind the SimpleBaseline paper counts a transposed conv over its *output* pixels, 4× the
# true multiply-adds of a stride-2 deconvolution; PyTorch's counter counts the true ones.
paper_style = b_macs[""] + 3 * deconv
rows = [("SimpleBaseline-R50", count_parameters(r50), b_macs[""], paper_style, 34.0, 8.9, 70.4),
        ("HRNet-W32", count_parameters(w32), macs[""], macs[""], 28.5, 7.1, 74.4)]
print(f"{'model':19} {'params':>12} {'paper':>6} {'MACs (G)':>9} {'/1024³':>7} {'paper-style':>11} {'paper':>6} {'COCO AP':>8}")
for name, p, m, m_paper, p_ref, g_ref, ap in rows:
    print(f"{name:19} {p:12,d} {p_ref:6.1f} {m / 1e9:9.3f} {paper_gflops(m):7.2f} {paper_gflops(m_paper):11.2f} "
          f"{g_ref:6.1f} {ap:8.1f}")
assert round(count_parameters(r50) / 1e6, 1) == 34.0


# %% [markdown]
# With the *same* counting rule HRNet-W32 has fewer parameters than SimpleBaseline-ResNet-50 but
# about 40 % more true multiply-adds (7.65 G vs 5.43 G) — and 4 AP points more on COCO val2017
# (from the paper's table; AP numbers are quoted, not measured here). Under the SimpleBaseline
# paper's own counting (deconvolutions over their output pixels) the baseline's 8.99 G is what that
# paper prints as 8.9, which is how the HRNet paper's table can list HRNet-W32 as the cheaper one.
#
# Where does each design keep its resolution? Below, every convolution of the two small CPU models
# in execution order, plotted at the resolution of its output. SimpleBaseline walks down to 1/32 and
# climbs back with deconvolutions; HRNet runs its branches one after the other inside each module,
# and after every exchange unit it is back at 1/4 — a high-resolution map is alive throughout.

# %%
def conv_strides(model: nn.Module, size=INPUT) -> list[int]:
    # Output stride (input size / output size) of every conv and deconv, in the order they run.
    strides, handles = [], []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(lambda mod, i, out: strides.append(size[0] // out.shape[-2])))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *size))
    for h in handles:
        h.remove()
    return strides


small_hr, small_base = build_model(W8), SimpleBaseline(SMALL)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
for ax, (name, model) in zip(axes, [("SimpleBaseline (high → low → high)", small_base), ("HRNet (parallel branches)", small_hr)]):
    s = conv_strides(model)
    ax.scatter(range(len(s)), s, s=12)
    ax.set_yscale("log", base=2); ax.set_yticks([2, 4, 8, 16, 32], ["1/2", "1/4", "1/8", "1/16", "1/32"])
    ax.set_xlabel("convolution, in execution order"); ax.set_title(name, fontsize=10)
axes[0].set_ylabel("resolution of the output")
axes[0].invert_yaxis()  # once: the y axis is shared, high resolution on top
fig.tight_layout()

# %%
cpu_rows = []
for name, model in [("SimpleBaseline SMALL", small_base), ("HRNet W8", small_hr)]:
    cpu_rows.append((name, count_parameters(model), count_macs(model, INPUT), min(conv_strides(model)[2:])))
    print(f"{name:22} {cpu_rows[-1][1]:9,d} params {cpu_rows[-1][2] / 1e6:8.1f} M MACs   "
          f"output {tuple(model(torch.zeros(1, 3, *INPUT)).shape)}")

# %% tags=["nbval-ignore-output"]
x = torch.randn(8, 3, *INPUT)
for name, model in [("SimpleBaseline SMALL", small_base), ("HRNet W8", small_hr)]:
    with torch.inference_mode():
        model(x)
        t = time.perf_counter(); model(x); dt = time.perf_counter() - t
    print(f"{name:22} CPU forward, batch 8: {dt * 1000:.0f} ms")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Trained side by side at equal multiply-adds (measured here) (deeper)
#
# The AP numbers above are the papers'. Here the two designs are trained the same way on SynthPose:
# the CPU recipe's HRNet (`W16_1UNIT`, 83.0 M multiply-adds at 128×96) against a SimpleBaseline cut
# to the same 83.1 M (ResNet units 1-1-1-1 of widths 24–192, three deconvolutions of width 96,
# `evidence.EQUAL_MACS_BASELINE`), each for one epoch of the 37,476 persons of `make data` on this
# project's 2-core CPU (2026-12-02), three seeds for HRNet and two for the SimpleBaseline (`benchmarks/study_paper_evidence.py`; configs
# and logs in `benchmarks/results/paper_evidence/`).

# %%
from hrnet_edu import evidence

study = evidence.load_runs()
pair = {"hrnet": "HRNet W16_1UNIT", "simplebaseline": "SimpleBaseline, equal MACs"}
ap = evidence.summarize(study, pair)
minutes = evidence.summarize(study, pair, key="train_minutes")
loss = evidence.summarize(study, pair, key="loss")  # the epoch's mean training loss
print(f"{'model':27} {'params':>9} {'MACs (M)':>9} {'AP (mean)':>9} {'per seed':>13} {'loss':>8} {'train min':>9}")
for name, label in pair.items():
    row = next(r for r in study if r["run"] == name)
    print(f"{label:27} {row['parameters']:9,d} {row['macs'] / 1e6:9.1f} {ap[name]['mean']:9.3f} "
          f"{', '.join(f'{v:.3f}' for v in ap[name]['values']):>13} {loss[name]['mean']:8.2e} "
          f"{minutes[name]['mean']:9.1f}")

fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
for name, label in pair.items():
    steps, losses = evidence.loss_curve(name, seed=0)
    ax.plot(steps, losses, label=label)
ax.set(xlabel="training step (batch 32)", ylabel="training loss (MSE)", yscale="log", title="Seed 0, one epoch")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# At equal multiply-adds and equal training (the same 37,476 crops, batch 32, the same schedule),
# the high-resolution design scores AP 0.375 against 0.277 for the high-to-low baseline, ahead in
# every seed; the gap (0.098) is 2.8 times the largest spread between seeds (0.035), and HRNet also
# ends the epoch at the lower training loss. The training minutes in the table were logged on a
# machine shared with other jobs, so they are not a speed comparison; what the two runs share is the
# multiply-adds and the samples seen.
#
# **Why the loss curves look alike while AP differs.** The MSE averages over every pixel of every
# heatmap, and almost all of them are background that both networks predict near 0; the loss ends
# only 3 % apart (3.50e-3 against 3.62e-3). AP is decided by a few pixels per joint — where the peak
# is, within a pixel or two of a 32×24 map, and how sharp — and that is what the high-resolution
# branch buys. Loss is a training signal, not a localisation metric: compare networks by AP.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Loading the reference implementation's checkpoints (deeper)
#
# Our module names *are* the reference's state-dict keys, so a published checkpoint such as
# `pose_hrnet_w32_256x192.pth` loads with no renaming: `checkpoints.load_reference_weights(model,
# path)` reads it with `torch.load(..., weights_only=True)` (no pickled code is executed), accepts a
# plain state dict, our training checkpoints (`{"model": …}`) and DataParallel's `module.` prefix,
# and loads strictly. Without the real file at hand, we round-trip a state dict saved in the same
# format:

# %%
keys = list(w32.state_dict())  # the key names of HRNet-W32 (shapes only: w32 lives on "meta")
fuse = [k for k in keys if "fuse_layers" in k]
print(f"{len(keys)} entries, among them (first 3, first 3 of an exchange unit, last 3):")
print(columns(keys[:3] + fuse[:3] + keys[-3:], width=100))

# The round trip on the small W8 (a 114 MB W32 file would take a while to write on a busy machine).
source = build_model(W8)
with torch.no_grad():
    for t in source.state_dict().values():
        if t.is_floating_point():
            t.normal_()  # "trained" weights, far from the initialisation
state = source.state_dict()
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "pose_hrnet_w8_256x192.pth"
    torch.save(state, path)
    model = load_reference_weights(build_model(W8), path)
assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
print("loaded strictly:", len(model.state_dict()), "entries equal")

# %% [markdown]
# A checkpoint for another architecture is refused with the list of offending keys and shapes:

# %%
try:
    load_reference_weights(build_model(W8), HRNet(dataclasses.replace(W8, width=12)).state_dict())
except ValueError as err:
    print("\n".join(str(err).splitlines()[:8]))


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · Interactive: width and stages
#
# Pick a width C and a number of stages to see the size and cost of the resulting network.

# %%
def describe(width=8, stages=4):
    cfg = dataclasses.replace(W32, width=width, num_stages=stages)
    model = HRNet(cfg).to("meta")
    m = count_macs(model, INPUT)
    print(f"HRNet-W{width}, {stages} stages: {count_parameters(model):,d} parameters, "
          f"{m / 1e9:.2f} G multiply-adds = {paper_gflops(m):.2f} paper GFLOPs at 256×192")


describe(8, 4)  # the widget's default, printed once so it is readable without a kernel

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
widgets.interact(describe, width=widgets.Dropdown(options=[8, 16, 32, 48, 64], value=8),
                 stages=widgets.IntSlider(min=1, max=4, value=4));

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - HRNet = stem (÷4) → stage 1 (bottlenecks, one branch) → stages 2–4, each opened by a
#   **transition** that adds a branch, built of HR modules (multi-resolution block + exchange unit) →
#   a 1×1 **head** on branch 0.
# - HRNet-W32: 28.5 M parameters, 7.1 "GFLOPs" = multiply-adds / 1024³ at 256×192 — counted here and
#   equal to the paper's numbers.
# - Parameters grow with C², so W48 ≈ W32 × (48/32)² (plus a fixed stem).
# - SimpleBaseline goes high → low → high; HRNet keeps a high-resolution branch throughout. At equal
#   multiply-adds HRNet was clearly ahead in AP here, with nearly the same training loss (section 3,
#   deeper).

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Parameters as a function of C.** Show that apart from the stem, stage 1 and the transition
#    from 256 channels, the parameter count is quadratic in C. Predict W48 from W32 with that rule
#    and compare with 63,595,745.
# 2. **A fair baseline.** Find a SimpleBaseline configuration (`BaselineConfig`: units, widths,
#    deconv width) with the same multiply-adds as HRNet-W8 and train both on SynthPose with the
#    CPU training config (notebook 07). Which is more accurate at the same cost?
# 3. **Drop the exchange.** Build an HRNet whose exchange units keep only the identity terms (for
#    example by zeroing and freezing the other transforms). How many parameters and multiply-adds
#    does the fusion cost, as a fraction of the whole network?

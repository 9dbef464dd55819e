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
# # A3 · From a notebook to a deployed model: ONNX
#
# **Time:** about 15 min of reading (the exercises extra; their solutions say what each costs) · **Needs:** notebook 08 · course map and glossary: README, `docs/glossary.md`.
#
# *Appendix: the engineering track.* Everything in the core path ran the network as a PyTorch module
# inside Python. A deployed model usually runs somewhere else — a service, an app, a browser — and
# there the exchange format is ONNX, with ONNX Runtime as a fast engine on CPUs. This appendix exports
# the committed CPU checkpoint, checks that the exported graph computes the same heatmaps and the
# same COCO AP, and measures what it buys.
#
# **What you will learn**
# - why BatchNorm can be *folded* into the convolution before it at test time, derived and checked;
# - how `hrnet_edu.export` writes an ONNX file only after ONNX Runtime agrees with PyTorch on real crops;
# - that the whole evaluation of notebook 08 runs unchanged through ONNX Runtime, to the same AP;
# - how a file says which weights it holds, so that a stale export is refused.
#
# The library code lives in `hrnet_edu/export.py` (`hrnet-edu export` on the command line).

# %%
# %matplotlib inline
import copy
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from hrnet_edu import evaluate, export
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.errors import InputError
from hrnet_edu.notebook_utils import show_source

# %%
torch.manual_seed(0)
torch.set_num_threads(1)  # eager PyTorch and ONNX Runtime (which takes torch's thread count) on one core each
CHECKPOINT = "../data_samples/checkpoints/synthpose_w16_128x96_cpu.pt"  # trained on CPU, committed
model, cfg = load_checkpoint(CHECKPOINT)
val = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec, spec=cfg.spec,
                    train=False, augment=None)
crops = torch.stack([val[i]["image"] for i in range(32)])  # (32, 3, 128, 96): real validation crops
print(f"{cfg.name}: {sum(p.numel() for p in model.parameters()):,} parameters; {len(val)} validation persons")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · Folding BatchNorm
#
# In evaluation BatchNorm is a fixed affine map per channel, with the running mean μ and variance σ²
# collected during training:
#
# $$y = \gamma \, \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta .$$
#
# Its input is a convolution's output x = W ∗ z + b, so with $s = \gamma/\sqrt{\sigma^2+\epsilon}$ one
# convolution with weights $W' = sW$ and bias $b' = s(b - \mu) + \beta$ computes the same thing with
# one layer less — and one pass over the feature map less:

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(export.fold_conv_bn)


# %%
def batch_norms(net):
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


folded = export.fold_batchnorm(model)
with torch.inference_mode():
    fold_diff = float((folded(crops) - model(crops)).abs().max())
print(f"BatchNorm layers: {batch_norms(model)} before folding, {batch_norms(folded)} after; "
      f"max |Δ heatmap| below 1e-5: {fold_diff < 1e-5}")
assert batch_norms(folded) == 0 and fold_diff < 1e-5

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Export, checked before it is written
#
# `export.export_onnx` takes three steps: fold every BatchNorm, export the graph
# (`torch.onnx.export`, with the batch axis left dynamic so that any batch size runs), and compare ONNX
# Runtime with eager PyTorch on real crops — the file is written only if every heatmap value agrees to
# 1e-4. It also stores a fingerprint of the weights (a SHA-256 of the state dict) in the file's
# metadata.

# %%
onnx_path = os.path.join(tempfile.mkdtemp(), "synthpose_w16_128x96_cpu.onnx")
onnx_diff = export.export_onnx(model, onnx_path, crops[:8])  # raises (and writes nothing) above 1e-4
runner = export.OnnxRunner(onnx_path, cfg=cfg.model)
print(f"exported: {os.path.getsize(onnx_path) / 1e6:.1f} MB; ONNX Runtime vs PyTorch on 8 real crops, "
      f"max |Δ heatmap| below 1e-4: {onnx_diff <= 1e-4}")
with torch.inference_mode():
    odd_batch = float((runner(crops[:3]) - model(crops[:3])).abs().max())
print(f"a batch of 3 (traced with 2, checked on 8): max |Δ heatmap| below 1e-4: {odd_batch <= 1e-4}")

# %%
with torch.inference_mode():
    eager_maps, onnx_maps = model(crops[:1])[0], runner(crops[:1])[0]  # (K, 32, 24) each
joint = cfg.spec.names.index("left_wrist")
fig, axes = plt.subplots(1, 3, figsize=(8, 3.2))
for ax, maps, title in ((axes[0], eager_maps, "PyTorch"), (axes[1], onnx_maps, "ONNX Runtime")):
    shown = ax.imshow(maps[joint], cmap="magma", vmin=0, vmax=float(eager_maps[joint].max()))
    ax.set_title(f"{title}: left wrist", fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.046, label="heatmap value")
difference = (onnx_maps[joint] - eager_maps[joint]).abs() * 1e6
shown = axes[2].imshow(difference, cmap="viridis")
axes[2].set_title("|difference| (×10⁻⁶)", fontsize=9)
fig.colorbar(shown, ax=axes[2], fraction=0.046, label="×10⁻⁶")
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
plt.show()

# %% [markdown]
# The two heatmaps cannot be told apart; they differ by less than 10⁻⁶ (the colour bar on the right):
# the folded graph computes the same function with its sums in another order.

# %% [markdown]
# The fingerprint is what lets `hrnet-edu evaluate --runtime onnx --onnx FILE` refuse an ONNX file
# exported from *other* weights than the checkpoint it is asked to evaluate — a stale export would
# otherwise give a plausible, wrong AP:

# %%
print("fingerprint of the checkpoint's weights:", export.weights_fingerprint(model)[:16], "…")
other = copy.deepcopy(model)
with torch.no_grad():
    next(other.parameters()).add_(1e-3)  # "another checkpoint": one tensor changed a little
print("after changing one tensor:             ", export.weights_fingerprint(other)[:16], "…")
try:
    export.onnx_runner_for(other, cfg, onnx_path)
except InputError as error:  # one line, naming the file
    print(type(error).__name__ + ":", str(error).replace(os.path.dirname(onnx_path), "<tmp>"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The same AP through ONNX Runtime
#
# The runner stands in for the model: `evaluate.model_ap(runner, …)` runs notebook 08's whole chain
# — flip test, decoding, back-mapping, OKS-NMS, COCOeval — with ONNX Runtime computing the heatmaps:

# %%
stats, _ = evaluate.model_ap(model, val, flip=True, batch_size=32)
onnx_stats, _ = evaluate.model_ap(runner, val, flip=True, batch_size=32)
print(f"AP through PyTorch {stats.ap:.4f}, through ONNX Runtime {onnx_stats.ap:.4f}")
assert abs(onnx_stats.ap - stats.ap) < 1e-3

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · What it buys
#
# The AP is the PyTorch one to decoding precision. What ONNX Runtime buys is speed — measured live on
# the machine that runs this notebook (the numbers vary from run to run and machine to machine, so
# nbval does not compare them):

# %% tags=["nbval-ignore-output"]
def median_seconds(f, x, repeats=7):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


with torch.inference_mode():
    eager_s, onnx_s = median_seconds(model, crops), median_seconds(runner, crops)
print(f"batch of 32 crops, {torch.get_num_threads()} thread(s): PyTorch eager {eager_s * 1e3:.0f} ms, "
      f"ONNX Runtime {onnx_s * 1e3:.0f} ms -> {eager_s / onnx_s:.2f}x")

# %% [markdown]
# For the paper's HRNet-W32 at 256×192 the same comparison gave 1.33 s vs 0.85 s per batch of 8 —
# 1.55×, and 1.43× in another run (2 threads each, interleaved, this project's 2-core CPU shared with
# other work, 2026-12-02: `benchmarks/bench_onnx.py`, the README's Measured table). `hrnet-edu export --checkpoint X --out
# model.onnx` writes the file; any ONNX Runtime (Python, C++, JavaScript, mobile) can then run it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - At test time BatchNorm is an affine map per channel: fold it into the convolution before it
#   ($W' = sW$, $b' = s(b - \mu) + \beta$) — same output, one layer less.
# - Export with a dynamic batch axis, and check the exported graph against PyTorch on real inputs
#   *before* writing the file.
# - Store a fingerprint of the weights in the file, so that an export of other weights is refused
#   rather than evaluated.
# - The whole evaluation runs through ONNX Runtime to the same AP; what changes is the speed.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Fold by hand.** Take the stem's first convolution and BatchNorm of the model
#    (`model.conv1`, `model.bn1`), fold them with the two formulas of section 1 written yourself,
#    and compare your weights and bias with `export.fold_conv_bn`'s and the layer's output with the
#    unfolded pair's.
# 2. **A fixed batch.** Export the model with a fixed batch axis (`torch.onnx.export` without
#    `dynamic_shapes`) for a batch of 8. What happens when ONNX Runtime is given a batch of 3, and why
#    does `export_onnx` leave the batch axis dynamic?

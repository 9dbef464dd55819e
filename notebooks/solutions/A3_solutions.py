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
# # Solutions · A3 From a notebook to a deployed model: ONNX
#
# Worked solutions to the two exercises of appendix A3 (`../A3_deploying_with_onnx.ipynb`). Try each
# exercise first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that
# needs training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for
# CI (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only that it
# runs.

# %%
import logging
import os
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import torch

from hrnet_edu import export
from hrnet_edu.checkpoints import load_checkpoint

torch.manual_seed(0)
torch.set_num_threads(1)
model, cfg = load_checkpoint("../../data_samples/checkpoints/synthpose_w16_128x96_cpu.pt")
crops = export.sample_crops(cfg, 8)  # (8, 3, 128, 96): real validation crops
print(tuple(crops.shape))

# %% [markdown]
# ## Exercise 1 · Fold by hand — ★ · < 0.1 min
#
# With $s = \gamma/\sqrt{\sigma^2+\epsilon}$ per output channel: $W' = sW$ (each output channel's
# kernel scaled by its own $s$) and $b' = s(b - \mu) + \beta$, where the stem's convolution has no
# bias ($b = 0$).

# %%
conv, bn = model.conv1, model.bn1
s = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
w_mine = conv.weight.detach() * s.view(-1, 1, 1, 1)  # (C_out, C_in, 3, 3)
b_mine = s * (bias - bn.running_mean) + bn.bias.detach()

folded = export.fold_conv_bn(conv, bn)
w_lib, b_lib = folded.weight.detach(), folded.bias.detach()
x = crops[:2]
with torch.inference_mode():
    unfolded_out = bn.eval()(conv(x))
    mine_out = torch.nn.functional.conv2d(x, w_mine, b_mine, stride=conv.stride, padding=conv.padding)
print(f"weights: max |mine − library| = {float((w_mine - w_lib).abs().max()):.1e}; "
      f"bias: {float((b_mine - b_lib).abs().max()):.1e}; "
      f"output vs conv + BN: {float((mine_out - unfolded_out).abs().max()):.1e}")

# %%
assert torch.allclose(w_mine, w_lib, rtol=0, atol=1e-6)
assert torch.allclose(b_mine, b_lib, rtol=0, atol=1e-6)
assert torch.allclose(mine_out, unfolded_out, rtol=0, atol=1e-4)

# %% [markdown]
# ## Exercise 2 · A fixed batch — ★ · ≈ 0.2 min
#
# The same export as `export_onnx`, without `dynamic_shapes`: the graph is traced with a batch of 8,
# and 8 becomes part of it.

# %%
path = os.path.join(tempfile.mkdtemp(), "fixed_batch.onnx")
logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # the exporter's progress lines
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(export.fold_batchnorm(model), (crops,), path, input_names=["images"], output_names=["heatmaps"],
                      dynamo=True, external_data=False, verbose=False)
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
print("the graph's input shape:", session.get_inputs()[0].shape)
eight = session.run(None, {"images": crops.numpy()})[0]
print("a batch of 8:", eight.shape)
try:
    session.run(None, {"images": crops[:3].numpy()})
    refused = None
except Exception as error:  # onnxruntime's InvalidArgument
    refused = " ".join(str(error).split())
print("a batch of 3:", refused or "accepted")

# %% [markdown]
# ONNX Runtime refuses the batch of 3: the input's shape is fixed to [8, 3, 128, 96]. Evaluation
# rarely divides evenly into batches — notebook 08's 300 validation persons in batches of 32 end with
# a batch of 12 — and a deployed model sees whatever number of persons the detector found in an image;
# so `export_onnx` marks the batch axis dynamic (and checks it, tracing with 2 crops and comparing on 8).

# %%
with torch.inference_mode():
    assert np.abs(eight - model(crops).numpy()).max() < 1e-4
assert refused is not None and session.get_inputs()[0].shape[0] == 8

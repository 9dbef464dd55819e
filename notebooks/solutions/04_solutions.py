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
# # Solutions · 04 Multi-scale fusion
#
# Worked solutions to the three exercises of notebook 04 (`../04_multi_scale_fusion.ipynb`). Try each exercise
# first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that needs
# training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for CI
# (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only
# that it runs.
#
# Exercises 1 and 3 use the committed CPU checkpoint (`data_samples/checkpoints`, notebook 07) and
# the SynthPose validation split, as notebooks 08 and 09 do.

# %%
import copy
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrnet_edu import evaluate, features
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.flops import count_parameters
from hrnet_edu.fusion import ExchangeUnit
from hrnet_edu.model import W32

torch.manual_seed(0)
torch.set_num_threads(2)
REPO = next(p for p in Path.cwd().resolve().parents if (p / "pyproject.toml").exists())
CHECKPOINT = REPO / "data_samples/checkpoints/synthpose_w16_128x96_cpu.pt"
model, cfg = load_checkpoint(CHECKPOINT)  # (model in eval mode, its TrainConfig)
val = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec, spec=cfg.spec,
                    train=False, augment=None)
crops = torch.stack([val[i]["image"] for i in range(64)])  # (64, 3, 128, 96)
print(cfg.name, "|", len(val), "validation persons | crops", tuple(crops.shape))


# %% [markdown]
# ## Exercise 1 · Bilinear instead of nearest — ★★ · ≈ 0.1 min (up to 2 min on a busy machine)
#
# **Where to expect a change.** Only the upsampling terms a(X_i, k) with i > k use `nn.Upsample`.
# So in an exchange unit the *coarsest* output (k = R − 1, nothing above it) cannot change, and in
# every other output the change is a smoothing of the blocky upsampled terms: largest at the
# edges of the f×f blocks, where nearest-neighbour jumps. First on a fresh unit with random weights:

# %%
def to_bilinear(module):
    """A copy of `module` in which every nearest upsampling is bilinear (same keys, same weights)."""
    module = copy.deepcopy(module)
    for m in module.modules():
        if isinstance(m, nn.Upsample):
            m.mode, m.align_corners = "bilinear", False
    return module


widths = (4, 8, 16)
unit = ExchangeUnit(widths).eval()
with torch.no_grad():
    for m in unit.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.normal_(0, 0.3)
    xs = [torch.randn(1, c, 32 // 2**r, 24 // 2**r) for r, c in enumerate(widths)]
    nearest, bilinear = unit(xs), to_bilinear(unit)(xs)
change = [float((a - b).abs().max()) for a, b in zip(nearest, bilinear)]
print("largest change per output k:", [f"{c:.3f}" for c in change])
assert change[-1] == 0.0 and min(change[:-1]) > 0
assert to_bilinear(unit).state_dict().keys() == unit.state_dict().keys()  # a checkpoint still loads

# %% [markdown]
# Now the trained network: the same weights, bilinear everywhere, on the validation crops and the
# whole validation split (flip test, the checkpoint's own decoding: `model_ap` reads with the codec `val`
# was built with, `cfg.codec`).

# %%
smooth_model = to_bilinear(model).eval()
with torch.no_grad():
    h_nearest, h_bilinear = model(crops), smooth_model(crops)
peak = h_nearest.amax(dim=(-2, -1)).mean()
moved = (h_bilinear - h_nearest).abs()
print(f"heatmaps: mean |change| {moved.mean():.4f}, largest {moved.max():.3f} (mean peak value {peak:.3f})")
aps = {name: evaluate.model_ap(m, val)[0].ap for name, m in
       (("nearest (trained)", model), ("bilinear, same weights", smooth_model))}
for name, ap in aps.items():
    print(f"{name:24} AP {ap:.4f}")

# %% [markdown]
# The heatmaps move by a few percent of their peak, and AP drops a little: the weights were trained
# with nearest upsampling, and later layers learned to work with its blocks. Bilinear upsampling
# would have to be trained from the start to be judged fairly (the keys are the same, so it is a
# one-line change in `fusion.upsample_transform`).

# %%
assert 0 < moved.mean() < 0.1 * peak
assert aps["bilinear, same weights"] < aps["nearest (trained)"] + 0.01


# %% [markdown]
# ## Exercise 2 · Sum vs. concatenation — ★★ · < 0.1 min
#
# A concatenating unit takes the same R terms a(X_i, k) (each already C_k wide), stacks them to R·C_k
# channels and mixes them with a 1×1 convolution back to C_k (+ BN, then the ReLU). Extra cost per
# output k: R·C_k² weights (+ 2 C_k for BN) and R·C_k²·H_kW_k multiply-adds.

# %%
class ConcatExchangeUnit(nn.Module):
    """Y_k = ReLU(BN(W_k · [a(X_0, k), …, a(X_{R−1}, k)])): the exchange unit's terms, concatenated."""

    def __init__(self, widths):
        super().__init__()
        self.terms = ExchangeUnit(widths)
        self.mix = nn.ModuleList(nn.Sequential(nn.Conv2d(len(widths) * c, c, 1, bias=False), nn.BatchNorm2d(c))
                                 for c in widths)

    def forward(self, xs):
        return [torch.relu(mix(torch.cat(row, dim=1))) for mix, row in zip(self.mix, self.terms.contributions(xs))]


def cost(module, xs):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.eval()(xs)
    return count_parameters(module), counter.get_total_flops() // 2


w = W32.widths(4)
xs32 = [torch.zeros(1, c, 64 // 2**r, 48 // 2**r) for r, c in enumerate(w)]
(p_sum, m_sum), (p_cat, m_cat) = cost(ExchangeUnit(w), xs32), cost(ConcatExchangeUnit(w), xs32)
extra_p = sum(4 * c * c + 2 * c for c in w)
extra_m = sum(4 * c * c * (64 // 2**r) * (48 // 2**r) for r, c in enumerate(w))
print(f"summing unit:       {p_sum:10,d} parameters {m_sum / 1e6:8.1f} M multiply-adds")
print(f"concatenating unit: {p_cat:10,d} parameters {m_cat / 1e6:8.1f} M multiply-adds")
print(f"extra:              {p_cat - p_sum:10,d} (+{(p_cat - p_sum) / p_sum:.0%}) {(m_cat - m_sum) / 1e6:8.1f} M "
      f"(+{(m_cat - m_sum) / m_sum:.0%})")
assert p_cat - p_sum == extra_p and m_cat - m_sum == extra_m

# %% [markdown]
# The 1×1 mixing adds about half again to the unit's parameters (most of it in the widest, coarsest
# output) and a comparable share of its multiply-adds (every output costs the same 4·C_k²·H_kW_k,
# since C_k² grows as H_kW_k shrinks). A sum is a concatenation followed by a fixed 1×1 mix of
# identity blocks; the learned transforms a(·, k) already give each term its own weights, so the
# extra mixing buys little flexibility for its cost.

# %% [markdown]
# ## Exercise 3 · Who talks to whom after training — ★★ · < 0.1 min
#
# Capture every exchange unit's contributions on 64 validation crops, and print the shares of each
# input for **output 0** (the high-resolution branch) in stage order. The trained CPU checkpoint has
# one HR module per stage, so one unit per stage.

# %%
with torch.no_grad(), features.capture(model) as feats:
    model(crops)
units = sorted({n.rsplit(".exchange", 1)[0] for n in feats if ".exchange" in n},
               key=lambda n: (int(n[5]), int(n.split("module")[1])))
shares = {u: features.contribution_shares(features.exchange_contributions(feats, u)) for u in units}
coarse = {}
for unit_name in units:
    row = shares[unit_name][0].numpy()
    coarse[unit_name] = 1 - row[0]
    print(f"{unit_name:16} output 0: " + "  ".join(f"from {i}: {v:.2f}" for i, v in enumerate(row))
          + f"   coarse inputs together: {coarse[unit_name]:.2f}")

# %% [markdown]
# The high-resolution output takes a **larger share from the coarse inputs in the later stages**:
# about 0.6 in stage 2 and about 0.86 in stages 3 and 4, where branch 0's own signal is only a
# seventh of the sum. Even in stage 2 the single coarse branch outweighs the identity — the exchange
# is used from the start — and the more context branches there are, the more the fine output takes
# from them: they carry what the precise but near-sighted branch 0 cannot see (notebook 03's
# receptive fields). A share is a ratio of norms, not of importance for the prediction: notebook
# 09's exercise 2 silences a branch to measure what it is worth. Notebook 09 section 4 draws the
# same shares for all outputs.

# %%
stage_order = [coarse[u] for u in units]
assert stage_order[-1] > stage_order[0] + 0.1 and stage_order[0] > 0.5

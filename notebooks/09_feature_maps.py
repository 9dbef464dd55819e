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
# # 09 · Reading the network: feature maps, exchange units, heatmaps stage by stage
#
# **Time:** about 40 min of reading on the core path, 45 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebooks 04, 05 and 08 · course map and glossary: README, `docs/glossary.md`.
#
# HRNet keeps a high-resolution branch alive from the stem to the head and lets the branches talk
# through **exchange units** (repeated multi-scale fusion). This notebook opens a trained network
# and looks at what each part computes.
#
# **What you will learn**
# - how to capture any intermediate output *by name* with forward hooks, without editing the model
#   (`hrnet_edu.features.capture`), and the naming scheme (stage *s*, module *m*, branch *r*);
# - what every branch looks like at every stage: branch 0 keeps 1/4 of the input resolution from
#   stage 2 to stage 4, the low-resolution branches carry coarser maps;
# - how much each input branch contributes to each fused output of an exchange unit — as a table
#   and as a picture — and that the unit's output is exactly $Y_k = \mathrm{ReLU}(\sum_i a(X_i, k))$;
# - how the heatmaps emerge stage by stage (an honest way to ask stage 2 for heatmaps: a linear probe);
# - how a trained and an untrained network differ inside.
#
# Notation: N batch, K = 17 joints, C width, H×W input; branch r = 0 is the highest resolution
# (1/4 of the input), branch r has width C·2^r at stride 4·2^r (the paper's r is ours + 1).

# %%
# %matplotlib inline
import json
import os
import time

import matplotlib
import numpy as np
import torch

from hrnet_edu import features, viz
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.data.transforms import denormalize
from hrnet_edu.heatmaps import HeatmapCodec, decode_heatmaps
from hrnet_edu.model import HRNet
from hrnet_edu.notebook_utils import show_source

torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(2)
matplotlib.rcParams["figure.dpi"] = 100  # with titles of 8 pt and more: legible as stored

CHECKPOINT = "../data_samples/checkpoints/synthpose_w16_128x96_cpu.pt"  # committed, trained on CPU
W32_NAME = "hrnet_w32_coco_256x192"  # mmpose's published COCO HRNet-W32 (section 7)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The trained model and a few SynthPose validation crops
#
# The committed checkpoint is the CPU recipe `synthpose_w16_128x96_cpu` (HRNet with width C = 16, one
# module per stage and one residual unit per branch; input 128×96, heatmaps 32×24), trained for 15
# epochs on the 37,476 persons of 20,000 generated SynthPose images (notebook 07, section 7); the
# cell prints its configuration and its training record. We also build an **untrained** twin with
# the same configuration (seeded), to compare with at the end.

# %%
cfg = synthpose_w16_128x96_cpu()
if os.path.exists(CHECKPOINT):
    from hrnet_edu.checkpoints import load_checkpoint

    model, cfg = load_checkpoint(CHECKPOINT)  # (model in eval mode, its TrainConfig)
    trained = True
else:  # before the checkpoint exists the notebook still runs, on an untrained network
    torch.manual_seed(0)
    model = HRNet(cfg.model)
    trained = False
model = model.eval()
torch.manual_seed(0)
untrained = HRNet(cfg.model).eval()
print("trained checkpoint:", trained)
print("config:", cfg.model)
print("parameters:", sum(p.numel() for p in model.parameters()))
if trained:
    with open(CHECKPOINT.replace(".pt", ".json")) as f:
        record = json.load(f)
    print(f"trained: {record['epochs']} epochs on {record['data']['n_train_persons']:,} persons of "
          f"{record['data']['n_train_images']:,} images; val AP {record['val']['ap']:.3f}")


# %%
def load(split_ann, split_images):  # the bundled sample: its val split, and its train split for the probes
    # crops of the checkpoint's input size; the probes' targets: the reference's Gaussians of its σ
    # (centred on the nearest heatmap pixel; the checkpoint itself was trained on unbiased ones)
    codec = HeatmapCodec(cfg.input_size, cfg.heatmap_stride, cfg.sigma, target="reference")
    return CocoKeypoints(cfg.val_path(split_ann), cfg.val_path(split_images), codec=codec, spec=cfg.spec,
                         train=False, augment=None)


val = load(cfg.val_ann, cfg.val_images)
train = load(cfg.train_ann, cfg.train_images)
N_SHOW, N_PROBE_FIT, N_PROBE_TEST = 4, 32, 16
show = [val[i] for i in range(N_SHOW)]
images = torch.stack([s["image"] for s in show])  # (4, 3, 128, 96)
crops = np.stack([denormalize(s["image"]) for s in show])  # (4, 128, 96, 3) uint8
joints = torch.stack([s["joints"] for s in show])  # (4, K, 3) crop coords + visibility
print("images", tuple(images.shape), "| crops", crops.shape, "| val size", len(val), "| train size", len(train))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Capturing by name
#
# `features.capture(model)` registers forward hooks on the *unchanged* model and stores detached
# copies of what each part outputs during the forward passes inside the `with` block; the hooks are
# removed when the block ends (even on an exception). The names:

# %%
names = features.layer_names(model)
print(len(names), "names; the first module of stage 3:")
print("\n".join(n for n in names if n.startswith("stage3.module0")))

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(features.capture)

# %%
with torch.no_grad(), features.capture(model) as feats:
    heatmaps = model(images)

rows = [("stem", feats["stem"]), ("stage1", feats["stage1"])]
for s in (2, 3, 4):
    rows += [(f"stage{s}.branch{r}", t) for r, t in enumerate(feats[f"stage{s}"])]
rows.append(("heatmaps", feats["heatmaps"]))
H, W = cfg.input_size
print(f"{'name':18} {'width C':>7} {'H×W':>7} {'stride':>6}")
for name, t in rows:
    print(f"{name:18} {t.shape[1]:7d} {f'{t.shape[2]}×{t.shape[3]}':>7} {H // t.shape[2]:6d}")

# %% [markdown]
# The widths double and the resolutions halve from branch to branch, while branch 0 keeps 1/4 of the
# input at every stage — the defining property of HRNet. (Stage 4's last exchange unit returns
# branch 0 only: the head reads the high-resolution representation.)
#
# ## 3 · Every branch at every stage, side by side
#
# Row s shows the branches of stage s's last module after their residual units (just before its
# exchange unit — so stage 4 shows all four branches, although its last exchange keeps only branch 0).
# Each panel is the channel-mean activation of one branch, drawn at its **native** resolution (so
# the low-resolution branches look blocky), beside the input crop they all come from (top right);
# the second figure shows the three principal components of each branch's channels as RGB (one PCA
# per map). Each panel has its own colour scale, from its minimum to its maximum, read off its own
# colour bar (channel-mean activation, in the branch's units): compare where the branches respond by
# the pictures, and how strongly by the numbers on the bars — equal brightness in two panels does not
# mean equal activation.

# %%
viz.stage_overview(feats, index=0, reduce="mean", input_size=cfg.input_size, image=crops[0])

# %% [markdown]
# **How to read the PCA colours.** For each map, every pixel's C-vector (one number per channel) is
# projected on the map's three directions of largest variance; the first is drawn as red, the second
# green, the third blue, each stretched to [0, 1] over the map (`features.pca_rgb`). Two pixels of
# the **same colour** have similar feature vectors — the network sees them as the same kind of place
# — and a sharp colour change is a boundary in feature space. The hues themselves mean nothing (a
# component's sign is arbitrary; the library fixes it only so the picture is reproducible), and the
# colours of two different panels are not comparable: each panel has its own basis. The key on the
# right says so: one bar per component, black to pure red, green or blue, running from that panel's
# minimum to its maximum (there are no shared values to print on it).

# %%
viz.stage_overview(feats, index=0, reduce="pca", input_size=cfg.input_size, image=crops[0])

# %% [markdown]
# Single channels: the 16 most active of stage 4's branch 0 (sample 0), most active first, all on
# **one** colour scale (the single bar), so that a dimmer panel is a less active channel. Most are a
# compact blob in one place of the figure.

# %%
i_top, score = features.top_channels(feats["stage4"][0][0], k=8)
print("most active channels of stage 4, branch 0 (sample 0):", i_top.tolist())
print("their mean |activation|:", [f"{v:.3g}" for v in score.tolist()])
viz.feature_grid(feats["stage4"][0][0], "stage4.branch0", input_size=cfg.input_size, k=16, image=crops[0])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · What each exchange unit mixes
#
# An exchange unit computes, for output k, $Y_k = \mathrm{ReLU}\big(\sum_i a(X_i, k)\big)$ with
# $a(X_k, k) = X_k$, $a(X_i, k)$ a strided 3×3 convolution chain for i < k (down-sampling) and a
# 1×1 convolution + nearest up-sampling for i > k. The capture stores each term $a(X_i, k)$ under
# `…exchange.out{k}.from{i}`, computed by the unit's own `contributions` method. First a check: the
# fused outputs are exactly ReLU of the sum of the captured contributions.

# %%
units = sorted({n.rsplit(".exchange", 1)[0] for n in feats if ".exchange" in n},
               key=lambda n: (int(n[5]), int(n.split("module")[1])))
for unit in units:
    contributions = features.exchange_contributions(feats, unit)
    for k, row in enumerate(contributions):
        torch.testing.assert_close(feats[f"{unit}.exchange.out{k}"], torch.relu(sum(row)), atol=1e-5, rtol=1e-5)
print(f"checked {len(units)} exchange units: Y_k = ReLU(Σ_i a(X_i, k)) holds for every output")

# %% [markdown]
# The **share** of input i in output k is the norm ratio $\|a(X_i, k)\| / \sum_{i'} \|a(X_{i'}, k)\|$
# (over the 4 crops); each row sums to one. The diagonal is the branch's own signal (identity).

# %%
shares = {u: features.contribution_shares(features.exchange_contributions(feats, u)) for u in units}
print(f"{'exchange unit':16} {'out':>3}  shares of inputs 0..r (rows sum to 1)")
for unit, s in shares.items():
    for k, row in enumerate(s.numpy()):
        print(f"{unit:16} {k:3d}  " + "  ".join(f"{v:.2f}" for v in row))

# %%
viz.shares_figure(shares)

# %% [markdown]
# The terms themselves, for stage 3's last exchange unit: each panel is the per-pixel RMS over
# channels of one term $a(X_i, k)$ (sample 0). The terms of one output are added, so each row has one
# colour scale, from 0 to the row's largest value, shown by the row's colour bar; the rows' scales
# differ.

# %%
last3 = [u for u in units if u.startswith("stage3")][-1]
viz.contribution_figure(features.exchange_contributions(feats, last3), last3, index=0, image=crops[0])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · How the heatmaps emerge, stage by stage
#
# The trained network has a single head, a 1×1 convolution on stage 4's branch 0. Stages 2 and 3 have
# no heatmap head of their own. Two ways to ask them anyway:
#
# 1. **Borrow the final head.** Branch 0 has the same width C at every stage, so the 1×1 head *can*
#    be applied to stage 2's and stage 3's branch 0. But the head was fitted to stage-4 features:
#    the channels of stage 2 do not mean what the head expects, so a poor result says little.
# 2. **A linear probe per stage** (the honest version): fit a fresh 1×1 convolution C → K by ridge
#    regression on the features of a few training crops (`features.fit_linear_probe`, closed form,
#    deterministic) and test it on held-out validation crops. It measures how much of the heatmap
#    can be read *linearly* from each stage's high-resolution features.
#
# Measured on held-out validation crops: the probe's **R²** (the fraction of the target heatmaps'
# variance it explains — smooth, and 0 for a constant answer), and the **error** in input pixels
# between decoded and true joints (labelled joints). The yardstick below the table answers every
# crop with the mean pose of the fitting crops, without looking at the image.

# %%
PROBE_LAYERS = ("stem", "stage1", "stage2", "stage3", "stage4")


def high_res(store, name):  # branch 0 of a stage output (or the stem / stage-1 tensor): (N, C, H/4, W/4)
    t = store[name]
    return t[0] if isinstance(t, list) else t


def batch(dataset, start, n):
    items = [dataset[i] for i in range(start, start + n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight", "joints")}


fit_batch = batch(train, 0, N_PROBE_FIT)
test_batch = batch(val, N_SHOW, N_PROBE_TEST)  # held out: not the crops shown above
print("fit on", tuple(fit_batch["image"].shape), "training crops, tested on", tuple(test_batch["image"].shape))


# %% [markdown]
# The two measures, over the labelled joints of the held-out crops: R² of the heatmaps, and the
# distance between decoded and true joints in input pixels.

# %%
def pixel_error(pred_heatmaps, joints):  # mean distance in input pixels over labelled joints
    coords, _ = decode_heatmaps(pred_heatmaps, method="shift")
    stride = cfg.input_size[0] / pred_heatmaps.shape[2]  # x_in = 4 · x_hm
    vis = joints[..., 2] > 0
    return (coords * stride - joints[..., :2]).norm(dim=-1)[vis].mean().item()


def explained(pred, target, weight):  # R² = 1 − SSE / SST over labelled joints' heatmaps
    w = weight[..., None, None]
    sse = (w * (pred - target) ** 2).sum()
    sst = (w * (target - target.mean(dim=(0, 2, 3), keepdim=True)) ** 2).sum()
    return (1 - sse / sst).item()


# %% [markdown]
# For every layer: capture branch 0 on the fitting and the test crops, fit a probe, measure it —
# and, where the width allows it, measure the trained head borrowed from stage 4 as well.

# %%
def probe_table(net):
    with torch.no_grad(), features.capture(net, [*PROBE_LAYERS, "heatmaps"]) as fit_store:
        net(fit_batch["image"])
    with torch.no_grad(), features.capture(net, [*PROBE_LAYERS, "heatmaps"]) as test_store:
        net(test_batch["image"])
    t, tw, tj = test_batch["target"], test_batch["target_weight"], test_batch["joints"]
    rows, probed = [], {}
    for name in PROBE_LAYERS:
        probe = features.fit_linear_probe(high_res(fit_store, name), fit_batch["target"],
                                          fit_batch["target_weight"], ridge=1e-2)
        x = high_res(test_store, name)
        with torch.no_grad():
            probed[name] = pred = probe(x)
            # the trained head reads C channels: the stem and stage 1 have other widths
            head = net.final_layer(x) if x.shape[1] == net.final_layer.in_channels else None
        rows.append((name, x.shape[1], explained(pred, t, tw), pixel_error(pred, tj),
                     None if head is None else pixel_error(head, tj)))
    return rows, probed


# %%
# A yardstick: always answer each joint's mean position over the fitting crops (no image used).
fit_j = fit_batch["joints"]
mean_pose = (fit_j[..., :2] * (fit_j[..., 2:] > 0)).sum(0) / (fit_j[..., 2:] > 0).sum(0).clamp_min(1)  # (K, 2)
vis = test_batch["joints"][..., 2] > 0
mean_pose_error = (mean_pose - test_batch["joints"][..., :2]).norm(dim=-1)[vis].mean().item()

t0 = time.perf_counter()
rows_trained, probed = probe_table(model)
elapsed = time.perf_counter() - t0
print(f"{'features':8} {'C':>4} {'probe R²':>9} {'probe error px':>15} {'final head error px':>20}")
for name, c, r2, err, head_err in rows_trained:
    head_text = "(width differs)" if head_err is None else f"{head_err:.1f}"
    print(f"{name:8} {c:4d} {r2:z9.2f} {err:15.1f} {head_text:>20}")
print(f"mean pose (no image): {mean_pose_error:.1f} px")

# %%
r2 = {name: r2 for name, _, r2, _, _ in rows_trained}
err = [e for _, _, _, e, _ in rows_trained]
print("probe R² grows from stage 2 to stage 3 to stage 4:", r2["stage2"] < r2["stage3"] < r2["stage4"])
print("probe error falls at every layer, stem to stage 4:", all(a > b for a, b in zip(err, err[1:])))
print("layers whose probe is closer than the mean pose:", [n for n, _, _, e, _ in rows_trained if e < mean_pose_error])
print("stage 4's probe is within 1 px of the trained head (or better):",
      rows_trained[-1][3] <= rows_trained[-1][4] + 1.0)

# %% [markdown]
# What to read in the table (each statement is one of the printed checks above): a linear read-out
# of the high-resolution branch becomes more accurate at every layer, from the stem to stage 4 — R²
# and the pixel error both improve. Up to stage 2 the probe is no better than the mean pose, which
# ignores the image; stages 3 and 4 get below it, stage 4 far below. The exchange units are where
# branch 0 receives what the low-resolution branches computed — in section 4 most of its fused
# output came from the other branches — which is consistent with, though by itself not proof of,
# the gain from stage to stage. On stage 4 the fitted probe is about as good as the trained head
# (it has the same form: a 1×1 convolution). The borrowed head, on the other hand, is worse than
# the mean pose on stages 2 and 3: the channels it weighs only acquire their meaning at stage 4.

# %% tags=["nbval-ignore-output"]
print(f"probing 5 layers on {N_PROBE_FIT} + {N_PROBE_TEST} crops took {elapsed:.1f} s")

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(11, 3.4), layout="constrained")
test_crop = denormalize(test_batch["image"][0])
axes = [fig.add_subplot(1, len(PROBE_LAYERS) + 1, k + 1, xticks=[], yticks=[]) for k in range(len(PROBE_LAYERS) + 1)]
axes[0].imshow(test_crop)
axes[0].set_title("input crop", fontsize=9)
for ax, label in zip(axes[1:], PROBE_LAYERS):
    im = viz.show_heatmap(ax, probed[label][0].amax(dim=0), test_crop)  # one scale, [0, 1]
    ax.set_title(f"probe on {label}", fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.8, label="probe heatmap (max over joints)")
fig.suptitle("linear-probe heatmaps on a held-out crop, from the stem to stage 4", fontsize=10)
fig


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Trained versus untrained (deeper)
#
# The same architecture with random weights (seeded, the reference's initialisation: convolution
# weights N(0, 0.001²), BatchNorm γ = 1, β = 0, running mean 0 and variance 1). In eval mode such a
# network passes almost nothing: every convolution scales its input by about 0.001·√(fan-in) ≪ 1 and
# BatchNorm, using its *running* statistics, does not undo it. To compare like with like we
# **calibrate** the untrained network's BatchNorm statistics on the probe-fitting crops (forward
# passes in train mode without gradients: no weight is learned), which turns it into a network of
# random — but well-scaled — features.

# %%
def calibrate_batchnorm(net, x):
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()


with torch.no_grad(), features.capture(untrained, "stage4") as before:
    untrained(images)
calibrate_batchnorm(untrained, fit_batch["image"])
with torch.no_grad(), features.capture(untrained) as feats_u:
    untrained(images)
print(f"stage-4 branch-0 RMS before calibration {before['stage4'][0].pow(2).mean().sqrt():.2e}, "
      f"after {feats_u['stage4'][0].pow(2).mean().sqrt():.2f}")
shares_u = {u: features.contribution_shares(features.exchange_contributions(feats_u, u)) for u in units}
print(f"{'exchange unit':16} {'own share (trained)':>20} {'own share (untrained)':>22}")
for u in units:
    own_t = shares[u].diagonal()[: len(shares[u])].mean().item()
    own_u = shares_u[u].diagonal()[: len(shares_u[u])].mean().item()
    print(f"{u:16} {own_t:20.2f} {own_u:22.2f}")

# %%
rows_untrained, _ = probe_table(untrained)
print(f"{'features':8} {'R² trained':>11} {'R² untrained':>13} {'px trained':>11} {'px untrained':>13}")
for (name, _, r2_t, err_t, _), (_, _, r2_u, err_u, _) in zip(rows_trained, rows_untrained):
    print(f"{name:8} {r2_t:z11.2f} {r2_u:z13.2f} {err_t:11.1f} {err_u:13.1f}")

# %% [markdown]
# Random but well-scaled features still *look* like the image (a random convolution responds to
# edges and colour blobs — see the PCA picture below), yet a linear probe reads almost no heatmap
# out of them at any stage (R² ≈ 0): what the trained branches carry is learnt, not an artefact of
# the architecture. The exchange units of the untrained network mix their inputs in proportions
# set only by the random weights; compare them with the trained shares in section 4.

# %%
viz.stage_overview(feats_u, index=0, reduce="pca", input_size=cfg.input_size, image=crops[0])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · On a real photograph (deeper)
#
# matplotlib's sample portrait of Grace Hopper (notebook 00 takes it through every step), cropped
# around the person by a hand-given box as `hrnet-edu predict --box` does. First through the
# **committed network, which has only seen SynthPose's drawn figures**: its branches still respond to
# the photo's edges and colour regions (a convolution does that whatever it learnt), but its heatmaps
# are weak and the figure it decodes is not Grace Hopper's pose (notebook 00, section 8, measures
# how far off it is). When mmpose's published COCO HRNet-W32 is in the cache
# (`hrnet-edu weights get hrnet_w32_coco_256x192`), the cell after it shows the
# same maps for a network trained on real photographs; offline it prints one line.

# %%
from matplotlib import cbook

from hrnet_edu.data.coco import load_image
from hrnet_edu.data.transforms import normalize, warp_image
from hrnet_edu.geometry import box_to_center_scale, crop_transform
from hrnet_edu.keypoints import COCO17
from hrnet_edu.weights import cached  # the catalogue of published checkpoints (no download)

photo = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), upright=True)  # (600, 512, 3)
BOX = np.array([20.0, 20.0, 492.0, 580.0])  # x, y, w, h around the person, by eye


def photo_features(net, input_size):  # the photo's crop through ``net``: (crop uint8, captured maps)
    h_in, w_in = input_size
    center, scale = box_to_center_scale(BOX, aspect_ratio=w_in / h_in)
    crop = warp_image(photo, crop_transform(center, scale, (w_in, h_in)), (w_in, h_in))  # (3, H, W) [0, 255]
    with torch.no_grad(), features.capture(net) as store:  # everything, as in section 3
        net(normalize(crop)[None])
    return crop.permute(1, 2, 0).round().clamp(0, 255).byte().numpy(), store


def show_photo(store, crop_u8, input_size, label):
    coords, conf = decode_heatmaps(store["heatmaps"], method="shift")
    print(f"{label}: heatmap peaks (confidences) median {conf.median():.2f}, max {conf.max():.2f}")
    display(viz.overlay_heatmaps(crop_u8, store["heatmaps"][0], joints=[0, 5, 6, 9, 10],
                                 keypoints=np.c_[coords[0].numpy() * 4, conf[0].numpy() > 0.2], spec=COCO17,
                                 title=f"{label}: heatmaps and the decoded pose (joints above 0.2)"))
    display(viz.stage_overview(store, index=0, reduce="pca", input_size=input_size, image=crop_u8))


photo_crop, photo_store = photo_features(model, cfg.input_size)
show_photo(photo_store, photo_crop, cfg.input_size, "the committed SynthPose network (never saw a photo)")

# %% tags=["nbval-ignore-output"]
w32_path = cached(W32_NAME)
if w32_path is None:
    print(f"{W32_NAME} is not in the cache (hrnet-edu weights get {W32_NAME}): W32 not shown")
else:
    w32, w32_cfg = load_checkpoint(w32_path)
    w32_crop, w32_store = photo_features(w32, w32_cfg.input_size)
    show_photo(w32_store, w32_crop, w32_cfg.input_size, "HRNet-W32 trained on COCO")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · Explore it yourself
#
# Pick an image, a stage, a module, a branch (or an exchange output) and a channel or a reduction;
# the map is shown at its native resolution next to the input crop and the predicted heatmaps, each
# with its colour bar: the map's runs from its own minimum to its maximum, the heatmaps' from 0 to
# their largest value on this crop.

# %%
# The browser's starting state, drawn once for readers without a live kernel:
viz.browser_figure(feats, crops, 0, f"stage4.module{len(model.stage4) - 1}.branch0", "mean", keypoints=joints,
                   spec=cfg.spec)

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
viz.feature_browser(model, images, crops, keypoints=joints, spec=cfg.spec)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - `features.capture` records what every stem, stage, branch and exchange term outputs, by name,
#   without changing the model.
# - Each exchange unit's output is exactly ReLU of the sum of its captured contributions; their
#   **shares** show how much each input branch contributes (a ratio of norms, not of importance).
# - A **linear probe** per stage shows the heatmaps emerging: weak up to stage 2, near the trained
#   head by stage 4.
# - A trained network's features differ visibly from an untrained twin's (section 6, deeper).

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Where does the context come from?** For the last exchange unit of stage 3, compare the share of
#    branch 2 in output 0 for crops where a limb is occluded by another figure and crops where it is
#    not. Does the low-resolution branch matter more when the joint is ambiguous?
# 2. **Ablate a branch.** Inside a forward hook on `stage4[0].fuse_layers` you can zero one input; how
#    much does the probe error of stage 4 grow when branch 3 is silenced? (Use `features.capture` to
#    check that the other contributions are unchanged.)
# 3. **Probe the low-resolution branches.** Fit `features.fit_linear_probe` on branch 1 of stage 4
#    (after up-sampling it ×2 with `torch.nn.functional.interpolate`). How does its error compare with
#    branch 0, and what does this say about keeping a high-resolution branch?

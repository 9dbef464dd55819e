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
# # 08 · Evaluation: from a checkpoint to COCO AP
#
# **Time:** about 40 min of reading on the core path, 60 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebooks 02 and 07 · course map and glossary: README, `docs/glossary.md`.
#
# A pose network is judged the way the paper judges it (§4.1): run it on every person box of the
# validation images, turn heatmaps into keypoints in *image* coordinates, score every pose, remove
# duplicates, and let `pycocotools` compute the COCO keypoint AP from the Object Keypoint Similarity
# (OKS, notebook 02). This notebook runs that whole chain on the committed CPU checkpoint and the
# SynthPose validation sample, then takes the result apart.
#
# **What you will learn**
# - the test pipeline, step by step: crop → heatmaps → **flip test** → decoding → inverse crop
#   transform → rescoring → **OKS-NMS** → COCOeval (`hrnet_edu.evaluate`);
# - why the flip test shifts the mirrored heatmaps by one column (derived, then measured on perfect
#   heatmaps), and how heatmap coordinates go back to the image;
# - what the flip test, its one-column shift, the quarter-pixel shift and DARK each add — measured,
#   and what a *perfect* network would score at this heatmap resolution and at coarser output strides
#   (beside two networks trained at stride 4 and 8);
# - why OKS-NMS is needed when boxes come from a detector;
# - **why** keypoints are wrong: the error taxonomy of Ronchi & Perona (ICCV 2017) — jitter,
#   inversion (left/right), swap (another person), miss (`hrnet_edu.analysis`);
# - the exact command for the paper's COCO numbers with the published weights.
#
# Exporting the network for deployment (ONNX, BatchNorm folding) is appendix A3
# (`A3_deploying_with_onnx.ipynb`).
#
# Notation: N person instances, K = 17 joints, input crop H×W = 128×96, heatmaps h×w = 32×24 (¼).

# %%
# %matplotlib inline
import json
import os
import time

import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hrnet_edu import analysis, evaluate, viz
from hrnet_edu.analysis import CATEGORIES
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.data.transforms import denormalize
from hrnet_edu.geometry import crop_transform, flip_points, transform_points
from hrnet_edu.heatmaps import encode_heatmaps, flip_back, flip_test_average, heatmaps_to_keypoints
from hrnet_edu.model import build_model
from hrnet_edu.notebook_utils import show_source
from hrnet_edu.predict import predict_image

# %%
torch.manual_seed(0)
rng = np.random.default_rng(0)
torch.set_num_threads(1)  # small batches: one thread is the fastest on a busy laptop CPU

CHECKPOINT = "../data_samples/checkpoints/synthpose_w16_128x96_cpu.pt"  # trained on CPU, committed

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The model and the validation set
#
# `checkpoints.load_checkpoint` reads one of our training checkpoints (weights **and** the
# configuration they were trained with) or, given a config, a plain state dict such as the reference's
# published `pose_hrnet_w32_256x192.pth`. A checkpoint that does not fit the architecture is refused
# with the list of missing / unexpected / mis-shaped keys. The configuration carries the checkpoint's
# `HeatmapCodec` (`cfg.codec`: how its targets were made and how its heatmaps are read, notebook 01)
# and its keypoint set (`cfg.spec`: the joints' names, flip pairs and OKS σ); the validation set is
# built with both.

# %%
if os.path.exists(CHECKPOINT):
    model, cfg = load_checkpoint(CHECKPOINT)
    with open(CHECKPOINT.replace(".pt", ".json")) as f:
        record = json.load(f)
    print("trained checkpoint:", cfg.name)
else:  # the structure of the notebook still works, the numbers are those of an untrained network
    cfg, record = synthpose_w16_128x96_cpu(), None
    model = build_model(cfg.model).eval()
    print("no trained checkpoint found: an UNTRAINED network (AP near 0)")
print(f"width C = {cfg.model.width}, input {cfg.input_size[0]}x{cfg.input_size[1]}, sigma {cfg.sigma}, "
      f"{sum(p.numel() for p in model.parameters()):,} parameters")
print(f"codec: {cfg.codec.describe()}; keypoints: {cfg.spec.name}")
spec = cfg.spec  # COCO-17 here

val = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec, spec=spec,
                    train=False, augment=None)
print(f"{len(val)} persons (ground-truth boxes) in {len(val.image_ids)} validation images; skipped: {val.num_skipped}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The pipeline on one person
#
# For every box the dataset cuts out a crop of 128×96 (the box grown to the 3:4 aspect ratio and
# padded by 1.25). The network predicts one heatmap per joint. The **flip test** runs the mirrored
# crop too, mirrors its heatmaps back (swapping left and right channels) and averages. The peak is
# decoded — here with the reference's rule, argmax + a quarter pixel toward the higher neighbour
# ("shift"; this checkpoint's own codec decodes with DARK, compared in section 4) — and mapped back
# to the image with the *inverse* crop transform. Below: the left wrist of the largest person.

# %%
samples = [val[i] for i in range(len(val))]  # decoded once, reused below
crops = torch.stack([s["image"] for s in samples])  # (N, 3, 128, 96)
center = np.stack([s["center"].numpy() for s in samples])  # (N, 2) image px
scale = np.stack([s["scale"].numpy() for s in samples])  # (N, 2) units of 200 px
with torch.inference_mode():  # the two forward passes every flip-test variant below shares
    H = torch.cat([model(crops[i:i + 32]) for i in range(0, len(crops), 32)])  # (N, K, 32, 24)
    H_mirror = torch.cat([model(crops[i:i + 32].flip(-1)) for i in range(0, len(crops), 32)])
print("crops", tuple(crops.shape), "-> heatmaps", tuple(H.shape))

# %%
i0, k0 = int(np.argmax([s["area"] for s in samples])), spec.names.index("left_wrist")
image0 = load_image(val.image_path(i0))
crop0 = denormalize(crops[i0])
averaged = flip_test_average(H[i0:i0 + 1], H_mirror[i0:i0 + 1], spec.flip_index)  # (1, K, h, w)
kp0, conf0 = heatmaps_to_keypoints(averaged, center[i0:i0 + 1], scale[i0:i0 + 1], decode="shift")

fig = Figure(figsize=(15, 3.6), layout="constrained")
axes = fig.subplots(1, 6)
side = scale[i0] * 200  # the crop's extent in image px
axes[0].imshow(image0)
axes[0].add_patch(Rectangle(center[i0] - side / 2, *side, fill=False, color="yellow", linestyle="--"))
axes[0].set_title("image + crop region")
axes[1].imshow(crop0)
viz.draw_pose(axes[1], samples[i0]["joints"][:, :2].numpy(), samples[i0]["joints"][:, 2].numpy(), spec=spec)
axes[1].set_title("crop + ground truth")
for ax, hm, title in ((axes[2], H[i0, k0], "H(x)"), (axes[3], flip_back(H_mirror[i0:i0 + 1], spec.flip_index)[0, k0],
                      "flip_back(H(mirror x))"), (axes[4], averaged[0, k0], "average")):
    viz.show_heatmap(ax, hm, crop0)
    ax.set_title(f"{title}\n{spec.names[k0]}")
axes[5].imshow(image0)
viz.draw_pose(axes[5], kp0[0], conf0[0] > 0.2, spec=spec)
axes[5].set_title("keypoints in the image")
for ax in axes:
    ax.set_xticks([]); ax.set_yticks([])
display(fig)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Why `flip_back` shifts one column
#
# `flip_back` mirrors the heatmaps of the mirrored crop, swaps the left and right channels
# (`spec.flip_index`, the keypoint set's) and **shifts them one column to the right** before they
# are averaged. Why the shift? Follow one joint at input x, in a crop W_in = 96 pixels wide with
# w = 24 heatmap columns:
#
# * mirroring the input maps x → W_in − 1 − x; the network, trained with x_hm = x_in / 4, puts the
#   peak at (W_in − 1 − x) / 4 = w − ¼ − x/4;
# * mirroring the heatmap back maps x_hm → w − 1 − x_hm, giving x/4 − ¾: **¾ px too far left**.
#
# The one-column shift turns −¾ into +¼; averaged with the unflipped heatmap the bias is about
# +⅛ px (½ input px) instead of −⅜ px. (A user's ablation of the reference's HRNet-W32 at 256×192
# on COCO val2017 with ground-truth boxes — issue #22 of `leoxiaobin/deep-high-resolution-net.pytorch`,
# 2019: no shift AP 0.720, one column 0.740, two columns 0.674 — consistent with an ideal shift of ¾.) We measure
# it with perfect, unbiased "predictions": Gaussians on known sub-pixel points, for 500 random poses
# and for their mirror images.

# %%
from hrnet_edu.heatmaps import decode_heatmaps

flip_rng = np.random.default_rng(0)  # its own generator: the draws below do not move
in_h, in_w = cfg.input_size
kp_in = np.stack([flip_rng.uniform(24, in_w - 24, (500, 17)), flip_rng.uniform(24, in_h - 24, (500, 17))], -1)
kp_mirror = flip_points(kp_in, in_w)[:, list(spec.flip_index)]  # the mirrored crop's joints, channels swapped
vis, size = np.ones((500, 17)), (in_h // 4, in_w // 4)
perfect, _ = encode_heatmaps(kp_in / 4, vis, size, cfg.sigma, unbiased=True)  # "network" on the crop
perfect_mirror, _ = encode_heatmaps(kp_mirror / 4, vis, size, cfg.sigma, unbiased=True)  # on the mirror
truth = kp_in / 4
print(f"{'shift':>6} | {'flipped back: x bias':>21} {'averaged: x bias':>17} {'y bias':>7}  (heatmap px, DARK)")
bias = {}
for shift in (False, True):
    back, _ = decode_heatmaps(flip_back(perfect_mirror, spec.flip_index, shift=shift), "dark", cfg.sigma)
    avg, _ = decode_heatmaps(flip_test_average(perfect, perfect_mirror, spec.flip_index, shift=shift), "dark",
                             cfg.sigma)
    bias[shift] = [float(np.mean(v)) for v in (back[..., 0] - truth[..., 0], avg[..., 0] - truth[..., 0],
                                               avg[..., 1] - truth[..., 1])]
    print(f"{str(shift):>6} | {bias[shift][0]:z21.3f} {bias[shift][1]:z17.3f} {bias[shift][2]:z7.3f}")
assert abs(bias[False][0] + 0.75) < 0.01 and abs(bias[True][0] - 0.25) < 0.01  # −3/4 without shift, +1/4 with

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Check: the back-mapping written out by hand (deeper)
#
# The inverse crop transform is a scaling about the box centre: heatmap pixel x maps to
# $x_\text{img} = c_x + (x - w/2)\cdot 200\,s_x / w$ (and the same in y with the same factor, as the
# crop is isotropic). With the reference's decoding — argmax, then ¼ pixel toward the higher
# neighbour — this must equal the library for every joint.

# %%
hm = averaged[0].numpy()  # (K, h, w)
K, h, w = hm.shape
py, px = np.unravel_index(hm.reshape(K, -1).argmax(1), (h, w))
x, y = px.astype(float), py.astype(float)
inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
kk = np.arange(K)
x += inside * 0.25 * np.sign(hm[kk, py, np.minimum(px + 1, w - 1)] - hm[kk, py, np.maximum(px - 1, 0)])
y += inside * 0.25 * np.sign(hm[kk, np.minimum(py + 1, h - 1), px] - hm[kk, np.maximum(py - 1, 0), px])
pixel = 200 * scale[i0, 0] / w  # image px per heatmap px
by_hand = np.stack([center[i0, 0] + (x - w / 2) * pixel, center[i0, 1] + (y - h / 2) * pixel], axis=1)
np.testing.assert_allclose(by_hand, kp0[0], atol=1e-4)  # float32 centre and scale
print(f"one heatmap pixel = {pixel:.2f} image pixels here; by-hand keypoints == library: True")

# %% [markdown]
# The same way back, checked on the ground truth: the annotated joints go to heatmap coordinates
# (the crop transform with the **heatmap size** as output size, so the ×4 is inside the matrix),
# become unbiased targets, are decoded by DARK and mapped back with `heatmap_to_image`. A common
# mistake is to plot raw heatmap coordinates, or 4 × them, on the image: they are in the crop's
# frame, not the image's.

# %%
from hrnet_edu.heatmaps import heatmap_to_image

ann0 = np.asarray(val.coco.anns[int(samples[i0]["ann_id"])]["keypoints"], float).reshape(-1, 3)  # (K, 3) image px
kp_hm = transform_points(ann0[:, :2], crop_transform(center[i0], scale[i0], output_size=(w, h)))  # image → heatmap
inner = (ann0[:, 2] > 0) & np.all((kp_hm >= 3) & (kp_hm <= [w - 4, h - 4]), axis=1)  # labelled, off the border
target0, _ = encode_heatmaps(kp_hm[None], inner[None].astype(float), (h, w), cfg.sigma, unbiased=True)
decoded0, _ = decode_heatmaps(target0, "dark", cfg.sigma)
back0 = heatmap_to_image(decoded0, center[i0:i0 + 1], scale[i0:i0 + 1], (h, w))[0]  # (K, 2) image px
err, naive = (np.abs(p[inner] - ann0[inner, :2]).max() for p in (back0, 4 * decoded0[0]))
assert err / pixel < 0.05  # heatmap px: the decoding's own precision
print(f"{inner.sum()} joints back in the image within {err:.2f} image px ({err / pixel:.3f} heatmap px); "
      f"4 × the heatmap coordinates would be off by up to {naive:.0f} image px")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The COCO numbers
#
# `evaluate.model_ap` is the whole chain in one call: `predict_dataset` (below), then
# `predictions_ap` — the two functions the training loop uses for validation, also across GPUs
# (each rank predicts its shard, `merge_predictions` joins them).

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(evaluate.predict_dataset)

# %%
t0 = time.perf_counter()
stats, results = evaluate.model_ap(model, val, flip=True, batch_size=32)  # decoded with val.codec = cfg.codec
print(f"flip test, {val.codec.decoding} decoding (the checkpoint's codec, its validation setting)")
seconds = time.perf_counter() - t0
print(stats)
if record is not None:
    recorded = record.get("val", record).get("ap", record.get("best_ap"))
    print(f"AP recorded with the checkpoint: {recorded:.4f}; here: {stats.ap:.4f}")
    assert abs(stats.ap - recorded) <= 0.005

# %% [markdown]
# (APL is measured on the few large persons of this split — notebook 02, section 5, counts them: 6
# of 300 — so it swings with single persons; compare models by AP and APM here.)

# %% tags=["nbval-ignore-output"]
print(f"{len(val)} persons in {seconds:.1f} s on CPU = {len(val) / seconds:.0f} persons/s "
      "(flip test: 2 forward passes each; image decoding included)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · What the flip test and the decoding add (measured)
#
# All variants below reuse the two forward passes of section 2 (`H` for the crops, `H_mirror` for
# their mirror images); only the post-processing changes. First a check that this reuse is exactly
# what `evaluate.model_ap` computed.
#
# The last row is a **perfect network**: the ground-truth target heatmaps themselves, decoded the
# same way. On 32×24 heatmaps one pixel is 4 input pixels, and the reference's targets are centred
# on the nearest grid point, so even perfect heatmaps lose AP to quantisation — a ceiling for this
# resolution.

# %%
meta = {"indices": np.arange(len(samples)), "image_ids": np.array([int(s["image_id"]) for s in samples]),
        "ann_ids": np.array([int(s["ann_id"]) for s in samples]),
        "box_scores": np.array([float(s["score"]) for s in samples]),
        "areas": np.array([float(s["area"]) for s in samples])}


def variant(heatmaps, decode, sigma=cfg.sigma):
    keypoints, confidences = heatmaps_to_keypoints(heatmaps, center, scale, 0.0, decode, sigma)
    preds = {**meta, "keypoints": keypoints, "confidences": confidences}
    return preds, evaluate.predictions_ap(preds, val.ground_truth)


flipped = flip_test_average(H, H_mirror, spec.flip_index, shift=True)
preds, check = variant(flipped, cfg.codec.decoding)
assert abs(check.ap - stats.ap) < 1e-9 and len(evaluate.predictions_to_results(preds, spec.sigmas)) == len(results)
print("reusing the forward passes reproduces model_ap():", round(check.ap, 4) == round(stats.ap, 4))

# %%
joints = torch.stack([s["joints"] for s in samples])  # (N, K, 3) crop px
# ground-truth heatmaps (N, K, 32, 24) with the reference's targets, centred on the nearest grid point
# (the dataset's own targets, s["target"], are this checkpoint's codec's: unbiased)
targets = encode_heatmaps(joints[..., :2] / 4, joints[..., 2], tuple(H.shape[-2:]), cfg.sigma)[0]
# the same Gaussians centred on the exact sub-pixel joint (DARK's unbiased targets)
unbiased = encode_heatmaps(joints[..., :2] / 4, joints[..., 2], tuple(H.shape[-2:]), cfg.sigma, unbiased=True)[0]
rows = [
    ("no flip", "argmax", H), ("no flip", "shift", H), ("no flip", "dark", H),
    ("flip, no column shift", "shift", flip_test_average(H, H_mirror, spec.flip_index, shift=False)),
    ("flip (reference)", "argmax", flipped), ("flip (reference)", "shift", flipped), ("flip (reference)", "dark", flipped),
    ("perfect heatmaps", "argmax", targets), ("perfect heatmaps", "shift", targets),
    ("perfect, unbiased", "shift", unbiased), ("perfect, unbiased", "dark", unbiased),
]
table = {}
print(f"{'test-time':24} {'decode':7} {'AP':>6} {'AP50':>6} {'AP75':>6} {'AR':>6}")
for name, decode, heatmaps in rows:
    s = variant(heatmaps, decode)[1]
    table[name, decode] = s
    print(f"{name:24} {decode:7} {s.ap:6.3f} {s.ap50:6.3f} {s.ap75:6.3f} {s.ar:6.3f}")

# %% [markdown]
# Reading the table (the four combinations of flip × {shift, DARK} are rows 2–3 and 6–7):
#
# - **flip test**: averaging with the mirrored prediction cancels part of the network's noise;
# - the **one-column shift** in `flip_back`: with the heatmap ↔ input map $x_\text{in} = 4x_\text{hm}$,
#   a mirrored prediction comes back 0.75 heatmap px too far left; the reference shifts it one
#   column right (section 2 derives and measures it; users who removed the shift on COCO lost 2 AP);
# - **quarter-pixel shift vs DARK**: both refine the integer argmax; DARK fits a Gaussian to the
#   log-heatmap, which needs a smooth, well-trained peak;
# - **perfect heatmaps** show the quantisation ceiling of 32×24 heatmaps with the reference's
#   integer-centred targets: their neighbours are symmetric, so the quarter-pixel shift never moves
#   anything. Gaussians centred on the exact sub-pixel joint (`unbiased=True`, notebook 01) carry the
#   sub-pixel position in their shape, and DARK reads it back.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### What the output stride costs: perfect heatmaps, then two trained networks (deeper)
#
# HRNet reads its heatmaps from the branch it kept at ¼ of the input. What would a coarser read-out
# cost? First with no training at all: perfect heatmaps at output stride 4, 8, 16 and 32 (32×24
# down to 4×3 heatmaps for these 128×96 crops), the Gaussian kept at one size in the image
# (σ = 8 input px, i.e. 8/stride heatmap px), decoded as a network's output would be.

# %%
STRIDES = (4, 8, 16, 32)
ceilings = {}
print(f"{'stride':>6} {'heatmap':>8} {'σ (hm px)':>9} {'integer-centred, argmax':>24} {'unbiased, DARK':>15}")
for stride in STRIDES:
    size, sigma_s = (128 // stride, 96 // stride), 8 / stride
    centred = encode_heatmaps(joints[..., :2] / stride, joints[..., 2], size, sigma_s)[0]  # the reference's
    exact = encode_heatmaps(joints[..., :2] / stride, joints[..., 2], size, sigma_s, unbiased=True)[0]
    ceilings[stride] = [variant(centred, "argmax")[1].ap, variant(exact, "dark", sigma_s)[1].ap]
    print(f"{stride:6d} {size[0]:>4d}×{size[1]:<3d} {sigma_s:9.2f} {ceilings[stride][0]:24.3f} "
          f"{ceilings[stride][1]:15.3f}")

# %% [markdown]
# Then trained: the recipe network with its head on branch 0 (stride 4) and the same network with
# its head on branch 1 (stride 8, σ = 1 heatmap px so the target has the same size in the image),
# each trained for one epoch of the 37,476 persons of `make data` on this project's 2-core CPU,
# three seeds each (`benchmarks/study_paper_evidence.py`; the runs' configs and logs are committed in
# `benchmarks/results/paper_evidence/`, `hrnet_edu.evidence` reads them).

# %%
from hrnet_edu import evidence

study = evidence.load_runs()
trained = evidence.summarize(study, ["hrnet", "stride8"])
for name, stride in (("hrnet", 4), ("stride8", 8)):
    t = trained[name]
    print(f"stride {stride}: AP {t['mean']:.3f} (seeds {', '.join(f'{v:.3f}' for v in t['values'])}), "
          f"ceiling with the reference's targets {ceilings[stride][0]:.3f}")

fig = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
ax = fig.subplots()
ax.plot(STRIDES, [ceilings[s][0] for s in STRIDES], "o-", label="perfect, integer-centred + argmax")
ax.plot(STRIDES, [ceilings[s][1] for s in STRIDES], "s--", label="perfect, unbiased + DARK")
for name, stride in (("hrnet", 4), ("stride8", 8)):
    ax.plot([stride] * trained[name]["seeds"], trained[name]["values"], "k^", ms=7)
ax.plot([], [], "k^", label="trained 1 epoch on CPU (each seed)")
ax.set(xscale="log", xticks=STRIDES, xticklabels=[str(s) for s in STRIDES], xlabel="output stride (input px per heatmap px)",
       ylabel="AP (SynthPose val)", ylim=(-0.02, 1.05), title="What a coarser read-out costs")
ax.minorticks_off()  # the log axis's minor labels (3×10⁰, 6×10⁰, …) would collide with the strides
ax.legend(fontsize=8)
display(fig)

# %% [markdown]
# Perfect heatmaps lose AP fast as the grid coarsens when the targets are the reference's
# (integer-centred, read with argmax): from the table, about a third of the AP is gone at stride 8
# and nearly all of it at 16 and 32. Targets centred on the sub-pixel joint and read with DARK keep
# almost everything at stride 8, but not at 16 or 32, where the Gaussian (σ = 0.5 and 0.25 heatmap
# px) is narrower than a pixel and no longer carries the sub-pixel position.
#
# Trained for one CPU epoch, the two networks score AP 0.375 (stride 4) and 0.384 (stride 8): both
# far below either ceiling, and the difference (+0.009) is no larger than the spread between seeds
# (0.035). At this budget the network's own errors, not the heatmap grid, limit the AP. The grid
# starts to bind as a network approaches the ceiling: with the reference's integer-centred targets,
# the committed 15-epoch checkpoint's AP (section 3) would be out of reach at stride 8, whose
# ceiling is below it; sub-pixel targets and DARK, which the recipe uses, lift that ceiling.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · OKS-NMS removes duplicates
#
# With ground-truth boxes every person is predicted once. A person *detector* often returns two
# boxes for one person, and two nearly identical poses then reach COCOeval: the second is a false
# positive. The reference therefore runs greedy OKS-NMS per image (threshold 0.9, areas = crop area
# $(200 s_x)(200 s_y)$). We plant a duplicate of every pose (keypoints moved by ≈0.3 px, score × 0.8)
# and let NMS clean up.
#
# Two details show in the table: even on ground-truth boxes NMS may merge two real, overlapping
# persons whose predicted poses came out nearly identical (first two rows); and for a small person a
# copy moved by 1 px is already *not* the same pose at 0.9 — the eyes' σ is 0.025, and the OKS of
# such a copy falls near the threshold (try it).

# %%
n = len(preds["image_ids"])
duplicated = {k: np.concatenate([v, v]) for k, v in preds.items()}
duplicated["keypoints"][n:] += rng.normal(0, 0.3, size=duplicated["keypoints"][n:].shape)
duplicated["box_scores"][n:] *= 0.8
print(f"{'':28} {'poses':>6} {'AP':>6} {'AR':>6}")
kept = {}
for label, p, thr in (("original, no NMS", preds, None), ("original, OKS-NMS 0.9", preds, 0.9),
                      ("with duplicates, no NMS", duplicated, None),
                      ("with duplicates, OKS-NMS 0.9", duplicated, 0.9)):
    res, kept[label] = evaluate.predictions_to_results(p, spec.sigmas, nms_threshold=thr, return_keep=True)
    s = evaluate.predictions_ap(p, val.ground_truth, nms_threshold=thr)
    print(f"{label:28} {len(res):6d} {s.ap:6.3f} {s.ar:6.3f}")
same = sorted(kept["with duplicates, OKS-NMS 0.9"].tolist()) == sorted(kept["original, OKS-NMS 0.9"].tolist())
print("NMS removes every planted duplicate and keeps the same poses as without them:", same)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · Why keypoints are wrong: the error taxonomy
#
# Ronchi & Perona classify each predicted joint of a matched person by its keypoint similarity
# $ks = \exp(-d^2 / 2s^2k^2)$ to every plausible target: its own joint, the mirrored joint of the
# same person, and the same joints of other people. **good** ks ≥ 0.85 at its own joint;
# **jitter** 0.5 ≤ ks < 0.85 there; **inversion** ks ≥ 0.5 at the mirrored joint (left ↔ right);
# **swap** ks ≥ 0.5 at another person; **miss** nothing within ks 0.5.

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(analysis._classify)

# %%
tax = analysis.error_taxonomy(val.ground_truth, results)
print(f"{len(tax.labels)} matched persons; {tax.num_unmatched_results} unmatched predictions, "
      f"{tax.num_unmatched_gt} persons without a prediction")
print(f"{'keypoint':15} {'n':>4} " + " ".join(f"{c:>9}" for c in CATEGORIES))
for row in tax.rows():
    print(f"{row['keypoint']:15} {row['n']:4d} " + " ".join(f"{100 * row[c]:8.1f}%" for c in CATEGORIES))

# %%
shares = tax.shares()
fig = Figure(figsize=(11, 3.6), layout="constrained")
ax = fig.add_subplot()
left = np.zeros(len(shares))
colors = ["#4caf50", "#cddc39", "#ff9800", "#9c27b0", "#f44336"]
for c, name in enumerate(CATEGORIES):
    ax.barh(spec.names, shares[:, c], left=left, color=colors[c], label=name)
    left += shares[:, c]
ax.invert_yaxis()
ax.set_xlabel("share of labelled joints")
ax.legend(ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.0))
display(fig)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Better than ignoring the image? (deeper)
#
# A yardstick for every joint: the **mean pose** — each joint's average position in the crop over
# the bundled *training* persons — predicted for every validation person without looking at the
# image. A network that has learned something must be closer to the truth than that, on every joint
# (errors in input-crop pixels of the 128×96 crop, over the labelled joints).

# %%
train_persons = CocoKeypoints(cfg.val_path(cfg.train_ann), cfg.val_path(cfg.train_images),
                              codec=cfg.codec, spec=spec, train=False, augment=None)  # the bundled 951
gt_crop = analysis.crop_ground_truth(val)  # (N, K, 3) crop px + labelled
network_px = analysis.joint_errors(analysis.predictions_in_crop(preds, val), gt_crop[preds["indices"]])
mean_pose_px = analysis.joint_errors(analysis.mean_pose(analysis.crop_ground_truth(train_persons)), gt_crop)
print(f"{'keypoint':15} {'network px':>10} {'mean pose px':>12}")
for name, a, b in zip(spec.names, network_px, mean_pose_px):
    print(f"{name:15} {a:10.1f} {b:12.1f}")
print("the network is closer than the mean pose on every joint:", bool(np.all(network_px < mean_pose_px)))
print(f"left/right inversions: {100 * tax.overall()['inversion']:.1f} % of the labelled joints")


# %% [markdown]
# How to read it: a high **inversion** share means the network finds the limbs but not which side
# is which — SynthPose figures, like people seen from the back, look much the same mirrored, and a
# small, briefly trained network leans on the flip test and context to tell left from right.
# **Jitter** is what more resolution or better decoding (section 4) fixes; **miss** is what more
# training fixes; **swap** grows with crowding (overlapping figures).
#
# ### Examples of each error type
#
# For each type, the matched person with the most joints of that type: ground truth as white dots,
# the prediction as a skeleton, and a red line from each wrong joint to where it should have been.

# %%
def person_view(ax, j, highlight=None, pad=15):
    image_id, ann_id, r = tax.image_ids[j], tax.ann_ids[j], tax.result_index[j]
    ann = val.coco.anns[int(ann_id)]
    gt = np.asarray(ann["keypoints"], float).reshape(-1, 3)
    dt = np.asarray(results[r]["keypoints"]).reshape(-1, 3)
    ax.imshow(load_image(os.path.join(val.image_dir, val.coco.imgs[int(image_id)]["file_name"])))
    ax.scatter(*gt[gt[:, 2] > 0, :2].T, s=18, c="white", edgecolors="black", zorder=4)
    viz.draw_pose(ax, dt[:, :2], dt[:, 2] > 0.2, spec=spec, radius=2)
    if highlight is not None:
        for k in np.flatnonzero(tax.labels[j] == CATEGORIES.index(highlight)):
            ax.plot([dt[k, 0], gt[k, 0]], [dt[k, 1], gt[k, 1]], color="red", linewidth=2, zorder=5)
    x, y, bw, bh = ann["bbox"]
    ax.set_xlim(x - pad, x + bw + pad)
    ax.set_ylim(y + bh + pad, y - pad)
    ax.set_xticks([]); ax.set_yticks([])


# %%
fig = Figure(figsize=(13, 3.8), layout="constrained")
axes = fig.subplots(1, 4)
for ax, name in zip(axes, ("jitter", "inversion", "swap", "miss")):
    pairs = tax.pairs_with(name)
    if len(pairs):
        person_view(ax, pairs[0], highlight=name)
        ax.set_title(f"{name}: {int((tax.labels[pairs[0]] == CATEGORIES.index(name)).sum())} joints, "
                     f"OKS {tax.oks[pairs[0]]:.2f}")
    else:
        ax.set_title(f"{name}: none in this set")
        ax.set_axis_off()
display(fig)
print({name: len(tax.pairs_with(name)) for name in CATEGORIES[1:]}, "persons with at least one such joint")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · The best and the worst predictions
#
# Sorted by the OKS of each matched person with its ground truth.

# %%
order = np.argsort(-tax.oks, kind="stable")
fig = Figure(figsize=(14, 3.6), layout="constrained")
axes = fig.subplots(1, 8)
for ax, j, tag in zip(axes, [*order[:4], *order[-4:]], ["best"] * 4 + ["worst"] * 4):
    person_view(ax, j)
    ax.set_title(f"{tag}: OKS {tax.oks[j]:.2f}", fontsize=9)
display(fig)
print("OKS best 4:", np.round(tax.oks[order[:4]], 3), " worst 4:", np.round(tax.oks[order[-4:]], 3))

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Explore
#
# Slide through the matched persons (sorted from worst to best OKS) and see which joints fail.

# %%
import ipywidgets as widgets

worst_first = order[::-1]


def show(rank=0):
    j = worst_first[rank]
    fig = Figure(figsize=(4, 5), layout="constrained")
    ax = fig.add_subplot()
    person_view(ax, j)
    # one 3:4 (W:H) frame around every person, so the figure keeps its size from rank to rank
    (x0, x1), (y1, y0) = ax.get_xlim(), ax.get_ylim()
    cx, cy, half_h = (x0 + x1) / 2, (y0 + y1) / 2, max(y1 - y0, (x1 - x0) * 4 / 3) / 2
    ax.set_xlim(cx - 0.75 * half_h, cx + 0.75 * half_h)
    ax.set_ylim(cy + half_h, cy - half_h)
    counts = " · ".join(f"{c} {int((tax.labels[j] == i).sum())}" for i, c in enumerate(CATEGORIES))
    ax.set_title(f"rank {rank}: OKS {tax.oks[j]:.2f}\n{counts}", fontsize=9)
    display(fig)


show(0)  # the explorer's default, drawn once so it is there without a kernel

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
_ = widgets.interact(show, rank=widgets.IntSlider(0, 0, len(worst_first) - 1, description="rank"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 8 · One image from the command line
#
# `hrnet-edu predict` runs the same chain on a single image, for one or several `--box x,y,w,h` (without
# one, the persons torchvision's detector finds: `pip install -e '.[detect]'`; `--whole-image` for a
# picture of one person), and draws the skeleton:
#
# ```bash
# hrnet-edu predict data_samples/synthpose/images/<file>.jpg --checkpoint data_samples/checkpoints/synthpose_w16_128x96_cpu.pt --box x,y,w,h --out pose.png
# ```
#
# The library function behind it:

# %%
from hrnet_edu.predict import draw_predictions

image_id = int(samples[i0]["image_id"])
boxes = [a["bbox"] for a in val.coco.loadAnns(val.coco.getAnnIds(imgIds=image_id, iscrowd=False))]
poses = [predict_image(model, image0, b, cfg.codec, spec) for b in boxes]  # the checkpoint's decoding, as the command
display(draw_predictions(image0, poses, spec, boxes))
print(f"{len(boxes)} boxes; keypoints above 0.2 per person:", [int((c > 0.2).sum()) for _, c in poses])

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 9 · The paper's numbers on real COCO (NOT reproduced here) (deeper)
#
# With the published weights and COCO val2017 (not bundled: 1 GB of images), one command reproduces
# the paper's table. It needs the person detections the paper used (detector AP 56.4 on val2017,
# `COCO_val2017_detections_AP_H_56_person.json`, distributed with the reference implementation):
#
# ```bash
# # data_root holds annotations/person_keypoints_val2017.json and val2017/
# hrnet-edu evaluate --config coco_w32_256x192 --checkpoint pose_hrnet_w32_256x192.pth \
#     --boxes COCO_val2017_detections_AP_H_56_person.json --flip --decode shift data_root=/data/coco
# hrnet-edu evaluate --config coco_w32_256x192 --checkpoint pose_hrnet_w32_384x288.pth \
#     --boxes COCO_val2017_detections_AP_H_56_person.json input_size=384,288 sigma=3 data_root=/data/coco
# hrnet-edu evaluate --config coco_w32_256x192 --checkpoint pose_hrnet_w48_256x192.pth \
#     --boxes COCO_val2017_detections_AP_H_56_person.json model.width=48 data_root=/data/coco
# hrnet-edu evaluate --config coco_w48_384x288 --checkpoint pose_hrnet_w48_384x288.pth \
#     --boxes COCO_val2017_detections_AP_H_56_person.json data_root=/data/coco
# ```
#
# Expected (the reference's table: COCO val2017, flip test, detector AP 56.4). **These numbers were
# not reproduced in this project** — no COCO images or published weights were available here:
#
# | model | input | AP | AP50 | AP75 | APM | APL | AR |
# |---|---|---|---|---|---|---|---|
# | HRNet-W32 | 256×192 | .744 | .905 | .819 | .708 | .810 | .798 |
# | HRNet-W32 | 384×288 | .758 | .906 | .825 | .720 | .827 | .809 |
# | HRNet-W48 | 256×192 | .751 | .906 | .822 | .715 | .818 | .804 |
# | HRNet-W48 | 384×288 | .763 | .908 | .829 | .723 | .834 | .812 |
#
# With `--boxes gt` (ground-truth boxes) the numbers are a few points higher; on a GPU, add
# `--batch-size 64 --workers 8`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - Test time: crop → network → **flip test** (mirror, swap left/right channels, shift one column,
#   average) → decode → back to the image with the inverse crop transform → rescoring → OKS-NMS → COCOeval.
# - The one-column shift is the reference's whole-pixel approximation of a ¾-column misalignment.
# - Perfect heatmaps at 32×24 still lose AP to quantisation: a ceiling set by the output stride
#   (section 4, deeper).
# - The error taxonomy (good, jitter, inversion, swap, miss) tells *why* keypoints are wrong.
# - Detected boxes instead of ground-truth boxes cost AP; OKS-NMS wins part of it back.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **The shift, measured properly.** In section 4 replace `flip_back`'s one-column shift by a
#    sub-pixel one: shift the mirrored heatmaps by 0.75 column with linear interpolation
#    (`torch.nn.functional.grid_sample` or a weighted sum of two shifted copies). Does AP improve over the
#    reference's whole pixel? Then explain the users' COCO ablation quoted in section 2
#    (0.720 / 0.740 / 0.674).
# 2. **Detected boxes.** Write a detection file from the ground-truth boxes with noise (shift each box by
#    10 % of its size, add a second, shifted box for every third person, scores in [0.5, 1]) and evaluate
#    with `CocoKeypoints(..., boxes=path)`. How much AP do the noisy boxes cost, and how much does
#    OKS-NMS win back?
# 3. **Which joints invert?** From `tax.labels`, count inversions per left/right pair. Are they more
#    frequent for persons seen from the side (small shoulder width relative to their height)? Plot the
#    inversion rate against the shoulder-width / torso-height ratio of the ground truth.

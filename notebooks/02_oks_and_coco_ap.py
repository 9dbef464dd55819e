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
# # 02 · Object Keypoint Similarity and COCO AP
#
# **Time:** about 40 min of reading on the core path, 45 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebook 01 · course map and glossary: README, `docs/glossary.md`.
#
# HRNet's COCO numbers (AP .744 for W32 at 256×192) are **keypoint AP**: average precision where a
# predicted person counts as correct when its **Object Keypoint Similarity** (OKS) with a ground-truth
# person is above a threshold. Students often find the metric opaque; this notebook makes it concrete
# and exact.
#
# **What you will learn**
# - the OKS formula, computed by hand for one person and checked against the library
#   (`hrnet_edu.oks.compute_oks`, which equals pycocotools' `COCOeval.computeOks`);
# - why the same pixel error costs more on an eye than on a hip, and more on a small person than on a
#   large one — the per-keypoint constants $k_i$ and the object scale $s$;
# - an interactive explorer: move one predicted keypoint and watch the similarities and the OKS;
# - OKS non-maximum suppression (hard and soft), which removes duplicate poses;
# - how OKS becomes precision, recall and AP on the SynthPose validation split, step by step, with
#   the result checked number for number against pycocotools' own printout.
#
# Notation: K = 17 joints, keypoints are image pixels (x, y) plus a visibility flag v
# (0 = not labelled, 1 = labelled but occluded, 2 = visible).

# %%
# %matplotlib inline
import copy

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu import viz
from hrnet_edu.coco_eval import make_results, rescore, results_ap, validate_results
from hrnet_edu.geometry import PIXEL_STD, box_to_center_scale
from hrnet_edu.keypoints import COCO17
from hrnet_edu.notebook_utils import show_source
from hrnet_edu.oks import compute_oks, match_detections, oks_nms, soft_oks_nms

# The keypoint set is one object, a KeypointSpec; every OKS function takes its sigmas explicitly.
K = COCO17.num_joints  # 17
KEYPOINT_NAMES = COCO17.names
SIGMAS = COCO17.sigma_array  # (K,) the σ_i, as a numpy array
rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)
VAL_ANNOTATIONS = "../data_samples/synthpose/annotations/person_keypoints_val.json"

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · OKS for one person, by hand
#
# For a predicted person and a ground-truth person COCO defines
#
# $$
# \mathrm{OKS} = \frac{\sum_i \exp\!\left(-\dfrac{d_i^2}{2\,s^2\,k_i^2}\right)\,\delta(v_i > 0)}{\sum_i \delta(v_i > 0)},
# \qquad k_i = 2\sigma_i,
# $$
#
# - $d_i$ — distance in pixels between predicted and annotated keypoint $i$;
# - $s^2$ — the ground truth's **area** (of its segmentation mask in COCO; our SynthPose annotations
#   store one too) — so $s$ is a length, the person's scale;
# - $\sigma_i$ — a per-keypoint constant measured from how much human annotators disagree
#   (`COCO17.sigmas`, from the COCO-17 `KeypointSpec`); $k_i = 2\sigma_i$;
# - only labelled keypoints ($v_i > 0$) count. Each term is an unnormalised Gaussian of the error: 1 for
#   a perfect keypoint, $e^{-1/2} \approx 0.61$ when $d_i = s k_i$.
#
# Here is a hand-placed standing person (about 120 × 360 px) with two unlabelled keypoints, and a
# prediction with a few pixels of error everywhere.

# %%
# (x, y) of a person facing the camera: their left side is on the right of the image
GT_XY = np.array([
    [100, 40], [108, 32], [92, 32], [118, 38], [82, 38],        # nose, eyes, ears
    [135, 90], [65, 90], [150, 150], [50, 150], [155, 205], [45, 205],  # shoulders, elbows, wrists
    [122, 210], [78, 210], [125, 290], [75, 290], [128, 370], [72, 370],  # hips, knees, ankles
], dtype=float)
visibility = np.full(K, 2.0)
visibility[[3, 10]] = 0  # left ear and right wrist not labelled
gt = np.concatenate([GT_XY, visibility[:, None]], axis=1)  # (K, 3)
gt[visibility == 0, :2] = 0  # COCO writes unlabelled keypoints as (0, 0, 0)
box = np.array([40.0, 20.0, 120.0, 360.0])  # x, y, w, h
area = 0.5 * box[2] * box[3]  # s²: a person fills about half of its box
pred = GT_XY + rng.normal(scale=4.0, size=(K, 2))  # (K, 2) a prediction off by ~4 px per axis


# %% [markdown]
# The formula, term by term, for this pair:

# %%
def oks_by_hand(pred_xy, gt, area, sigmas=SIGMAS):
    # Per-keypoint similarity exp(-d² / (2 s² k²)) and the OKS, straight from the formula.
    d2 = ((pred_xy - gt[:, :2]) ** 2).sum(axis=1)  # d_i²
    k = 2 * sigmas                                  # k_i = 2 σ_i
    similarity = np.exp(-d2 / (2 * area * k**2))
    labelled = gt[:, 2] > 0
    return similarity[labelled].mean(), similarity

oks_hand, sim = oks_by_hand(pred, gt, area)
d = np.sqrt(((pred - GT_XY) ** 2).sum(1))
print(f"s = sqrt(area) = {np.sqrt(area):.1f} px")
print(f"{'keypoint':15} {'v':>2} {'d (px)':>7} {'k_i':>6} {'similarity':>10}")
for name, v, di, ki, si in zip(KEYPOINT_NAMES, visibility, d, 2 * SIGMAS, sim):
    print(f"{name:15} {int(v):2d} {di:7.2f} {ki:6.3f} {si:10.4f}" + ("   (not labelled: ignored)" if v == 0 else ""))
print(f"OKS by hand: {oks_hand:.6f}")

# %% [markdown]
# The library computes the same number for every pair of D predictions and G ground truths at once
# (a (D, G) matrix, vectorized with numpy broadcasting); the keypoint set's σ_i are a required
# argument, `sigmas=`. It follows pycocotools' expression operation by operation — including the
# tiny `np.spacing(1)` added to the area — so the two agree to rounding (the test suite checks 1e-9
# against `COCOeval.computeOks` on random scenes).

# %%
oks_lib = compute_oks(pred[None], gt[None], [area], box[None], sigmas=SIGMAS)  # (D=1, G=1)
print("library:", oks_lib.round(6))
assert np.isclose(oks_lib[0, 0], oks_hand, rtol=0, atol=1e-12)
assert compute_oks(gt[None, :, :2], gt[None], [area], box[None], sigmas=SIGMAS)[0, 0] == 1.0  # a perfect prediction

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(compute_oks)

# %% [markdown]
# Two rules in that source deserve a word:
#
# - **The box rule.** A ground truth with *no* labelled keypoint has nothing to measure against, so
#   pycocotools measures the distance from each predicted keypoint to the ground-truth box enlarged
#   by one box size on every side (zero inside it) and averages over all K keypoints. Any prediction
#   near such a person scores ≈ 1. Such persons are marked *ignore*, so this only decides which
#   predictions they silently absorb.
# - **Crowd regions.** `computeOks` does not treat crowd annotations specially (in COCO they have no
#   keypoints, so the box rule applies). What is special happens in the *matching*
#   (`oks.match_detections`, section 5): a crowd region is never used up, and predictions matched to
#   it count neither as right nor as wrong.

# %%
unlabelled = gt.copy()
unlabelled[:, 2] = 0
inside = GT_XY + 30.0                       # within the enlarged box [x − w, x + 2w] × [y − h, y + 2h]
outside = GT_XY + np.array([400.0, 0.0])    # beyond it on the right
print(compute_oks(np.stack([inside, outside]), unlabelled[None], [area], box[None], sigmas=SIGMAS).round(4).ravel())

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The same pixel error costs more on an eye than on a hip, and on a small person
#
# One keypoint's similarity is $\exp(-d^2 / (2 s^2 k_i^2))$: the error $d$ is measured in units of
# $s\,k_i$. Eyes have $\sigma = 0.025$ (annotators agree to a couple of pixels), hips $\sigma = 0.107$
# (where exactly is a hip under clothing?). And $s$ grows with the person, so 5 px on a child far
# away is a large error while on a close-up it is nothing.

# %%
errors = np.linspace(0, 30, 301)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
s_ref = 100.0  # a person of area 100² px
for j in (1, 0, 5, 9, 11):
    k = 2 * SIGMAS[j]
    axes[0].plot(errors, np.exp(-errors**2 / (2 * s_ref**2 * k**2)), label=f"{KEYPOINT_NAMES[j]} (σ={SIGMAS[j]:.3f})")
axes[0].set(title="per-keypoint similarity, person of area 100²", xlabel="error d (px)", ylabel="similarity")
axes[0].legend(fontsize=8)
for side in (32, 64, 96, 200):
    for j, style in ((1, "-"), (11, "--")):
        k = 2 * SIGMAS[j]
        axes[1].plot(errors, np.exp(-errors**2 / (2 * side**2 * k**2)), style,
                     color=plt.cm.viridis(side / 220), label=f"{KEYPOINT_NAMES[j]}, area {side}²")
axes[1].set(title="eye (solid) and hip (dashed) at four scales", xlabel="error d (px)")
axes[1].legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# A useful way to read it: the error at which one keypoint's similarity falls to 0.5 is
# $d_{1/2} = s\,k_i\sqrt{2\ln 2}$. COCO's "medium" persons have $32^2 < s^2 \le 96^2$, "large" ones
# $s^2 > 96^2$.

# %%
sides = (32, 64, 96, 200)
print(f"{'keypoint':15}" + "".join(f"{'area ' + str(a) + '²':>11}" for a in sides) + "   (px of error for similarity 0.5)")
for j in (1, 3, 5, 7, 9, 11, 13, 15):
    d_half = np.array(sides) * 2 * SIGMAS[j] * np.sqrt(2 * np.log(2))
    print(f"{KEYPOINT_NAMES[j]:15}" + "".join(f"{x:11.2f}" for x in d_half))
# check one entry against the library: an eye off by d_half on a 32² person gives similarity 0.5
d_half = 32 * 2 * SIGMAS[1] * np.sqrt(2 * np.log(2))
one = np.zeros((1, K, 3))
one[0, 1] = [50.0, 50.0, 2.0]  # only the left eye labelled
moved = one[:, :, :2] + np.array([d_half, 0.0])
assert np.isclose(compute_oks(moved, one, [32.0**2], [[0, 0, 32, 32]], sigmas=SIGMAS)[0, 0], 0.5)


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Explorer: move one predicted keypoint
#
# Pick a joint and drag it by (dx, dy) pixels from a *perfect* prediction of the person of section 1.
# The left panel shows the pose (moved joint in red), the right panel every keypoint's similarity.
# Every labelled joint has a grey outline up to 1 holding its bar; unlabelled joints do not count:
# they have no outline, only a grey × and "not labelled" at the axis. A labelled joint dragged far
# away keeps its (empty) outline with its value printed, even when the similarity is 0.00. Try the same 10 px on `left_eye` and on `left_hip`.

# %%
def similarity_bars(ax, similarity, j):
    # Labelled joints: a filled bar inside an outline up to 1 (so a similarity of 0 still shows an
    # empty box, with its value printed); unlabelled joints: no box, a grey × at the axis.
    labelled = visibility > 0
    idx = np.flatnonzero(labelled)
    ax.bar(idx, np.ones(len(idx)), fill=False, edgecolor="0.55", linewidth=0.8)
    ax.bar(idx, similarity[idx], color=["tab:red" if i == j else "tab:blue" for i in idx])
    for i in idx[similarity[idx] < 0.1]:
        ax.text(i, similarity[i] + 0.02, f"{similarity[i]:.2f}", ha="center", fontsize=8)
    for i in np.flatnonzero(~labelled):
        ax.plot(i, 0.03, "x", color="0.5", ms=8, mew=2)
        ax.text(i, 0.09, "not labelled", rotation=90, ha="center", va="bottom", fontsize=8, color="0.4")
    ax.set_xticks(range(K), KEYPOINT_NAMES, rotation=70, fontsize=9)


# %% [markdown]
# The explorer moves one joint of the perfect prediction, computes the OKS by hand (and checks it
# against `compute_oks`), and draws the pose beside the bars:

# %%
def explore(joint="left_wrist", dx=8.0, dy=-6.0, show=True):
    j = KEYPOINT_NAMES.index(joint)
    moved = GT_XY.copy()
    moved[j] += (dx, dy)
    oks_value, similarity = oks_by_hand(moved, gt, area)
    assert np.isclose(oks_value, compute_oks(moved[None], gt[None], [area], box[None], sigmas=SIGMAS)[0, 0])
    if show:
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2), width_ratios=[1, 2.2], layout="constrained")
        viz.draw_pose(ax0, GT_XY, visibility, spec=COCO17, alpha=0.25)
        viz.draw_pose(ax0, moved, visibility, spec=COCO17)
        ax0.plot(*moved[j], "o", color="red", ms=9, mfc="none", mew=2)
        ax0.set(xlim=(0, 200), ylim=(400, 0), aspect="equal", title=f"{joint} moved by ({dx:+.0f}, {dy:+.0f}) px")
        similarity_bars(ax1, similarity, j)
        ax1.set(ylim=(0, 1.05), ylabel="similarity", title=f"OKS = {oks_value:.4f}")
        plt.show()
    return oks_value, similarity[j]

for joint in ("left_eye", "left_hip"):
    oks_value, s_j = explore(joint, dx=10.0, dy=0.0, show=False)
    print(f"{joint:9} moved 10 px: its similarity {s_j:.4f}, OKS {oks_value:.4f}")
_ = explore("left_wrist", dx=8.0, dy=-6.0)  # the widget's starting point, drawn once

# %% [markdown]
# An eye dragged 40 px away scores 0.00: its outline stays, empty, with the value printed — unlike
# the unlabelled joints:

# %%
oks_value, s_eye = explore("left_eye", dx=40.0, dy=0.0)
print(f"left_eye moved 40 px: similarity {s_eye:.2e}, OKS {oks_value:.4f}")


# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
def explorer(joint, dx, dy):
    explore(joint, dx, dy)  # draw only: the returned numbers would be printed under the figure


widgets.interact(
    explorer,
    joint=widgets.Dropdown(options=KEYPOINT_NAMES, value="left_wrist"),
    dx=widgets.FloatSlider(value=8.0, min=-40, max=40, step=1),
    dy=widgets.FloatSlider(value=-6.0, min=-40, max=40, step=1),
);

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · OKS-NMS: one person, one prediction
#
# A top-down pipeline predicts one pose per detected box, and person detectors often fire twice on
# the same person. The duplicate is a *false positive* for COCO (a ground truth can be matched only
# once). The reference removes duplicates per image with **OKS-NMS**: keep the best-scoring pose,
# drop every pose whose OKS with it exceeds 0.9, repeat (`oks.oks_nms`). Between two predictions the
# OKS uses all K keypoints and the mean of their two areas. **Soft-NMS** (`oks.soft_oks_nms`) instead
# multiplies the scores of similar poses by $\exp(-\mathrm{OKS}^2/0.9)$, so a near-copy drops down the
# ranking without disappearing.

# %%
people = [GT_XY, GT_XY + [160, 10], GT_XY + [330, -5]]
poses, scores = [], []
for p, base_score in zip(people, (0.95, 0.9, 0.8)):
    for copy_index in range(3):  # three near-copies of each person, lower scores
        poses.append(p + rng.normal(scale=1.5 if copy_index else 0.0, size=(K, 2)))
        scores.append(base_score - 0.1 * copy_index)
poses, scores = np.array(poses), np.array(scores)
areas = np.full(len(poses), area)
keep = oks_nms(poses, scores, areas, threshold=0.9, sigmas=SIGMAS)
print("kept (hard NMS):", keep.tolist(), "scores", scores[keep].round(2).tolist())
keep_soft, decayed = soft_oks_nms(poses, scores, areas, threshold=0.9, sigmas=SIGMAS)
print("pick order (soft NMS):", keep_soft.tolist())
print("score when picked     :", decayed.round(3).tolist())

# %% [markdown]
# Hard NMS kept exactly the best pose of each person. Soft NMS keeps all nine but pushes every
# duplicate below the three originals (its score is multiplied by $e^{-1/0.9} \approx 0.33$ when it is
# a near-exact copy). Note that the reference computes these decayed scores only to *choose and
# order* the poses and then writes the original scores to the results file.
#
# ## 5 · From OKS to precision, recall and AP on SynthPose
#
# Now a whole validation split. We fake a pose estimator with seeded noise: each person is predicted
# with an error of 2–20 % of its scale $s$ (some persons are missed), the keypoint confidences are
# lower for noisier persons, 15 % of persons get a duplicate pose, and the instance score is the
# reference's rescoring (box score × mean keypoint confidence above 0.2; ground-truth boxes, so box
# score 1).

# %% tags=["nbval-ignore-output"]
coco = COCO(VAL_ANNOTATIONS)  # pycocotools' ground-truth index (it prints what it does, and how long it took)

# %%
img_ids = sorted(coco.getImgIds())
anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_ids)) if a["num_keypoints"] > 0 and not a["iscrowd"]]
print(f"{len(img_ids)} images, {len(coco.getAnnIds())} annotations, {len(anns)} labelled persons")

# %% [markdown]
# COCO reports AP separately for **medium** (32² < area ≤ 96²) and **large** (area > 96²) persons;
# small ones count only in the overall AP. How many of each does this split hold?

# %%
person_areas = np.array([a["area"] for a in anns])
counts = np.histogram(person_areas, bins=[0, 32**2, 96**2, np.inf])[0]
print("labelled persons by area: small (< 32²) {}, medium {}, large (> 96²) {}".format(*counts))

# %% [markdown]
# SynthPose's figures are small: a third of them count in neither APM nor APL, and **APL averages
# over a handful of persons** — one person more or less found moves it by tens of points. Read APL
# on this split as noise (solutions 02, exercise 2, shows it); AP and APM are the numbers to watch.

# %% [markdown]
# The fake estimator, one seeded pass over the labelled persons, and its results file:

# %%
ids, kpts, conf, box_scores, boxes = [], [], [], [], []
for a in anns:
    if rng.random() < 0.05:
        continue  # a missed person
    g = np.asarray(a["keypoints"], dtype=float).reshape(K, 3)
    level = rng.choice([0.02, 0.04, 0.08, 0.2])  # error as a fraction of the scale s
    xy = g[:, :2] + rng.normal(size=(K, 2)) * level * np.sqrt(a["area"])
    c = np.clip(rng.normal(0.9 - 2.5 * level, 0.08, size=K), 0, 1)
    copies = 2 if rng.random() < 0.15 else 1  # a duplicate detection of the same person
    for copy_index in range(copies):
        ids.append(a["image_id"])
        kpts.append(xy + rng.normal(size=(K, 2)) * 2.0 * copy_index)
        conf.append(c * (0.9 if copy_index else 1.0))
        box_scores.append(1.0)
        boxes.append(a["bbox"])
ids, kpts, conf, box_scores, boxes = map(np.array, (ids, kpts, conf, box_scores, boxes))
scores = rescore(box_scores, conf, threshold=0.2)
results = make_results(ids, kpts, conf, scores)
validate_results(results, coco, spec=COCO17)  # raises a clear ValueError naming the entry if anything is off
print(f"{len(results)} predictions; first entry: image {results[0]['image_id']}, "
      f"{len(results[0]['keypoints'])} keypoint numbers, score {results[0]['score']:.4f}")


# %% [markdown] slideshow={"slide_type": "subslide"}
# ### pycocotools, as everyone runs it
#
# This is the printout the reference (and every COCO paper) reports: ten numbers, AP averaged over
# the OKS thresholds 0.50:0.05:0.95 first. Three calls: `evaluate` matches predictions to persons
# image by image, `accumulate` builds the precision/recall tables, `summarize` prints the ten numbers.
# (`loadRes` writes into the entries it is given, so it gets a copy of our list.)

# %% tags=["nbval-ignore-output"]
coco_eval = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
coco_eval.evaluate()  # these two print their progress and timings
coco_eval.accumulate()

# %%
coco_eval.summarize()

# %% [markdown]
# `coco_eval.results_ap` runs the same thing quietly, checks the entries first, never
# modifies your list (pycocotools writes into it), copes with an empty result list and returns the
# ten numbers by name. It takes the keypoint set (`spec=`; a `GroundTruth` read with
# `data.ground_truth.read_ground_truth` carries its own): K and the σ_i it hands to COCOeval.

# %%
stats = results_ap(coco, results, spec=COCO17)
print(stats)
assert np.allclose(list(stats.as_dict().values()), coco_eval.stats, rtol=0, atol=1e-12)
print(results_ap(coco, [], spec=COCO17).note)


# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The same numbers from scratch (deeper)
#
# What does COCOeval do with the OKS values? Per image and per OKS threshold $t$:
#
# 1. keep the 20 best-scoring predictions; compute the OKS matrix with every ground truth;
# 2. **match greedily**: from the highest score down, each prediction takes the still-free ground
#    truth with the highest OKS ≥ t (crowd regions and persons without labelled keypoints are
#    *ignored*: a prediction matched to one counts neither way; `oks.match_detections`);
# 3. pool all images, sort predictions by score, and walk down the list: matched ones are true
#    positives, unmatched ones false positives → a **precision/recall curve**;
# 4. make precision monotone (the best precision at this recall or any higher one) and average it at
#    the 101 recall levels 0, 0.01, …, 1 → **AP at t**. AP is the mean over the ten thresholds;
#    AR the mean of the final recalls.

# %%
def match_image(img, dts, t):
    # Steps 1-2 for one image: its predictions (best first, at most 20) matched to its ground truths.
    gts = coco.loadAnns(coco.getAnnIds(imgIds=img))
    ignore = np.array([bool(g["iscrowd"]) or g["num_keypoints"] == 0 for g in gts], dtype=bool)
    matched, dt_ignore = np.full(len(dts), -1), np.zeros(len(dts), dtype=bool)
    if dts and gts:
        oks = compute_oks(np.array([d["keypoints"] for d in dts]).reshape(-1, K, 3),
                          np.array([g["keypoints"] for g in gts]).reshape(-1, K, 3),
                          [g["area"] for g in gts], [g["bbox"] for g in gts], sigmas=SIGMAS)
        matched, dt_ignore = match_detections(oks, [d["score"] for d in dts], ignore,
                                              [g["iscrowd"] for g in gts], t)
    # (scores, matched?, ignored?) per prediction, and the image's number of positives
    return [d["score"] for d in dts], list(matched >= 0), list(dt_ignore), int((~ignore).sum())


# %% [markdown]
# Step 3: pool the images, sort by score, count true and false positives down the list.

# %%
def pr_curve(results, t, max_dets=20):
    by_image = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    all_scores, all_tp, all_ignored, n_positives = [], [], [], 0
    for img in img_ids:
        dts = sorted(by_image.get(img, []), key=lambda r: -r["score"])[:max_dets]  # stable, like mergesort
        image_scores, image_tp, image_ignored, image_positives = match_image(img, dts, t)
        all_scores += image_scores
        all_tp += image_tp
        all_ignored += image_ignored
        n_positives += image_positives
    order = np.argsort(-np.array(all_scores), kind="mergesort")
    tp_flags, ignored = np.array(all_tp, dtype=bool)[order], np.array(all_ignored, dtype=bool)[order]
    tp = np.cumsum(tp_flags & ~ignored)
    fp = np.cumsum(~tp_flags & ~ignored)
    recall = tp / n_positives
    precision = tp / (tp + fp + np.spacing(1))  # pycocotools adds eps here too
    return recall, precision


# %% [markdown]
# Step 4 at the ten thresholds, and the check against pycocotools' numbers above:

# %%
def average_precision(recall, precision):
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    levels = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, levels, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return sampled.mean(), envelope

thresholds = np.linspace(0.5, 0.95, 10)
ap_t, ar_t, curves = [], [], {}
for t in thresholds:
    recall, precision = pr_curve(results, t)
    ap, envelope = average_precision(recall, precision)
    ap_t.append(ap)
    ar_t.append(recall[-1])
    curves[round(t, 2)] = (recall, precision, envelope)
print("t     AP@t    recall@t")
for t, a, r in zip(thresholds, ap_t, ar_t):
    print(f"{t:.2f}  {a:.4f}  {r:.4f}")
print(f"AP = {np.mean(ap_t):.4f}  AP50 = {ap_t[0]:.4f}  AP75 = {ap_t[5]:.4f}  AR = {np.mean(ar_t):.4f}")
assert np.isclose(np.mean(ap_t), stats.ap, atol=1e-12) and np.isclose(ap_t[0], stats.ap50, atol=1e-12)
assert np.isclose(ap_t[5], stats.ap75, atol=1e-12) and np.isclose(np.mean(ar_t), stats.ar, atol=1e-12)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for t, color in ((0.5, "tab:green"), (0.75, "tab:orange"), (0.9, "tab:red")):
    recall, precision, envelope = curves[t]
    ax.plot(recall, precision, color=color, alpha=0.3, lw=1)
    ax.plot(recall, envelope, color=color, label=f"OKS ≥ {t}: AP {ap_t[int(round((t - 0.5) / 0.05))]:.3f}")
ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
       title="precision/recall (faint: raw, bold: monotone envelope)")
ax.legend()
plt.show()

# %% [markdown]
# Stricter thresholds cut the curve short: a prediction with 10 % error on a person is a true positive
# at OKS 0.5 and a false positive at 0.9. Finally, what do duplicates cost, and what does OKS-NMS win
# back? OKS-NMS runs per image. Like the reference (and `evaluate.predictions_to_results`, which
# passes the dataset's crop areas), the s² of each pose is the area of its **crop**,
# (200·s_x)·(200·s_y) — the box grown to the input's 3:4 aspect ratio, then ×1.25 in width and height
# (`geometry.box_to_center_scale`) — not the box area; between two poses the OKS uses the mean of
# their two areas.

# %%
_, crop_scale = box_to_center_scale(boxes, aspect_ratio=192 / 256)  # (N, 2) in units of 200 px
crop_areas = np.prod(crop_scale * PIXEL_STD, axis=1)
print(f"crop area / box area: median {np.median(crop_areas / (boxes[:, 2] * boxes[:, 3])):.2f}"
      f" (≥ 1.25² = {1.25**2:.4f}: the padding, times the growth to 3:4)")
keep_all = []
for img in np.unique(ids):
    rows = np.flatnonzero(ids == img)
    keep_all += rows[oks_nms(kpts[rows], scores[rows], crop_areas[rows], threshold=0.9, sigmas=SIGMAS)].tolist()
keep_all = sorted(keep_all)
without_nms = results_ap(coco, results, spec=COCO17)
with_nms = results_ap(coco, [results[i] for i in keep_all], spec=COCO17)
print(f"{'':16}{'predictions':>12}{'AP':>8}{'AP50':>8}{'AP75':>8}{'AR':>8}")
for name, n, s in (("no NMS", len(results), without_nms), ("OKS-NMS 0.9", len(keep_all), with_nms)):
    print(f"{name:16}{n:12d}{s.ap:8.4f}{s.ap50:8.4f}{s.ap75:8.4f}{s.ar:8.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### A word on "accuracy" during training
#
# The reference's training log also prints an `Accuracy`; `losses.pck_accuracy` reproduces it.
# It is a PCK on heatmap argmaxes (correct when within about 1/20 of the heatmap side) — handy to
# watch training, but **not** the COCO metric: it has no per-keypoint constants, no object scale,
# no matching and no ranking by score. Report AP.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - **OKS** = mean over labelled joints of exp(−d²/(2s²κ_i²)), κ_i = 2σ_i: the error d is measured in
#   units of the person's scale s and of a per-joint constant (an eye is judged 4× more strictly than a hip).
# - Unlabelled joints do not count; a person without labelled joints is ignored; crowd regions
#   absorb predictions without counting.
# - **OKS-NMS** removes duplicate poses; soft NMS lowers their scores instead.
# - **AP** = precision averaged over 101 recall levels and 10 OKS thresholds (0.50 … 0.95), after a
#   greedy match by score: the **ranking** matters, not only the keypoints. APM and APL split by area
#   (32²–96², above 96²); small persons count only in AP.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Threshold intuition.** For the person of section 1, find (with `explore`) the smallest shift of
#    the *left hip* alone that drops the OKS below 0.95, then do the same for the *left eye*. Predict
#    the ratio of the two shifts from the σ values before you measure it.
# 2. **Scale.** In section 5, make every prediction's error a fixed 4 px instead of a fraction of
#    $s$. Which of APM and APL moves, and why?
# 3. **Ranking matters.** Keep the same predictions but give them random scores
#    (`rng.uniform(size=len(results))`). AR stays the same — why? How much does AP fall? Then try
#    `soft_oks_nms` instead of `oks_nms` in the last table, writing the decayed scores into the
#    results: does it help or hurt here?

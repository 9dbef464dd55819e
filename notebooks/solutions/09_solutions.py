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
# # Solutions · 09 Feature maps
#
# Worked solutions to the three exercises of notebook 09 (`../09_feature_maps.ipynb`). Try each exercise
# first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that needs
# training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for CI
# (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only
# that it runs. All three use the committed CPU
# checkpoint; exercises 2 and 3 reuse the chapter's linear probe (fitted on 64 training crops, tested
# on 64 held-out validation crops).

# %%
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hrnet_edu import features
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.heatmaps import decode_heatmaps

torch.manual_seed(0)
torch.set_num_threads(2)
REPO = next(p for p in Path.cwd().resolve().parents if (p / "pyproject.toml").exists())
model, cfg = load_checkpoint(REPO / "data_samples/checkpoints/synthpose_w16_128x96_cpu.pt")
model = model.eval()


def load(ann, images):
    # the probes' targets as in the chapter: the reference's Gaussians of the checkpoint's σ (centred on
    # the nearest heatmap pixel; the checkpoint itself was trained on unbiased ones)
    codec = dataclasses.replace(cfg.codec, target="reference")
    return CocoKeypoints(cfg.val_path(ann), cfg.val_path(images), codec=codec, spec=cfg.spec,
                         train=False, augment=None)


val, train = load(cfg.val_ann, cfg.val_images), load(cfg.train_ann, cfg.train_images)


def batch(dataset, start, n):
    items = [dataset[i] for i in range(start, start + n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "target", "target_weight", "joints")}


def pixel_error(pred_heatmaps, joints):  # mean distance in input pixels over labelled joints
    coords, _ = decode_heatmaps(pred_heatmaps, method="shift")
    vis = joints[..., 2] > 0
    return (coords * cfg.input_size[0] / pred_heatmaps.shape[2] - joints[..., :2]).norm(dim=-1)[vis].mean().item()


fit_batch, test_batch = batch(train, 0, 64), batch(val, 0, 64)


def probe_error(fit_features, test_features):
    probe = features.fit_linear_probe(fit_features, fit_batch["target"], fit_batch["target_weight"], ridge=1e-2)
    with torch.no_grad():
        return pixel_error(probe(test_features), test_batch["joints"])


def stage4(images, hook=None):
    """The stage-4 branches [(N, C_r, H_r, W_r)] and the captured exchange terms, optionally with a
    forward pre-hook on stage 4's exchange unit."""
    handle = model.stage4[0].fuse_layers.register_forward_pre_hook(hook) if hook else None
    try:
        with torch.no_grad(), features.capture(model, ["stage4", "stage4.module0.exchange*"]) as store:
            model(images)
    finally:
        if handle:
            handle.remove()
    return store["stage4"], features.exchange_contributions(store, "stage4.module0")


# %% [markdown]
# ## Exercise 1 · Where does the context come from? — ★★ · ≈ 0.1 min
#
# SynthPose marks a joint hidden behind another figure with COCO's v = 1 (labelled, not visible).
# Per crop, the share of branch 2 in output 0 of the last exchange unit of stage 3
# (`contribution_shares(..., per_sample=True)`), for crops with at least one such joint and crops
# with none — all 300 validation persons.

# %%
everyone = torch.stack([val[i]["image"] for i in range(len(val))])
with torch.no_grad(), features.capture(model, ["stage3.module0.exchange*"]) as store:
    model(everyone)
last3 = sorted({n.rsplit(".exchange", 1)[0] for n in store if n.startswith("stage3")})[-1]
shares = features.contribution_shares(features.exchange_contributions(store, last3), per_sample=True)  # (N, 3, 3)
share_b2 = shares[:, 0, 2].numpy()
occluded = np.array([np.any(np.asarray(val.coco.anns[val.record(i)["ann_id"]]["keypoints"][2::3]) == 1)
                     for i in range(len(val))])
rng = np.random.default_rng(0)
diff = share_b2[occluded].mean() - share_b2[~occluded].mean()
null = [(lambda p: share_b2[p].mean() - share_b2[~p].mean())(rng.permutation(occluded)) for _ in range(2000)]
p_value = float(np.mean(np.abs(null) >= abs(diff)))
print(f"{last3}: share of branch 2 in output 0 — crops with an occluded joint ({occluded.sum()}): "
      f"{share_b2[occluded].mean():.3f}, without ({(~occluded).sum()}): {share_b2[~occluded].mean():.3f}")
print(f"difference {diff:+.3f}; permutation test (2000 shuffles of the labels): p = {p_value:.3f}")

# %% [markdown]
# **No measurable difference here**: the shares differ by a few thousandths, and the permutation
# test (how often shuffling the "occluded" labels gives a difference at least this large) does not
# tell it from chance. Why the experiment is weak rather than the idea wrong: a share is a ratio of norms over the
# whole map, and an occluded joint is a few pixels of it: even if the network does lean on
# context *at* the joint, the whole-map share dilutes it. A sharper test would measure the share
# in a window around the occluded joint only (the per-pixel maps of `viz.contribution_figure`).

# %%
assert 0 < share_b2.min() and share_b2.max() < 1 and p_value > 0.05  # not distinguishable from chance
assert occluded.sum() > 10 and (~occluded).sum() > 10

# %% [markdown]
# ## Exercise 2 · Ablate a branch — ★★ · ≈ 0.1 min
#
# A forward pre-hook on `stage4[0].fuse_layers` replaces input 3 by zeros. The capture checks
# that only the terms coming from branch 3 change; then the stage-4 probe (branch 0 after the
# exchange) is refitted on the ablated features and tested.

# %%
def silence_branch_3(module, args):
    xs = list(args[0])
    xs[3] = torch.zeros_like(xs[3])
    return (xs,)


fit_intact, _ = stage4(fit_batch["image"])
test_intact, terms_intact = stage4(test_batch["image"])
fit_silenced, _ = stage4(fit_batch["image"], silence_branch_3)
test_silenced, terms_silenced = stage4(test_batch["image"], silence_branch_3)
for k, (row_a, row_b) in enumerate(zip(terms_intact, terms_silenced)):
    for i, (a, b) in enumerate(zip(row_a, row_b)):
        if i == 3:  # a zero input leaves only BatchNorm's shift: a constant per channel, no spatial signal
            assert torch.allclose(b, b[..., :1, :1].expand_as(b)), "the silenced branch still carries a signal"
        else:
            assert torch.equal(a, b), f"a(X_{i}, {k}) changed"
print("captured: a(X_3, k) is a constant per channel (BN's shift of a zero input), every other term unchanged")
err = {"intact": probe_error(fit_intact[0], test_intact[0]), "branch 3 silenced": probe_error(fit_silenced[0], test_silenced[0])}
with torch.no_grad():
    head = {name: pixel_error(model.final_layer(t[0]), test_batch["joints"])
            for name, t in (("intact", test_intact), ("branch 3 silenced", test_silenced))}
for name in err:
    print(f"{name:18} stage-4 probe error {err[name]:.2f} px   trained head {head[name]:.2f} px")

# %% [markdown]
# With a refitted probe the damage is what the features lost; with the trained head it is also the
# head's surprise at features it never saw. Both grow when the 1/32-resolution branch is silenced:
# its share in output 0 (solutions 04, exercise 3) is real information, not noise the network could
# do without.

# %%
assert err["branch 3 silenced"] > err["intact"] and head["branch 3 silenced"] > head["intact"]

# %% [markdown]
# ## Exercise 3 · Probe the low-resolution branches — ★★ · < 0.1 min
#
# Branch 1 of stage 4 is at half the heatmap resolution: up-sample it ×2 (bilinear), then fit the
# same probe. (The last exchange unit of the network fuses output 0 only, so branch 1 is read where it
# leaves its residual units, `stage4.module0.branch1`.)

# %%
def up2(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def branch1(images):  # stage 4's branch 1: the output of its residual units (the last exchange fuses output 0 only)
    with torch.no_grad(), features.capture(model, ["stage4.module0.branch1"]) as store:
        model(images)
    return store["stage4.module0.branch1"]


branch_err = {"branch 0": err["intact"],
              "branch 1 (×2)": probe_error(up2(branch1(fit_batch["image"])), up2(branch1(test_batch["image"])))}
for name, e in branch_err.items():
    print(f"stage 4, {name:14} probe error {e:.2f} px")

# %% [markdown]
# Branch 1 reads worse than branch 0. It has twice the channels but a quarter of the positions, and
# an up-sampled map can only place a peak on its own coarser grid, smoothed; branch 0 has received
# branch 1's information through the exchange *and* kept its own fine grid. That is the case for
# keeping a high-resolution branch all the way through instead of recovering the resolution at the
# end.

# %%
assert branch_err["branch 1 (×2)"] > branch_err["branch 0"]

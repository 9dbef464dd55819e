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
# # 07 · Training HRNet: the recipe, a CPU-hour, a smoke run (and the GPU run)
#
# **Time:** about 40 min of reading on the core path, 50 with the sections marked *(deeper)* (the exercises extra; their solutions say what each costs) · **Needs:** notebooks 01, 05 and 06 · course map and glossary: README, `docs/glossary.md`.
#
# The paper trains HRNet-W32 with **Adam** (learning rate 10⁻³, divided by 10 at epochs 170 and
# 200, 210 epochs) on the **mean-squared error between predicted and target heatmaps**, 32 crops
# per GPU on 4 GPUs. This notebook runs that recipe with the library's trainer
# (`hrnet_edu.train.train`), end to end: configuration → data → loss → training → AP per epoch →
# predictions getting better → what changes for real COCO — and it shows what the same code reaches
# on the 2-core CPU this course is developed on: **what a CPU-hour buys**, measured.
#
# **What you will learn**
# - how a training configuration is written (`TrainConfig`, presets, `key=value` overrides);
# - the loss exactly as the reference computes it — including its unexplained factor ½ — checked
#   against a from-scratch version, and online hard keypoint mining;
# - what one training step does (forward, loss, backward, gradient norm, Adam step);
# - how the loss and the validation AP evolve, and how the predictions improve epoch by epoch;
# - what changes for real COCO;
# - which recipe trains a working network on 2 CPU cores, and how AP grows with CPU minutes.
#
# The engineering that makes the same code fast and safe has its own notebooks after the core path:
# **A1** the GPU path (mixed precision, channels-last, `torch.compile`) and what each option buys,
# measured; **A2** checkpoints that make a killed run resumable *bit for bit*, and several GPUs with
# `torchrun`.
#
# **Two modes.** With a CUDA GPU the full run trains HRNet-W32 256×192 on a SynthPose set of
# 10,000 images (`hrnet-edu synth --out data/synthpose --train 10000 --val 1000`). Without one it
# runs a **smoke configuration** — the CPU recipe's network, fine-tuned for four short epochs (a
# minute or two on a CPU) on the bundled sample, starting from an early checkpoint of the recipe's own run — with the same code.
# When the notebook is re-run as a test, every output is compared except those of the cells that
# depend on the hardware (timings, losses of the run: tagged `nbval-ignore-output` in their metadata).
#
# **Every output committed with this notebook is a CPU run** (this project's 2-core machine, smoke
# mode): the file is named for the GPU path it switches to when a GPU is present, not for what you see.

# %%
# %matplotlib inline
import dataclasses
import json
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

# %%
from hrnet_edu.checkpoints import load_checkpoint, load_checkpoint_state
from hrnet_edu.configs import PRESETS, get_config
from hrnet_edu.data.coco import denormalize
from hrnet_edu.flops import count_parameters
from hrnet_edu.heatmaps import decode_heatmaps
from hrnet_edu.losses import JointsMSELoss, JointsOHKMLoss
from hrnet_edu.model import build_model
from hrnet_edu.notebook_utils import show_source
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.runfolder import read_log
from hrnet_edu.train import DistInfo, build_criterion, build_datasets, train, train_one_epoch
from hrnet_edu.viz import draw_pose, loss_figure, show_heatmap

# %%
torch.manual_seed(0)
np.random.seed(0)
plt.rcParams["figure.dpi"] = 100
torch.set_num_threads(1)  # the CPU recipe's setting: one compute thread, one data worker
GPU = torch.cuda.is_available()
CKPT = os.path.join("..", "data_samples", "checkpoints", "synthpose_w16_128x96_cpu.pt")
EARLY_CKPT = CKPT.replace(".pt", "_epoch1.pt")  # the same run after its first of 15 epochs

# %% tags=["nbval-ignore-output"]
# Which machine ran this notebook (the committed outputs say where they come from).
import datetime
import platform

device_name = torch.cuda.get_device_name(0) if GPU else f"CPU ({os.cpu_count()} cores, {platform.machine()})"
print(f"device: {device_name}; torch {torch.__version__}; "
      f"run on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
print("mode:", "FULL RUN (GPU)" if GPU else "SMOKE RUN (no GPU: the CPU recipe fine-tuned 4 epochs on the bundled sample)")


# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · The configuration
#
# A run is described by one frozen dataclass, `TrainConfig`; four presets cover the cases of the
# course. The two COCO presets are the paper's settings; the SynthPose ones compress the schedule
# because SynthPose figures are simpler than COCO people, and the CPU one is the recipe of section 7. Any field can be changed without editing
# code: `apply_overrides(cfg, ["epochs=3", "model.width=8"])`, or on the command line
# `hrnet-edu train --config NAME epochs=3 model.width=8`.

# %%
def config_table(configs):
    rows = [("preset", "model", "input", "heatmap", "σ", "batch", "epochs", "lr", "schedule", "amp GPU/CPU", "data")]
    for c in configs:
        schedule = "cosine" if c.lr_schedule == "cosine" else "×0.1 at " + ",".join(map(str, c.lr_steps))
        rows.append((c.name, f"W{c.model.width}", "{}×{}".format(*c.input_size), "{}×{}".format(*c.heatmap_size),
                     f"{c.sigma:g}", str(c.batch_size), str(c.epochs), f"{c.lr:g}", schedule,
                     f"{c.amp}/{'bf16' if c.cpu_bf16 else 'none'}",
                     os.path.basename(c.data_root)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))

config_table([get_config(name) for name in PRESETS])

# %% [markdown]
# The **smoke configuration** is the CPU preset `synthpose_w16_128x96_cpu` made short: its network
# (`W16_1UNIT`: width 16, one module per stage, one residual unit per branch), crops of 128×96, the
# 951 persons of the bundled sample, four epochs — starting (`init_from`) from the recipe's own run
# after its first epoch, so that a minute or two of training moves a working network (section 5 shows by how much). The
# **full configuration** is `synthpose_w32_256x192` — HRNet-W32, the paper's input size and the
# reference's sigma — shortened further for a lent GPU's few minutes.

# %%
SMOKE = apply_overrides(get_config("synthpose_w16_128x96_cpu"), [
    "data_root=data_samples/synthpose", "epochs=4", "lr=3e-4", "lr_schedule=step", "lr_steps=3",
    "warmup_epochs=0.5", "log_every=5", f"init_from={EARLY_CKPT}"])
SMOKE = dataclasses.replace(SMOKE, name="smoke_w16_128x96_cpu")
FULL_EPOCHS = int(os.environ.get("HRNET_EDU_NB07_EPOCHS", "20"))
FULL = apply_overrides(get_config("synthpose_w32_256x192"), [
    f"epochs={FULL_EPOCHS}", f"lr_steps={int(FULL_EPOCHS * 0.75)},{int(FULL_EPOCHS * 0.9)}", "val_every=2"])
config_table([SMOKE, FULL])
for c in (SMOKE, FULL):
    print(f"{c.name}: {count_parameters(build_model(c.model)):,} parameters")

# %%
RUN = FULL if GPU else SMOKE
RUN_DIR = os.path.join("..", "runs", "nb07_" + RUN.name)
print("this notebook trains:", RUN.name)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · The data
#
# The trainer reads COCO-format keypoint files through `CocoKeypoints` (notebook 06): each sample is
# one person's crop of the input size with its augmentation (scale, rotation, flip, half body), its
# K target heatmaps and per-joint weights. Here is one batch of the smoke configuration.

# %%
train_set, val_set = build_datasets(SMOKE)
train_set.set_epoch(0)
batch = torch.utils.data.default_collate([train_set[i] for i in range(8)])
for key in ("image", "target", "target_weight", "joints"):
    print(f"{key:14s} {tuple(batch[key].shape)}  {batch[key].dtype}")
print(f"{len(train_set)} training crops, {len(val_set)} validation crops")

# %%
fig, axes = plt.subplots(2, 4, figsize=(10, 5.6), layout="constrained")
for i, ax in enumerate(axes.flat):
    crop = denormalize(batch["image"][i])
    im = show_heatmap(ax, batch["target"][i].amax(0), crop)  # all K targets, maximum over joints; scale [0, 1]
    ax.set_title(f"crop {i}: {int((batch['target_weight'][i] > 0).sum())} joints", fontsize=10)
    ax.axis("off")
fig.colorbar(im, ax=axes, shrink=0.7, label="target (max over the 17 heatmaps)")
fig.suptitle("training crops (augmented) and their targets", fontsize=11)
plt.show()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · The loss
#
# The reference's loss (`JointsMSELoss`), per joint k with target weight w_k ∈ {0, 1}:
#
# $$L = \frac{1}{2}\,\frac{1}{N K H W}\sum_{n,k,y,x} w_{nk}^2\,\big(\hat h_{nk}(x,y) - h_{nk}(x,y)\big)^2 .$$
#
# The factor ½ is nowhere in the paper; it only rescales the loss (and the gradient) by a constant,
# which **Adam ignores** (its update m/√v is invariant to scaling the loss). We keep it so our loss
# values can be compared with the reference's logs. The unlabelled joints (w = 0) contribute
# nothing: the network is not pushed to predict "nothing" where a joint was simply not annotated.
#
# Online hard keypoint mining (`JointsOHKMLoss`, from CPN) keeps, per sample, only the 8 joints with
# the largest loss. Both are checked here against a from-scratch version on the untrained network's
# output.

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(JointsMSELoss.forward)

# %%
torch.manual_seed(0)
net = build_model(SMOKE.model)
with torch.no_grad():
    pred = net(batch["image"])                               # (N, K, H/4, W/4)
target, w = batch["target"], batch["target_weight"]          # (N, K, H/4, W/4), (N, K)

# from scratch: ½ · mean of w² (pred − target)²
scratch_mse = 0.5 * ((w[:, :, None, None] ** 2) * (pred - target) ** 2).mean()
# from scratch OHKM: per-joint loss, sort each row, keep the 8 largest, average
per_joint = 0.5 * ((w[:, :, None, None] * (pred - target)) ** 2).mean(dim=(2, 3))   # (N, K)
scratch_ohkm = per_joint.sort(dim=1, descending=True).values[:, :8].sum(1).div(8).mean()

mse, ohkm = JointsMSELoss()(pred, target, w), JointsOHKMLoss(topk=8)(pred, target, w)
assert torch.allclose(mse, scratch_mse, rtol=1e-5) and torch.allclose(ohkm, scratch_ohkm, rtol=1e-5)
print(f"untrained network: MSE loss {mse.item():.3e}, OHKM loss {ohkm.item():.3e}")
print(f"predicting all zeros would give {JointsMSELoss()(torch.zeros_like(target), target, w).item():.3e}")


# %% [markdown]
# The untrained network's output is almost zero (the reference initialises every convolution with
# N(0, 0.001)), so its loss is almost that of predicting all zeros: the loss starts at
# ½ · mean(w²h²), set by the Gaussian targets alone — about 6·10⁻³ here. A network that has learned
# nothing but "output zero" sits there; progress is measured by how far below it training goes.
#
# ## 4 · One training step, by hand
#
# `train_one_epoch` does, for each batch: forward → loss → backward → gradient norm → Adam step.
# Here is one step of it written out, on the CPU in fp32, and then the library's version of the same
# step from the same starting point — they agree exactly. (The CPU recipe runs its steps in bf16
# with channels-last, appendix A1; for this comparison the library runs in fp32 too:
# `cpu_bf16=False, cpu_channels_last=False`.)

# %%
def one_step_by_hand(seed=0):
    torch.manual_seed(seed)
    model = build_model(SMOKE.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=SMOKE.lr)
    model.train()
    heatmaps = model(batch["image"])                                  # forward: (N, K, H/4, W/4)
    loss = JointsMSELoss()(heatmaps, batch["target"], batch["target_weight"])
    optimizer.zero_grad()
    loss.backward()                                                   # ∂L/∂θ
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))   # ‖∂L/∂θ‖₂ (logged)
    optimizer.step()                                                  # θ ← θ − lr · m̂ / (√v̂ + ε)
    return loss.item(), grad_norm.item(), model

loss0, norm0, by_hand = one_step_by_hand()
torch.manual_seed(0)
library = build_model(SMOKE.model)
opt = torch.optim.Adam(library.parameters(), lr=SMOKE.lr)
FP32 = dataclasses.replace(SMOKE, cpu_bf16=False, cpu_channels_last=False)
record = train_one_epoch(library, [batch], build_criterion(FP32), opt, torch.amp.GradScaler("cpu", enabled=False),
                         FP32, torch.device("cpu"), 0, DistInfo(), progress=False)
same = all(torch.equal(a, b) for a, b in zip(by_hand.state_dict().values(), library.state_dict().values()))
print(f"loss {loss0:.4e}, gradient norm {norm0:.4e}; library step: loss {record['loss']:.4e}; "
      f"identical weights after the step: {same}")
assert same

# %% [markdown]
# The library's loop does this for every batch of an epoch. Its extra branches (mixed precision,
# channels-last, the gradient scaler) are what a GPU run switches on; appendix A1 explains them.

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(train_one_epoch)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5 · The run
#
# `train(cfg, out_dir)` ties it together: Adam with a learning rate set at every step
# (`train.learning_rate_factor`: an optional linear warm-up, then the paper's ×0.1 steps or a cosine
# decay), one epoch at a time, validation
# (COCO AP with the flip test through `hrnet_edu.evaluate`) every `val_every` epochs, a checkpoint
# `last.pt` after every epoch and `best.pt` on a new best AP, one JSON line per logged step and per
# epoch in `log.jsonl`.
#
# To watch the predictions improve we train in **segments** — a few epochs, look, resume, look
# again. Resuming continues exactly where the checkpoint left off (appendix A2 proves it), so the
# segments add up to one uninterrupted run. (That needs a schedule that does not depend on the run's
# total length: the smoke run uses the step schedule, ×0.1 for its last epoch. A cosine schedule is
# stretched over `epochs`, so cutting a cosine run into segments of different `epochs` would change it.)

# %%
# Four validation crops to watch during training.
WATCH = [0, 3, 6, 9]
watch_set = build_datasets(RUN)[1]
watch = torch.utils.data.default_collate([watch_set[i] for i in WATCH])

def predict_watch(model):
    model.eval()
    with torch.no_grad():
        heatmaps = model(watch["image"].to(next(model.parameters()).device)).float().cpu()
    coords, conf = decode_heatmaps(heatmaps)          # heatmap pixels
    return 4 * coords.numpy(), conf.numpy()           # input-crop pixels (x_in = 4 · x_hm)

segments = [1, max(2, RUN.epochs // 3), RUN.epochs] if RUN.epochs > 2 else [RUN.epochs]
segments = sorted(set(segments))

# %% tags=["nbval-ignore-output"]
import shutil

shutil.rmtree(RUN_DIR, ignore_errors=True)
snapshots, start = {}, time.perf_counter()
torch.manual_seed(0)
first = build_model(RUN.model).to("cuda" if GPU else "cpu")  # the initial weights, or the fine-tuning start
if RUN.init_from:
    first.load_state_dict(load_checkpoint_state(RUN.init_from)["model"])
snapshots["start (recipe, epoch 1)" if RUN.init_from else "epoch 0"] = predict_watch(first)
for i, end in enumerate(segments):
    summary = train(dataclasses.replace(RUN, epochs=end), RUN_DIR, resume=i > 0, progress=False)
    snapshots[f"epoch {end}"] = predict_watch(summary["model"])
    last = summary["history"][-1]
    print(f"epoch {end:3d}: loss {last['loss']:.3e}, {last['images_per_s']:.0f} img/s, "
          f"val AP {summary['last_val']['ap'] if summary['last_val'] else float('nan'):.3f}")
wall = time.perf_counter() - start
print(f"wall time {wall:.0f} s on {device_name}; peak GPU memory "
      + (f"{summary['peak_memory_gb']:.2f} GiB" if GPU else "n/a (CPU)"))

# %% tags=["nbval-ignore-output"]
loss_figure(read_log(os.path.join(RUN_DIR, "log.jsonl")))

# %% tags=["nbval-ignore-output"]
state = load_checkpoint_state(os.path.join(RUN_DIR, "last.pt"))
print("epoch  loss       lr       |∇| mean   img/s    AP     AP50   AR")
for r in state["metrics"]:
    v = r.get("val")
    ap = f"{v['ap']:.3f}  {v['ap50']:.3f}  {v['ar']:.3f}" if v else "-"
    print(f"{r['epoch']:5d}  {r['loss']:.3e}  {r['lr']:.1e}  {r['grad_norm_mean']:.2e}  "
          f"{r['images_per_s']:7.1f}  {ap}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### Predictions improving over time
#
# The first row is the **ground truth**; each further row is one moment of the run (first: the
# weights it starts from — in smoke mode the recipe's run after its first epoch), each column one
# validation crop; the dots are the decoded heatmap maxima with confidence > 0.2, and each panel's
# title gives the mean distance to the ground truth over the labelled joints (crop pixels). A minute
# of smoke training changes these numbers by little, and the rows look alike; the difference a
# student can see is the one to the last row. In smoke mode the last row is the checkpoint committed under
# `data_samples/checkpoints/` — the CPU recipe trained for its full length (section 7), whose record
# says how well it does:

# %%
with open(CKPT.replace(".pt", ".json")) as f:
    record = json.load(f)
print(f"{record['config']}: {record['epochs']} epochs on {record['device']}, {record['wall_time_s'] / 60:.0f} min")
print(f"val AP (flip test, {record['eval']['decode']} decoding):", {k: round(v, 3) for k, v in record["val"].items()})

# %% tags=["nbval-ignore-output"]
if not GPU and os.path.exists(CKPT):  # the smoke run is too short to show much: add the committed CPU run
    snapshots["committed CPU checkpoint"] = predict_watch(load_checkpoint(CKPT)[0])
truth = watch["joints"].numpy()  # (4, K, 3) crop px + visibility: the ground truth, drawn in the first row
rows = {"ground truth": (truth[..., :2], truth[..., 2]), **snapshots}
fig, axes = plt.subplots(len(rows), len(WATCH), figsize=(1.8 * len(WATCH), 2.2 * len(rows)))
for row, (label, (coords, conf)) in zip(np.atleast_2d(axes), rows.items()):
    for j, ax in enumerate(row):
        ax.imshow(denormalize(watch["image"][j]))
        draw_pose(ax, coords[j], conf[j] > 0.2, spec=RUN.spec, radius=2, linewidth=1.5)
        labelled = truth[j, :, 2] > 0  # mean distance to the ground truth over the labelled joints
        err = np.linalg.norm(coords[j] - truth[j, :, :2], axis=-1)[labelled].mean()
        ax.set_title(label if label == "ground truth" else f"{label}\nmean error {err:.1f} px", fontsize=8)
        ax.axis("off")
plt.tight_layout()

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6 · What changes for real COCO
#
# Nothing in the code: point a COCO preset at a folder with
# `annotations/person_keypoints_{train,val}2017.json`, `train2017/` and `val2017/`.

# %%
config_table([get_config("coco_w32_256x192"), get_config("coco_w48_384x288"), get_config("synthpose_w32_256x192")])
coco = get_config("coco_w32_256x192")
print(f"\nCOCO W32: Adam lr {coco.lr:g}, ×{coco.lr_factor:g} at epochs {coco.lr_steps}, {coco.epochs} epochs, "
      f"batch {coco.batch_size}/GPU, weight decay {coco.weight_decay:g}, loss '{coco.loss}'")
print("augmentation:", coco.augment)

# %% [markdown]
# What does change is the scale: COCO train2017 has about 150,000 person instances, about 8× the
# persons of a 10k-image SynthPose set (the recipe's 20,000 images hold 37,476 persons, 1.9 per image), and the paper trains 210 epochs of it with 4 GPUs — about 30 million crops, 50×
# what the CPU recipe of section 7 sees. Real people are also harder than SynthPose figures:
# occlusion by other people, clothing, truncation, motion blur; the paper's W32 reaches AP 0.744 on val2017 with detected boxes.
# Practical points for a real run:
#
# - Validate less often (`val_every=10`): COCO val2017 has 6,352 person instances with keypoints.
# - Evaluate with a person detector's boxes for the paper's numbers:
#   `hrnet-edu evaluate --config coco_w32_256x192 --checkpoint runs/coco_w32/best.pt --boxes DETECTIONS.json`.
# - The published checkpoints load into the same model (`checkpoints.load_reference_weights`), to fine-tune
#   or to compare with.
# - The engineering of such a run — mixed precision, throughput and the data loader, resuming a
#   killed run, several GPUs — is in Appendices A, B and C.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 7 · What a CPU-hour buys: the recipe behind the committed checkpoint (deeper)
#
# No GPU was available to build this course, so the network that notebooks 08 and 09 open was
# trained on the same 2-core CPU. Which recipe gets the most out of a CPU-hour was measured, not
# guessed: `benchmarks/bench_cpu_recipes.py` trains candidate recipes for a few minutes each (one
# compute thread and one data worker, validation on the bundled 150 images after every epoch) and
# writes every validation to `benchmarks/results/cpu_recipes.csv`. The recipes differ from a common
# starting point — W8 at 128×96, 5 epochs of 9,600 generated persons, σ = 2 with sub-pixel targets and
# DARK decoding, cosine schedule — in one thing each: the network (W8, W16, W16 and W32 with one
# residual unit per branch), the input size, the learning rate, σ with the reference's targets and
# decoding, the batch size, or the data (the bundled 951 persons repeated instead of distinct ones).
# The chosen recipe, `synthpose_w16_128x96_cpu`, was then run once for 15 epochs on 37,476 generated
# persons, in fp32 (the recipe has since switched its CPU steps to bf16, appendix A1); its per-epoch
# validation is in the checkpoint's JSON record.

# %%
import csv

with open(os.path.join("..", "benchmarks", "results", "cpu_recipes.csv")) as f:
    study = list(csv.DictReader(f))
with open(os.path.join("..", "benchmarks", "results", "cpu_recipes.json")) as f:
    print("study measured on:", json.load(f)["machine"])
curves = {}
for row in study:
    curves.setdefault(row["recipe"], []).append(
        (float(row["train_minutes"]), int(row["samples"]), float(row["ap"]), float(row["ap75"])))
final = [(h["train_minutes"], h["samples"], h["ap"], h["ap75"]) for h in record["history"]]
print(f"{'recipe':26} {'crops seen':>10} {'CPU min':>8} {'AP':>6} {'AP75':>6}")
for name, points in [*curves.items(), (record["config"] + " (15 epochs)", final)]:
    minutes, samples, ap, ap75 = points[-1]
    print(f"{name:26} {samples:10,d} {minutes:8.1f} {ap:6.3f} {ap75:6.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for ax, column, label in ((axes[0], 2, "AP"), (axes[1], 3, "AP75")):
    for name, points in curves.items():
        ax.plot([p[0] for p in points], [p[column] for p in points], "o-", ms=3, lw=1, label=name)
    ax.plot([p[0] for p in final], [p[column] for p in final], "k.-", lw=2.5, label=record["config"])
    ax.set(xscale="log", xlabel="training CPU minutes (validation excluded)", ylabel=f"val {label}",
           title=f"{label} on the bundled val split", ylim=(0, 1))
    ax.grid(alpha=0.3)
_ = axes[1].legend(fontsize=8, loc="upper left")

# %% [markdown]
# What the study says (each number is in the table above; the short runs are single runs of a few
# minutes, so differences of a few AP points are within their noise):
#
# - **The network.** At three to five CPU minutes, W16 with one residual unit per branch
#   (`w16_1unit`) is ahead of the cheaper W8 (`base`, which saw 2.5× more crops in that time), of
#   full W16 (two units per branch and two stage-1 bottlenecks) and of a one-unit W32: a wider network
#   learns more per crop, a deeper or wider one costs more per crop than it gains.
# - **The input size.** At 256×192 a W8 costs three to four times as much per crop and is still near
#   AP 0 after three minutes (`w8_256x192`): on a CPU budget, resolution is bought last.
# - **The learning rate.** Adam at 5·10⁻³ is behind 2·10⁻³ (`w16_1unit_lr5e-3`).
# - **σ and sub-pixel targets.** The reference's integer-centred targets with σ = 1.5 and the ¼-pixel
#   shift reach about the same AP as σ = 2 with sub-pixel targets and DARK, but a lower AP75: the
#   unbiased targets buy precision, which is what AP75 measures.
# - **The data.** The same number of crops drawn from the bundled 951 persons (20 passes) instead of
#   9,600 distinct persons (2 passes) ends far lower (`w16_1unit_data951`): distinct figures teach
#   more than repeated ones, which is why the recipe trains on 20,000 generated images.
# - **The long run.** The chosen recipe is ahead of every short run after its first epoch and is still
#   climbing, more and more slowly, in its last epochs (the black curve): a longer run would buy a
#   little more. Its final AP and AP75 are the committed checkpoint's.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Where these outputs come from
#
# The outputs stored in this notebook were produced by the machine named at the top (`device: …`). If it
# says **SMOKE RUN**, no GPU was available when the notebook was last executed: the run of section 5
# is the CPU recipe's network fine-tuned for four epochs of the bundled sample, and its AP is that of a small network
# on 128×96 crops, not of HRNet-W32. The full run is reproduced with one command on a GPU machine: `bash benchmarks/gpu_run.sh`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - The recipe: Adam, learning rate 10⁻³ with steps (or cosine), MSE between predicted and target
#   heatmaps (with the reference's factor ½, which Adam ignores), target weights for unlabelled joints.
# - One training step = forward, loss, backward, Adam step — checked against a step written by hand.
# - Watch the validation AP, not only the loss.
# - On 2 CPU cores the recipe network (`W16_1UNIT`, 128×96) learns a usable pose estimator (section
#   7, deeper); the committed outputs of this notebook are CPU runs.
# - The engineering (mixed precision, compile, resuming, `torchrun`) is in appendices A1 and A2.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **The ½ and Adam.** Train the smoke configuration twice, once with the loss multiplied by 2
#    (subclass `JointsMSELoss`). Compare the step losses and the final weights. Why are the weights
#    (nearly) identical? Would they be with SGD?
# 2. **Hard keypoints.** Re-run section 5 with `loss=ohkm`. Which joints' AP changes most
#    (`hrnet_edu.analysis`)? Why does the reference use OHKM only in some of its configurations?
# 3. **Sigma.** Train the CPU preset with `sigma=1` and `sigma=2.5` (`hrnet-edu train --config
#    synthpose_w16_128x96_cpu sigma=1 unbiased_targets=false val_decode=shift`). Which trains faster at the start, and which ends with the higher
#    AP75? Relate it to the decoding error of notebook 01.

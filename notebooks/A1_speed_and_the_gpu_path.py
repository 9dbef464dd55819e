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
# # A1 · Speed: mixed precision, channels-last, `torch.compile`, and the GPU data path
#
# **Time:** about 35 min of reading (the exercises extra; their solutions say what each costs) · **Needs:** notebooks 06 and 07 · course map and glossary: README, `docs/glossary.md`.
#
# *Appendix: the engineering track.* The core path (notebooks 00–10) teaches what HRNet computes,
# how it is trained and how it is judged. The appendices teach what makes the same code fast and
# safe on real machines; nothing in them changes a number of the paper. This one is about speed:
# the same training step of notebook 07, section 4, run in less time — and checked to train the
# same network.
#
# **What you will learn**
# - what the four switches of a training step do: autocast (bf16 or fp16), the gradient scaler,
#   the channels-last memory layout and `torch.compile`; and what each buys on a CPU, measured;
# - how the CPU recipe decides them on *your* computer (`hrnet_edu.cpu_settings`), and what that
#   choice is worth on a CPU with and without native bf16 arithmetic;
# - whether the faster step costs accuracy;
# - when the data loader is the bottleneck, and the GPU data path that warps and encodes a whole
#   batch on the device — checked equal to the per-sample path of notebook 06.
#
# The library code lives in `hrnet_edu/train.py` (the step), `hrnet_edu/cpu_settings.py` (the
# choice) and `hrnet_edu/data/transforms.py` (`GpuBatchTransform`).

# %%
# %matplotlib inline
import json
import os
import time

import matplotlib.pyplot as plt
import torch

from hrnet_edu import cpu_settings, evidence
from hrnet_edu.configs import get_config
from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.data.transforms import GpuBatchTransform, gpu_collate
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import COCO17
from hrnet_edu.notebook_utils import show_source

# %%
torch.manual_seed(0)
torch.set_num_threads(1)  # one compute thread, as the CPU recipe runs on 2 cores (notebook 07, section 1)
RESULTS = os.path.join("..", "benchmarks", "results")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · One training step, four switches
#
# On a GPU the training step of notebook 07 runs under `torch.autocast`: convolutions and matrix
# products compute in a 16-bit format while the weights, the optimizer's moments and the loss stay
# in fp32. **bf16** keeps fp32's exponent range (8 bits) with fewer mantissa bits, so gradients
# underflow no sooner than in fp32; **fp16** has more mantissa but a narrow range, so a `GradScaler` multiplies the
# loss by a large factor before the backward pass — small gradients stay representable — and
# divides the gradients by it before the gradient norm and the Adam step, skipping a step whose
# gradients overflowed. **Channels-last** stores an image batch as (N, H, W, C) instead of
# (N, C, H, W) in memory (the tensor's shape is unchanged); convolution kernels on tensor cores,
# and oneDNN's bf16 kernels on a CPU, are written for it. **`torch.compile`** traces the model
# into a graph and generates fused kernels for it, paying a compile time at the first steps.
#
# Here is the part of the library's training step where they act:

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
from hrnet_edu.train import train_step

show_source(train_step)

# %% [markdown]
# `benchmarks/bench_train.py` measures fp32 against bf16 and fp16 autocast with channels-last on a
# GPU, and `torch.compile` too when given `--compile` (`benchmarks/gpu_run.sh` runs it without; no GPU
# was lent to the sessions that built this course, so that table is not in the repository yet). The same switches exist for a CPU (`cpu_bf16`, `cpu_channels_last` in `TrainConfig`), and
# `benchmarks/bench_cpu_train_step.py` measured them for the CPU recipe's step (one fixed batch, so
# the data pipeline is not counted; variants interleaved in rounds; committed in
# `benchmarks/results/cpu_train_step.json`):

# %%
with open(os.path.join(RESULTS, "cpu_train_step.json")) as f:
    step_bench = json.load(f)
print(f"{step_bench['what']}; {step_bench['date']}, torch {step_bench['torch']}")
print(f"{'variant':26} {'median step s':>13} {'img/s':>7} {'× eager':>8} {'rounds, s (min–max)':>20} "
      f"{'first 2 steps s':>15} {'loss after':>11}")
for r in step_bench["results"]:
    print(f"{r['variant']:26} {r['median_step_s']:13.3f} {r['images_per_s']:7.1f} {r['speedup_vs_eager']:8.2f} "
          f"{min(r['round_step_s']):9.3f}–{max(r['round_step_s']):.3f}   {r['first_two_steps_s']:15.1f} "
          f"{r['loss_after']:11.3e}")

# %%
fig, (ax_speed, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
names = [r["variant"].replace("_", " ") for r in step_bench["results"]]
ax_speed.barh(names, [r["images_per_s"] for r in step_bench["results"]], color="tab:blue")
ax_speed.set_xlabel("training images / s (median of the rounds)")
ax_speed.invert_yaxis()
ax_loss.barh(names, [r["loss_after"] * 1e4 for r in step_bench["results"]], color="tab:gray")
ax_loss.set_xlabel("loss after the benchmark's steps (×10⁻⁴)")
fig.suptitle(f"The CPU recipe's training step, one switch at a time ({step_bench['date']})", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# On this project's CPU, which has native bf16 instructions (AVX512-BF16), bf16 autocast with
# channels-last made the step about twice as fast as fp32; `torch.compile`, channels-last alone and
# bf16 alone each gained less, and compiling on top of bf16 + channels-last gained nothing for its
# compile time (the first-two-steps column). Every variant ends at about the same loss (the last
# column): they train the same network. Two compute threads speed up this benchmark, which loads no
# data; in a real run the data-loading worker needs the second core.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Your computer decides
#
# On a CPU *without* native bf16 the same switches make the step several times slower: oneDNN,
# PyTorch's CPU backend, emulates bf16 there. So the CPU recipe does not fix them; its preset says
# `auto`, and when training starts `cpu_settings.choose` decides on the machine it runs on: no
# native bf16 reported by PyTorch → fp32 without further ado; native bf16 reported (or a PyTorch that
# cannot tell) → a probe of a few real training steps, fp32 against bf16 + channels-last, keeps
# bf16 only if it is at least 5 % faster. It also splits the usable cores between compute threads
# and data-loading workers:

# %%
cpu_preset = get_config("synthpose_w16_128x96_cpu")
print(f"the CPU preset: cpu_bf16={cpu_preset.cpu_bf16}, cpu_channels_last={cpu_preset.cpu_channels_last}, "
      f"cpu_threads={cpu_preset.cpu_threads}, workers={cpu_preset.workers}")
print(f"{'usable cores':>12} {'compute threads':>16} {'loader workers':>15}")
for cores in (1, 2, 4, 8, 16):
    threads, workers = cpu_settings.split_cores(cores)
    assert threads + workers == cores or cores == 1
    print(f"{cores:12d} {threads:16d} {workers:15d}")

# %% [markdown]
# On the computer that runs this notebook (its output is not checked: it depends on the machine).
# `probe=False` skips the timed probe, which `hrnet-edu train` runs; the run's first lines and a
# `cpu_settings` record in its `log.jsonl` say what it chose and why:

# %% tags=["nbval-ignore-output"]
native, what = cpu_settings.native_bf16()
print(f"native bf16: {native} ({what}); usable cores: {cpu_settings.usable_cores()}")
print("\n".join(cpu_settings.choose(cpu_preset, "cpu", probe=False).lines()))

# %% [markdown]
# What the choice is worth: one epoch of the demo's training, timed two ways — the whole `hrnet-edu
# train` process (start-up, data loading and probe included: what you wait for) and the epoch's own
# images per second — on this project's 2-core machine as it is and with oneDNN limited to AVX2
# (`ONEDNN_MAX_CPU_ISA=AVX2`, the instruction set of a typical laptop without native bf16;
# `benchmarks/bench_cpu_choice.py`, committed in `benchmarks/results/cpu_choice.json`):

# %%
with open(os.path.join(RESULTS, "cpu_choice.json")) as f:
    choice = json.load(f)
print(f"{choice['command']}\n{choice['date']}, torch {choice['torch']}, {choice['cpu']}, "
      f"{choice['usable_cores']} cores\n")
print(f"{'oneDNN':7} {'setting':7} {'img/s, whole process':>20} {'img/s, epoch':>13} {'chose':>21}")
runs = choice["median"]
for key, run in runs.items():
    isa, setting = key.split("/")
    chosen = "bf16 + channels-last" if run["chosen"]["cpu_bf16"] else "fp32"
    print(f"{isa:7} {setting:7} {run['process_images_per_s']:20.1f} {run['epoch_images_per_s']:13.1f} {chosen:>21}")
for isa in ("native", "avx2"):
    process, epoch = (runs[f"{isa}/auto"][k] / runs[f"{isa}/fp32"][k]
                      for k in ("process_images_per_s", "epoch_images_per_s"))
    print(f"{isa}: auto vs fp32, images/s: {process:.2f}× for the whole process, {epoch:.2f}× within the epoch")
forced = runs["avx2/fp32"]["process_images_per_s"] / runs["avx2/bf16"]["process_images_per_s"]
print(f"avx2: bf16 forced is {forced:.1f}× slower than fp32 for the whole process")
print("why, under AVX2:", choice["median"]["avx2/auto"]["chosen"]["reasons"]["precision"])

# %% [markdown]
# With native bf16 the automatic choice trains about 1.5× as many images per second as fp32 over the
# whole process (about 1.9× within the epoch, where start-up and the probe do not count); limited to
# AVX2 it falls back to fp32, a few percent slower than fp32 set by hand — the probe costs its
# seconds — where forcing bf16 would have been about 7× slower. (A real laptop without native bf16
# runs no probe at all: PyTorch says so, and fp32 is chosen at once.) Any explicit value on the
# command line (`cpu_bf16=false`, `cpu_threads=3`) wins and is never second-guessed.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Does the faster step cost accuracy?
#
# One epoch of the recipe trained both ways (`hrnet_edu.evidence`, runs `hrnet` and `hrnet_fp32`,
# seed 0; configs and logs in `benchmarks/results/paper_evidence/`):

# %%
epoch_runs = {r["run"]: r for r in evidence.load_runs() if r["seed"] == 0 and r["run"] in ("hrnet", "hrnet_fp32")}
for name, what in (("hrnet_fp32", "fp32"), ("hrnet", "bf16 + channels-last")):
    r = epoch_runs[name]
    print(f"one epoch, {what:20}: {r['train_minutes']:.1f} CPU min at {r['images_per_s']:.0f} img/s -> AP {r['ap']:.3f}")

# %% [markdown]
# The bf16 epoch took about 60 % of the fp32 one's time and did not end lower. One seed each: whether
# its 0.02 AP lead is more than what a different seed would move, this pair cannot say (notebook 01,
# section 6, reports seeds of one setting that differ by up to 0.052 AP after one epoch).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · The data loader must keep up: the GPU data path
#
# `workers` data-loading processes decode JPEGs and warp crops on the CPU while the GPU trains;
# watch `img/s` in the log: if it does not grow with the batch size, the loader is the bottleneck.
# Decoding, warping and target generation cost about a millisecond or two per sample on one core
# (the table below); a GPU that trains thousands of crops per second needs many such cores. `CocoKeypoints(raw=True)` stops after the cheap
# part — decode the JPEG, draw the augmentation, cut out only the pixels the crop will read — and
# `GpuBatchTransform` does the float conversion, the warp and the targets for a whole batch on the
# device (`TrainConfig.warp_on_device`). On the CPU both paths must give the same samples: the same
# targets, weights and joints exactly, and the same pixels up to two small differences of the
# per-sample path, which warps with OpenCV: its rounding of the crop to uint8 (≤ ½ grey level) and
# its sample positions rounded to 1/32 px (≤ 1/64 px times the local image gradient):

# %%
ROOT = "../data_samples/synthpose"
CODEC = HeatmapCodec((256, 192), stride=4, sigma=2.0)  # the paper's 256×192 crops, as in notebook 06
ANN = f"{ROOT}/annotations/person_keypoints_train.json"
train = CocoKeypoints(ANN, f"{ROOT}/images", codec=CODEC, spec=COCO17, train=True, seed=0)
raw = CocoKeypoints(ANN, f"{ROOT}/images", codec=CODEC, spec=COCO17, train=True, seed=0, raw=True)
batch = gpu_collate([raw[i] for i in range(8)])
on_device = GpuBatchTransform(CODEC, device="cpu")(batch)  # device="cuda" on a GPU machine
cpu = {key: torch.stack([train[i][key] for i in range(8)]) for key in ("image", "target", "target_weight", "joints")}
for key in ("target", "target_weight", "joints"):
    assert torch.equal(on_device[key], cpu[key]), key
std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)  # ImageNet std: normalised units → grey levels
levels = (on_device["image"] - cpu["image"]).abs() * 255 * std
assert levels.max() <= 2 and levels.mean() <= 0.5  # ½ level of rounding + the 1/64-px term on edges
print("raw batch", tuple(batch["raw_image"].shape), batch["raw_image"].dtype, "→ image", tuple(on_device["image"].shape),
      "target", tuple(on_device["target"].shape))
print(f"GPU path (run on the CPU here) vs CPU samples: targets, weights, joints equal; pixels differ by "
      f"≤ {levels.max():.2f} grey levels (mean {levels.mean():.2f})")


# %% [markdown]
# What each part costs on the machine that runs this notebook (one torch thread; OpenCV's own
# threads are not limited; a GPU, if there is one, for the batch transform, timed after a warm-up). These timings vary from run to run and machine to machine, so nbval does
# not compare them:

# %% tags=["nbval-ignore-output"]
def per_sample_ms(fn, n=24):
    fn(0)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return 1000 * (time.perf_counter() - t) / n


decode_ms = per_sample_ms(lambda i: load_image(train.record(i)["path"]))
raw_ms = per_sample_ms(lambda i: raw[i])
full_ms = per_sample_ms(lambda i: train[i])
gpu = GpuBatchTransform(CODEC, device="cuda" if torch.cuda.is_available() else "cpu")
batch32 = gpu_collate([raw[i] for i in range(32)])


def synchronize():  # CUDA runs asynchronously: wait for the work before reading the clock
    if gpu.device.type == "cuda":
        torch.cuda.synchronize()


gpu(batch32)  # warm-up: kernels loaded, memory allocated
synchronize()
t = time.perf_counter()
gpu(batch32)
synchronize()
gpu_ms = 1000 * (time.perf_counter() - t) / 32
print(f"{'step (1 torch thread)':34} {'ms / sample':>11}")
print(f"{'decode JPEG (256×256)':34} {decode_ms:11.2f}")
print(f"{'raw sample (decode + draw + cut)':34} {raw_ms:11.2f}")
print(f"{'full CPU sample':34} {full_ms:11.2f}")
print(f"{'batch warp + targets on ' + gpu.device.type:34} {gpu_ms:11.2f}")

# %% [markdown]
# On a CPU the batch path does not pay: a raw sample plus its share of the batch transform cost more
# than a full CPU sample (the rows above) — the same work on the same cores, done in float where the
# per-sample path warps 8-bit pixels with OpenCV. On a GPU it
# takes the warp and the targets off the loader's workers, which then only decode and cut (the "raw
# sample" row). What that buys on a GPU has not been measured here (no GPU was lent to the sessions
# that built this course).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - **bf16** keeps fp32's range (no scaler needed); **fp16** needs a `GradScaler`; weights, Adam's
#   moments and the loss stay fp32 either way.
# - **Channels-last** changes the memory layout, not the shape; **`torch.compile`** pays a compile
#   time for fused kernels.
# - On a CPU, bf16 is a win only with native bf16 arithmetic: the recipe decides on the machine it
#   runs on (`auto`), says what it chose and why, and an explicit value wins.
# - The faster step trains the same network (the same loss; one epoch's AP no lower).
# - If `img/s` does not grow with the batch, the loader is the bottleneck: move the warp and the
#   targets onto the GPU (`warp_on_device`), checked equal to the per-sample path.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **Your machine's choice.** Run the probe that `hrnet-edu train` runs
#    (`cpu_settings.choose(cfg, "cpu")`, with `probe=True`) on your computer, then in a subprocess with
#    `ONEDNN_MAX_CPU_ISA=AVX2` set in its environment. What does each choose, and by how much did the
#    probe find the loser slower?
# 2. **Where the time goes.** Profile one fp32 and one bf16 + channels-last training step of the CPU
#    recipe's network with `torch.profiler` (batch 16, after a warm-up step). Which operators gain
#    most from bf16 + channels-last, and which gain least?
# 3. **Is the loader the bottleneck?** Measure the images per second a `DataLoader` over the SynthPose
#    training set delivers with 0, 1 and 2 workers (no training), and compare with the training step's
#    images per second of section 1. On 2 cores, which one limits a real run?

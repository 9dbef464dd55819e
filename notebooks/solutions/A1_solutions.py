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
# # Solutions · A1 Speed: mixed precision, channels-last, `torch.compile`, and the GPU data path
#
# Worked solutions to the three exercises of appendix A1 (`../A1_speed_and_the_gpu_path.ipynb`). Try each
# exercise first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that
# needs training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for
# CI (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only that it
# runs. The measured numbers depend on the machine, so their cells are not compared by nbval; the
# asserts state what holds on every machine.

# %%
import json
import os
import platform
import subprocess
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from hrnet_edu import cpu_settings
from hrnet_edu.configs import get_config
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.losses import JointsMSELoss
from hrnet_edu.model import build_model

torch.manual_seed(0)
CFG = get_config("synthpose_w16_128x96_cpu")
ROOT = "../../data_samples/synthpose"
X86 = platform.machine().lower() in ("x86_64", "amd64")

# %% [markdown]
# ## Exercise 1 · Your machine's choice — ★ · ≈ 0.2 min
#
# `choose` with `probe=True` is what `hrnet-edu train` runs. The AVX2 case must run in a *new*
# process: oneDNN reads `ONEDNN_MAX_CPU_ISA` once, when it first runs a kernel, so setting the
# variable inside this kernel would change nothing.

# %% tags=["nbval-ignore-output"]
here = cpu_settings.choose(CFG, "cpu", probe=True)
print("this computer:\n  " + "\n  ".join(here.lines()), "\n  probe, best step ms:", here.probe_ms)

child = ("import json; from hrnet_edu import cpu_settings; from hrnet_edu.configs import get_config\n"
         "s = cpu_settings.choose(get_config('synthpose_w16_128x96_cpu'), 'cpu', probe=True)\n"
         "print(json.dumps({'bf16': s.bf16, 'lines': s.lines(), 'probe_ms': s.probe_ms}))")
done = subprocess.run([sys.executable, "-c", child], env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
                      capture_output=True, text=True, check=True)
avx2 = json.loads(done.stdout.strip().splitlines()[-1])
print("with ONEDNN_MAX_CPU_ISA=AVX2:\n  " + "\n  ".join(avx2["lines"]), "\n  probe, best step ms:", avx2["probe_ms"])

# %% [markdown]
# Without native bf16 the choice is fp32 without a probe. With it, the probe times both candidates
# and keeps bf16 + channels-last only if it is at least 5 % faster: in the run shown above it found
# fp32 about twice as slow natively, and under AVX2 the emulated bf16 step several times slower, so
# the probe dropped it after its first step. What holds on every x86 machine: limited to AVX2, bf16
# is never chosen, because without native bf16 it is never faster.

# %%
native, _ = cpu_settings.native_bf16()
assert here.bf16 is False or native is not False, "bf16 chosen on a CPU without native bf16"
if X86:
    assert avx2["bf16"] is False, avx2["lines"]
print("checked: bf16 only with native bf16;", "never under AVX2" if X86 else "(not an x86 CPU: no AVX2 case)")

# %% [markdown]
# ## Exercise 2 · Where the time goes — ★★ · ≈ 0.1 min
#
# One warm-up step, then one profiled step, for each variant; the table lists the operators with the
# most self CPU time (time in the operator itself, not in what it calls).

# %% tags=["nbval-ignore-output"]
def profiled_step(bf16: bool, batch: int = 16, steps: int = 3) -> tuple[dict[str, float], dict[str, float]]:
    """({operator: self CPU ms}, {operator: calls}) per training step of the CPU recipe's network,
    averaged over ``steps`` steps (one step alone is at the mercy of whatever else the machine does)."""
    torch.manual_seed(0)
    model = build_model(CFG.model).train()
    memory_format = torch.channels_last if bf16 else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = JointsMSELoss(use_target_weight=True)
    images = torch.randn(batch, 3, *CFG.input_size).contiguous(memory_format=memory_format)
    target, weight = torch.rand(batch, 17, *CFG.heatmap_size), torch.ones(batch, 17, 1)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(images)
        loss = criterion(out.float(), target, weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up: oneDNN picks and caches its kernels
    with profile(activities=[ProfilerActivity.CPU]) as prof:  # (its C++ tracer logs start/stop lines)
        for _ in range(steps):
            step()
    events = prof.key_averages()
    return ({e.key: e.self_cpu_time_total / 1000 / steps for e in events}, {e.key: e.count / steps for e in events})


(fp32_ms, fp32_calls), (bf16_ms, bf16_calls) = profiled_step(False), profiled_step(True)

# %% tags=["nbval-ignore-output"]
total32, total16 = sum(fp32_ms.values()), sum(bf16_ms.values())
print(f"self CPU time of one step: fp32 {total32:.0f} ms, bf16 + channels-last {total16:.0f} ms\n")
print(f"{'operator (top 10 of the fp32 step)':40} {'fp32 ms':>8} {'share':>6} {'bf16 ms':>8} {'speed-up':>8}")
for key, value in sorted(fp32_ms.items(), key=lambda kv: -kv[1])[:10]:
    other = bf16_ms.get(key, 0.0)
    speedup = f"{value / other:7.1f}×" if other else "      –"
    print(f"{key:40} {value:8.1f} {100 * value / total32:5.1f}% {other:8.1f} {speedup}")
casts = "aten::_to_copy"
print(f"\n{casts} (a dtype conversion): {fp32_calls.get(casts, 0):.0f} calls in the fp32 step, "
      f"{bf16_calls.get(casts, 0):.0f} in the bf16 one")

# %% [markdown]
# The convolutions — forward (`mkldnn_convolution`) and backward (`convolution_backward`) — take most
# of the fp32 step, so they decide the step's speed. On this project's CPU, which has native bf16,
# the stored run shows them about 2–3× faster with bf16 + channels-last, and BatchNorm's forward pass
# faster still (it reads and writes half the bytes); the operators that only move a little memory —
# Adam's update, BatchNorm's backward pass, the ReLUs' `threshold_backward`, the additions — gain
# least. What bf16 adds is its own work: casts between fp32 and bf16 (`aten::_to_copy`), about 130
# more per step than the fp32 step makes here — at least one per convolution on any CPU. On a CPU
# without native bf16 the table turns around: the convolutions become *slower* (emulated), which is
# what the probe of exercise 1 detects. (Profiles of a few steps on a shared
# machine vary by tens of percent: read the factors, not the digits.)

# %%
def share(ms, *names):
    return sum(v for k, v in ms.items() if any(n in k for n in names)) / sum(ms.values())


conv_fp32 = share(fp32_ms, "conv")  # mkldnn_convolution, convolution_backward (or _slow_conv2d_*)
# autocast casts at least every convolution's weights to bf16 (its input too, where it is fp32)
convolutions = sum(isinstance(m, torch.nn.Conv2d) for m in build_model(CFG.model).modules())
extra_casts = bf16_calls.get(casts, 0) - fp32_calls.get(casts, 0)
# (the counts themselves depend on the CPU's kernels — the table above prints them; what must hold is this)
print(f"convolutions: more than a third of the fp32 step's self time: {conv_fp32 > 1 / 3}; "
      f"at least one extra cast per convolution ({convolutions}) in the bf16 step: {extra_casts >= convolutions}")
assert conv_fp32 > 1 / 3 and extra_casts >= convolutions

# %% [markdown]
# ## Exercise 3 · Is the loader the bottleneck? — ★★ · ≈ 0.2 min
#
# The training set at the recipe's 128×96, with its augmentation, read through a `DataLoader` with 0,
# 1 and 2 workers and nothing else; beside it, the images per second of the recipe's training step
# (fp32, one thread, batch 32) on the same machine.

# %% tags=["nbval-ignore-output"]
train_set = CocoKeypoints(f"{ROOT}/annotations/person_keypoints_train.json", f"{ROOT}/images", codec=CFG.codec,
                          spec=CFG.spec, train=True, seed=0)


def loader_images_per_s(workers: int, batches: int = 6, batch: int = 32) -> float:
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # workers start and warm up
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def step_images_per_s(steps: int = 3, batch: int = 32) -> float:
    torch.manual_seed(0)
    model = build_model(CFG.model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, target = torch.randn(batch, 3, *CFG.input_size), torch.rand(batch, 17, *CFG.heatmap_size)
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()
        loss = ((model(images) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - t)


threads = torch.get_num_threads()
torch.set_num_threads(1)
loader = {w: loader_images_per_s(w) for w in (0, 1, 2)}
step = step_images_per_s()
torch.set_num_threads(threads)
for w, v in loader.items():
    print(f"DataLoader, {w} workers: {v:6.0f} images/s")
print(f"training step (fp32, 1 thread): {step:6.0f} images/s")

# %% [markdown]
# Decoding a 256×256 JPEG and warping a 128×96 crop cost far less than a training step of the same
# crop: even loading in the main process (0 workers) delivers several times the step's images per
# second. (A worker pays off only while the main process is busy training; alone, it adds the cost
# of handing every batch over between processes, which is why 1 worker can read slower than 0 here.)
# On 2 cores the compute thread limits a real run, not the loader — which is why the recipe gives one
# core to the step and one worker to the data. The step measured here is slower than in A1's section 1
# (the same eager fp32 step at one thread, medians of interleaved rounds on a quiet machine): three
# steps timed once, right after the loaders, are a rough figure — compare the two columns of one run,
# not figures of different runs. On a
# GPU the balance turns: the step becomes much faster (not measured here) while the loader does not,
# hence A1, section 4.

# %%
assert loader[0] > step, (loader, step)
print("the loader alone (0 workers) is faster than the training step:", loader[0] > step)

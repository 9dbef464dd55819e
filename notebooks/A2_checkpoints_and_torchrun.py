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
# # A2 · Checkpoints, resuming bit for bit, and several GPUs with `torchrun`
#
# **Time:** about 25 min of reading (the exercises extra; their solutions say what each costs) · **Needs:** notebook 07 · course map and glossary: README, `docs/glossary.md`.
#
# *Appendix: the engineering track.* The paper's W32 trains for 210 epochs on 4 GPUs. Machines are
# preempted, laptops sleep, a power cut ends a run. A training run you can trust
# survives all of it: killed at any moment, it continues from its last checkpoint to *exactly* the
# weights an uninterrupted run would have reached. This appendix opens a checkpoint, shows why it is
# never half-written, proves the bit-exact resume, and shows how the same `train` runs on several
# GPUs.
#
# **What you will learn**
# - what a training checkpoint must hold for the next epoch to be the same (weights, BatchNorm
#   statistics, Adam's moments, the schedule, the loss scale…) — and what it keeps only to be safe;
# - how a file is replaced *atomically*, so that a kill while saving loses nothing;
# - the check: two epochs in one go against one epoch, "kill", resume — identical losses and weights;
# - what `torchrun` changes: process groups, `DistributedDataParallel`, sharded data, gathered
#   validation.
#
# The library code lives in `hrnet_edu/checkpoints.py` (saving and loading), `hrnet_edu/runfolder.py`
# (atomic files, the run folder's lock) and `hrnet_edu/train.py` (the loop).

# %%
# %matplotlib inline
import dataclasses
import os
import tempfile

import matplotlib.pyplot as plt
import torch

from hrnet_edu.checkpoints import CHECKPOINT_KEYS, load_checkpoint_state, save_checkpoint
from hrnet_edu.configs import get_config
from hrnet_edu.errors import InputError
from hrnet_edu.notebook_utils import show_source
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.runfolder import atomic_write, read_log
from hrnet_edu.train import make_loader, train

# %%
torch.manual_seed(0)
torch.set_num_threads(1)  # the CPU recipe's setting on 2 cores
# A tiny run of the CPU recipe: 32 persons of the bundled sample, batches of 8, fp32 on every machine
# (the bf16 choice depends on the CPU; this appendix is about what a checkpoint holds, not speed).
# Section 3 "kills" it by running its first epoch as a run of one epoch, so its learning rate must not
# depend on the number of epochs: a step schedule whose ×0.1 (at epoch index 3) this 2-epoch run never
# reaches, instead of the recipe's cosine.
TINY = apply_overrides(get_config("synthpose_w16_128x96_cpu"), [
    "data_root=data_samples/synthpose", "epochs=2", "max_train_images=32", "val_every=0", "batch_size=8",
    "log_every=1", "lr_schedule=step", "lr_steps=3", "warmup_epochs=0.5",
    "cpu_bf16=false", "cpu_channels_last=false", "cpu_threads=1", "workers=0"])
WORK = tempfile.mkdtemp(prefix="hrnet_edu_a2_")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1 · What a checkpoint holds
#
# At the end of every epoch the trainer writes `last.pt` (and `best.pt` when the validation AP is
# a new best). One epoch of the tiny run, then the file opened:

# %%
first = train(dataclasses.replace(TINY, epochs=1), os.path.join(WORK, "one_epoch"), progress=False)
state = load_checkpoint_state(os.path.join(WORK, "one_epoch", "last.pt"))
assert tuple(state) == CHECKPOINT_KEYS
what = {
    "model": "weights and BatchNorm running statistics",
    "optimizer": "Adam's first and second moments, and its step count",
    "scheduler": "the learning-rate schedule's position",
    "scaler": "the fp16 loss scale (unused in fp32 / bf16)",
    "epoch": "completed epochs",
    "best_ap": "the best validation AP so far (-1: this tiny run never validates)",
    "config": "the TrainConfig, field by field",
    "codec": "how targets were made and heatmaps are read (notebook 01)",
    "metrics": "one record per completed epoch",
    "rng": "the random generators' states (Python, NumPy, torch)",
}
for key in CHECKPOINT_KEYS:
    value = state[key]
    size = f"{len(value)} entries" if isinstance(value, (dict, list)) else repr(value)
    print(f"{key:9} {size:12} {what[key]}")
moments = state["optimizer"]["state"]
print(f"\nmodel: {len(state['model'])} tensors; Adam keeps exp_avg and exp_avg_sq for each of "
      f"{len(moments)} parameters; rng: {sorted(state['rng'])}")

# %% [markdown]
# The weights alone (with the config and the codec: what `data_samples/checkpoints/` holds) are
# enough to *use* a network. To *continue training* it, the optimizer and the schedule matter:
# without Adam's moments the first steps after a resume would be steps of a fresh optimizer; without
# the schedule's position the learning rate would jump back. The random generators' states matter
# less here than one would think: the trainer seeds every epoch's data order and augmentation from
# (seed, epoch), so epoch *e* does not depend on how the process got there. They are kept for what
# draws random numbers *within* an epoch without that reseeding (exercise 1 tells the two apart).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2 · Never half-written
#
# A process killed while `torch.save` writes leaves a truncated file: if that file were `last.pt`,
# the run would have lost every epoch. `save_checkpoint` writes a temporary file beside it, flushes
# it to the disk, and *renames* it over the old one (`os.replace`). On POSIX systems (Linux, macOS) that
# rename is atomic: a reader sees the old complete file or the new complete file, never a part.
# (Windows replaces the file in one call as well, without the same written guarantee.)

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(atomic_write)

# %% [markdown]
# The experiment: start replacing a checkpoint, and "die" halfway through the write.

# %%
path = os.path.join(WORK, "demo.pt")
save_checkpoint({"epoch": 1}, path)


def dies_halfway(tmp):
    with open(tmp, "wb") as f:
        f.write(b"half a checkpoi")
    raise KeyboardInterrupt("killed while saving")


try:
    atomic_write(path, dies_halfway)
except KeyboardInterrupt as error:
    print("the save was interrupted:", error)
print("the file still holds:", load_checkpoint_state(path))
print("files left in the folder:", sorted(name for name in os.listdir(WORK) if name.startswith("demo")))

# %% [markdown]
# (A real kill -9 leaves the temporary file behind; the next run removes such leftovers, and
# `runfolder.RunLock` keeps two runs from writing into one folder at once.) On the command line a
# folder that already holds a run is never overwritten by accident (`hrnet-edu train` passes
# `overwrite=False` unless given `--overwrite`): the error names the folder and the ways on.

# %%
try:
    train(TINY, os.path.join(WORK, "one_epoch"), progress=False, overwrite=False)
except InputError as error:
    print(str(error).replace(WORK, "<work>"))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3 · Resuming, bit for bit
#
# The check below runs on the CPU in deterministic mode: two epochs in one go, against one epoch,
# "kill", and resume for the second. Notebook 07 relied on it to train its committed run in segments.

# %%
torch.use_deterministic_algorithms(True)
straight = train(TINY, os.path.join(WORK, "straight"), progress=False)
train(dataclasses.replace(TINY, epochs=1), os.path.join(WORK, "killed"), progress=False)
resumed = train(TINY, os.path.join(WORK, "killed"), resume=True, progress=False)
torch.use_deterministic_algorithms(False)
losses = {name: [r["loss"] for r in read_log(os.path.join(WORK, name, "log.jsonl")) if "step" in r]
          for name in ("straight", "killed")}
a, b = straight["model"].state_dict(), resumed["model"].state_dict()
# The loss values themselves depend on the CPU's thread count (summation order), so we print
# what must hold on every machine: the resumed run repeats the uninterrupted one exactly.
print("steps compared:", len(losses["straight"]), "| epoch-2 steps:", len(losses["straight"][4:]))
print("identical losses:", losses["straight"] == losses["killed"],
      "| identical final weights:", all(torch.equal(a[k], b[k]) for k in a))
assert losses["straight"] == losses["killed"] and all(torch.equal(a[k], b[k]) for k in a)

# %%
fig, ax = plt.subplots(figsize=(6.5, 2.8))
steps = range(1, len(losses["straight"]) + 1)
ax.plot(steps, losses["straight"], "o-", color="tab:blue", lw=3, ms=9, alpha=0.5, label="two epochs in one go")
ax.plot(steps, losses["killed"], "x--", color="black", label="one epoch, killed, resumed")
ax.axvline(len(losses["straight"]) / 2 + 0.5, color="tab:red", lw=1)
ax.text(len(losses["straight"]) / 2 + 0.6, max(losses["straight"]), "kill + resume", color="tab:red", va="top")
ax.set_xlabel("training step")
ax.set_ylabel("loss")
ax.legend(loc="lower left", fontsize=8)
ax.set_title("The same losses, step for step (the curves lie on each other)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Identical, not close: every one of the weights equal to the last bit. On the command line the same
# is `hrnet-edu train --config NAME --out runs/x --resume`; a run killed with Ctrl-C ends with
# status 130 and says so in one line, and its last completed epoch is what `--resume` continues.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4 · Several GPUs: `torchrun`
#
# The same `train` runs data-parallel when launched by `torchrun`, which starts one process per GPU
# and sets `RANK`, `WORLD_SIZE` and `LOCAL_RANK` for each:
#
# ```bash
# torchrun --nproc_per_node=4 -m hrnet_edu.cli train --config coco_w32_256x192 --out runs/coco_w32 data_root=/data/coco
# ```
#
# Each process joins the group (NCCL on GPUs, gloo on CPUs) and wraps the network in
# `DistributedDataParallel`: after every backward pass the gradients are averaged across the
# processes, so every process takes the same Adam step and the copies stay equal. Each reads its own
# shard of every epoch through a `DistributedSampler`: every process shuffles with the same seed
# (the run's seed and the epoch), so they all hold the same permutation and take disjoint slices of
# it — the shards of one epoch never overlap, and the next epoch shuffles anew:

# %% slideshow={"slide_type": "skip"} tags=["nbval-ignore-output"]
show_source(make_loader)

# %% [markdown]
# At validation each process predicts its shard of the validation crops; the predictions are gathered
# on rank 0 (`all_gather_object`), which runs OKS-NMS and COCOeval. Only rank 0 writes logs and
# checkpoints. `batch_size` is per process: the paper's 32 × 4 GPUs is `coco_w32_256x192` on 4
# processes. BatchNorm statistics are computed per process, over its own 32 crops — as in the
# reference, whose `DataParallel` splits each batch of 128 into four 32-crop chunks that each replica
# normalises alone; synchronised BatchNorm would compute them over all 128. `tests/test_train.py` runs 2
# processes with gloo on a CPU and checks that both end with identical weights and that the gathered
# validation equals a single-process one.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recap: what to remember
#
# - To *use* a network you need its weights; to *continue training* it you need everything the next
#   epoch depends on — optimizer moments, schedule, loss scale, epoch, best AP (and the generators'
#   states, for randomness an epoch's reseeding does not cover).
# - Write checkpoints atomically (temporary file, flush, rename): a kill never costs more than the
#   epoch in progress.
# - Seeding every epoch from (seed, epoch) makes a resumed run equal to an uninterrupted one, bit for
#   bit — checked, not hoped.
# - `torchrun`: one process per GPU, gradients averaged by DDP, data sharded by a `DistributedSampler`,
#   predictions gathered on rank 0; `batch_size` is per process.

# %% [markdown] slideshow={"slide_type": "slide"} tags=["exercise"]
# ## Exercises
#
# 1. **What breaks the bit-exact resume?** Edit the `last.pt` of a one-epoch run before resuming it:
#    once with a fresh optimizer's state (as if Adam's moments had not been saved), once with the
#    random generators' states of another seed. Which edit breaks the equality of section 3, which does
#    not — and why, in this run?
# 2. **A real kill.** Start `hrnet-edu train` on the tiny configuration in a subprocess, kill it
#    (`SIGKILL`) a few seconds into its second epoch, resume it, and compare its final weights with an
#    uninterrupted run.

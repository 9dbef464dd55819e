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
# # Solutions · A2 Checkpoints, resuming bit for bit, and several GPUs with `torchrun`
#
# Worked solutions to the two exercises of appendix A2 (`../A2_checkpoints_and_torchrun.ipynb`). Try each
# exercise first. **Difficulty**: ★ a few lines and one idea, ★★ a small experiment, ★★★ a study that
# needs training. **Cost**: minutes of wall-clock time, measured when this notebook was executed for
# CI (2026-12-03, this project's 2-core machine shared with other jobs: an upper bound for 2 free
# cores). Each solution ends with `assert`s on its answer, so CI checks the solution, not only that it
# runs.

# %%
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

from hrnet_edu.checkpoints import load_checkpoint_state, save_checkpoint
from hrnet_edu.configs import get_config
from hrnet_edu.errors import InputError
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.runfolder import read_log
from hrnet_edu.train import get_rng_state, seed_everything, train

torch.set_num_threads(1)
# The appendix's tiny run (A2, first cells) — batches of 8, fp32, a step schedule — with 96 persons
# instead of 32, so that an epoch has 12 steps: long enough to be killed in (exercise 2).
OVERRIDES = ["data_root=data_samples/synthpose", "epochs=2", "max_train_images=96", "val_every=0", "batch_size=8",
             "log_every=1", "lr_schedule=step", "lr_steps=3", "warmup_epochs=0.5",
             "cpu_bf16=false", "cpu_channels_last=false", "cpu_threads=1", "workers=0"]
TINY = apply_overrides(get_config("synthpose_w16_128x96_cpu"), OVERRIDES)
WORK = tempfile.mkdtemp(prefix="hrnet_edu_a2_solutions_")


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def epoch2_losses(run: str) -> list[float]:
    return [r["loss"] for r in read_log(os.path.join(WORK, run, "log.jsonl")) if r.get("epoch") == 2 and "step" in r]


# %% [markdown]
# ## Exercise 1 · What breaks the bit-exact resume? — ★★ · ≈ 0.3 min
#
# The uninterrupted run and one run of the first epoch; then three copies of the one-epoch folder: one
# untouched, one whose `last.pt` gets a *fresh* optimizer's state (as if Adam's moments had not been
# saved), one whose `last.pt` gets the random generators' states of another seed. Each is resumed for
# the second epoch.

# %%
torch.use_deterministic_algorithms(True)
straight = train(TINY, os.path.join(WORK, "straight"), progress=False)
train(dataclasses.replace(TINY, epochs=1), os.path.join(WORK, "one_epoch"), progress=False)
for variant in ("intact", "no_optimizer", "other_rng"):
    shutil.copytree(os.path.join(WORK, "one_epoch"), os.path.join(WORK, variant))


def edit_checkpoint(run: str, edit) -> None:
    path = os.path.join(WORK, run, "last.pt")
    state = load_checkpoint_state(path)
    edit(state)
    save_checkpoint(state, path)


def fresh_optimizer(state):
    state["optimizer"]["state"] = {}  # no moments, step count 0: a fresh Adam over the same parameters


def other_generators(state):
    seed_everything(12345)  # Python's, NumPy's and torch's generators, as another seed leaves them
    state["rng"] = get_rng_state()


edit_checkpoint("no_optimizer", fresh_optimizer)
edit_checkpoint("other_rng", other_generators)
resumed = {variant: train(TINY, os.path.join(WORK, variant), resume=True, progress=False)["model"].state_dict()
           for variant in ("intact", "no_optimizer", "other_rng")}
torch.use_deterministic_algorithms(False)
reference = straight["model"].state_dict()
for variant, weights in resumed.items():
    print(f"{variant:13} identical epoch-2 losses: {epoch2_losses(variant) == epoch2_losses('straight')!s:5} "
          f"| identical final weights: {same_weights(weights, reference)}")

# %% [markdown]
# Only the optimizer's state matters here. Without Adam's moments the first resumed step is the first
# step of a new Adam — its bias correction makes every parameter move by about the full learning
# rate — so the weights leave the uninterrupted run's path at once, and the losses after that step
# differ. The generators' states do not matter *in this run*, because the trainer reseeds at the start
# of every epoch from (seed, epoch): the data order and the augmentation of epoch 2 are the same
# whatever the generators held. They are saved anyway, for what draws random numbers *within* an
# epoch without that reseeding (dropout in another network, a sampler written elsewhere).

# %%
assert same_weights(resumed["intact"], reference)
assert not same_weights(resumed["no_optimizer"], reference)
assert same_weights(resumed["other_rng"], reference)

# %% [markdown]
# ## Exercise 2 · A real kill — ★★ · ≈ 0.3 min
#
# The command line in a subprocess, killed with `SIGKILL` (`Popen.kill`: no chance to clean up) as soon as
# `log.jsonl` holds a step of the second epoch; then `--resume`. The uninterrupted run is the one of
# exercise 1, trained by the same code in this process.

# %%
run_dir = os.path.join(WORK, "killed")
command = [sys.executable, "-m", "hrnet_edu.cli", "train", "--config", "synthpose_w16_128x96_cpu", "--out", run_dir,
           *OVERRIDES]
repo = os.path.abspath(os.path.join("..", ".."))
process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
log_path, deadline = os.path.join(run_dir, "log.jsonl"), time.time() + 300
def second_epoch_started() -> bool:
    try:
        return any(r.get("epoch") == 2 and "step" in r for r in read_log(log_path))
    except (FileNotFoundError, InputError):  # not written yet, or a line caught half-written
        return False


while time.time() < deadline and process.poll() is None and not second_epoch_started():
    time.sleep(0.01)
process.kill()  # SIGKILL on Linux and macOS, TerminateProcess on Windows
process.wait()
killed_at = load_checkpoint_state(os.path.join(run_dir, "last.pt"))["epoch"]
print(f"killed (exit status {process.returncode}) after {killed_at} completed epoch(s)")
done = subprocess.run([*command, "--resume"], cwd=repo, capture_output=True, text=True)
assert done.returncode == 0, done.stderr
final = load_checkpoint_state(os.path.join(run_dir, "last.pt"))
print(f"resumed to epoch {final['epoch']}; final weights identical to the uninterrupted run's: "
      f"{same_weights(final['model'], reference)}")

# %% [markdown]
# The kill came in the middle of the second epoch, so `last.pt` held epoch 1; `--resume` repeated the
# second epoch from there and ended on exactly the uninterrupted run's weights — the command line's
# run and this process's `train` are one code path. (If the kill had come while `last.pt` was being
# written, the temporary file would have been left behind and removed by the resumed run.)

# %%
assert process.returncode != 0 and killed_at == 1
assert final["epoch"] == 2 and same_weights(final["model"], reference)

"""What a CPU-hour buys: short, real training runs of candidate CPU recipes, AP against CPU minutes.

Each recipe is a preset plus ``key=value`` overrides (the command line's own), trained with
``hrnet_edu.train.train`` on this machine with one compute thread and one data worker (the
fastest layout for the small CPU networks on 2 cores, measured: 267 vs 206 img/s with two
threads), validated on the bundled SynthPose val split (150 images, 300 persons, flip test, ground
truth boxes) after every epoch. One row per validation goes to the CSV: recipe, epoch, samples
seen, training minutes so far (validation excluded), AP, AP50, AP75, loss.

    python benchmarks/bench_cpu_recipes.py --data data/synth20k --out benchmarks/results/cpu_recipes.csv
    python benchmarks/bench_cpu_recipes.py --only base,sigma1.5   # a subset of the recipes

The training set is a generated SynthPose set (``hrnet-edu synth --out data/synth20k --train 20000
--val 0``); a recipe's ``max_train_images=N`` uses its first N persons, i.e. a smaller set.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import sys
import time

import torch

from hrnet_edu.configs import get_config
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.train import train

VAL = "data_samples/synthpose"
PRESET = "synthpose_w16_128x96_cpu"
# the study's starting point: W8 128×96 on the first 9,600 persons (≈ 5,000 images), 5 epochs
# (the study ran while the CPU preset was a W8 network; the model keys below make the same runs)
BASE = ["model.width=8", "model.stem_width=16", "model.stage1_planes=16", "batch_size=32", "lr=2e-3",
        "lr_schedule=cosine", "warmup_epochs=0.5", "sigma=2.0", "unbiased_targets=true", "val_decode=dark",
        "epochs=5", "max_train_images=9600"]
# name → overrides on PRESET. Each run is short (a few CPU minutes); see the module docstring.
W16_1UNIT = ["model.width=16", "model.stem_width=32", "model.stage1_planes=32"]
W32_1UNIT = ["model.width=32", "model.stem_width=32", "model.stage1_planes=32"]
W16 = [*W16_1UNIT, "model.num_units=2,2,2", "model.stage1_units=2"]  # = model.W16
RECIPES = {
    # round 1: the W8 network, 5 epochs of 9,600 persons (48 k samples)
    "base": [],
    "w16_1unit": [*W16_1UNIT, "epochs=2", "warmup_epochs=0.2"],
    "w8_256x192": ["input_size=256,192", "epochs=1", "warmup_epochs=0.1"],
    # round 2: around the W16 network with one residual unit per branch, ~3 CPU minutes each
    "w16_1unit_lr5e-3": [*W16_1UNIT, "epochs=2", "warmup_epochs=0.2", "lr=5e-3"],
    "w16": [*W16, "epochs=2", "warmup_epochs=0.2", "max_train_images=7000"],
    "w32_1unit": [*W32_1UNIT, "epochs=2", "warmup_epochs=0.2", "max_train_images=7000"],
    "w16_1unit_sigma1.5_shift": [*W16_1UNIT, "epochs=2", "warmup_epochs=0.2", "sigma=1.5",
                                 "unbiased_targets=false", "val_decode=shift"],
    "w16_1unit_batch16": [*W16_1UNIT, "epochs=2", "warmup_epochs=0.2", "batch_size=16"],
    # the same 19,200 samples drawn from the bundled 951 persons (20 epochs) instead of 9,600 persons
    "w16_1unit_data951": [*W16_1UNIT, "data_root=data_samples/synthpose", "max_train_images=none",
                          "epochs=20", "warmup_epochs=2"],
    "w16_1unit_step": [*W16_1UNIT, "epochs=2", "lr_schedule=step", "lr_steps=", "warmup_epochs=0"],
    "w8_data951": ["data_root=data_samples/synthpose", "epochs=50", "warmup_epochs=3"],
}


def run_recipe(name: str, overrides: list[str], data: str, out_dir: str) -> list[dict]:
    """Train one recipe; returns one row per validated epoch."""
    val = [f"val_ann={os.path.abspath(VAL)}/annotations/person_keypoints_val.json",
           f"val_images={os.path.abspath(VAL)}/images"]  # fmt: skip
    cfg = apply_overrides(get_config(PRESET), [f"data_root={data}", *val, "val_every=1", "workers=1", *BASE,
                                                  *overrides])
    summary = train(cfg, os.path.join(out_dir, name), progress=False)
    rows, minutes, samples = [], 0.0, 0
    for record in summary["history"]:
        minutes += record["epoch_time_s"] / 60
        samples += round(record["images_per_s"] * record["epoch_time_s"])
        if "val" in record:
            rows.append({"recipe": name, "epoch": record["epoch"], "samples": samples,
                         "train_minutes": round(minutes, 3), "ap": round(record["val"]["ap"], 4),
                         "ap50": round(record["val"]["ap50"], 4), "ap75": round(record["val"]["ap75"], 4),
                         "loss": record["loss"], "overrides": " ".join(overrides)})  # fmt: skip
    return rows


def throughput(name: str, overrides: list[str], data: str, out_dir: str, n: int = 2048) -> float:
    """Training images/s of one recipe over ``n`` crops (one epoch, no validation): run it on a quiet
    machine, so that a recipe's samples convert to the CPU minutes it would take there."""
    changes = [f"data_root={data}", "workers=1", *BASE, *overrides, f"max_train_images={n}", "epochs=1",
               "val_every=0"]
    cfg = apply_overrides(get_config(PRESET), changes)
    return train(cfg, os.path.join(out_dir, "throughput", name), progress=False)["images_per_s"]


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--data", default="data/synth20k", help="training SynthPose folder")
    parser.add_argument("--out", default="benchmarks/results/cpu_recipes.csv")
    parser.add_argument("--runs", default="runs/cpu_recipes", help="run folders (checkpoints, logs)")
    parser.add_argument("--only", default=None, help="comma-separated recipe names")
    parser.add_argument("--throughput", action="store_true",
                        help="only measure each recipe's training img/s (into the JSON beside --out)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.only.split(",") if args.only else list(RECIPES)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta_path = os.path.splitext(args.out)[0] + ".json"
    if args.throughput:
        meta = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        rates = meta.setdefault("images_per_s_quiet", {})
        for name in names:
            rates[name] = round(throughput(name, RECIPES[name], args.data, args.runs), 1)
            print(f"{name}: {rates[name]:.1f} img/s", flush=True)
        meta["throughput_command"] = "python " + " ".join(sys.argv)
        meta["throughput_date"] = datetime.date.today().isoformat()
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
        return
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                       "1 compute thread + 1 data worker",
            "date": datetime.date.today().isoformat(), "command": "python " + " ".join(sys.argv),
            "preset": PRESET, "val": VAL}  # fmt: skip
    exists = os.path.exists(args.out)
    with open(args.out, "a", newline="") as f:
        columns = ["recipe", "epoch", "samples", "train_minutes", "ap", "ap50", "ap75", "loss", "overrides"]
        writer = csv.DictWriter(f, columns)
        if not exists:
            writer.writeheader()
        for name in names:
            start = time.perf_counter()
            rows = run_recipe(name, RECIPES[name], args.data, args.runs)
            writer.writerows(rows)
            f.flush()
            last = rows[-1]
            wall = time.perf_counter() - start
            print(f"{name}: AP {last['ap']:.3f} AP75 {last['ap75']:.3f} after {last['train_minutes']:.1f} "
                  f"train min ({wall:.0f} s wall)", flush=True)  # fmt: skip
    if os.path.exists(meta_path):  # keep the throughput measurements of an earlier call
        with open(meta_path) as f:
            meta = {**json.load(f), **meta}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()

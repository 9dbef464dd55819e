"""The paper's evidence at CPU scale: short, real training runs that isolate one design choice each.

Every run is the CPU recipe (``configs.synthpose_w16_128x96_cpu``: ``model.W16_1UNIT`` at 128×96,
Adam 2e-3 with a cosine decay, unbiased σ = 2 targets, DARK decoding, flip test) shortened to one
epoch of the 37,476 persons of ``make data`` (warm-up 0.1 epoch), trained on this machine with one
compute thread and one data worker, bf16 autocast and channels-last (``cpu_bf16``,
``cpu_channels_last``: about 2× faster here, benchmarks/bench_cpu_train_step.py), and validated on
the bundled SynthPose val split (150 images, 300 persons). One thing changes per run:

* ``hrnet`` — the recipe itself (the reference point of every comparison);
* ``hrnet_fp32`` — the same in fp32 and NCHW: what the two speed switches cost in AP;
* ``stride8`` — the head reads branch 1: heatmaps at output stride 8 (16×12) instead of 4 (32×24),
  σ = 1 heatmap px so that the target Gaussian keeps its size in the image (8 input px);
* ``simplebaseline`` — the high-to-low SimpleBaseline with the same multiply-adds (83 M at 128×96):
  ResNet units (1, 1, 1, 1) of widths 24–192, three deconvolutions of width 96;
* ``sigma1`` — targets with σ = 1 heatmap px (the paper's number) instead of 2;
* ``fusion_all`` / ``fusion_across`` / ``fusion_final`` — the paper's ablation of repeated
  multi-scale fusion (Sec. 4.5) on the recipe network with 1, 2, 2 HR modules in stages 2, 3, 4:
  exchange units after every module (5), only between stages (3), only at the end (1).

Each run's ``log.jsonl`` and ``config.json`` are kept under ``--results`` (with the command that made
them) and one line per run is added to ``runs.jsonl`` there; notebooks 01, 04 and 05 plot them.

    OMP_NUM_THREADS=1 python benchmarks/study_paper_evidence.py                  # every run, seed 0
    OMP_NUM_THREADS=1 python benchmarks/study_paper_evidence.py --seeds 1 --only hrnet,fusion_all

A run whose line is already in ``runs.jsonl`` is not repeated.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys

import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.baseline import BaselineConfig
from hrnet_edu.configs import TrainConfig, synthpose_w16_128x96_cpu
from hrnet_edu.flops import count_macs, count_parameters
from hrnet_edu.train import train

# SimpleBaseline with the recipe network's multiply-adds at 128×96 (83.1 M vs 83.0 M, flops.count_macs)
EQUAL_MACS_BASELINE = BaselineConfig(block="basic", units=(1, 1, 1, 1), widths=(24, 48, 96, 192),
                                     stem_width=32, deconv_width=96)
FUSION_NET = dataclasses.replace(hrnet_model.W16_1UNIT, num_modules=(1, 2, 2))


def study_config(name: str) -> TrainConfig:
    """The recipe shortened to one epoch, with run ``name``'s one change."""
    base = dataclasses.replace(synthpose_w16_128x96_cpu(), epochs=1, warmup_epochs=0.1, val_every=1,
                               cpu_bf16=True, cpu_channels_last=True)
    w16 = base.model
    changes = {
        "hrnet": {},
        "hrnet_fp32": {"cpu_bf16": False, "cpu_channels_last": False},
        "stride8": {"model": dataclasses.replace(w16, head_branch=1), "sigma": 1.0},
        "simplebaseline": {"model": EQUAL_MACS_BASELINE},
        "sigma1": {"sigma": 1.0},
        "fusion_all": {"model": FUSION_NET},
        "fusion_across": {"model": dataclasses.replace(FUSION_NET, exchange_units="across_stages")},
        "fusion_final": {"model": dataclasses.replace(FUSION_NET, exchange_units="final")},
    }[name]
    return dataclasses.replace(base, name=f"study_{name}", **changes)


RUNS = ["hrnet", "hrnet_fp32", "stride8", "simplebaseline", "sigma1", "fusion_all", "fusion_across",
        "fusion_final"]


def run(name: str, seed: int, runs_dir: str, results_dir: str) -> dict:
    cfg = dataclasses.replace(study_config(name), seed=seed)
    out = os.path.join(runs_dir, f"{name}_s{seed}")
    summary = train(cfg, out, progress=False)
    last = summary["history"][-1]
    net = hrnet_model.build_model(cfg.model)
    stats = {k: round(v, 4) for k, v in last["val"].items() if isinstance(v, float)}
    minutes = sum(r["epoch_time_s"] for r in summary["history"]) / 60
    row = {"run": name, "seed": seed, **stats, "loss": last["loss"], "train_minutes": round(minutes, 2),
           "images_per_s": round(last["images_per_s"], 1), "parameters": count_parameters(net),
           "macs": count_macs(net, cfg.input_size), "heatmap_size": list(cfg.heatmap_size),
           "sigma": cfg.sigma, "model": type(cfg.model).__name__, "date": datetime.date.today().isoformat()}
    keep = os.path.join(results_dir, f"{name}_s{seed}")
    os.makedirs(keep, exist_ok=True)
    for file in ("log.jsonl", "config.json"):
        shutil.copy(os.path.join(out, file), keep)
    return row


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--only", default=",".join(RUNS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--runs", default="runs/paper_evidence", help="run folders (checkpoints, logs)")
    parser.add_argument("--results", default="benchmarks/results/paper_evidence")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.results, exist_ok=True)
    index = os.path.join(args.results, "runs.jsonl")
    done = set()
    if os.path.exists(index):
        with open(index) as f:
            done = {(r["run"], r["seed"]) for r in map(json.loads, f)}
    meta = {"command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                       "1 compute thread + 1 data worker"}
    for seed in map(int, args.seeds.split(",")):
        for name in args.only.split(","):
            if (name, seed) in done:
                continue
            row = {**run(name, seed, args.runs, args.results), **meta}
            with open(index, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name} seed {seed}: AP {row['ap']:.3f} AP75 {row['ap75']:.3f} in "
                  f"{row['train_minutes']} min", flush=True)


if __name__ == "__main__":
    main()

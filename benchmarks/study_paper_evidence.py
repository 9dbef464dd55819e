"""Train the runs of ``hrnet_edu.evidence``: the paper's evidence at CPU scale (notebooks 01, 04, 05, 08).

Each run (see ``evidence.study_config``) is trained with ``hrnet_edu.train.train`` on this machine,
one compute thread and one data worker, into ``--runs``; its ``log.jsonl`` and ``config.json`` are
copied to ``--results`` (committed) and one line goes to ``runs.jsonl`` there, with the command.

    OMP_NUM_THREADS=1 python benchmarks/study_paper_evidence.py                  # every run, seed 0
    OMP_NUM_THREADS=1 python benchmarks/study_paper_evidence.py --seeds 1 --only hrnet,fusion_all

A run whose line is already in ``runs.jsonl`` is not repeated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys

import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.evidence import RESULTS, RUNS, study_config
from hrnet_edu.flops import count_macs, count_parameters
from hrnet_edu.train import train


def run(name: str, seed: int, runs_dir: str, results_dir: str) -> dict:
    cfg = study_config(name, seed)
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
    parser.add_argument("--results", default=os.path.relpath(RESULTS))
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

"""The paper's evidence at CPU scale: the runs that isolate one design choice each, and their results.

Every run is the CPU recipe (``configs.synthpose_w16_128x96_cpu``: ``model.W16_1UNIT`` at 128×96,
Adam 2e-3 with a cosine decay, unbiased σ = 2 targets, DARK decoding, flip test) shortened to one
epoch of the 37,476 persons of ``make data`` (warm-up 0.1 epoch), with the preset's bf16 autocast
and channels-last on the CPU (``cpu_bf16``, ``cpu_channels_last``), validated on the bundled SynthPose
val split (150 images, 300 persons). One thing changes per run (``study_config``):

* ``hrnet`` — the recipe itself, the reference point of every comparison;
* ``hrnet_fp32`` — the same in fp32 and NCHW: what the two speed switches cost in AP;
* ``stride8`` — the head reads branch 1: heatmaps at output stride 8 (16×12) instead of 4 (32×24),
  σ = 1 heatmap px so that the target Gaussian keeps its size in the image (8 input px);
* ``simplebaseline`` — the high-to-low SimpleBaseline with the same multiply-adds (83 M at 128×96):
  ResNet units (1, 1, 1, 1) of widths 24–192, three deconvolutions of width 96;
* ``sigma1`` — targets with σ = 1 heatmap px (the paper's number) instead of 2;
* ``fusion_all`` / ``fusion_across`` / ``fusion_final`` — the paper's ablation of repeated
  multi-scale fusion (its ablation study) on the recipe network with 1, 2, 2 HR modules in stages 2, 3, 4:
  exchange units after every module (5), only between stages (3), only at the end (1).

``benchmarks/study_paper_evidence.py`` trains them and keeps each run's ``log.jsonl`` and
``config.json`` under ``RESULTS`` with one line per run in ``runs.jsonl``; ``load_runs`` and
``summarize`` read them back for notebooks 01, 04, 05 and 08.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics

from hrnet_edu import model as hrnet_model
from hrnet_edu.baseline import BaselineConfig
from hrnet_edu.configs import REPO_ROOT, TrainConfig, synthpose_w16_128x96_cpu

RESULTS = os.path.join(REPO_ROOT, "benchmarks", "results", "paper_evidence")
# SimpleBaseline with the recipe network's multiply-adds at 128×96 (83.1 M vs 83.0 M, flops.count_macs)
EQUAL_MACS_BASELINE = BaselineConfig(block="basic", units=(1, 1, 1, 1), widths=(24, 48, 96, 192),
                                     stem_width=32, deconv_width=96)
FUSION_NET = dataclasses.replace(hrnet_model.W16_1UNIT, num_modules=(1, 2, 2))
RUNS = ("hrnet", "hrnet_fp32", "stride8", "simplebaseline", "sigma1", "fusion_all", "fusion_across",
        "fusion_final")


def study_config(name: str, seed: int = 0) -> TrainConfig:
    """The recipe shortened to one epoch, with run ``name``'s one change (see the module docstring)."""
    # the study's machine settings pinned as they were measured (the preset chooses them per machine)
    base = dataclasses.replace(synthpose_w16_128x96_cpu(), epochs=1, warmup_epochs=0.1, val_every=1,
                               seed=seed, cpu_bf16=True, cpu_channels_last=True, cpu_threads=1, workers=1)
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
    }
    if name not in changes:
        raise ValueError(f"unknown study run {name!r}; the runs are: {', '.join(RUNS)}")
    return dataclasses.replace(base, name=f"study_{name}", **changes[name])


def load_runs(results: str = RESULTS) -> list[dict]:
    """The lines of ``runs.jsonl``: one dict per finished run (run, seed, ap, ap50, …, train_minutes)."""
    with open(os.path.join(results, "runs.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(rows: list[dict], names, key: str = "ap") -> dict[str, dict]:
    """Per run name: the values of ``key`` over seeds, their mean, and their spread (max − min)."""
    out = {}
    for name in names:
        values = [r[key] for r in sorted(rows, key=lambda r: r["seed"]) if r["run"] == name]
        if values:
            out[name] = {"values": values, "mean": statistics.fmean(values),
                         "spread": max(values) - min(values), "seeds": len(values)}
    return out


def loss_curve(name: str, seed: int = 0, results: str = RESULTS) -> tuple[list[int], list[float]]:
    """(step, training loss) of one run, from the "step" records of its ``log.jsonl``."""
    steps, losses = [], []
    with open(os.path.join(results, f"{name}_s{seed}", "log.jsonl")) as f:
        for record in map(json.loads, f):
            if record.get("kind") == "step":
                steps.append(record["step"])
                losses.append(record["loss"])
    return steps, losses

"""The CPU recipe's automatic machine settings against fixed ones: the demo's training, whole process.

One epoch of ``make demo``'s training (``configs.synthpose_w16_128x96_cpu`` on the demo's SynthPose
set ``data/synthpose_demo``, its first ``--images`` persons, no validation), each run a fresh
``hrnet-edu train`` process timed from start to exit: Python and torch start-up, data loading,
the ``cpu_settings`` probe where it runs, and the epoch. Variants:

* ``auto``: the preset as it is (precision, memory format, threads, workers chosen on the machine);
* ``fp32``: ``cpu_bf16=false cpu_channels_last=false`` (threads and workers still automatic);
* ``bf16``: ``cpu_bf16=true cpu_channels_last=true`` (the preset before it chose).

each natively and under ``ONEDNN_MAX_CPU_ISA=AVX2``, which bars oneDNN from the CPU's AVX512-BF16:
what a CPU without native bf16 gets. Forced bf16 under AVX2 is several times slower, so that one
variant trains only ``--slow-images`` persons (its img/s is then the less favourable to it, for the
start-up weighs more). Runs are interleaved in ``--rounds`` rounds, each running every variant once,
so that a load that comes and goes hits all alike; the median is reported.

Also measured once: crops per second that one loader core prepares (``data_per_core``), against
which ``cpu_settings.THREADS_PER_WORKER`` was set.

The issue's goals: under AVX2 the automatic epoch takes at most 1.15× the fp32 one; natively it is
at least 1.4× faster than fp32.

    python benchmarks/bench_cpu_choice.py --out benchmarks/results/cpu_choice.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from hrnet_edu import cpu_settings
from hrnet_edu.demo import DEMO_DATA, ensure_demo_data

VARIANTS = {"auto": [], "fp32": ["cpu_bf16=false", "cpu_channels_last=false"],
            "bf16": ["cpu_bf16=true", "cpu_channels_last=true"]}
MACHINES = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}


def run_once(variant: str, machine: str, images: int, out_dir: str) -> dict:
    """One ``hrnet-edu train`` process of one epoch; its wall time, img/s and what it chose."""
    run = os.path.join(out_dir, f"{machine}_{variant}")
    cmd = [sys.executable, "-m", "hrnet_edu.cli", "train", "--config", "synthpose_w16_128x96_cpu",
           "--out", run, "--overwrite", f"data_root={DEMO_DATA}", "epochs=1",
           "warmup_epochs=0.3", "val_every=0", f"max_train_images={images}", *VARIANTS[variant]]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA")}
    start = time.perf_counter()
    done = subprocess.run(cmd, env={**env, **MACHINES[machine]}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{machine}/{variant} failed:\n{done.stderr[-2000:]}")
    with open(os.path.join(run, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    chosen = next(r for r in records if r["kind"] == "cpu_settings")
    epoch = next(r for r in records if r["kind"] == "epoch")
    trained = round(epoch["images_per_s"] * epoch["epoch_time_s"])
    return {"wall_s": wall, "images": trained, "process_images_per_s": trained / wall,
            "epoch_images_per_s": epoch["images_per_s"], "chosen": {k: chosen[k] for k in (
                "cpu_bf16", "cpu_channels_last", "cpu_threads", "workers", "reasons", "probe_ms")}}


def data_rate_per_core(images: int = 256) -> float:
    """Training crops (decode, warp, targets) one core prepares per second, in one process, 1 thread."""
    from hrnet_edu.configs import synthpose_w16_128x96_cpu
    from hrnet_edu.overrides import apply_overrides
    from hrnet_edu.train import build_datasets

    torch.set_num_threads(1)
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), [f"data_root={DEMO_DATA}", "val_every=0"])
    train_set, _ = build_datasets(cfg)
    start = time.process_time()
    for i in range(0, images, 32):
        train_set.__getitems__(list(range(i, i + 32)))
    return images / (time.process_time() - start)


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Median wall time and img/s per variant, and the issue's two ratios."""
    med = {k: {"wall_s": statistics.median(r["wall_s"] for r in v),
               "process_images_per_s": statistics.median(r["process_images_per_s"] for r in v),
               "epoch_images_per_s": statistics.median(r["epoch_images_per_s"] for r in v),
               "chosen": v[-1]["chosen"]} for k, v in runs.items()}  # fmt: skip
    ratios = {}
    for machine in MACHINES:
        auto, fp32, bf16 = (med[f"{machine}/{v}"] for v in VARIANTS)
        ratios[machine] = {"auto_wall_over_fp32_wall": auto["wall_s"] / fp32["wall_s"],
                           "auto_speedup_over_fp32_img_s": auto["process_images_per_s"]
                           / fp32["process_images_per_s"],
                           "auto_over_best_fixed_img_s": auto["process_images_per_s"]
                           / max(fp32["process_images_per_s"], bf16["process_images_per_s"])}
    return {"median": med, "ratios": ratios}


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=2400, help="persons per epoch (max_train_images)")
    parser.add_argument("--slow-images", type=int, default=320, help="the same for bf16 under AVX2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    ensure_demo_data()
    per_core = data_rate_per_core()
    print(f"data: {per_core:.0f} crops/s per loader core", flush=True)
    runs: dict[str, list[dict]] = {f"{m}/{v}": [] for m in MACHINES for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench_cpu_choice_") as tmp:
        for r in range(args.rounds):
            for key in runs:
                machine, variant = key.split("/")
                images = args.slow_images if key == "avx2/bf16" else args.images
                runs[key].append(run_once(variant, machine, images, tmp))
                row = runs[key][-1]
                print(f"round {r + 1} {key:12s} {row['wall_s']:6.1f} s  "
                      f"{row['process_images_per_s']:6.1f} img/s "
                      f"(epoch {row['epoch_images_per_s']:6.1f})  bf16={row['chosen']['cpu_bf16']} "
                      f"cl={row['chosen']['cpu_channels_last']} threads={row['chosen']['cpu_threads']} "
                      f"workers={row['chosen']['workers']}", flush=True)
    result = summarize(runs)
    print(json.dumps(result["ratios"], indent=1))
    if args.out:
        record = {"what": "one epoch of the demo's training (synthpose_w16_128x96_cpu on "
                          "data/synthpose_demo, no validation), whole hrnet-edu train process incl. "
                          "start-up, data loading and the probe; variants interleaved",
                  "command": "python " + " ".join(sys.argv), "date": datetime.date.today().isoformat(),
                  "torch": torch.__version__, "cpu": cpu_settings.cpu_name(),
                  "usable_cores": cpu_settings.usable_cores(),
                  "machine_note": "shared with other jobs while measured (load varies): compare ratios",
                  "images": args.images, "slow_images": args.slow_images, "rounds": args.rounds,
                  "data_per_core": per_core, **result, "runs": runs}  # fmt: skip
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

"""The CPU recipe's training step on this machine: what makes it faster on 2 cores (issue 18).

One training step of ``configs.synthpose_w16_128x96_cpu`` (``model.W16_1UNIT``, 128×96, batch 32):
forward, JointsMSELoss, backward, gradient norm, Adam — ``train.train_one_epoch`` itself, with the
config switches the variant names — on one fixed batch, so the data pipeline is not measured.
Variants:

* ``eager``: fp32, 1 compute thread (the preset: the other core feeds the one data worker);
* ``eager_2threads``: fp32, 2 compute threads (what torch picks by default);
* ``channels_last``: ``cpu_channels_last``, fp32, NHWC memory format for the model and the images;
* ``bf16``: ``cpu_bf16``, ``torch.autocast("cpu", torch.bfloat16)`` around the forward (this EPYC
  has AVX512-BF16), the loss in fp32;
* ``bf16_channels_last``: both (the preset);
* ``compile``: ``torch.compile`` (inductor) of the model, fp32; its first steps (the compilation)
  are timed separately and counted against a run's budget;
* ``compile_bf16_channels_last``: the three together.

Variants are measured in interleaved rounds (each round times every variant once), so a load
that comes and goes on the machine hits all of them alike; the median step time over rounds is
reported with each variant's ratio to ``eager``, and the mean loss of the last timed steps (the
same start, the same batch: a check that the variant trains the same network).

    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_train_step.py --out benchmarks/results/cpu_train_step.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import tempfile
import time

# A cold compile, as a fresh run pays it: inductor's cache of earlier runs would hide the compile time.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench_inductor_"))

import torch  # noqa: E402

from hrnet_edu import model as hrnet_model  # noqa: E402
from hrnet_edu.configs import synthpose_w16_128x96_cpu  # noqa: E402
from hrnet_edu.train import DistInfo, build_criterion, train_one_epoch  # noqa: E402

VARIANTS = ["eager", "eager_2threads", "channels_last", "bf16", "bf16_channels_last", "compile",
            "compile_bf16_channels_last"]


def make_variant(name: str, batch: dict):
    """A fresh seeded network and Adam, and a ``run(n)`` closure: ``n`` of the library's training steps
    (``train.train_one_epoch`` on ``n`` copies of ``batch``) with variant ``name``'s switches; it returns
    the steps' mean loss."""
    cfg = dataclasses.replace(synthpose_w16_128x96_cpu(), cpu_bf16="bf16" in name,
                              cpu_channels_last="channels_last" in name)
    torch.manual_seed(0)
    net = hrnet_model.HRNet(cfg.model)
    if cfg.uses_channels_last("cpu"):  # as train() prepares the model
        net = net.to(memory_format=torch.channels_last)
    model = torch.compile(net) if name.startswith("compile") else net
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    args = (build_criterion(cfg), optimizer, scaler, cfg, torch.device("cpu"), 0, DistInfo(), False)
    threads = 2 if name == "eager_2threads" else 1

    def run(n: int) -> float:
        torch.set_num_threads(threads)
        return train_one_epoch(model, [batch] * n, *args)["loss"]

    return run


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant per round")
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cfg = synthpose_w16_128x96_cpu()
    g = torch.Generator().manual_seed(0)
    n, (h, w) = cfg.batch_size, cfg.input_size
    batch = {"image": torch.randn(n, 3, h, w, generator=g),
             "target": torch.rand(n, 17, h // 4, w // 4, generator=g) * 0.1,
             "target_weight": torch.ones(n, 17)}
    names = args.only.split(",")
    steps, first = {}, {}
    for name in names:  # build, and time the first two steps (compilation, oneDNN kernel choice)
        start = time.perf_counter()
        steps[name] = make_variant(name, batch)
        steps[name](2)
        first[name] = time.perf_counter() - start
        print(f"{name:20s} first 2 steps {first[name]:7.1f} s", flush=True)
    times = {name: [] for name in names}
    losses = {}
    for r in range(args.rounds):
        for name in names:
            start = time.perf_counter()
            losses[name] = steps[name](args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
        line = "  ".join(f"{k} {v[-1] * 1e3:.0f} ms" for k, v in times.items())
        print(f"round {r + 1}: {line}", flush=True)
    base = statistics.median(times["eager"]) if "eager" in times else None
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"variant": name, "median_step_s": med, "images_per_s": n / med,
                     "speedup_vs_eager": base / med if base else None, "first_two_steps_s": first[name],
                     "round_step_s": times[name], "loss_after": losses[name]})
    print(f"\n{'variant':20s} {'step ms':>8s} {'img/s':>7s} {'× eager':>8s} {'first 2 steps s':>16s} "
          f"{'loss':>10s}")
    for row in rows:
        print(f"{row['variant']:20s} {row['median_step_s'] * 1e3:8.0f} {row['images_per_s']:7.1f} "
              f"{row['speedup_vs_eager'] or 0:8.2f} {row['first_two_steps_s']:16.1f} "
              f"{row['loss_after']:10.3e}")
    if args.out:
        record = {"what": "CPU recipe training step (W16_1UNIT, 128x96, batch 32), interleaved rounds",
                  "command": "OMP_NUM_THREADS=1 python benchmarks/bench_cpu_train_step.py",
                  "date": datetime.date.today().isoformat(), "torch": torch.__version__,
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads at exit",
                  "rounds": args.rounds, "steps_per_round": args.steps, "results": rows}
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

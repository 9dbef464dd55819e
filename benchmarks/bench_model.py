"""CPU inference speed of our HRNet-W32 against timm's ``hrnet_w32`` feature backbone, in one run.

    python benchmarks/bench_model.py                       # ours only if timm is not installed
    /tmp/timmvenv/bin/python benchmarks/bench_model.py --reps 5 --batches 1 32

Both networks run the same stem + stages 1–4 at 256×192 under ``torch.inference_mode`` in eval mode
with the same thread count, input and repetitions; each timing is the median of ``--reps`` runs
after ``--warmup`` runs, the two models alternating so that a noisy neighbour hurts both alike.
Compared: our ``HRNet.forward_features`` (stem, stages; the last module fuses output 0 only, as in
the reference, and passes branches 1–3 on unfused) and ``forward`` (+ the 1×1 heatmap head);
timm's ``features_only=True, feature_location=''`` (stem, stages; its last module fuses all four
outputs, slightly more work — the script prints both multiply-add counts). timm is optional: it
needs torchvision, so it lives in a separate virtual environment (see the project README / the
engineer's report).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from hrnet_edu.flops import count_macs
from hrnet_edu.model import hrnet_w32


def timm_backbone():
    """timm's hrnet_w32 stem + stages (no classification/"incre" head), or None without timm."""
    try:
        import timm
    except ImportError:
        return None
    return timm.create_model("hrnet_w32", pretrained=False, features_only=True, feature_location="")


def time_call(fn, x, reps: int, warmup: int) -> list[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--size", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ours = hrnet_w32().eval()
    theirs = timm_backbone()
    if theirs is not None:
        theirs.eval()
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {cpu} ({os.cpu_count()} cores), "
          f"python {platform.python_version()}")
    if theirs is None:
        print("timm not importable: timing ours only")
    else:
        import timm
        print(f"timm {timm.__version__}")
    size = tuple(args.size)
    def describe(name, model, note=""):
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params:,d} parameters, {count_macs(model, size) / 1e9:.3f} G multiply-adds{note}")

    describe("ours (forward, with head)", ours)
    if theirs is not None:
        describe("timm (features)", theirs, " (all four stage-4 outputs fused)")

    candidates = {"ours forward_features": ours.forward_features, "ours forward (+head)": ours}
    if theirs is not None:
        candidates["timm hrnet_w32 features"] = theirs
    print(f"\ninput {size[0]}×{size[1]}, median of {args.reps} runs after {args.warmup} warm-up runs")
    print(f"{'batch':>5} {'model':26} {'median ms':>10} {'min ms':>8} {'images/s':>9}")
    for batch in args.batches:
        x = torch.randn(batch, 3, *size)
        results = {name: [] for name in candidates}
        for _ in range(args.reps):  # alternate the models, one timed run each per round
            for name, fn in candidates.items():
                results[name] += time_call(fn, x, reps=1, warmup=args.warmup if not results[name] else 0)
        for name, times in results.items():
            med = statistics.median(times)
            print(f"{batch:5d} {name:26} {med * 1e3:10.1f} {min(times) * 1e3:8.1f} {batch / med:9.1f}")
        if theirs is not None:
            # On a shared machine the minimum is the less noisy estimate; both are printed.
            for stat in (statistics.median, min):
                ours_t = stat(results["ours forward_features"])
                ratio = ours_t / stat(results["timm hrnet_w32 features"])
                print(f"{'':5} ratio ours / timm (features, {stat.__name__}): {ratio:.3f}")


if __name__ == "__main__":
    main()

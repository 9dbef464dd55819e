"""Cost of reading the network: forward time with and without ``features.capture``.

    python benchmarks/bench_features.py --model w32 --batch 8 --size 256 192 --repeats 5 [--device cuda]

Rows: plain forward; capture of the stage outputs only; capture of every name except the
exchange-unit contributions; everything (contributions re-run each fusion transform once more).
Prints one JSON line per row (median seconds, and the ratio to the plain forward).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from hrnet_edu import features
from hrnet_edu.model import MODEL_PRESETS, HRNet


def timed(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="w32", choices=sorted(MODEL_PRESETS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = HRNet(MODEL_PRESETS[args.model]).eval().to(device)
    x = torch.randn(args.batch, 3, *args.size, device=device)
    all_names = features.layer_names(model)
    selections = {
        "plain forward": None,
        "stage outputs": ["stem", "stage1", "stage2", "stage3", "stage4", "heatmaps"],
        "all but contributions": [n for n in all_names if ".from" not in n],
        "everything": all_names,
    }
    with torch.no_grad():
        model(x)  # warm-up
        base = None
        for label, names in selections.items():
            if names is None:
                seconds = timed(lambda: model(x), args.repeats, device)
                base = seconds
            else:
                def run(names=names):
                    with features.capture(model, names):
                        model(x)
                seconds = timed(run, args.repeats, device)
            print(json.dumps({"model": args.model, "batch": args.batch, "size": list(args.size),
                              "device": str(device), "what": label, "names": len(names or []),
                              "seconds": round(seconds, 4), "ratio": round(seconds / base, 2)}))


if __name__ == "__main__":
    main()

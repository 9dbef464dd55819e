"""Training-step throughput: HRNet-W32 256×192, batch 64, AMP (bf16) + channels-last vs fp32.

Both variants run in the same process on the same GPU through the library's own training step
(``hrnet_edu.train.train_one_epoch`` on a list of identical batches already on the device, so
the data pipeline is not measured). Reports images/s and peak GPU memory, as a table and JSON.

    python benchmarks/bench_train.py                      # CUDA: W32 256×192, batch 64
    python benchmarks/bench_train.py --compile            # also torch.compile
    python benchmarks/bench_train.py --cpu-tiny           # no GPU: W8 128×96 batch 8 (checks it runs)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.configs import TrainConfig
from hrnet_edu.train import DistInfo, build_criterion, train_one_epoch


def measure(cfg: TrainConfig, device: torch.device, steps: int, warmup: int) -> dict:
    """images/s of ``steps`` training steps after ``warmup`` steps, and peak memory (GiB)."""
    torch.manual_seed(0)
    net = hrnet_model.HRNet(cfg.model).to(device)
    if device.type == "cuda" and cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.amp == "fp16")
    model = torch.compile(net) if cfg.compile else net
    h, w = cfg.input_size
    k = cfg.model.num_joints
    batch = {
        "image": torch.randn(cfg.batch_size, 3, h, w, device=device),
        "target": torch.rand(cfg.batch_size, k, h // 4, w // 4, device=device),
        "target_weight": torch.ones(cfg.batch_size, k, device=device),
    }
    args = (build_criterion(cfg), optimizer, scaler, cfg, device, 0, DistInfo(), False)
    train_one_epoch(model, [batch] * warmup, *args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    record = train_one_epoch(model, [batch] * steps, *args)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"images_per_s": cfg.batch_size * steps / seconds, "peak_memory_gib": peak, "loss": record["loss"]}


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--cpu-tiny", action="store_true", help="tiny CPU version (W8, 128×96, batch 8)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.cpu_tiny:
        device = torch.device("cpu")
        base = TrainConfig(model=hrnet_model.W8, input_size=(128, 96), batch_size=8, device="cpu")
        args.steps, args.warmup = min(args.steps, 5), 1
    elif not torch.cuda.is_available():
        print("bench_train.py measures GPU training throughput and needs CUDA; "
              "run with --cpu-tiny for a small CPU version")  # fmt: skip
        return
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        base = TrainConfig(model=hrnet_model.W32, input_size=(256, 192), batch_size=args.batch, device="cuda")
    variants = {
        "fp32, contiguous": dataclasses.replace(base, amp="none", channels_last=False),
        "bf16 AMP + channels_last": dataclasses.replace(base, amp="bf16", channels_last=True),
        "fp16 AMP (GradScaler) + channels_last": dataclasses.replace(base, amp="fp16", channels_last=True),
    }
    if args.compile:
        variants["bf16 AMP + channels_last + compile"] = dataclasses.replace(
            base, amp="bf16", channels_last=True, compile=True
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    results = {"device": name, "torch": torch.__version__, "batch": base.batch_size,
               "input_size": base.input_size, "width": base.model.width, "variants": {}}  # fmt: skip
    h, w = base.input_size
    print(f"{name}, torch {torch.__version__}, W{base.model.width} {h}×{w}, batch {base.batch_size}, "
          f"{args.steps} timed steps")  # fmt: skip
    print(f"{'variant':42s} {'img/s':>9s} {'peak GiB':>9s}")
    for label, cfg in variants.items():
        r = measure(cfg, device, args.steps, args.warmup)
        results["variants"][label] = r
        peak = f"{r['peak_memory_gib']:.2f}" if r["peak_memory_gib"] is not None else "-"
        print(f"{label:42s} {r['images_per_s']:9.1f} {peak:>9s}")
    fp32 = results["variants"]["fp32, contiguous"]["images_per_s"]
    amp = results["variants"]["bf16 AMP + channels_last"]["images_per_s"]
    print(f"speed-up bf16 AMP + channels_last vs fp32: {amp / fp32:.2f}×")
    if device.type == "cpu":
        print("(on a CPU the trainer ignores amp and channels_last: the rows are the same loop, i.e. noise)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

"""ONNX Runtime vs eager PyTorch inference of one batch, interleaved in one run.

    .venv/bin/python benchmarks/bench_onnx.py                                  # HRNet-W32 256x192, batch 8
    .venv/bin/python benchmarks/bench_onnx.py --config synthpose_w16_128x96_cpu \\
        --checkpoint data_samples/checkpoints/synthpose_w16_128x96_cpu.pt              # the small CPU net

The network (random-init unless --checkpoint) is exported with ``export.export_onnx`` (BN folded,
checked on real validation crops), then eager PyTorch and ONNX Runtime run the same batch
alternately, both with --threads intra-op threads; the medians and their ratio are printed,
with the max |heatmap difference|. Alternating keeps the ratio meaningful on a busy machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.configs import get_config
from hrnet_edu.export import OnnxRunner, export_onnx, sample_crops
from hrnet_edu.model import HRNet
from hrnet_edu.overrides import apply_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthpose_w32_256x192")
    parser.add_argument("--checkpoint", help="weights (default: random initialisation)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("overrides", nargs="*", default=["data_root=data_samples/synthpose"])
    args = parser.parse_args()

    cfg = apply_overrides(get_config(args.config), args.overrides)
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint, cfg)[0]
    else:
        model = HRNet(cfg.model).eval()
        # The reference's N(0, 0.001²) initialisation shrinks activations layer after layer into
        # denormal floats, which are slow on CPUs and would distort both timings. Instead: He's
        # initialisation, then BN statistics measured on real crops, so every layer sees
        # activations of a trained network's scale (heatmaps O(1)).
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # a plain average over the calibration batches
        model.train()
        with torch.no_grad():
            model(sample_crops(cfg, 16))
            model.eval()
            # heatmaps with a trained net's spread (std 0.1: peaks ~1 on a background ~0), since
            # the export check's tolerance is absolute
            model.final_layer.weight /= 10 * model(sample_crops(cfg, 4)).std()
    torch.set_num_threads(args.threads)
    crops = sample_crops(cfg, args.batch_size)
    batch = crops.repeat((args.batch_size + len(crops) - 1) // len(crops), 1, 1, 1)[: args.batch_size]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        check = export_onnx(model, f"{tmp}/m.onnx", crops)
        export_s = time.perf_counter() - t0
        runner = OnnxRunner(f"{tmp}/m.onnx", threads=args.threads)
        times, outs = {"eager": [], "onnx": []}, {}
        with torch.inference_mode():
            model(batch), runner(batch)  # warm-up (allocator, ORT's first-run set-up)
            for _ in range(args.repeats):
                for name, fn in (("eager", model), ("onnx", runner)):
                    t0 = time.perf_counter()
                    out = fn(batch)
                    times[name].append(time.perf_counter() - t0)
                    outs[name] = out
        diff = float((outs["onnx"] - outs["eager"]).abs().max())
    eager, onnx = statistics.median(times["eager"]), statistics.median(times["onnx"])
    h, w = cfg.input_size
    print(f"{cfg.name} (width {cfg.model.width}), input {h}x{w}, batch {args.batch_size}, "
          f"{args.threads} threads, {args.repeats} interleaved repeats; export {export_s:.1f} s "
          f"(check max |diff| {check:.1e})")
    for label, name, med in (("eager PyTorch", "eager", eager), ("ONNX Runtime ", "onnx", onnx)):
        print(f"  {label} : {med:7.3f} s/batch (median; all: {', '.join(f'{t:.3f}' for t in times[name])})")
    print(f"  ratio eager / ONNX Runtime: {eager / onnx:.2f}x   max |heatmap diff| = {diff:.1e}")


if __name__ == "__main__":
    main()

"""Samples per second of the top-down training pipeline (``CocoKeypoints``), CPU and GPU paths.

    .venv/bin/python benchmarks/bench_data.py                 # SynthPose, 256×192, workers 0 and 2
    .venv/bin/python benchmarks/bench_data.py --workers 0 2 8 --samples 512
    .venv/bin/python benchmarks/bench_data.py --ann coco/annotations/person_keypoints_train2017.json \\
        --images coco/train2017                                # real COCO (larger JPEGs)

Two pipelines, both with the paper's augmentation and σ = 2 targets:

* ``cpu``: every sample decoded, augmented, warped, normalized and encoded in the DataLoader
  workers (``CocoKeypoints``), default collate;
* ``raw+batch``: the workers only decode, draw the augmentation and cut out the pixels the crop
  reads (``CocoKeypoints(raw=True)``, ``gpu_collate``); ``GpuBatchTransform`` then warps and
  encodes the whole batch on ``--device`` (CUDA when present). Without a GPU it runs on the CPU
  in the main process, which shows the split but is not the point of the path.

Throughput excludes the first batch (worker start-up). Each worker uses one intra-op thread
(PyTorch's default in workers); the main process uses ``--threads``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.data.transforms import GpuBatchTransform, gpu_collate

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data_samples", "synthpose")


def throughput(loader, samples: int, finish=None, device=None) -> float:
    """Samples per second over ``samples`` samples after the first batch (cycling the loader)."""
    seen, start, it, epoch = 0, None, iter(loader), 0
    while seen < samples:
        try:
            batch = next(it)
        except StopIteration:
            epoch += 1
            loader.dataset.set_epoch(epoch)
            it = iter(loader)
            continue
        if finish is not None:
            out = finish(batch)
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            batch = out
        if start is None:  # the first batch pays for worker start-up
            start = time.perf_counter()
            continue
        seen += len(batch["image"])
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ann", default=os.path.join(ROOT, "annotations", "person_keypoints_train.json"))
    p.add_argument("--images", default=os.path.join(ROOT, "images"))
    p.add_argument("--input", default="256x192", help="H x W of the crop")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--samples", type=int, default=256, help="samples timed per configuration")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of the main process")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.input.lower().split("x"))
    device = torch.device(args.device)

    cpu_ds = CocoKeypoints(args.ann, args.images, input_size=size, train=True, seed=0)
    raw_ds = CocoKeypoints(args.ann, args.images, input_size=size, train=True, seed=0, raw=True)
    finish = GpuBatchTransform(size, device=device)
    print(f"{len(cpu_ds)} persons from {args.ann}; input {size[0]}×{size[1]}, batch {args.batch}, "
          f"{os.cpu_count()} CPUs, main-process threads {args.threads}, batch device {device}")
    print(f"{'pipeline':34} {'workers':>7} {'samples/s':>10}")
    for workers in args.workers:
        kw = {"batch_size": args.batch, "shuffle": True, "num_workers": workers, "drop_last": True,
              "generator": torch.Generator().manual_seed(0)}
        if workers:
            kw["persistent_workers"] = True
        cpu = throughput(torch.utils.data.DataLoader(cpu_ds, **kw), args.samples)
        print(f"{'cpu (full sample in workers)':34} {workers:7d} {cpu:10.1f}", flush=True)
        raw_loader = torch.utils.data.DataLoader(raw_ds, collate_fn=gpu_collate,
                                                 pin_memory=device.type == "cuda", **kw)
        feed = throughput(raw_loader, args.samples, finish=lambda b: {"image": b["raw_image"]})
        print(f"{'raw only (decode + augment + cut)':34} {workers:7d} {feed:10.1f}", flush=True)
        both = throughput(raw_loader, args.samples, finish=finish, device=device)
        print(f"{'raw + batch transform on ' + device.type:34} {workers:7d} {both:10.1f}", flush=True)


if __name__ == "__main__":
    main()

"""SynthPose generation speed: images per second for a whole dataset, and where one image's time goes.

Usage:  .venv/bin/python benchmarks/bench_synth.py [--train 1600] [--val 400] [--size 256] [--workers 2]

Runs ``hrnet_edu.data.synthpose.generate`` once into a temporary folder (the issue's target:
2,000 images of 256×256 in about a minute on 2 cores) and prints the wall time, images/s,
persons per image and bytes per image; then times the stages of one image on 20 images in this
process (scene rendering, JPEG encoding). Timings on a shared machine are noisy: run it on a
quiet one for numbers you report.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import numpy as np
from PIL import Image

from hrnet_edu.data import synthpose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=1600)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n = args.train + args.val
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = synthpose.generate(tmp, args.train, args.val, 0, args.size, workers=args.workers)
        wall = time.perf_counter() - start
        image_bytes = sum(e.stat().st_size for e in os.scandir(summary["images_dir"]))
    persons = summary["n_persons_train"] + summary["n_persons_val"]
    print(f"generate: {n} images of {args.size}x{args.size}, {args.workers} workers: {wall:.1f} s wall, "
          f"{n / wall:.1f} images/s, {persons / n:.2f} persons/image, "
          f"{image_bytes / n / 1024:.1f} KiB/image")  # fmt: skip

    render, encode = [], []
    for index in range(20):
        t0 = time.perf_counter()
        image, _, _ = synthpose.make_image(0, "train", index, args.size)
        t1 = time.perf_counter()
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=synthpose.JPEG_QUALITY, optimize=True)
        render.append(t1 - t0)
        encode.append(time.perf_counter() - t1)
    print(f"one image, 1 process (median of 20): render {1000 * np.median(render):.1f} ms, "
          f"JPEG {1000 * np.median(encode):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

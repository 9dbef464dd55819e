"""Time target encoding and heatmap decoding: the vectorized library vs a per-joint Python loop.

    .venv/bin/python benchmarks/bench_heatmaps.py                 # CPU, 2 threads, 64 × 17 joints, 64×48
    .venv/bin/python benchmarks/bench_heatmaps.py --device cuda   # the library on a GPU (loops stay on CPU)

Prints the median and best time per sample (one sample = K = 17 heatmaps) over ``--repeats``
runs. The per-joint loops are written the way the reference does it (numpy, one joint at a
time: a (6σ+1)² patch for the target; a full-map separable blur and a Taylor step for DARK) and
are checked against the library before timing.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from hrnet_edu.heatmaps import decode_heatmaps, encode_heatmaps


def encode_loop(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int], sigma: float):
    """Reference-style targets, one joint at a time (keypoints (N, K, 2) in heatmap px)."""
    h, w = size
    n, k, _ = keypoints.shape
    target = np.zeros((n, k, h, w), np.float32)
    weight = np.zeros((n, k), np.float32)
    r = int(3 * sigma)
    t = np.arange(2 * r + 1, dtype=np.float32)
    g = np.exp(-((t[None] - r) ** 2 + (t[:, None] - r) ** 2) / (2 * sigma**2))
    for i in range(n):
        for j in range(k):
            mu_x, mu_y = (math.floor(c + 0.5) for c in keypoints[i, j])
            ul, br = (mu_x - r, mu_y - r), (mu_x + r + 1, mu_y + r + 1)
            if visible[i, j] <= 0 or ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
                continue
            weight[i, j] = 1.0
            gx, gy = (max(0, -ul[0]), min(br[0], w) - ul[0]), (max(0, -ul[1]), min(br[1], h) - ul[1])
            ix, iy = (max(0, ul[0]), min(br[0], w)), (max(0, ul[1]), min(br[1], h))
            target[i, j, iy[0] : iy[1], ix[0] : ix[1]] = g[gy[0] : gy[1], gx[0] : gx[1]]
    return target, weight


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) banded matrix B with B @ v = v convolved with the Gaussian kernel (zero border)."""
    r = math.ceil(3 * sigma)
    d = np.arange(n)[:, None] - np.arange(n)[None]
    b = np.where(np.abs(d) <= r, np.exp(-(d**2) / (2 * sigma**2)), 0.0)
    return b / np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2)).sum()


def dark_loop(heatmaps: np.ndarray, sigma: float) -> np.ndarray:
    """DARK one joint at a time, as the original code does (full-map blur, then a Taylor step)."""
    n, k, h, w = heatmaps.shape
    by, bx = _blur_matrix(h, sigma), _blur_matrix(w, sigma)
    coords = np.zeros((n, k, 2), np.float32)
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i, j]
            py, px = np.unravel_index(np.argmax(hm), hm.shape)
            b = by @ hm @ bx.T
            lg = np.log(np.maximum(b * (hm.max() / b.max()), 1e-10))
            coords[i, j] = px, py
            if 1 < px < w - 2 and 1 < py < h - 2:
                d = 0.5 * np.array([lg[py, px + 1] - lg[py, px - 1], lg[py + 1, px] - lg[py - 1, px]])
                dxx = 0.25 * (lg[py, px + 2] - 2 * lg[py, px] + lg[py, px - 2])
                dyy = 0.25 * (lg[py + 2, px] - 2 * lg[py, px] + lg[py - 2, px])
                dxy = lg[py + 1, px + 1] - lg[py - 1, px + 1] - lg[py + 1, px - 1] + lg[py - 1, px - 1]
                dxy *= 0.25
                if dxx < 0 and dxx * dyy - dxy**2 > 0:  # as the library: only toward a maximum ...
                    offset = -np.linalg.solve(np.array([[dxx, dxy], [dxy, dyy]]), d)
                    if np.abs(offset).max() <= sigma:  # ... within sigma
                        coords[i, j] += offset
    return coords


def timeit(fn, repeats: int, sync=lambda: None) -> tuple[float, float]:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--size", type=int, nargs=2, default=(64, 48), metavar=("H", "W"))
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--loop-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n, k, (h, w), sigma = args.batch, args.joints, args.size, args.sigma

    rng = np.random.default_rng(0)
    kp = np.stack([rng.uniform(-2, w + 1, (n, k)), rng.uniform(-2, h + 1, (n, k))], -1).astype(np.float32)
    vis = (rng.uniform(size=(n, k)) > 0.1).astype(np.float32)
    kp_t, vis_t = torch.from_numpy(kp).to(device), torch.from_numpy(vis).to(device)

    # Check the loops against the library before timing them.
    target, weight = encode_heatmaps(kp, vis, (h, w), sigma)
    target_loop, weight_loop = encode_loop(kp, vis, (h, w), sigma)
    np.testing.assert_allclose(target, target_loop, atol=1e-6)
    np.testing.assert_array_equal(weight, weight_loop)
    noisy = np.clip(target + rng.normal(0, 0.02, target.shape).astype(np.float32), 0, None)
    np.testing.assert_allclose(decode_heatmaps(noisy, "dark", sigma)[0], dark_loop(noisy, sigma), atol=1e-3)
    noisy_t = torch.from_numpy(noisy).to(device)

    rows = [
        ("encode (library, vectorized)", lambda: encode_heatmaps(kp_t, vis_t, (h, w), sigma), args.repeats),
        ("encode (library, unbiased)", lambda: encode_heatmaps(kp_t, vis_t, (h, w), sigma, True),
         args.repeats),
        ("encode (per-joint loop, numpy)", lambda: encode_loop(kp, vis, (h, w), sigma), args.loop_repeats),
        ("decode argmax (library)", lambda: decode_heatmaps(noisy_t, "argmax"), args.repeats),
        ("decode shift (library)", lambda: decode_heatmaps(noisy_t, "shift"), args.repeats),
        ("decode dark (library)", lambda: decode_heatmaps(noisy_t, "dark", sigma), args.repeats),
        ("decode dark (per-joint loop, numpy)", lambda: dark_loop(noisy, sigma), args.loop_repeats),
    ]
    print(f"batch {n} × {k} joints, heatmaps {h}×{w}, sigma {sigma}, device {device}, "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'':38} {'median ms/sample':>17} {'best ms/sample':>15}")
    for name, fn, repeats in rows:
        med, best = timeit(fn, repeats, sync if "library" in name else (lambda: None))
        print(f"{name:38} {1e3 * med / n:17.4f} {1e3 * best / n:15.4f}")


if __name__ == "__main__":
    main()

"""OKS for D detections × G ground truths in one image: hrnet_edu.oks.compute_oks vs pycocotools.

Usage:  .venv/bin/python benchmarks/bench_oks.py [--dets 1000] [--gts 1000] [--repeats 3]

Both run in this process on the same data; the script checks that the two matrices agree
(to 1e-9) and prints the best-of-N wall time of each and the ratio. pycocotools loops over
every (detection, ground truth) pair in Python, so it runs only once at full size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu.keypoints import COCO17, coco_person_category
from hrnet_edu.oks import compute_oks

K = COCO17.num_joints


def scene(n_dt: int, n_gt: int, seed: int = 0):
    """Random persons (10 % without labelled keypoints, for the box rule) and noisy detections."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 4000, size=(n_gt, 1, 2))
    sizes = rng.uniform(10, 100, size=(n_gt, 1, 1))
    visibility = rng.choice([0.0, 1.0, 2.0], size=(n_gt, K, 1), p=[0.2, 0.2, 0.6])
    gt = np.concatenate([centers + sizes * rng.normal(size=(n_gt, K, 2)) * 0.4, visibility], axis=2)
    gt[rng.random(n_gt) < 0.1, :, 2] = 0
    boxes = np.concatenate([centers[:, 0] - sizes[:, 0], 2 * sizes[:, 0].repeat(2, 1)], axis=1)
    areas = (2 * sizes[:, 0, 0]) ** 2 * 0.6
    src = rng.integers(0, n_gt, size=n_dt)
    dt = np.concatenate([gt[src, :, :2] + rng.normal(size=(n_dt, K, 2)) * 5, np.ones((n_dt, K, 1))], axis=2)
    scores = rng.permutation(n_dt) / n_dt + 1e-3
    return gt, areas, boxes, dt, scores


def pycocotools_eval(gt, areas, boxes, dt, scores) -> COCOeval:
    image = {"id": 1, "width": 4000, "height": 4000, "file_name": "x.jpg"}
    gts = [{"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": g.reshape(-1).tolist(),
            "num_keypoints": int((g[:, 2] > 0).sum()), "area": float(a), "bbox": b.tolist(), "iscrowd": 0}
           for i, (g, a, b) in enumerate(zip(gt, areas, boxes))]  # fmt: skip
    dts = [{"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": d.reshape(-1).tolist(),
            "score": float(s), "area": 1.0, "bbox": [0, 0, 1, 1]}
           for i, (d, s) in enumerate(zip(dt, scores))]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset = {"images": [image], "annotations": gts, "categories": [coco_person_category()]}
        coco_dt.dataset = {"images": [image], "annotations": dts, "categories": [coco_person_category()]}
        coco_gt.createIndex()
        coco_dt.createIndex()
    ev = COCOeval(coco_gt, coco_dt, "keypoints")
    ev.params.imgIds = [1]
    ev.params.maxDets = [len(dts)]  # computeOks keeps only maxDets[-1] detections
    ev._prepare()
    return ev


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dets", type=int, default=1000)
    parser.add_argument("--gts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    gt, areas, boxes, dt, scores = scene(args.dets, args.gts)
    order = np.argsort(-scores, kind="mergesort")  # pycocotools sorts detections by score
    dt_sorted = dt[order]

    ours_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = compute_oks(dt_sorted, gt, areas, boxes, sigmas=COCO17.sigma_array)
        ours_times.append(time.perf_counter() - t0)

    ev = pycocotools_eval(gt, areas, boxes, dt, scores)
    t0 = time.perf_counter()
    theirs = np.asarray(ev.computeOks(1, 1))
    theirs_time = time.perf_counter() - t0

    max_diff = float(np.abs(ours - theirs).max())
    assert max_diff < 1e-9, f"OKS differs from pycocotools by {max_diff}"
    print(f"OKS {args.dets} detections x {args.gts} ground truths (K={K}), one image")
    print(f"  hrnet_edu.oks.compute_oks : {min(ours_times) * 1e3:9.1f} ms (best of {args.repeats})")
    print(f"  pycocotools computeOks    : {theirs_time * 1e3:9.1f} ms (one run)")
    ratio = theirs_time / min(ours_times)
    print(f"  ratio (pycocotools / ours): {ratio:9.1f}x   max |diff| = {max_diff:.1e}")


if __name__ == "__main__":
    main()

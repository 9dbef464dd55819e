"""Whole COCOeval (keypoints) on a COCO-val-sized synthetic set: plain pycocotools vs ours.

    .venv/bin/python benchmarks/bench_cocoeval.py [--images 5000] [--persons 11000] [--dets 100000]

From a results list to the ten stats: loading the results (``loadRes`` vs
``coco_eval.results_to_coco``), ``evaluate``, ``accumulate``, ``summarize``, with plain
``pycocotools.cocoeval.COCOeval`` and with ``FastCOCOeval`` (our OKS, matching and accumulation),
alternately ``--repeats`` times in this process. Asserts the ten stats are bit-identical and
prints each stage's median time and the ratio of the totals.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time

import numpy as np
from pycocotools.cocoeval import COCOeval

from hrnet_edu.coco_eval import results_to_coco
from hrnet_edu.fast_cocoeval import FastCOCOeval

# the synthetic set is test data, not library: tests/synthetic_keypoints.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from synthetic_keypoints import synthetic_keypoint_set  # noqa: E402


def run(kind: str, coco, results) -> tuple[dict, np.ndarray]:
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        if kind == "ours":
            coco_dt, cls = results_to_coco(coco, results), FastCOCOeval
        else:
            coco_dt, cls = coco.loadRes([dict(r) for r in results]), COCOeval
        times["load results"] = time.perf_counter() - t0
        ev = cls(coco, coco_dt, "keypoints")
        for stage in ("evaluate", "accumulate", "summarize"):
            t0 = time.perf_counter()
            getattr(ev, stage)()
            times[stage] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    return times, np.asarray(ev.stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--persons", type=int, default=11000)
    parser.add_argument("--dets", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    coco, results = synthetic_keypoint_set(args.images, args.persons, args.dets)
    anns = coco.dataset["annotations"]
    labelled = sum(a["num_keypoints"] > 0 for a in anns)
    print(f"{args.images} images ({len({a['image_id'] for a in anns})} with persons), {len(anns)} persons "
          f"({labelled} with keypoints, {sum(a['iscrowd'] for a in anns)} crowd), {len(results)} detections")
    times: dict[str, list[dict]] = {"pycocotools": [], "ours": []}
    stats = {}
    for _ in range(args.repeats):
        for kind in times:
            t, stats[kind] = run(kind, coco, results)
            times[kind].append(t)
    assert np.array_equal(stats["ours"], stats["pycocotools"]), (stats["ours"], stats["pycocotools"])
    median = {k: {s: statistics.median(t[s] for t in v) for s in v[0]} for k, v in times.items()}
    stages = list(median["ours"])
    print(f"{'':12s}" + "".join(f"{s:>14s}" for s in stages) + f"   (median of {args.repeats}, seconds)")
    for kind, m in median.items():
        print(f"{kind:12s}" + "".join(f"{m[s]:14.2f}" for s in stages))
    ratio = median["pycocotools"]["total"] / median["ours"]["total"]
    print(f"ratio pycocotools / ours (total): {ratio:.1f}x; the ten stats are bit-identical: "
          f"AP {stats['ours'][0]:.4f}, AR {stats['ours'][5]:.4f}")


if __name__ == "__main__":
    main()

"""A random COCO-style keypoint ground truth and detections, sized like COCO val2017: test and
benchmark data for COCOeval (``tests/test_fast_cocoeval.py``, ``benchmarks/bench_cocoeval.py``).

Not part of the library: nothing a user runs needs it.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from hrnet_edu.keypoints import get_spec


def synthetic_keypoint_set(n_images: int = 5000, n_persons: int = 11000, n_detections: int = 100_000,
                           seed: int = 0, labelled_fraction: float = 0.58, empty_fraction: float = 0.46,
                           missed_fraction: float = 0.05, spec="coco17"):
    """A random COCO-style person-keypoint ground truth and detections, to test and time COCOeval.

    The defaults are sized like COCO val2017 (5,000 images, about half without a person, ~11k
    person annotations of which ~6.4k have labelled keypoints, 100k detections). It contains what
    COCOeval treats specially: persons with no labelled keypoint (ignored, box rule), crowd
    regions, images without ground truth, images without detections, images with more than
    maxDets = 20 detections, tied scores, and persons from small to large (all three area ranges).

    Args:
        n_images, n_persons, n_detections: sizes. seed: the random generator's seed.
        labelled_fraction: share of persons with at least one labelled keypoint.
        empty_fraction: share of images without any person.
        missed_fraction: share of images where "the detector" found nothing: their detections
            are dropped, so slightly fewer than ``n_detections`` are returned.
        spec: the keypoint set (K joints, its category).

    Returns:
        (pycocotools COCO ground truth, list of results entries with image_id, category_id,
        keypoints (3K numbers) and score).
    """
    from pycocotools.coco import COCO

    if n_images < 1 or n_persons < 1:
        raise ValueError(f"need at least one image and one person, got {n_images}, {n_persons}")
    rng = np.random.default_rng(seed)
    spec = get_spec(spec)
    k = spec.num_joints
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i:012d}.jpg"}
              for i in range(1, n_images + 1)]
    with_people = np.flatnonzero(rng.random(n_images) >= empty_fraction) + 1
    with_people = with_people if len(with_people) else np.array([1])
    owner = rng.choice(with_people, size=n_persons)
    side = np.exp(rng.uniform(np.log(8), np.log(400), n_persons))  # √area from small to large
    w, h = side * rng.uniform(0.5, 1.0, n_persons), side * rng.uniform(1.0, 2.0, n_persons)
    x0, y0 = rng.uniform(0, 640, n_persons), rng.uniform(0, 480, n_persons)
    labelled = rng.random(n_persons) < labelled_fraction
    crowd = ~labelled & (rng.random(n_persons) < 0.15)
    xy = np.stack([x0[:, None] + w[:, None] * rng.random((n_persons, k)),
                   y0[:, None] + h[:, None] * rng.random((n_persons, k))], axis=2)  # (P, K, 2)
    vis = np.where(rng.random((n_persons, k)) < rng.uniform(0.2, 1.0, (n_persons, 1)), 2, 0)
    vis[~labelled] = 0
    vis[labelled, 0] = 2  # labelled persons have at least one keypoint
    gt_xy = np.where(vis[..., None] > 0, xy, 0.0)  # COCO writes unlabelled keypoints as (0, 0, 0)
    anns = [{"id": j + 1, "image_id": int(owner[j]), "category_id": 1, "iscrowd": int(crowd[j]),
             "bbox": [float(x0[j]), float(y0[j]), float(w[j]), float(h[j])],
             "area": float(w[j] * h[j] * rng.uniform(0.4, 0.8)), "num_keypoints": int((vis[j] > 0).sum()),
             "keypoints": np.concatenate([gt_xy[j], vis[j, :, None]], axis=1).reshape(-1).tolist()}
            for j in range(n_persons)]  # fmt: skip
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns, "categories": [spec.coco_category()]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()

    # Detections: 70 % noisy copies of a person (noise relative to its size), 30 % random poses,
    # on images with people and, a few, on images without.
    true = rng.random(n_detections) < 0.7
    src = rng.integers(0, n_persons, n_detections)
    det_img = np.where(true, owner[src], rng.integers(1, n_images + 1, n_detections))
    noise = rng.uniform(0.0, 0.15, (n_detections, 1, 1)) * side[src][:, None, None]
    copies = xy[src] + noise * rng.normal(size=(n_detections, k, 2))
    # random poses: uniform in a random box of 10–300 px
    corner = rng.uniform([0, 0], [640, 480], (n_detections, 1, 2))
    extent = rng.uniform(10, 300, (n_detections, 1, 2))
    det_xy = np.where(true[:, None, None], copies, corner + extent * rng.random((n_detections, k, 2)))
    scores = np.where(true, rng.uniform(0.2, 1.0, n_detections), rng.uniform(0.0, 0.8, n_detections))
    scores[rng.random(n_detections) < 0.2] = 0.5  # ties: the stable sorts must agree
    conf = rng.random((n_detections, k, 1))
    flat = np.concatenate([det_xy, conf], axis=2).reshape(n_detections, 3 * k)
    keep = ~(rng.random(n_images) < missed_fraction)[det_img - 1]
    results = [{"image_id": int(i), "category_id": 1, "keypoints": row, "score": float(sc)}
               for i, row, sc in zip(det_img[keep].tolist(), flat[keep].tolist(), scores[keep].tolist())]
    return coco, results

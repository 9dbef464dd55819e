"""FastCOCOeval (our OKS, matching and accumulation inside pycocotools' COCOeval) against plain
pycocotools: the same per-image OKS, the same per-image matches and bit-identical stats."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
from conftest import SAMPLES
from pycocotools.cocoeval import COCOeval
from synthetic_keypoints import synthetic_keypoint_set

from hrnet_edu.coco_eval import load_ground_truth, results_ap, results_to_coco
from hrnet_edu.fast_cocoeval import FastCOCOeval
from hrnet_edu.keypoints import COCO17

VAL_ANN = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")


def run(cls, coco, results, img_ids=None, max_dets=None):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco.loadRes([dict(r) for r in results])
        ev = cls(coco, coco_dt, "keypoints")
        if img_ids is not None:
            ev.params.imgIds = img_ids
        if max_dets is not None:
            ev.params.maxDets = max_dets
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_same_evaluation(ours, plain):
    assert len(ours.evalImgs) == len(plain.evalImgs)
    for a, b in zip(ours.evalImgs, plain.evalImgs):
        assert (a is None) == (b is None)
        if a is None:
            continue
        for key in ("image_id", "aRng", "maxDet", "dtIds", "gtIds", "dtScores"):
            assert a[key] == b[key], key
        for key in ("dtMatches", "gtMatches", "gtIgnore", "dtIgnore"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(ours.eval[key], plain.eval[key], err_msg=key)
    np.testing.assert_array_equal(ours.stats, plain.stats)


@pytest.mark.parametrize("seed", range(4))
def test_random_sets_match_pycocotools_image_by_image(seed):
    """Crowd regions, unlabelled persons, images without ground truth or without detections,
    images with more than 20 detections, tied scores, small/medium/large persons."""
    coco, results = synthetic_keypoint_set(n_images=40, n_persons=90, n_detections=700, seed=seed,
                                            missed_fraction=0.2)
    per_image = np.bincount([r["image_id"] for r in results], minlength=41)[1:]
    with_gt = {a["image_id"] for a in coco.dataset["annotations"]}
    assert per_image.max() > 20 and (per_image == 0).any() and len(with_gt) < 40  # the cases occur
    assert any(a["iscrowd"] for a in coco.dataset["annotations"])
    ours, plain = run(FastCOCOeval, coco, results), run(COCOeval, coco, results)
    assert_same_evaluation(ours, plain)
    assert 0 < plain.stats[0] < 1


def test_oks_per_image_matches_pycocotools_to_1e_12():
    coco, results = synthetic_keypoint_set(n_images=30, n_persons=80, n_detections=600, seed=5)
    ours, plain = run(FastCOCOeval, coco, results), run(COCOeval, coco, results)
    compared = 0
    for key, theirs in plain.ious.items():
        if len(theirs):
            np.testing.assert_allclose(ours.ious[key], theirs, rtol=0, atol=1e-12)
            compared += 1
        else:
            assert len(ours.ious[key]) == 0
    assert compared > 10


def test_subsets_of_images_and_other_max_dets():
    coco, results = synthetic_keypoint_set(n_images=30, n_persons=60, n_detections=400, seed=7)
    img_ids = list(range(3, 25, 2))
    assert_same_evaluation(run(FastCOCOeval, coco, results, img_ids, [5, 10]),
                           run(COCOeval, coco, results, img_ids, [5, 10]))


def test_results_to_coco_equals_load_res():
    coco, results = synthetic_keypoint_set(n_images=10, n_persons=20, n_detections=60, seed=1)
    before = json.dumps(results)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = coco.loadRes([dict(r) for r in results])
    ours = results_to_coco(coco, results)
    assert json.dumps(results) == before  # the caller's entries are not changed
    assert ours.getAnnIds() == theirs.getAnnIds() and ours.getImgIds() == theirs.getImgIds()
    for i in theirs.getAnnIds():
        a, b = ours.anns[i], theirs.anns[i]
        assert a["area"] == b["area"] and a["bbox"] == [float(v) for v in b["bbox"]]
        assert a["keypoints"] == b["keypoints"] and a["score"] == b["score"]


@pytest.mark.skipif(not os.path.isfile(VAL_ANN), reason="data_samples/synthpose not present")
def test_bundled_val_split_gives_identical_stats():
    gt = load_ground_truth(VAL_ANN, COCO17)
    coco = gt.coco
    rng = np.random.default_rng(0)
    results = []
    for a in coco.dataset["annotations"]:
        if a["num_keypoints"] == 0 or a["iscrowd"]:
            continue
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        for copy in range(3):  # duplicates with less accurate poses: false positives after the first
            noisy = kp.copy()
            noisy[:, :2] += rng.normal(size=(len(kp), 2)) * (2 + 6 * copy) * rng.uniform(0.3, 2)
            noisy[:, 2] = rng.uniform(0, 1, len(kp))
            results.append({"image_id": a["image_id"], "category_id": 1,
                            "keypoints": noisy.reshape(-1).tolist(), "score": float(rng.uniform(0, 1))})
    ours = results_ap(gt, results)
    plain = results_ap(gt, results, backend="pycocotools")
    assert ours == plain and 0.1 < plain.ap < 1
    with pytest.raises(ValueError, match="backend must be one of"):
        results_ap(gt, results, backend="fast")

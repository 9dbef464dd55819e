"""analysis: planted errors land in the right class of Ronchi & Perona's taxonomy; the vectorized
classifier equals a per-keypoint loop written from the paper's definitions."""

import contextlib
import io
import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO

from hrnet_edu import analysis
from hrnet_edu.analysis import CATEGORIES, GOOD, INVERSION, JITTER, MISS, SWAP, UNLABELLED
from hrnet_edu.data.ground_truth import GroundTruth
from hrnet_edu.keypoints import COCO17, coco_person_category

FLIP_INDEX, SIGMAS = COCO17.flip_index, COCO17.sigma_array

AREA = 12000.0


def skeleton(x0, y0):
    """(17, 3) keypoints: left joints at x0 − 40, right at x0 + 40, nose at x0, 12 px between types."""
    k = np.arange(17)
    x = np.where(k == 0, x0, np.where(k % 2 == 1, x0 - 40, x0 + 40)).astype(float)
    return np.stack([x, y0 + 12.0 * k, np.full(17, 2.0)], axis=1)


def person(ann_id, image_id, kp, **extra):
    labelled = kp[:, 2] > 0
    x0, y0 = kp[labelled, :2].min(0)
    x1, y1 = kp[labelled, :2].max(0)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": AREA,
            "bbox": [x0, y0, x1 - x0, y1 - y0], "keypoints": kp.ravel().tolist(),
            "num_keypoints": int(labelled.sum()), **extra}


def make_coco(annotations, n_images):
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 800, "height": 600} for i in range(1, n_images + 1)]
    data = {"images": images,
            "annotations": annotations, "categories": [coco_person_category()]}
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def result(image_id, kp, score):
    return {"image_id": image_id, "category_id": 1, "score": score,
            "keypoints": np.concatenate([kp[:, :2], np.ones((17, 1))], 1).ravel().tolist()}


def jitter_distance(k, ks):
    """Distance at which joint k of a person of area AREA has keypoint similarity ks."""
    return math.sqrt(-math.log(ks) * 2 * AREA * (2 * SIGMAS[k]) ** 2)


@pytest.fixture
def planted():
    a, b, c = skeleton(100, 50), skeleton(400, 50), skeleton(200, 60)
    a[7] = 0  # left elbow not labelled
    coco = make_coco([person(1, 1, a), person(2, 1, b), person(3, 2, c),
                      person(4, 1, skeleton(650, 50), iscrowd=1)], n_images=2)
    dt = a.copy()
    dt[[5, 6]] = a[[6, 5]]  # left/right shoulders exchanged → 2 inversions
    dt[9] = b[9]  # left wrist on the other person's left wrist → swap
    dt[13, 0] -= jitter_distance(13, 0.7)  # left knee a little off → jitter (ks 0.7)
    dt[15, 1] += 300  # left ankle far from every ankle → miss
    dt[7] = [700, 500, 0]  # anything: the ground truth has no left elbow
    results = [result(1, dt, 0.9), result(1, b, 0.8), result(1, skeleton(100, 2000), 0.5)]
    return coco, results


def test_planted_errors_are_classified(planted):
    coco, results = planted
    tax = analysis.error_taxonomy(coco, results, spec=COCO17)
    assert tax.names == COCO17.names
    assert tax.result_index.tolist() == [0, 1] and tax.ann_ids.tolist() == [1, 2]
    expected = np.full(17, GOOD)
    expected[[5, 6]] = INVERSION
    expected[9], expected[13], expected[15], expected[7] = SWAP, JITTER, MISS, UNLABELLED
    np.testing.assert_array_equal(tax.labels[0], expected)
    np.testing.assert_array_equal(tax.labels[1], np.full(17, GOOD))
    assert tax.ks_own[0, 13] == pytest.approx(0.7)
    # The third result matches nobody; person 3 (image 2) has no detection; the crowd is ignored.
    assert tax.num_unmatched_results == 1 and tax.num_unmatched_gt == 1
    counts = tax.counts()
    assert counts.shape == (17, 5) and counts.sum() == 16 + 17
    assert tax.overall()["inversion"] == pytest.approx(2 / 33)
    assert [tax.pairs_with(c).tolist() for c in CATEGORIES] == [[1, 0], [0], [0], [0], [0]]
    rows = tax.rows()
    assert rows[-1]["keypoint"] == "all" and rows[-1]["n"] == 33
    assert all(abs(sum(r[c] for c in CATEGORIES) - 1) < 1e-12 for r in rows)


def test_results_file_and_errors(planted, tmp_path):
    coco, results = planted
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    gt = GroundTruth(coco, COCO17)  # a GroundTruth carries its spec
    np.testing.assert_array_equal(analysis.error_taxonomy(gt, str(path)).labels,
                                  analysis.error_taxonomy(coco, results, spec=COCO17).labels)
    with pytest.raises(ValueError, match="unknown image id"):
        analysis.error_taxonomy(gt, [{**results[0], "image_id": 99}])
    with pytest.raises(FileNotFoundError):
        analysis.error_taxonomy(gt, str(tmp_path / "absent.json"))
    # a pycocotools COCO says nothing of its keypoint set: no silent COCO-17
    with pytest.raises(ValueError, match="needs its keypoint spec"):
        analysis.error_taxonomy(coco, results)
    empty = analysis.error_taxonomy(gt, [])
    assert empty.labels.shape == (0, 17) and empty.num_unmatched_gt == 3


def loop_reference(gts, dt, own, low=0.5, high=0.85):
    """The definitions, one keypoint at a time: candidates in the order own joint, own mirrored
    joint, then each other person's joint and mirrored joint; the first best candidate wins."""
    labels = []
    for k in range(17):
        if gts[own]["kp"][k, 2] <= 0:
            labels.append(UNLABELLED)
            continue
        cands = []
        for g in [own] + [i for i in range(len(gts)) if i != own]:
            for j in (k, FLIP_INDEX[k]):
                x, y, v = gts[g]["kp"][j]
                if v > 0:
                    d2 = (dt[k, 0] - x) ** 2 + (dt[k, 1] - y) ** 2
                    cands.append(math.exp(-d2 / (2 * gts[g]["area"] * (2 * SIGMAS[k]) ** 2)))
                else:
                    cands.append(-1.0)
        best = max(range(len(cands)), key=lambda i: (cands[i], -i))  # the first of equal ones
        if cands[best] < low:
            labels.append(MISS)
        elif best == 0:
            labels.append(GOOD if cands[best] >= high else JITTER)
        elif best == 1:
            labels.append(INVERSION)
        else:
            labels.append(SWAP)
    return labels


def test_vectorized_classifier_equals_the_loop_definition():
    rng = np.random.default_rng(0)
    for trial in range(20):
        g = rng.integers(1, 4)
        kps = [skeleton(*rng.uniform(50, 300, 2)) for _ in range(g)]
        for kp in kps:
            kp[:, :2] += rng.normal(0, 8, (17, 2))
            kp[rng.random(17) < 0.15, 2] = 0
        areas = rng.uniform(3000, 20000, g)
        own = rng.integers(0, g, 5)
        # detections: their person's joints plus noise of every size, some mirrored, some borrowed
        dt = np.stack([kps[o][:, :2] + rng.normal(0, rng.choice([2, 10, 40]), (17, 2)) for o in own])
        mirror = rng.random((5, 17)) < 0.2
        dt = np.where(mirror[..., None], np.stack([kps[o][FLIP_INDEX, :2] for o in own]), dt)
        labels, _, _ = analysis._classify(dt, np.stack(kps), areas, own, (0.5, 0.85), SIGMAS, FLIP_INDEX)
        gts = [{"kp": kp, "area": a} for kp, a in zip(kps, areas)]
        for d in range(5):
            assert labels[d].tolist() == loop_reference(gts, dt[d], own[d]), (trial, d)

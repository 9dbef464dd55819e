"""OKS, COCO matching and OKS-NMS against pycocotools and the reference's algorithms."""

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu.keypoints import COCO17
from hrnet_edu.oks import compute_oks, match_detections, oks_nms, soft_oks_nms

NUM_KEYPOINTS, SIGMAS = COCO17.num_joints, COCO17.sigma_array

K = NUM_KEYPOINTS


def random_scene(rng, n_gt, n_dt):
    """Ground truths with varied visibility, areas, crowd flags and fully unlabelled persons,
    and detections that are noisy copies of them plus random poses (with distinct scores)."""
    centers = rng.uniform(50, 1950, size=(n_gt, 1, 2))
    sizes = rng.uniform(5, 80, size=(n_gt, 1, 1))
    gt_xy = centers + sizes * rng.normal(size=(n_gt, K, 2)) * 0.4
    vis = rng.choice([0, 1, 2], size=(n_gt, K), p=rng.dirichlet([1, 1, 1]))
    kinds = ["normal", "unlabelled", "crowd", "crowd_labelled"]
    kind = rng.choice(kinds, size=n_gt, p=[0.7, 0.12, 0.1, 0.08])
    vis[np.isin(kind, ["unlabelled", "crowd"])] = 0
    gt_xy[vis == 0] = 0.0  # COCO writes unlabelled keypoints as (0, 0, 0)
    gt = np.concatenate([gt_xy, vis[..., None].astype(float)], axis=2)
    boxes = np.concatenate([centers[:, 0] - sizes[:, 0], 2 * sizes[:, 0].repeat(2, 1)], axis=1)
    areas = (2 * sizes[:, 0, 0]) ** 2 * rng.uniform(0.3, 1.0, size=n_gt)
    areas[rng.random(n_gt) < 0.05] = 0.0  # degenerate area: pycocotools' eps keeps it finite
    iscrowd = np.isin(kind, ["crowd", "crowd_labelled"]).astype(int)
    src = rng.integers(0, n_gt, size=n_dt)
    dt_xy = centers[src] + sizes[src] * rng.normal(size=(n_dt, K, 2)) * 0.4
    close = rng.random(n_dt) < 0.7
    dt_xy[close] = (centers[src] + (gt_xy[src] - centers[src]) * (vis[src, :, None] > 0))[close]
    dt_xy[close] += rng.normal(size=(close.sum(), K, 2)) * rng.uniform(0, 8, size=(close.sum(), 1, 1))
    dt = np.concatenate([dt_xy, rng.uniform(0, 1, size=(n_dt, K, 1))], axis=2)
    scores = rng.permutation(n_dt) / n_dt + 0.01
    return gt, areas, boxes, iscrowd, dt, scores


def coco_objects(gt, areas, boxes, iscrowd, dt, scores):
    """One-image COCO ground truth and detections, built in memory."""
    image = {"id": 1, "width": 2000, "height": 2000, "file_name": "x.jpg"}
    cats = [{"id": 1, "name": "person", "keypoints": [str(k) for k in range(K)]}]
    gts = [
        {"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": g.reshape(-1).tolist(),
         "num_keypoints": int((g[:, 2] > 0).sum()), "area": float(a), "bbox": b.tolist(), "iscrowd": int(c)}
        for i, (g, a, b, c) in enumerate(zip(gt, areas, boxes, iscrowd))
    ]  # fmt: skip
    dts = []
    for i, (d, s) in enumerate(zip(dt, scores)):
        x, y = d[:, 0], d[:, 1]
        bbox = [x.min(), y.min(), x.max() - x.min(), y.max() - y.min()]
        dts.append({"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": d.reshape(-1).tolist(),
                    "score": float(s), "area": bbox[2] * bbox[3], "bbox": bbox})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset = {"images": [image], "annotations": gts, "categories": cats}
        coco_dt.dataset = {"images": [image], "annotations": dts, "categories": cats}
        coco_gt.createIndex()
        coco_dt.createIndex()
    ev = COCOeval(coco_gt, coco_dt, "keypoints")
    ev.params.imgIds = [1]
    ev.params.maxDets = [len(dts)]  # computeOks keeps only maxDets[-1] detections
    return ev


@pytest.mark.parametrize("seed", range(6))
def test_compute_oks_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    gt, areas, boxes, iscrowd, dt, scores = random_scene(rng, n_gt=int(rng.integers(1, 12)), n_dt=30)
    ev = coco_objects(gt, areas, boxes, iscrowd, dt, scores)
    ev._prepare()
    theirs = np.asarray(ev.computeOks(1, 1))  # rows sorted by score (mergesort on −score)
    order = np.argsort(-scores, kind="mergesort")
    ours = compute_oks(dt[order], gt, areas, boxes, gt_iscrowd=iscrowd, sigmas=SIGMAS)
    assert ours.shape == theirs.shape == (30, len(gt))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_box_rule_and_crowd_cases_present_and_equal():
    """A hand-made scene where each special case surely occurs."""
    rng = np.random.default_rng(7)
    gt, areas, boxes, iscrowd, dt, scores = random_scene(rng, 6, 20)
    gt[0, :, 2] = 0  # unlabelled, not crowd: box rule
    iscrowd[1], gt[1, :, 2] = 1, 0  # crowd region (COCO style: no keypoints)
    iscrowd[2], gt[2, :, 2] = 1, 2  # crowd with labels
    gt[3, :, 2] = 0
    gt[3, :, :2] = 0
    dt[0, :, :2] = boxes[3, :2] + boxes[3, 2:] * 2.5  # outside the enlarged box: distance > 0
    areas[4] = 0.0
    ev = coco_objects(gt, areas, boxes, iscrowd, dt, scores)
    ev._prepare()
    order = np.argsort(-scores, kind="mergesort")
    ours = compute_oks(dt[order], gt, areas, boxes, iscrowd, sigmas=SIGMAS)
    np.testing.assert_allclose(ours, ev.computeOks(1, 1), rtol=0, atol=1e-9)


def test_blocks_give_the_same_answer(monkeypatch):
    """The D axis is processed in blocks to bound memory; block size must not change values."""
    import hrnet_edu.oks as oks_module

    rng = np.random.default_rng(3)
    gt, areas, boxes, iscrowd, dt, _ = random_scene(rng, 9, 40)
    full = compute_oks(dt, gt, areas, boxes, sigmas=SIGMAS)
    monkeypatch.setattr(oks_module, "_BLOCK_ELEMENTS", 1)
    np.testing.assert_array_equal(oks_module.compute_oks(dt, gt, areas, boxes, sigmas=SIGMAS), full)


def test_identical_prediction_gives_one_and_scale_invariance():
    rng = np.random.default_rng(1)
    gt, areas, boxes, iscrowd, _, _ = random_scene(rng, 8, 1)
    gt[:, 0, 2] = 2  # every person has at least one label
    areas = np.maximum(areas, 10.0)
    oks = compute_oks(gt[:, :, :2], gt, areas, boxes, sigmas=SIGMAS)
    np.testing.assert_allclose(np.diag(oks), 1.0, atol=1e-12)
    assert (oks <= 1 + 1e-12).all() and (oks >= 0).all()
    # OKS depends on d²/s²: scaling every coordinate by c and the areas by c² changes nothing
    dt = gt[::-1, :, :2] + rng.normal(size=(8, K, 2)) * 3
    c = 2.5
    scaled_gt = gt.copy()
    scaled_gt[:, :, :2] *= c
    np.testing.assert_allclose(
        compute_oks(dt * c, scaled_gt, areas * c**2, boxes * c, sigmas=SIGMAS),
        compute_oks(dt, gt, areas, boxes, sigmas=SIGMAS), atol=1e-12
    )


def test_accepts_torch_and_xy_only_and_empty():
    rng = np.random.default_rng(2)
    gt, areas, boxes, _, dt, _ = random_scene(rng, 4, 5)
    ref = compute_oks(dt, gt, areas, boxes, sigmas=SIGMAS)
    from_torch = compute_oks(torch.from_numpy(dt[:, :, :2]), torch.from_numpy(gt), areas, boxes,
                             sigmas=SIGMAS)
    np.testing.assert_allclose(from_torch, ref)
    assert compute_oks(dt[:0], gt, areas, boxes, sigmas=SIGMAS).shape == (0, 4)
    assert compute_oks(dt, gt[:0], areas[:0], boxes[:0], sigmas=SIGMAS).shape == (5, 0)


def test_bad_shapes_raise_clear_errors():
    gt = np.zeros((2, K, 3))
    with pytest.raises(ValueError, match="gt_keypoints"):
        compute_oks(np.zeros((1, K, 2)), np.zeros((2, 5, 3)), [1, 1], np.zeros((2, 4)), sigmas=SIGMAS)
    with pytest.raises(ValueError, match="gt_areas"):
        compute_oks(np.zeros((1, K, 2)), gt, [1, 1, 1], np.zeros((2, 4)), sigmas=SIGMAS)
    with pytest.raises(ValueError, match="gt_iscrowd"):
        compute_oks(np.zeros((1, K, 2)), gt, [1, 1], np.zeros((2, 4)), gt_iscrowd=[0], sigmas=SIGMAS)


@pytest.mark.parametrize("seed", range(3))
def test_match_detections_equals_cocoeval_matching(seed):
    """dtMatches / dtIgnore of COCOeval.evaluateImg (area 'all'), for all ten thresholds."""
    rng = np.random.default_rng(10 + seed)
    gt, areas, boxes, iscrowd, dt, scores = random_scene(rng, 10, 25)
    dt[5] = dt[4]  # an exact duplicate detection: exercises ties and crowd re-use
    ev = coco_objects(gt, areas, boxes, iscrowd, dt, scores)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    res = ev.evalImgs[0]  # (catId 1, areaRng 'all', image 1)
    assert res["aRng"] == ev.params.areaRng[0]
    oks = compute_oks(dt, gt, areas, boxes, sigmas=SIGMAS)
    ignore = (iscrowd > 0) | ~(gt[:, :, 2] > 0).any(1)  # COCOeval's 'ignore' flag
    dt_ids, gt_ids = np.array(res["dtIds"]), np.arange(1, len(gt) + 1)
    for t_idx, t in enumerate(ev.params.iouThrs):
        matched, dt_ignore = match_detections(oks, scores, ignore, iscrowd, t)
        ours_ids = np.where(matched >= 0, gt_ids[np.maximum(matched, 0)], 0)
        np.testing.assert_array_equal(ours_ids[dt_ids - 1], res["dtMatches"][t_idx])
        np.testing.assert_array_equal(dt_ignore[dt_ids - 1], res["dtIgnore"][t_idx])


def reference_oks_iou(g, d, a_g, a_d):
    """A plain transcription of the reference's per-pair ``oks_iou`` (no visibility filter)."""
    variances = (SIGMAS * 2) ** 2
    out = np.zeros(len(d))
    for n in range(len(d)):
        dx, dy = d[n, :, 0] - g[:, 0], d[n, :, 1] - g[:, 1]
        e = (dx**2 + dy**2) / variances / ((a_g + a_d[n]) / 2 + np.spacing(1)) / 2
        out[n] = np.sum(np.exp(-e)) / e.shape[0]
    return out


def reference_oks_nms(kpts, scores, areas, thresh):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        ovr = reference_oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]])
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def clusters(rng, n_people=4, copies=5, jitter=1.0):
    base = rng.uniform(0, 400, size=(n_people, 1, 2)) + rng.normal(size=(n_people, K, 2)) * 30
    kpts = np.repeat(base, copies, axis=0) + rng.normal(size=(n_people * copies, K, 2)) * jitter
    kpts = np.concatenate([kpts, rng.uniform(0.3, 1, size=(len(kpts), K, 1))], axis=2)
    scores = rng.permutation(len(kpts)) / len(kpts) + 0.05
    areas = np.full(len(kpts), 90.0**2)
    return kpts, scores, areas


def test_oks_nms_keeps_the_best_of_each_duplicate_cluster():
    rng = np.random.default_rng(4)
    kpts, scores, areas = clusters(rng)
    keep = oks_nms(kpts, scores, areas, threshold=0.9, sigmas=SIGMAS)
    assert keep.dtype == np.int64
    best = [int(np.argmax(np.where(np.arange(20) // 5 == c, scores, -1))) for c in range(4)]
    assert sorted(keep.tolist()) == sorted(best)
    assert np.all(np.diff(scores[keep]) < 0)  # best first
    assert keep.tolist() == reference_oks_nms(kpts[:, :, :2], scores, areas, 0.9)
    assert oks_nms(kpts[:0], scores[:0], areas[:0], sigmas=SIGMAS).shape == (0,)


@pytest.mark.parametrize("thresh", [0.3, 0.6, 0.9])
def test_oks_nms_equals_reference_on_random_poses(thresh):
    rng = np.random.default_rng(5)
    kpts, scores, areas = clusters(rng, n_people=6, copies=4, jitter=12.0)
    areas = areas * rng.uniform(0.2, 2, size=len(areas))
    keep = oks_nms(kpts, scores, areas, thresh, sigmas=SIGMAS)
    assert keep.tolist() == reference_oks_nms(kpts, scores, areas, thresh)


def test_soft_oks_nms_decays_duplicates():
    far = np.full((K, 3), 300.0)
    pose = np.full((K, 3), 10.0)
    kpts = np.stack([pose, pose, far])  # two identical poses and one far away
    scores = np.array([0.9, 0.8, 0.5])
    areas = np.full(3, 100.0)
    keep, decayed = soft_oks_nms(kpts, scores, areas, threshold=0.9, sigmas=SIGMAS)
    # OKS of the duplicates is 1: 0.8 decays to 0.8·exp(−1/0.9) ≈ 0.263 < 0.5, so the far pose comes second
    assert keep.tolist() == [0, 2, 1]
    np.testing.assert_allclose(decayed, [0.9, 0.5, 0.8 * np.exp(-1 / 0.9)], rtol=1e-12)
    keep, decayed = soft_oks_nms(kpts, scores, areas, threshold=0.9, method="linear", sigmas=SIGMAS)
    np.testing.assert_allclose(decayed, [0.9, 0.5, 0.0], atol=1e-12)  # linear: × (1 − OKS) = 0
    assert soft_oks_nms(kpts, scores, areas, max_dets=2, sigmas=SIGMAS)[0].tolist() == [0, 2]
    with pytest.raises(ValueError, match="method"):
        soft_oks_nms(kpts, scores, areas, method="box", sigmas=SIGMAS)


def test_soft_nms_never_raises_scores_and_keeps_everyone_up_to_max_dets():
    rng = np.random.default_rng(6)
    kpts, scores, areas = clusters(rng, n_people=3, copies=4)
    keep, decayed = soft_oks_nms(kpts, scores, areas, max_dets=20, sigmas=SIGMAS)
    assert sorted(keep.tolist()) == list(range(12))
    assert (decayed <= scores[keep] + 1e-15).all()
    assert decayed[0] == scores.max()


def test_sigmas_are_required():
    # no COCO-17 fallback: the keypoint set's OKS constants are always passed
    rng = np.random.default_rng(0)
    kpts, scores, areas = rng.uniform(0, 100, (3, 17, 2)), np.ones(3), np.full(3, 1e4)
    with pytest.raises(TypeError, match="sigmas"):
        compute_oks(kpts, np.concatenate([kpts, np.ones((3, 17, 1))], 2), areas, np.zeros((3, 4)))
    with pytest.raises(TypeError, match="sigmas"):
        oks_nms(kpts, scores, areas)
    with pytest.raises(TypeError, match="sigmas"):
        soft_oks_nms(kpts, scores, areas)

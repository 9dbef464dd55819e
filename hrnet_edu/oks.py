"""Object Keypoint Similarity (OKS), COCO's matching rule, and OKS-based non-maximum suppression.

OKS plays for keypoints the role IoU plays for boxes (COCO keypoint evaluation; HRNet paper
Sec. 4.1). For a detection d and a ground truth g with K keypoints::

    OKS = Σ_i exp(−d_i² / (2 s² k_i²)) δ(v_i > 0) / Σ_i δ(v_i > 0),    k_i = 2 σ_i,  s² = area

d_i is the distance between detected and annotated keypoint i, v_i the annotated visibility
flag, s² the ground truth's segment area and σ_i the per-keypoint constant in
``KeypointSpec.sigmas`` (small for eyes, large for hips). pycocotools writes the same thing as
``e = d² / (2σ)² / (area + eps) / 2`` and ``OKS = mean over labelled i of exp(−e)``, with
eps = ``np.spacing(1)``. ``compute_oks`` follows that expression operation by operation, so it
equals ``COCOeval.computeOks`` to rounding.

The σ_i are always passed: the keypoint set's own (``sigmas=spec.sigmas``, see
``keypoints.KeypointSpec``) — COCO-17's as pycocotools has them, CrowdPose's 14 as crowdposetools
has them; no function assumes COCO's joints.

Shapes: D detections, G ground truths, N candidate poses in one image, K joints (17 for COCO).
Keypoints are image pixel coordinates (x, y) plus a third column (visibility for ground
truths, confidence for detections).
"""

from __future__ import annotations

import numpy as np

# pycocotools adds this to every area so that an area of 0 does not divide by zero.
EPS = np.spacing(1)

# Bound on D·G·K elements per block of the OKS tensor (8 MB of float64 per temporary).
_BLOCK_ELEMENTS = 1_000_000


def _as_float_array(x, name: str, last_dims: tuple[int, ...]) -> np.ndarray:
    """Convert numpy/torch/list input to a float64 array and check its trailing shape."""
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 + len(last_dims) or any(
        want is not None and got != want for got, want in zip(a.shape[1:], last_dims)
    ):
        raise ValueError(f"{name} must have shape (n, {', '.join(map(str, last_dims))}), got {a.shape}")
    return a


def compute_oks(
    dt_keypoints,
    gt_keypoints,
    gt_areas,
    gt_boxes,
    gt_iscrowd=None,
    *,
    sigmas,
) -> np.ndarray:
    """OKS between every detection and every ground truth of one image, like pycocotools.

    Args:
        dt_keypoints: (D, K, 2) or (D, K, 3) detected keypoints (x, y[, confidence]); the third
            column is not used, as in COCO.
        gt_keypoints: (G, K, 3) annotated keypoints (x, y, v); v > 0 means labelled.
        gt_areas: (G,) ground-truth areas s² (COCO's segment area, not the box area).
        gt_boxes: (G, 4) ground-truth boxes (x, y, w, h), used only by the box rule below.
        gt_iscrowd: optional (G,) crowd flags. They are checked but do not change the values:
            pycocotools' computeOks gives a crowd region the same OKS as anyone else (COCO's crowd
            annotations have no labelled keypoint, so the box rule applies). Crowd regions matter
            in the *matching* — see ``match_detections``.
        sigmas: (K,) per-keypoint constants σ_i (k_i = 2σ_i).

    Returns:
        (D, G) float64 OKS matrix, rows in the order given (pycocotools sorts detections by score
        first; sort yourself if you compare row by row).

    The box rule: a ground truth with no labelled keypoint (v = 0 everywhere) has no distance
    to measure, so pycocotools uses the distance from each detected keypoint to the ground-truth
    box enlarged by one box size on every side ([x − w, x + 2w] × [y − h, y + 2h]; 0 inside)
    and averages over all K keypoints. A detection anywhere near such a person scores ≈ 1,
    which is what lets an "ignore" region absorb detections.
    """
    dt, gt, sigmas, areas, boxes = _check_oks_inputs(dt_keypoints, gt_keypoints, gt_areas, gt_boxes,
                                                     gt_iscrowd, sigmas)
    G = gt.shape[0]
    oks = np.zeros((dt.shape[0], G))
    if oks.size == 0:
        return oks
    labelled = gt[:, :, 2] > 0  # (G, K)
    has_labels = labelled.any(axis=1)  # (G,)  k1 > 0 in pycocotools
    for g_idx, box_rule in ((np.flatnonzero(has_labels), False), (np.flatnonzero(~has_labels), True)):
        if g_idx.size:
            oks[:, g_idx] = _oks_with(dt, gt[g_idx], areas[g_idx], boxes[g_idx], sigmas, box_rule)
    return oks


def _check_oks_inputs(dt_keypoints, gt_keypoints, gt_areas, gt_boxes, gt_iscrowd, sigmas):
    """``compute_oks``' arguments as float64 arrays of checked shapes: (dt, gt, sigmas, areas, boxes)."""
    dt = _as_float_array(dt_keypoints, "dt_keypoints", (None, None))
    gt = _as_float_array(gt_keypoints, "gt_keypoints", (None, 3))
    sigmas = np.asarray(sigmas, dtype=np.float64)
    K = sigmas.shape[0]
    if dt.shape[2] not in (2, 3) or dt.shape[1] != K or gt.shape[1] != K:
        raise ValueError(
            f"expected dt_keypoints (D, {K}, 2|3) and gt_keypoints (G, {K}, 3) for {K} sigmas, "
            f"got {dt.shape} and {gt.shape}"
        )
    G = gt.shape[0]
    areas = np.asarray(gt_areas, dtype=np.float64).reshape(-1)
    boxes = _as_float_array(gt_boxes, "gt_boxes", (4,)) if G else np.zeros((0, 4))
    if areas.shape != (G,) or boxes.shape != (G, 4):
        raise ValueError(f"gt_areas must be ({G},) and gt_boxes ({G}, 4), got {areas.shape}, {boxes.shape}")
    if gt_iscrowd is not None and np.asarray(gt_iscrowd).reshape(-1).shape != (G,):
        raise ValueError(f"gt_iscrowd must have shape ({G},), got {np.asarray(gt_iscrowd).shape}")
    return dt, gt, sigmas, areas, boxes


def _oks_with(dt: np.ndarray, g: np.ndarray, areas: np.ndarray, boxes: np.ndarray, sigmas: np.ndarray,
              box_rule: bool) -> np.ndarray:
    """(D, G') OKS of the detections ``dt`` (D, K, 2|3) with ground truths ``g`` (G', K, 3) that all
    have labelled keypoints (``box_rule`` False) or all have none (True: the box rule)."""
    K = sigmas.shape[0]
    # (2σ)²: the per-keypoint variance of pycocotools' ``vars``.
    variances = (sigmas * 2) ** 2  # (K,)
    xd, yd = dt[:, None, :, 0], dt[:, None, :, 1]  # (D, 1, K)
    block = max(1, _BLOCK_ELEMENTS // (g.shape[0] * K))  # rows of D per block keep memory bounded
    if box_rule:
        # distance to the box grown by one box size on each side: [x0, x1] × [y0, y1]
        x0 = (boxes[:, 0] - boxes[:, 2])[None, :, None]  # (1, G', 1)
        x1 = (boxes[:, 0] + boxes[:, 2] * 2)[None, :, None]
        y0 = (boxes[:, 1] - boxes[:, 3])[None, :, None]
        y1 = (boxes[:, 1] + boxes[:, 3] * 2)[None, :, None]
        mask = np.ones((g.shape[0], K))  # average over all K keypoints
    else:
        mask = (g[:, :, 2] > 0).astype(np.float64)  # average over the labelled keypoints only
    denom = areas[None, :, None] + EPS  # (1, G', 1)
    oks = np.empty((dt.shape[0], g.shape[0]))
    for start in range(0, dt.shape[0], block):
        xb, yb = xd[start : start + block], yd[start : start + block]  # (B, 1, K)
        if box_rule:
            dx = np.maximum(0, x0 - xb) + np.maximum(0, xb - x1)  # (B, G', K)
            dy = np.maximum(0, y0 - yb) + np.maximum(0, yb - y1)
        else:
            dx = xb - g[None, :, :, 0]  # (B, G', K)
            dy = yb - g[None, :, :, 1]
        # e_i = d_i² / (2σ_i)² / (s² + eps) / 2   — pycocotools' operation order, done in place
        e = np.square(dx, out=dx)
        e += np.square(dy, out=dy)
        e /= variances
        e /= denom
        e /= 2
        # OKS = Σ_i exp(−e_i) δ(v_i > 0) / Σ_i δ(v_i > 0)
        similarity = np.exp(np.negative(e, out=e), out=e)
        oks[start : start + block] = np.einsum("bgk,gk->bg", similarity, mask) / mask.sum(-1)
    return oks


def _preference_keys(oks: np.ndarray, regular: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """(D, S, G) preference of each ground truth for detection d in scenario s, −1 where OKS < t_s.

    Regular before ignored, then higher OKS, then (pycocotools keeps the *last* of equal OKS) the
    higher index. ``rank[d, g]`` is g's position when row d is sorted by (OKS, index), so
    key = rank + G·regular has no ties.
    """
    D, G = oks.shape
    rank = np.empty((D, G), dtype=np.int64)
    np.put_along_axis(rank, np.lexsort((np.broadcast_to(np.arange(G), (D, G)), oks), axis=-1),
                      np.arange(G), axis=-1)
    return np.where(oks[:, None, :] >= t_s, rank[:, None, :] + G * regular, -1)


def match_detections(
    oks: np.ndarray, dt_scores, gt_ignore, gt_iscrowd, threshold
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching of one image (COCOeval.evaluateImg), at one or many thresholds.

    Detections are visited from the highest score down; each takes the still-free ground truth
    with the highest OKS ≥ threshold, preferring regular ground truths over ignored ones
    (crowd regions and persons with no labelled keypoint are "ignored"). A crowd region is never
    used up: it can absorb any number of detections. A detection matched to an ignored ground
    truth counts neither as a true nor as a false positive.

    COCOeval runs this for 10 thresholds × 3 area ranges (the range decides which ground truths
    are ignored). These S independent matchings are run side by side here, one (S, G) step per
    detection, because a Python loop per threshold, range, detection and ground truth is what
    makes COCOeval slow.

    Args:
        oks: (D, G) OKS matrix (rows = detections in any order).
        dt_scores: (D,) detection scores.
        gt_ignore: (G,) or (A, G) bool, ground truths that must not count (crowd, unlabelled,
            outside the area range), one row per area range.
        gt_iscrowd: (G,) bool, crowd regions (may be matched many times).
        threshold: OKS threshold t, a scalar or a (T,) array (COCO uses 0.50, 0.55, …, 0.95).

    Returns:
        matched: index of the matched ground truth (−1 = unmatched), and dt_ignore: bool (matched
        to an ignored ground truth), in the input row order, of shape (D,) for a scalar threshold
        and (G,) ignore flags, else [A,] [T,] D (the leading axes of gt_ignore, then threshold).
    """
    oks = np.asarray(oks, dtype=np.float64)
    D, G = oks.shape
    ignore = np.asarray(gt_ignore, dtype=bool)
    crowd = np.asarray(gt_iscrowd, dtype=bool).reshape(G)
    thresholds = np.asarray(threshold, dtype=np.float64)
    batch = ignore.shape[:-1] + thresholds.shape  # output shape without D
    ignore = ignore.reshape(-1, G)  # (A, G)
    A, T = ignore.shape[0], thresholds.size
    # COCO caps the threshold just below 1 so that a perfect OKS of 1 still matches.
    t = np.minimum(thresholds.reshape(-1), 1 - 1e-10)
    # S = A·T scenarios (area range a, threshold t): s = a·T + t
    t_s = np.tile(t, A)[:, None]  # (S, 1)
    regular = np.repeat(~ignore, T, axis=0)  # (S, G)
    keys = _preference_keys(oks, regular, t_s)  # (D, S, G)
    S = t_s.shape[0]
    matched = np.full((S, D), -1, dtype=np.int64)
    free = np.ones((S, G), dtype=bool)  # not yet taken (crowd regions stay free)
    rows = np.arange(S)
    # Detections below the lowest threshold everywhere can match nothing: skip them.
    can_match = (keys.max(axis=(1, 2)) >= 0) if G and S else np.zeros(D, dtype=bool)
    for d in np.argsort(-np.asarray(dt_scores, dtype=np.float64), kind="mergesort"):
        if not can_match[d]:
            continue
        key = np.where(free, keys[d], -1)  # (S, G) free candidates only
        best = key.argmax(axis=1)  # (S,)
        found = key[rows, best] >= 0
        matched[:, d] = np.where(found, best, -1)
        # the matched ground truth is taken, unless it is a crowd region (no match: unchanged)
        free[rows, best] &= crowd[best] | ~found
    dt_ignore = (matched >= 0) & ~regular[rows[:, None], np.maximum(matched, 0)]
    return matched.reshape(batch + (D,)), dt_ignore.reshape(batch + (D,))


def keypoint_similarity(points, candidates, areas, sigmas) -> np.ndarray:
    """ks between points and candidate locations, broadcast over leading dimensions.

    Args:
        points: (..., K, 2) detected joints. candidates: (..., K, 2) ground-truth joints.
        areas: (...) the ground truths' areas s². sigmas: (K,) per-joint σ (``KeypointSpec.sigmas``).

    Returns:
        (..., K) ks = exp(−d² / (2σ)² / (s² + eps) / 2), pycocotools' expression.
    """
    d2 = ((np.asarray(points, np.float64) - np.asarray(candidates, np.float64)) ** 2).sum(-1)
    # ks = exp(−d² / (2 s² k²)) with k = 2σ, written as pycocotools does
    return np.exp(-d2 / (2 * np.asarray(sigmas)) ** 2 / (np.asarray(areas, np.float64)[..., None] + EPS) / 2)


def _pairwise_nms_oks(keypoints: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(N, N) OKS between candidate poses as the reference's ``oks_iou``: all K keypoints count,
    and the scale is the mean of the two areas."""
    mean_areas = (areas[:, None] + areas[None, :]) / 2  # (N, N)
    pts = keypoints[..., :2]
    return keypoint_similarity(pts[:, None], pts[None, :], mean_areas, sigmas).mean(-1)  # (N, N)


def _check_nms_inputs(keypoints, scores, areas, sigmas):
    kpts = _as_float_array(keypoints, "keypoints", (None, None))
    scores = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
    areas = np.asarray(areas.detach().cpu() if hasattr(areas, "detach") else areas, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    n = kpts.shape[0]
    if scores.shape != (n,) or areas.shape != (n,) or kpts.shape[1] != sigmas.shape[0]:
        raise ValueError(
            f"expected keypoints (N, {sigmas.shape[0]}, 2|3), scores (N,), areas (N,); "
            f"got {kpts.shape}, {scores.shape}, {areas.shape}"
        )
    return kpts, scores, areas, sigmas


def oks_nms(keypoints, scores, areas, threshold: float = 0.9, *, sigmas) -> np.ndarray:
    """Greedy OKS non-maximum suppression of the poses of one image (the reference's ``oks_nms``).

    Take the highest-scoring pose, drop every remaining pose whose OKS with it is > threshold,
    repeat. The reference runs this per image at threshold 0.9 with the crop areas
    (scale·200)² as ``areas``, and all K keypoints in the OKS (no visibility filter).

    Args:
        keypoints: (N, K, 2|3) candidate poses in image pixels.
        scores: (N,) scores (after ``coco_eval.rescore``).
        areas: (N,) areas used as s² in the OKS (mean of the pair's two areas).
        threshold: poses with OKS > threshold to a kept pose are suppressed.
        sigmas: (K,) the keypoint set's σ_i (``KeypointSpec.sigmas``).

    Returns:
        keep: (M,) np.int64 indices into the input, best score first. Ties are broken by the
        lower index (a stable sort; the reference's reversed argsort takes the higher index).
    """
    kpts, scores, areas, sigmas = _check_nms_inputs(keypoints, scores, areas, sigmas)
    ovr = _pairwise_nms_oks(kpts, areas, sigmas)  # (N, N)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        order = order[1:][ovr[i, order[1:]] <= threshold]  # keep only poses not too similar to i
    return np.asarray(keep, dtype=np.int64)


def soft_oks_nms(
    keypoints,
    scores,
    areas,
    threshold: float = 0.9,
    method: str = "gaussian",
    max_dets: int = 20,
    *,
    sigmas,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft OKS-NMS (the reference's ``soft_oks_nms``): decay the scores of similar poses
    instead of deleting them (Bodla et al., Soft-NMS, 2017).

    Repeatedly pick the pose with the highest current score, then rescore every remaining pose j
    by its OKS o_j with the picked one:

    - ``"gaussian"`` (the reference's default): score_j ← score_j · exp(−o_j² / threshold);
    - ``"linear"``: score_j ← score_j · (1 − o_j) where o_j ≥ threshold, unchanged elsewhere.

    Stops after ``max_dets`` picks (20 in the reference, COCO's maxDets for keypoints).

    Args:
        keypoints (N, K, 2|3), scores (N,), areas (N,), sigmas (K,): as in ``oks_nms``.

    Returns:
        keep: (M,) np.int64 indices in pick order (M ≤ max_dets), and
        decayed: (M,) float64 score of each kept pose when it was picked. The reference throws
        the decayed scores away and writes the original ones; both are available here.
    """
    if method not in ("gaussian", "linear"):
        raise ValueError(f"method must be 'gaussian' or 'linear', got {method!r}")
    kpts, scores, areas, sigmas = _check_nms_inputs(keypoints, scores, areas, sigmas)
    ovr = _pairwise_nms_oks(kpts, areas, sigmas)
    order = np.argsort(-scores, kind="stable")
    current = scores[order]
    keep, decayed = [], []
    while order.size > 0 and len(keep) < max_dets:
        i = order[0]
        keep.append(i)
        decayed.append(current[0])
        o, order, current = ovr[i, order[1:]], order[1:], current[1:]
        if method == "gaussian":
            # s_j ← s_j · exp(−o_j² / threshold)
            current = current * np.exp(-(o**2) / threshold)
        else:
            # s_j ← s_j · (1 − o_j)  if o_j ≥ threshold
            current = np.where(o >= threshold, current * (1 - o), current)
        resort = np.argsort(-current, kind="stable")
        order, current = order[resort], current[resort]
    return np.asarray(keep, dtype=np.int64), np.asarray(decayed, dtype=np.float64)

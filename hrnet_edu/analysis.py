"""Why a keypoint is wrong: the error taxonomy of Ronchi & Perona (ICCV 2017).

"Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation" sorts every predicted
keypoint of a detection that matches a ground-truth person into one of five classes by its
keypoint similarity (the per-keypoint term of OKS, see ``oks``)::

    ks(p, g) = exp(−‖p − g‖² / (2 s² k²)),    k = 2σ_joint,  s² = the person's area

computed against every candidate location of the same kind of joint in the image: the matched
person's own joint, the matched person's mirrored joint (left ↔ right) and the same or mirrored
joint of every other person. With ks* the best of them:

* good      — ks* ≥ 0.85, at the person's own joint;
* jitter    — 0.5 ≤ ks* < 0.85, at the person's own joint (right place, imprecise);
* inversion — ks* ≥ 0.5 at the person's *mirrored* joint (a left/right confusion);
* swap      — ks* ≥ 0.5 at a joint of *another* person (the network followed the wrong person);
* miss      — ks* < 0.5: near no candidate at all.

Detections are matched to ground truths with COCO's greedy rule at a loose OKS threshold (0.1,
as in the authors' ``coco-analyze``), so that even badly wrong poses are diagnosed. Only labelled
ground-truth joints are classified; crowd regions and persons without labelled keypoints are left
out. The keypoint spec (``spec=``, default: the ground truth's, else COCO-17) gives the σ_i, the
mirrored joint of each joint (its ``flip_index``) and the names of the rows.
Shapes: M matched pairs, K joints, G ground truths of one image, D detections of one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrnet_edu import coco_eval
from hrnet_edu.oks import compute_oks, keypoint_similarity, match_detections

CATEGORIES = ("good", "jitter", "inversion", "swap", "miss")
GOOD, JITTER, INVERSION, SWAP, MISS = range(5)
UNLABELLED = -1  # label of a joint the ground truth does not annotate


@dataclass(frozen=True)
class ErrorTaxonomy:
    """The taxonomy of every matched (detection, ground truth) pair.

    Attributes:
        labels: (M, K) int category index into ``CATEGORIES`` per pair and joint, −1 = unlabelled.
        ks_own: (M, K) keypoint similarity to the person's own joint (0 where unlabelled).
        ks_best: (M, K) the best similarity over all candidates (own, mirrored, other persons).
        result_index: (M,) index of the detection in the results list.
        image_ids, ann_ids: (M,) the image and the matched ground truth's annotation id.
        oks: (M,) OKS of the pair; scores: (M,) the detection's score.
        num_unmatched_results: detections matched to no ground truth (background false positives).
        num_unmatched_gt: ground truths no detection matched (missed persons).
        names: (K,) the joint names of the rows (the spec's).
    """

    labels: np.ndarray
    ks_own: np.ndarray
    ks_best: np.ndarray
    result_index: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    oks: np.ndarray
    scores: np.ndarray
    num_unmatched_results: int
    num_unmatched_gt: int
    names: tuple[str, ...]

    def counts(self) -> np.ndarray:
        """(K, 5) number of joints in each category (columns in ``CATEGORIES`` order)."""
        return (self.labels[..., None] == np.arange(len(CATEGORIES))).sum(axis=0)

    def shares(self) -> np.ndarray:
        """(K, 5) fraction of the labelled joints of each keypoint type in each category."""
        c = self.counts()
        return c / np.maximum(c.sum(axis=1, keepdims=True), 1)

    def overall(self) -> dict[str, float]:
        """Share of all labelled joints in each category."""
        c = self.counts().sum(axis=0)
        return dict(zip(CATEGORIES, (c / max(c.sum(), 1)).tolist()))

    def rows(self) -> list[dict]:
        """One row per keypoint type (name, labelled count, share of each category) and "all"."""
        c, s = self.counts(), self.shares()
        rows = [{"keypoint": name, "n": int(c[k].sum()), **dict(zip(CATEGORIES, s[k].tolist()))}
                for k, name in enumerate(self.names[: len(c)])]
        rows.append({"keypoint": "all", "n": int(c.sum()), **self.overall()})
        return rows

    def pairs_with(self, category: str) -> np.ndarray:
        """Indices of the pairs with at least one joint of ``category``, most such joints first."""
        n = (self.labels == CATEGORIES.index(category)).sum(axis=1)  # (M,)
        order = np.argsort(-n, kind="stable")
        return order[n[order] > 0]


def _classify(dt: np.ndarray, gt: np.ndarray, areas: np.ndarray, own: np.ndarray, jitter_range, sigmas,
              flip_index):
    """Labels, own ks and best ks (each (D, K)) of D detections against the G persons of one image.

    dt: (D, K, 2); gt: (G, K, 3); areas: (G,); own: (D,) index of each detection's matched person;
    flip_index: (K,) the mirrored joint of each joint.
    """
    d, g = len(dt), len(gt)
    # Candidates per person: its joints and its mirrored joints, (G, 2, K, 3)
    cand = np.stack([gt, gt[:, list(flip_index)]], axis=1)
    # Put each detection's own person first: rows [own, own mirrored, other persons…], (D, G)
    order = np.argsort(np.arange(g)[None, :] != own[:, None], axis=1, kind="stable")
    cand = cand[order]  # (D, G, 2, K, 3)
    # ks of every detection joint to every candidate, (D, G, 2, K)
    ks = keypoint_similarity(dt[:, None, None], cand[..., :2], areas[order][..., None], sigmas)
    ks = np.where(cand[..., 2] > 0, ks, -1.0).reshape(d, 2 * g, -1)  # unlabelled candidates never win
    best, where = ks.max(axis=1), ks.argmax(axis=1)  # (D, K); argmax takes the first (own) on ties
    low, high = jitter_range
    labels = np.select(
        [best < low, where == 0, where == 1],
        [MISS, np.where(best >= high, GOOD, JITTER), INVERSION],
        default=SWAP,
    )
    labelled = gt[own, :, 2] > 0  # (D, K)
    return np.where(labelled, labels, UNLABELLED), np.where(labelled, ks[:, 0], 0.0), np.maximum(best, 0.0)


def error_taxonomy(ground_truth, results, match_threshold: float = 0.1, jitter_range=(0.5, 0.85),
                   sigmas=None, spec=None) -> ErrorTaxonomy:
    """Classify every joint of every matched detection as good / jitter / inversion / swap / miss.

    Args:
        ground_truth: a ``GroundTruth`` (``data.ground_truth.read_ground_truth``), or a pycocotools
            ``COCO`` / the path of an annotation file together with ``spec``.
        results: COCO keypoint results (list of entries or the path of a results JSON).
        match_threshold: OKS needed to match a detection to a person (greedy by score, per image).
        jitter_range: (low, high) ks thresholds: below low a miss, at or above high good.
        sigmas: (K,) per-joint σ; default: the spec's.
        spec: the keypoint set (KeypointSpec or built-in name): σ, the mirrored joints, the row
            names. Default: the ground truth's.

    Returns:
        ErrorTaxonomy.
    """
    gt = coco_eval.load_ground_truth(ground_truth, spec)
    spec = gt.spec
    sigmas = np.asarray(spec.sigmas if sigmas is None else sigmas, dtype=np.float64)
    if sigmas.shape != (spec.num_joints,):
        raise ValueError(f"sigmas must be ({spec.num_joints},) for keypoint spec {spec.name!r}, "
                         f"got {sigmas.shape}")
    results = coco_eval.load_results(results, gt)
    by_image: dict[int, list[int]] = {}
    for i, r in enumerate(results):
        by_image.setdefault(r["image_id"], []).append(i)
    parts, unmatched_dt, unmatched_gt = [], 0, 0
    for image_id in gt.coco.getImgIds():
        part, n_dt, n_gt = _taxonomy_of_image(gt.coco, image_id, results, by_image.get(image_id, []),
                                              match_threshold, jitter_range, sigmas, spec.flip_index)
        unmatched_dt, unmatched_gt = unmatched_dt + n_dt, unmatched_gt + n_gt
        if part is not None:
            parts.append(part)
    k = len(sigmas)
    shapes = [(0, k), (0, k), (0, k), (0,), (0,), (0,), (0,), (0,)]
    cols = [np.concatenate(c) for c in zip(*parts)] if parts else [np.zeros(s) for s in shapes]
    labels, ks_own, ks_best, ridx, img, ann, oks, sc = cols
    as_int = np.int64
    return ErrorTaxonomy(labels.astype(as_int), ks_own, ks_best, ridx.astype(as_int), img.astype(as_int),
                         ann.astype(as_int), oks, sc, int(unmatched_dt), int(unmatched_gt), spec.names)


def _taxonomy_of_image(coco, image_id, results, indices, match_threshold, jitter_range, sigmas, flip_index):
    """One image's (columns of the taxonomy or None, unmatched detections, unmatched persons)."""
    anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
            if np.any(np.asarray(a["keypoints"])[2::3] > 0)]
    idx = np.asarray(indices, dtype=np.int64)
    if not anns or not len(idx):
        return None, len(idx), len(anns)
    gt = np.asarray([a["keypoints"] for a in anns], np.float64).reshape(len(anns), -1, 3)  # (G, K, 3)
    areas = np.asarray([a["area"] for a in anns], np.float64)
    dt = np.asarray([results[i]["keypoints"] for i in idx], np.float64).reshape(len(idx), -1, 3)
    scores = np.asarray([results[i]["score"] for i in idx], np.float64)
    oks = compute_oks(dt, gt, areas, np.asarray([a["bbox"] for a in anns], np.float64), sigmas=sigmas)
    none = np.zeros(len(anns), dtype=bool)
    matched, _ = match_detections(oks, scores, none, none, match_threshold)  # (D,) person or −1
    m = np.flatnonzero(matched >= 0)
    if not len(m):
        return None, len(idx), len(anns)
    own = matched[m]
    labels, ks_own, ks_best = _classify(dt[m, :, :2], gt, areas, own, jitter_range, sigmas, flip_index)
    part = (labels, ks_own, ks_best, idx[m], np.full(len(m), image_id),
            np.asarray([anns[j]["id"] for j in own]), oks[m, own], scores[m])
    return part, len(idx) - len(m), len(anns) - len(m)


# ----------------------------------------------------------------------------- error in the crop
def crop_ground_truth(dataset) -> np.ndarray:
    """Every person's ground truth in its own (unaugmented) input crop.

    Args:
        dataset: a ``CocoKeypoints`` (its boxes, centres and scales; no image is read).

    Returns:
        (N, K, 3): x, y in input-crop pixels and 1 where the joint is labelled (else 0, 0, 0).
    """
    from hrnet_edu.geometry import crop_transform, transform_points

    h, w = dataset.input_size
    matrix = crop_transform(dataset._center, dataset._scale, (w, h))  # (N, 2, 3)
    joints = dataset._joints  # (N, K, 3) image px, v in {0, 1}
    xy = transform_points(joints[..., :2], matrix)
    labelled = joints[..., 2:] > 0
    return np.concatenate([xy * labelled, labelled], axis=-1)


def mean_pose(crop_joints: np.ndarray) -> np.ndarray:
    """The pose that ignores the image: each joint's mean position over the labelled ones.

    crop_joints: (N, K, 3) from :func:`crop_ground_truth`. Returns (K, 2) crop pixels.
    """
    labelled = crop_joints[..., 2:]
    return (crop_joints[..., :2] * labelled).sum(0) / np.maximum(labelled.sum(0), 1)


def joint_errors(predicted: np.ndarray, crop_joints: np.ndarray) -> np.ndarray:
    """Mean distance of each joint to its ground truth, over the persons where it is labelled.

    Args:
        predicted: (N, K, 2) crop pixels, or (K, 2) for one pose predicted for everybody.
        crop_joints: (N, K, 3) from :func:`crop_ground_truth`.

    Returns:
        (K,) mean Euclidean error in input-crop pixels (NaN for a joint never labelled).
    """
    labelled = crop_joints[..., 2] > 0
    d = np.linalg.norm(np.broadcast_to(predicted, crop_joints[..., :2].shape) - crop_joints[..., :2], axis=-1)
    with np.errstate(invalid="ignore"):
        return (d * labelled).sum(0) / labelled.sum(0)


def predictions_in_crop(preds: dict, dataset) -> np.ndarray:
    """``evaluate.predict_dataset`` keypoints (image px) mapped into each person's input crop.

    Returns (N, K, 2) crop pixels, in the order of ``preds["indices"]`` (the dataset's samples).
    """
    from hrnet_edu.geometry import crop_transform, transform_points

    h, w = dataset.input_size
    idx = np.asarray(preds["indices"])
    matrix = crop_transform(dataset._center[idx], dataset._scale[idx], (w, h))  # (N, 2, 3)
    return transform_points(preds["keypoints"], matrix)

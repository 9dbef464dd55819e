"""COCO keypoint results files, a thin COCOeval wrapper, and the reference's training accuracy.

The paper reports COCO keypoint AP (Sec. 4.1): AP averaged over OKS thresholds
0.50, 0.55, …, 0.95, with at most 20 detections per image, plus AP at 0.5 and 0.75, AP for
medium (32² < area ≤ 96²) and large (area > 96²) persons, and the same five for recall (AR).
pycocotools computes them; this module prepares its input (results entries, rescored as the
reference does), checks it with clear errors, runs it quietly and returns the ten numbers as
a named structure.

``pck_accuracy`` is something else: the quick heatmap-argmax accuracy the reference logs during
training. It is NOT the COCO metric and is never reported as one.

Shapes: N person instances (detections), K joints, H×W heatmap size.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from dataclasses import dataclass, fields

import numpy as np

from hrnet_edu.heatmaps import decode_heatmaps
from hrnet_edu.keypoints import NUM_KEYPOINTS


def _numpy(x, dtype=np.float64) -> np.ndarray:
    """numpy view of numpy / torch (any device) / list input."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def rescore(box_scores, confidences, threshold: float = 0.2) -> np.ndarray:
    """The reference's instance score: box score × mean of the keypoint confidences > threshold.

    A pose whose keypoints are all at or below the threshold gets score 0.

    Args:
        box_scores: (N,) detector scores (1.0 for ground-truth boxes).
        confidences: (N, K) keypoint confidences (heatmap maxima).
        threshold: confidences must be strictly above it to count (reference ``in_vis_thre`` 0.2).

    Returns:
        (N,) float64 instance scores.
    """
    box = _numpy(box_scores).reshape(-1)
    conf = _numpy(confidences)
    if conf.ndim != 2 or conf.shape[0] != box.shape[0]:
        raise ValueError(f"expected box_scores (N,) and confidences (N, K), got {box.shape}, {conf.shape}")
    valid = conf > threshold  # (N, K)
    count = valid.sum(axis=1)
    # score = box · Σ_k c_k δ(c_k > t) / Σ_k δ(c_k > t)    (0 when no keypoint passes)
    mean_conf = np.where(count > 0, (conf * valid).sum(axis=1) / np.maximum(count, 1), 0.0)
    return box * mean_conf


def make_results(image_ids, keypoints, confidences, scores, category_id: int = 1) -> list[dict]:
    """COCO keypoint results entries, one per instance.

    Args:
        image_ids: (N,) integer image ids.
        keypoints: (N, K, 2) keypoints in image pixels (x, y).
        confidences: (N, K) keypoint confidences, written as the third number of each keypoint.
        scores: (N,) instance scores (see ``rescore``).

    Returns:
        list of N dicts ``{"image_id", "category_id", "keypoints": [x1, y1, c1, …] (3K floats), "score"}``
        with plain Python numbers (JSON-ready).
    """
    ids = _numpy(image_ids, np.int64).reshape(-1)
    kpts = _numpy(keypoints)
    conf = _numpy(confidences)
    sc = _numpy(scores).reshape(-1)
    n = ids.shape[0]
    if kpts.ndim != 3 or kpts.shape[::2] != (n, 2) or conf.shape != kpts.shape[:2] or sc.shape != (n,):
        raise ValueError(
            "expected image_ids (N,), keypoints (N, K, 2), confidences (N, K), scores (N,); got "
            f"{ids.shape}, {kpts.shape}, {conf.shape}, {sc.shape}"
        )
    # (N, 3K): x, y, c per joint; an explicit width so that zero instances still reshape
    flat = np.concatenate([kpts, conf[..., None]], axis=2).reshape(n, 3 * kpts.shape[1])
    return [
        {"image_id": int(i), "category_id": int(category_id), "keypoints": row.tolist(), "score": float(s)}
        for i, row, s in zip(ids.tolist(), flat, sc.tolist())
    ]


def load_coco(coco_gt):
    """A pycocotools ``COCO`` object from itself or from an annotation file path (quietly)."""
    from pycocotools.coco import COCO

    if isinstance(coco_gt, COCO):
        return coco_gt
    path = os.fspath(coco_gt)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ground-truth annotation file not found: {path}")
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints "loading annotations…"
        return COCO(path)


_load_coco = load_coco  # the earlier private name, kept for callers that used it


def validate_results(results, coco_gt) -> None:
    """Check results entries before pycocotools sees them; raise ValueError naming the entry.

    Checks: a list of dicts; fields image_id, category_id, keypoints, score present; image_id
    and category_id known to ``coco_gt``; 3K keypoint numbers (K from the category, 17 for
    persons); all numbers finite.
    """
    coco_gt = load_coco(coco_gt)
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of dicts, got {type(results).__name__}")
    image_ids = set(coco_gt.getImgIds())
    # K per category from its keypoint names (17 for COCO persons)
    categories = coco_gt.dataset.get("categories", [])
    cats = {c["id"]: len(c.get("keypoints", [])) or NUM_KEYPOINTS for c in categories}
    for n, r in enumerate(results):
        where = f"results[{n}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where} must be a dict, got {type(r).__name__}")
        missing = [k for k in ("image_id", "category_id", "keypoints", "score") if k not in r]
        if missing:
            raise ValueError(f"{where} is missing field(s) {missing}")
        where = f"results[{n}] (image_id {r['image_id']!r})"
        if r["image_id"] not in image_ids:
            raise ValueError(f"{where}: unknown image id, not in the ground-truth annotations")
        if r["category_id"] not in cats:
            raise ValueError(f"{where}: unknown category_id {r['category_id']!r} (known: {sorted(cats)})")
        k = cats[r["category_id"]]
        try:
            kpts = np.asarray(r["keypoints"], dtype=np.float64)
            score = float(r["score"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: keypoints and score must be numbers ({err})") from None
        if kpts.shape != (3 * k,):
            raise ValueError(
                f"{where}: keypoints must be {3 * k} numbers (x, y, c for {k} joints), got shape {kpts.shape}"
            )
        if not np.isfinite(kpts).all():
            bad = int(np.flatnonzero(~np.isfinite(kpts))[0])
            raise ValueError(f"{where}: keypoints contain NaN/inf (first at number {bad}, joint {bad // 3})")
        if not math.isfinite(score):
            raise ValueError(f"{where}: score is {score}")


def write_results(results: list[dict], path) -> str:
    """Write results entries to a COCO results JSON file; returns the path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f)
    return path


STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


@dataclass(frozen=True)
class CocoKeypointStats:
    """The ten numbers of COCOeval.summarize() for keypoints, in its order (``stats[0..9]``).

    ``num_results`` counts the results entries evaluated; ``note`` explains special cases
    (empty results: every number is 0 and nothing was run through pycocotools).
    A value of −1 means pycocotools found no ground truth in that area range.
    """

    ap: float
    ap50: float
    ap75: float
    ap_m: float
    ap_l: float
    ar: float
    ar50: float
    ar75: float
    ar_m: float
    ar_l: float
    num_results: int = 0
    note: str = ""

    @property
    def empty(self) -> bool:
        """True when there were no results to evaluate (all numbers are 0)."""
        return self.num_results == 0

    def as_dict(self) -> dict[str, float]:
        """The ten numbers keyed AP, AP50, …, ARL (the reference's names, in summarize() order)."""
        values = [getattr(self, f.name) for f in fields(self)][:10]
        return dict(zip(STAT_NAMES, values))

    def __str__(self) -> str:
        d = self.as_dict()
        head = " | ".join(f"{k:>5}" for k in d)
        vals = " | ".join(f"{v:5.3f}" for v in d.values())
        extra = f"\n({self.note})" if self.note else ""
        return f"{head}\n{vals}{extra}"


def load_results(results, coco_gt) -> list[dict]:
    """A results list, or the path of a COCO results JSON file, checked by :func:`validate_results`."""
    if not isinstance(results, list):
        path = os.fspath(results)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"results file not found: {path}")
        with open(path) as f:
            results = json.load(f)
    validate_results(results, coco_gt)
    return results


def evaluate_keypoints(coco_gt, results, img_ids=None, verbose: bool = False) -> CocoKeypointStats:
    """Run pycocotools' COCOeval (iouType 'keypoints') and return the ten standard numbers.

    Args:
        coco_gt: a pycocotools ``COCO`` object or the path of a COCO keypoint annotation file.
        results: list of results entries (``make_results``) or the path of a results JSON file.
            Checked with ``validate_results``; the caller's list is not modified (pycocotools
            writes ``id``/``area``/``bbox`` into the entries, so it gets a deep copy).
        img_ids: optional image ids to evaluate (default: every image of ``coco_gt``).
        verbose: print pycocotools' own output (loading, evaluate, accumulate, summarize table).

    Returns:
        CocoKeypointStats. Empty results → all zeros, ``empty`` True and a note (pycocotools itself
        crashes on an empty list).
    """
    from pycocotools.cocoeval import COCOeval

    coco_gt = load_coco(coco_gt)
    results = load_results(results, coco_gt)
    if img_ids is not None:
        img_ids = [int(i) for i in img_ids]
        results = [r for r in results if r["image_id"] in set(img_ids)]
    if not results:
        note = "no results to evaluate: every number is 0"
        if verbose:
            print(note)
        return CocoKeypointStats(*([0.0] * 10), num_results=0, note=note)

    # pycocotools prints as it goes; keep it quiet unless asked.
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        if img_ids is not None:
            coco_eval.params.imgIds = img_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return CocoKeypointStats(*(float(s) for s in coco_eval.stats[:10]), num_results=len(results))


def pck_accuracy(pred_heatmaps, target_heatmaps, threshold: float = 0.5):
    """The reference's training-time accuracy (``accuracy()``): NOT the COCO metric.

    A PCK computed on heatmaps: predicted and target keypoints are the argmax of each heatmap;
    their distance is normalised by (H/10, W/10) — applied, as in the reference, as x / (H/10)
    and y / (W/10) — and a joint is correct when the normalised distance is < threshold
    (0.5, i.e. about 1/20 of the heatmap side). Joints whose target argmax has x ≤ 1 or y ≤ 1
    (an all-zero target, i.e. no label, gives (0, 0)) are skipped, as in the reference; the
    target weights are not used.

    Args:
        pred_heatmaps, target_heatmaps: (N, K, H, W) numpy arrays or torch tensors (any device).
        threshold: normalised distance threshold.

    Returns:
        per_joint: (K,) float64 accuracy per joint, −1 where no sample of that joint counts;
        mean: float, the mean over joints that count (0 when none);
        count: int, the number of joints that count.
    """
    pred = _numpy(pred_heatmaps, np.float32)
    target = _numpy(target_heatmaps, np.float32)
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"expected two (N, K, H, W) heatmap batches, got {pred.shape} and {target.shape}")
    h, w = pred.shape[2], pred.shape[3]
    # integer argmax (x, y), (0, 0) where a map has no positive value: the reference's get_max_preds
    p, t = (decode_heatmaps(x, method="argmax")[0].astype(np.float64) for x in (pred, target))  # (N, K, 2)
    norm = np.array([h, w], dtype=np.float64) / 10  # the reference divides (x, y) by (H, W)/10
    counted = (t[..., 0] > 1) & (t[..., 1] > 1)  # (N, K)
    # d = ‖p / norm − t / norm‖, in units of a tenth of the heatmap side
    dist = np.linalg.norm(p / norm - t / norm, axis=-1)  # (N, K)
    n_counted = counted.sum(axis=0)  # (K,)
    hits = ((dist < threshold) & counted).sum(axis=0)
    per_joint = np.where(n_counted > 0, hits / np.maximum(n_counted, 1), -1.0)
    valid = n_counted > 0
    count = int(valid.sum())
    mean = float(per_joint[valid].mean()) if count else 0.0
    return per_joint, mean, count

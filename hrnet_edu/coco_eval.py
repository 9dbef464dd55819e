"""COCO keypoint results files and a thin COCOeval wrapper.

The paper reports COCO keypoint AP (Sec. 4.1): AP averaged over OKS thresholds
0.50, 0.55, …, 0.95, with at most 20 detections per image, plus AP at 0.5 and 0.75, AP for
medium (32² < area ≤ 96²) and large (area > 96²) persons, and the same five for recall (AR).
pycocotools computes them; this module prepares its input (results entries, rescored as the
reference does), checks it with clear errors, runs it quietly and returns the ten numbers as
a named structure. The keypoint set is a ``KeypointSpec`` (``spec=``, COCO-17 by default): it gives
K and the OKS sigmas handed to pycocotools (``COCOeval.params.kpt_oks_sigmas``), so CrowdPose's
14 joints or your own are scored with their own constants.

(The quick heatmap-argmax accuracy the reference logs during training is something else, a
training metric: ``losses.pck_accuracy``.)

Shapes: N person instances (detections), K joints, H×W heatmap size.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import math
import os
from dataclasses import dataclass, fields

import numpy as np

from hrnet_edu.keypoints import KeypointSpec, get_spec


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


def load_coco(coco_gt, spec=None):
    """A pycocotools ``COCO`` object from itself or from an annotation file path (quietly).

    ``spec``: the file's keypoint set (KeypointSpec or built-in name; default COCO-17), which
    decides how many keypoint numbers each person carries (see ``data.ground_truth``).

    A file is checked as it is read (``data.ground_truth.read_ground_truth`` for evaluation): NaN or
    non-numeric keypoints, visibility outside {0, 1, 2}, labelled joints far outside the image,
    unknown image ids, images without a size, missing ``area`` / ``num_keypoints`` or no person to
    evaluate raise InputError naming the file and the annotation id — never a metric on bad data.
    The counts of ignored persons are in ``coco.hrnet_edu_checked["counts"]``.
    """
    from pycocotools.coco import COCO

    from hrnet_edu.data.ground_truth import read_ground_truth

    if isinstance(coco_gt, COCO):
        return coco_gt
    path = os.fspath(coco_gt)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ground-truth annotation file not found: {path}")
    return read_ground_truth(path, for_eval=True, spec=spec)[0]


def _check_something_to_evaluate(coco_gt, img_ids) -> None:
    """COCOeval gives ten zeros (or −1s) when no person counts: refuse instead of reporting them."""
    wanted = None if img_ids is None else set(img_ids)
    for ann in coco_gt.dataset.get("annotations", []):
        if (ann.get("category_id") == 1 and not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0
                and (wanted is None or ann.get("image_id") in wanted)):
            return
    source = getattr(coco_gt, "hrnet_edu_checked", {}).get("path", "the ground truth")
    scope = "" if img_ids is None else f" among the {len(wanted)} images asked for"
    from hrnet_edu.errors import InputError

    raise InputError(f"{source}: no person with a labelled keypoint to evaluate{scope}")


def ground_truth_spec(coco_gt, spec=None) -> KeypointSpec:
    """The keypoint spec to evaluate ``coco_gt`` with: ``spec`` when given, else the one its file was
    read with (``data.ground_truth.read_ground_truth``), else COCO-17."""
    if spec is not None:
        return get_spec(spec)
    return get_spec(getattr(coco_gt, "hrnet_edu_checked", {}).get("spec"))


def _check_ground_truth_joints(coco_gt, spec: KeypointSpec) -> None:
    """The ground truth's persons carry the spec's K joints (a file read with another spec, or a
    hand-built COCO object): ValueError naming both, before pycocotools broadcasts K sigmas."""
    for ann in coco_gt.dataset.get("annotations", []):
        kps = ann.get("keypoints") if ann.get("category_id") == 1 else None
        if isinstance(kps, list) and kps:
            if len(kps) != 3 * spec.num_joints:
                raise ValueError(f"the ground truth's persons carry {len(kps) // 3} joints ({len(kps)} "
                                 f"keypoint numbers), keypoint spec {spec.name!r} has {spec.num_joints}: "
                                 "pass its spec")
            return


def validate_results(results, coco_gt, spec=None) -> None:
    """Check results entries before pycocotools sees them; raise ValueError naming the entry.

    Checks: a list of dicts; fields image_id, category_id, keypoints, score present; image_id
    and category_id known to ``coco_gt``; 3K keypoint numbers, K from the keypoint spec (``spec``,
    else the ground truth's, else COCO-17's 17 — not the category's list of names, which may be
    longer than what the annotations carry); all numbers finite.
    """
    coco_gt = load_coco(coco_gt, spec)
    k = ground_truth_spec(coco_gt, spec).num_joints
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of dicts, got {type(results).__name__}")
    image_ids = set(coco_gt.getImgIds())
    cats = {c["id"] for c in coco_gt.dataset.get("categories", [])}
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
        try:
            kpts = np.asarray(r["keypoints"], dtype=np.float64)
            score = float(r["score"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: keypoints and score must be numbers ({err})") from None
        if kpts.shape != (3 * k,):
            raise ValueError(
                f"{where}: keypoints must be {3 * k} numbers (x, y, c for {k} joints), got shape {kpts.shape}"
                + (f"; the results hold {kpts.size // 3} joints: pass their keypoint spec (spec=)"
                   if kpts.ndim == 1 and kpts.size % 3 == 0 else "")
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
        """The ten numbers keyed AP, AP50, …, ARL (``STAT_NAMES``: the reference's, in summarize() order)."""
        return {name: float(getattr(self, key)) for name, key in zip(STAT_NAMES, STAT_KEYS)}

    def as_record(self) -> dict[str, float]:
        """The ten numbers keyed ap, ap50, …, ar_l (``STAT_KEYS``): the "val" records of ``log.jsonl``."""
        return {key: float(getattr(self, key)) for key in STAT_KEYS}

    def __str__(self) -> str:
        d = self.as_dict()
        head = " | ".join(f"{k:>5}" for k in d)
        vals = " | ".join(f"{v:5.3f}" for v in d.values())
        extra = f"\n({self.note})" if self.note else ""
        return f"{head}\n{vals}{extra}"


# The ten names are the fields of CocoKeypointStats, written there once:
STAT_KEYS = tuple(f.name for f in fields(CocoKeypointStats))[:10]  # "ap", "ap50", …, "ap_m", …, "ar_l"
STAT_NAMES = tuple(key.upper().replace("_", "") for key in STAT_KEYS)  # "AP", "AP50", …, "APM", …, "ARL"


def load_results(results, coco_gt, spec=None) -> list[dict]:
    """A results list, or the path of a COCO results JSON file, checked by :func:`validate_results`."""
    if not isinstance(results, list):
        path = os.fspath(results)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"results file not found: {path}")
        with open(path) as f:
            results = json.load(f)
    validate_results(results, coco_gt, spec)
    return results


@contextlib.contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off for a block that builds ~10⁵ small containers (dicts,
    lists, arrays) and no reference cycle: each automatic collection would walk every live
    container again, about half of the time of loading 100k results."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def results_to_coco(coco_gt, results: list[dict]):
    """``coco_gt.loadRes(results)`` for keypoint results, with the per-entry box computed in numpy.

    pycocotools gives each entry ``id`` (1, 2, …), a ``bbox`` spanning its keypoints (confidences
    included in the list, as pycocotools reads every third number from 0 and 1) and ``area`` =
    box w·h; it does that with four ``np.min``/``np.max`` calls per entry, a third of a whole
    evaluation of COCO val. The same numbers come from one array here. Entries are copied (the
    caller's list is not changed). Results that pycocotools would read as boxes, captions or
    segments (a "bbox", "caption" or "segmentation" field in the first entry) go to ``loadRes``.
    """

    if not results or any(f in results[0] for f in ("bbox", "caption", "segmentation")):
        return coco_gt.loadRes([dict(r) for r in results])
    with _gc_paused():
        return _keypoint_results_to_coco(coco_gt, results)


def _keypoint_results_to_coco(coco_gt, results):
    from pycocotools.coco import COCO

    kpts = np.array([r["keypoints"] for r in results], dtype=np.float64)  # (N, 3K)
    x, y = kpts[:, 0::3], kpts[:, 1::3]
    x0, x1, y0, y1 = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    w, h = x1 - x0, y1 - y0
    boxes = np.stack([x0, y0, w, h], axis=1).tolist()
    anns = [{**r, "area": area, "id": i + 1, "bbox": box}
            for i, (r, area, box) in enumerate(zip(results, (w * h).tolist(), boxes))]
    res = COCO()
    res.dataset = {"images": list(coco_gt.dataset["images"]), "annotations": anns,
                   "categories": copy.deepcopy(coco_gt.dataset["categories"])}
    with contextlib.redirect_stdout(io.StringIO()):
        res.createIndex()
    return res


def _fast_cocoeval_class():
    """``FastCOCOeval``, built on first use so that importing this module does not import pycocotools."""
    global _FAST_COCOEVAL
    if _FAST_COCOEVAL is not None:
        return _FAST_COCOEVAL
    from pycocotools.cocoeval import COCOeval

    from hrnet_edu.oks import compute_oks, match_detections

    class FastCOCOeval(COCOeval):
        """pycocotools' COCOeval for keypoints with its three Python hot loops replaced by numpy.

        * ``computeOks``: ``oks.compute_oks`` (the same numbers to rounding, ~1e-16) instead of a
          Python loop over (detection, ground truth) pairs;
        * ``evaluateImg``: ``oks.match_detections`` runs the ten thresholds side by side instead of
          a Python triple loop over thresholds × detections × ground truths;
        * ``accumulate``: the precision envelope is a reversed running maximum and the recall
          look-up one indexing, instead of Python loops over every detection.

        Everything else (``_prepare``, the per-image result dicts, ``summarize``) is pycocotools'
        own, and the outputs have the same layout, so the ten stats are bit-identical (tested).
        Other iouTypes and ``useCats = 0`` fall back to pycocotools' methods.
        """

        def _ours(self) -> bool:
            return self.params.iouType == "keypoints" and bool(self.params.useCats)

        def computeOks(self, imgId, catId):  # noqa: N802 — pycocotools' method name
            if not self._ours():
                return super().computeOks(imgId, catId)
            p = self.params
            gts, dts = self._gts[imgId, catId], self._dts[imgId, catId]
            # detections by score (stable), at most maxDets[-1]: the rows COCOeval expects
            order = np.argsort([-d["score"] for d in dts], kind="mergesort")[: p.maxDets[-1]]
            if len(gts) == 0 or len(order) == 0:
                return []
            k = len(p.kpt_oks_sigmas)
            dt = np.array([dts[i]["keypoints"] for i in order], dtype=np.float64).reshape(len(order), k, 3)
            gt = np.array([g["keypoints"] for g in gts], dtype=np.float64).reshape(len(gts), k, 3)
            return compute_oks(dt, gt, [g["area"] for g in gts], [g["bbox"] for g in gts],
                               sigmas=p.kpt_oks_sigmas)  # (D, G)

        def evaluate(self):
            self._per_image = {}  # (imgId, catId, area range, maxDet) → evaluateImg's dict
            try:
                with _gc_paused():
                    super().evaluate()  # pycocotools' own: _prepare, computeOks, evaluateImg for each
            finally:
                self._per_image = {}

        def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802
            if not self._ours():
                return super().evaluateImg(imgId, catId, aRng, maxDet)
            # evaluate() asks for every area range of an image in turn; they share the detections'
            # order and OKS, so all ranges are matched together on the first call.
            cache = getattr(self, "_per_image", {})
            key = (imgId, catId, tuple(aRng), maxDet)
            if key not in cache:
                ranges = [tuple(r) for r in self.params.areaRng]
                ranges = ranges if tuple(aRng) in ranges else [tuple(aRng)]
                for r, result in zip(ranges, self._evaluate_image(imgId, catId, ranges, maxDet)):
                    cache[imgId, catId, r, maxDet] = result
            return cache.pop(key)

        def _evaluate_image(self, imgId, catId, ranges, maxDet):  # noqa: N803
            """evaluateImg's dicts (or None) of one image for each area range in ``ranges``."""
            p = self.params
            gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
            if len(gt) == 0 and len(dt) == 0:
                return [None] * len(ranges)
            lo, hi = np.array([r[0] for r in ranges])[:, None], np.array([r[1] for r in ranges])[:, None]
            gt_area = np.array([g["area"] for g in gt], dtype=np.float64)
            # ignored: crowd / unlabelled (``_prepare``'s "ignore") or outside the area range, (A, G)
            flagged = np.array([bool(g["ignore"]) for g in gt], dtype=bool)
            gt_ignore = flagged | (gt_area < lo) | (gt_area > hi)
            # detections by score (stable), the top maxDet: the rows of computeOks' matrix
            dt = [dt[i] for i in np.argsort([-d["score"] for d in dt], kind="mergesort")[:maxDet]]
            T, G, D = len(p.iouThrs), len(gt), len(dt)
            gt_ids = np.array([g["id"] for g in gt], dtype=np.float64)
            dt_ids = np.array([d["id"] for d in dt], dtype=np.float64)
            ious = self.ious[imgId, catId]
            matched = np.full((len(ranges), T, D), -1, dtype=np.int64)
            dt_ignore = np.zeros((len(ranges), T, D), dtype=bool)
            if len(ious):
                matched, dt_ignore = match_detections(np.asarray(ious)[:D], -np.arange(D, dtype=np.float64),
                                                      gt_ignore, [bool(g["iscrowd"]) for g in gt],
                                                      np.asarray(p.iouThrs))  # (A, T, D) each
            hit = matched >= 0  # (A, T, D)
            dt_matches = np.where(hit, gt_ids[np.maximum(matched, 0)] if G else 0.0, 0.0)
            gt_matches = np.zeros((len(ranges), T, G))
            a_idx, t_idx, d_idx = np.nonzero(hit)
            gt_matches[a_idx, t_idx, matched[hit]] = dt_ids[d_idx]  # a crowd region keeps its last match
            # unmatched detections outside the area range do not count as false positives
            dt_area = np.array([d["area"] for d in dt], dtype=np.float64)
            outside = (dt_area < lo) | (dt_area > hi)  # (A, D)
            dt_ignore = dt_ignore | ((dt_matches == 0) & outside[:, None, :])
            dt_id_list, scores = [d["id"] for d in dt], [d["score"] for d in dt]
            out = []
            for a, r in enumerate(ranges):
                # COCOeval lists the ground truths regular first (stable)
                order = np.argsort(gt_ignore[a], kind="mergesort")
                out.append({"image_id": imgId, "category_id": catId, "aRng": list(r), "maxDet": maxDet,
                            "dtIds": dt_id_list, "gtIds": [gt[i]["id"] for i in order],
                            "dtMatches": dt_matches[a], "gtMatches": gt_matches[a][:, order],
                            "dtScores": scores, "gtIgnore": gt_ignore[a][order].astype(np.int64),
                            "dtIgnore": dt_ignore[a]})
            return out

        def accumulate(self, p=None):
            if not self._ours():
                return super().accumulate(p)
            with _gc_paused():
                self._accumulate(self.params if p is None else p)

        def _accumulate(self, p):
            import datetime

            pe = self._paramsEval
            T, R, K, A, M = (len(p.iouThrs), len(p.recThrs), len(p.catIds), len(p.areaRng), len(p.maxDets))
            # −1: absent category / no ground truth in that area range (as pycocotools)
            precision, scores = -np.ones((T, R, K, A, M)), -np.ones((T, R, K, A, M))
            recall = -np.ones((T, K, A, M))
            # evalImgs is laid out [category][area range][image] over the parameters of evaluate();
            # positions are looked up exactly as pycocotools does, so that any p gives its result.
            n_img, n_area = len(pe.imgIds), len(pe.areaRng)
            eval_areas = {tuple(a) for a in pe.areaRng}
            eval_cats, eval_dets, eval_imgs = set(pe.catIds), set(pe.maxDets), set(pe.imgIds)
            k_list = [n for n, c in enumerate(p.catIds) if c in eval_cats]
            a_list = [n for n, a in enumerate(p.areaRng) if tuple(a) in eval_areas]
            m_list = [m for m in p.maxDets if m in eval_dets]
            i_list = [n for n, i in enumerate(p.imgIds) if i in eval_imgs]
            for k, k0 in enumerate(k_list):
                for a, a0 in enumerate(a_list):
                    base = (k0 * n_area + a0) * n_img
                    E = [e for e in (self.evalImgs[base + i] for i in i_list) if e is not None]
                    for m, max_det in enumerate(m_list):
                        if not E:
                            continue
                        gt_ignore = np.concatenate([e["gtIgnore"] for e in E])
                        n_pos = np.count_nonzero(gt_ignore == 0)
                        if n_pos == 0:
                            continue
                        det_scores = np.concatenate([e["dtScores"][:max_det] for e in E])
                        order = np.argsort(-det_scores, kind="mergesort")
                        matched = np.concatenate([e["dtMatches"][:, :max_det] for e in E], axis=1)[:, order]
                        ignored = np.concatenate([e["dtIgnore"][:, :max_det] for e in E], axis=1)[:, order]
                        tp = np.cumsum(np.logical_and(matched, ~ignored), axis=1).astype(float)  # (T, nd)
                        fp = np.cumsum(np.logical_and(matched == 0, ~ignored), axis=1).astype(float)
                        nd = tp.shape[1]
                        rc = tp / n_pos
                        pr = tp / (fp + tp + np.spacing(1))
                        recall[:, k, a, m] = rc[:, -1] if nd else 0
                        # interpolated precision: the best precision at any recall ≥ this one
                        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                        sorted_scores = det_scores[order]
                        for t in range(T):
                            pos = np.searchsorted(rc[t], p.recThrs, side="left")  # (R,)
                            reached = pos < nd  # recall thresholds beyond the last recall stay 0
                            q, ss = np.zeros(R), np.zeros(R)
                            q[reached], ss[reached] = pr[t, pos[reached]], sorted_scores[pos[reached]]
                            precision[t, :, k, a, m], scores[t, :, k, a, m] = q, ss
            self.eval = {"params": p, "counts": [T, R, K, A, M], "precision": precision, "recall": recall,
                         "scores": scores, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")}

    _FAST_COCOEVAL = FastCOCOeval
    return FastCOCOeval


_FAST_COCOEVAL = None
BACKENDS = ("hrnet_edu", "pycocotools")


def results_ap(coco_gt, results, img_ids=None, verbose: bool = False,
               backend: str = "hrnet_edu", spec=None) -> CocoKeypointStats:
    """Run COCOeval (iouType 'keypoints') and return the ten standard numbers.

    Args:
        coco_gt: a pycocotools ``COCO`` object or the path of a COCO keypoint annotation file.
        results: list of results entries (``make_results``) or the path of a results JSON file.
            Checked with ``validate_results``; the caller's list is not modified (pycocotools
            writes ``id``/``area``/``bbox`` into the entries, so it gets copies of them).
        img_ids: optional image ids to evaluate (default: every image of ``coco_gt``).
        verbose: print pycocotools' own output (loading, evaluate, accumulate, summarize table).
        backend: "hrnet_edu" (default): ``FastCOCOeval``, pycocotools' COCOeval with our numpy OKS,
            matching and accumulation (bit-identical stats, several times faster);
            "pycocotools": plain ``pycocotools.cocoeval.COCOeval``, the reference.
        spec: the keypoint set (KeypointSpec or built-in name): K and the OKS sigmas given to
            COCOeval (``params.kpt_oks_sigmas``). Default: the spec the ground-truth file was read
            with, else COCO-17 (pycocotools' own sigmas).

    Returns:
        CocoKeypointStats. Empty results → all zeros, ``empty`` True and a note (pycocotools itself
        crashes on an empty list).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from pycocotools.cocoeval import COCOeval

    coco_gt = load_coco(coco_gt, spec)
    spec = ground_truth_spec(coco_gt, spec)
    _check_ground_truth_joints(coco_gt, spec)
    if img_ids is not None:
        img_ids = [int(i) for i in img_ids]
    _check_something_to_evaluate(coco_gt, img_ids)
    results = load_results(results, coco_gt, spec)
    if img_ids is not None:
        results = [r for r in results if r["image_id"] in set(img_ids)]
    if not results:
        note = "no results to evaluate: every number is 0"
        if verbose:
            print(note)
        return CocoKeypointStats(*([0.0] * 10), num_results=0, note=note)

    evaluator = _fast_cocoeval_class() if backend == "hrnet_edu" else COCOeval
    # pycocotools prints as it goes; keep it quiet unless asked.
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        # loadRes adds keys to each entry but changes no value in it: copying the dicts is enough
        # (a deep copy of 100k entries costs seconds).
        if backend == "hrnet_edu":
            coco_dt = results_to_coco(coco_gt, results)
        else:
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
        coco_eval = evaluator(coco_gt, coco_dt, "keypoints")
        # the spec's σ_i (pycocotools' default is COCO-17's, the same numbers as COCO17.sigmas)
        coco_eval.params.kpt_oks_sigmas = spec.sigma_array
        if img_ids is not None:
            coco_eval.params.imgIds = img_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return CocoKeypointStats(*(float(s) for s in coco_eval.stats[:10]), num_results=len(results))


def synthetic_keypoint_set(n_images: int = 5000, n_persons: int = 11000, n_detections: int = 100_000,
                           seed: int = 0, labelled_fraction: float = 0.58, empty_fraction: float = 0.46,
                           missed_fraction: float = 0.05, spec=None):
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
        spec: the keypoint set (K joints, its category); default COCO-17.

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

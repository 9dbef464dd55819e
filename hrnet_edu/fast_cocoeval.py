"""``FastCOCOeval``: pycocotools' COCOeval for keypoints, its three Python hot loops in numpy.

``coco_eval.results_ap`` runs it by default (``backend="hrnet_edu"``); the ten stats are
bit-identical to plain pycocotools' (``tests/test_fast_cocoeval.py``), several times faster
(``benchmarks/bench_cocoeval.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import gc

import numpy as np
from pycocotools.cocoeval import COCOeval

from hrnet_edu.oks import compute_oks, match_detections


@contextlib.contextmanager
def gc_paused():
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
            with gc_paused():
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
        with gc_paused():
            self._accumulate(self.params if p is None else p)

    def _accumulate(self, p):
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

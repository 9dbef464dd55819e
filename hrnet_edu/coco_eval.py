"""COCO keypoint results files and a thin COCOeval wrapper.

The paper reports COCO keypoint AP (Sec. 4.1): AP averaged over OKS thresholds
0.50, 0.55, …, 0.95, with at most 20 detections per image, plus AP at 0.5 and 0.75, AP for
medium (32² < area ≤ 96²) and large (area > 96²) persons, and the same five for recall (AR).
pycocotools computes them; this module prepares its input (results entries, rescored as the
reference does), checks it with clear errors, runs it quietly and returns the ten numbers as
a named structure. The keypoint set is a ``KeypointSpec`` (the ground truth's, or ``spec=``): it gives
K and the OKS sigmas handed to pycocotools (``COCOeval.params.kpt_oks_sigmas``), so CrowdPose's
14 joints or your own are scored with their own constants.

(The quick heatmap-argmax accuracy the reference logs during training is something else, a
training metric: ``losses.pck_accuracy``.)

Shapes: N person instances (detections), K joints, H×W heatmap size.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import math
import numbers
import os
from dataclasses import dataclass, fields

import numpy as np

from hrnet_edu.data.ground_truth import GroundTruth, checked_for_evaluation, read_ground_truth
from hrnet_edu.fast_cocoeval import FastCOCOeval, gc_paused
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
    # in float32, as the reference compares its float32 heatmap maxima (NumPy reads the Python
    # float 0.2 as float32 there): a confidence of float32(0.2) is not above 0.2
    valid = conf.astype(np.float32) > np.float32(threshold)  # (N, K)
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


def load_ground_truth(ground_truth, spec=None) -> GroundTruth:
    """The ``GroundTruth`` to evaluate against, from itself, an annotation file or a pycocotools ``COCO``.

    ``spec``: the keypoint set (KeypointSpec or built-in name): required for a file or a ``COCO``
    (it decides K and the OKS sigmas), optional for a ``GroundTruth`` (which holds the spec it was
    read with; a given ``spec`` replaces it).

    A file is checked as it is read (``data.ground_truth.read_ground_truth`` for evaluation): NaN or
    non-numeric keypoints, visibility outside {0, 1, 2}, labelled joints far outside the image,
    unknown image ids, images without a size, missing ``area`` / ``num_keypoints``, ids 0 or no person
    to evaluate raise InputError naming the file and the annotation id — never a metric on bad data.
    """
    from pycocotools.coco import COCO

    if isinstance(ground_truth, GroundTruth):
        gt = ground_truth if spec is None else dataclasses.replace(ground_truth, spec=get_spec(spec))
        return checked_for_evaluation(gt)
    if spec is None:
        raise ValueError("evaluating a COCO object or file needs its keypoint spec (spec=COCO17, "
                         "a built-in name, or read it with data.ground_truth.read_ground_truth)")
    if isinstance(ground_truth, COCO):
        return GroundTruth(ground_truth, get_spec(spec))
    path = os.fspath(ground_truth)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ground-truth annotation file not found: {path}")
    return read_ground_truth(path, spec, for_eval=True)


def _check_something_to_evaluate(gt: GroundTruth, img_ids) -> None:
    """COCOeval gives ten zeros (or −1s) when no person counts: refuse instead of reporting them."""
    wanted = None if img_ids is None else set(img_ids)
    for ann in gt.coco.dataset.get("annotations", []):
        if (ann.get("category_id") == 1 and not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0
                and (wanted is None or ann.get("image_id") in wanted)):
            return
    scope = "" if img_ids is None else f" among the {len(wanted)} images asked for"
    from hrnet_edu.errors import InputError

    raise InputError(f"{gt.path}: no person with a labelled keypoint to evaluate{scope}")


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


def validate_results(results, ground_truth, spec=None) -> None:
    """Check results entries before pycocotools sees them; raise ValueError naming the entry.

    Checks: a list of dicts; fields image_id, category_id, keypoints, score present; image_id
    and category_id known to the ground truth; 3K keypoint numbers, K from the keypoint spec (the
    ground truth's, or ``spec`` — not the category's list of names, which may be longer than what
    the annotations carry); all numbers finite. ``ground_truth``, ``spec``: see ``load_ground_truth``.
    """
    gt = load_ground_truth(ground_truth, spec)
    coco_gt, k = gt.coco, gt.spec.num_joints
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
        for key in ("image_id", "category_id"):
            if not isinstance(r[key], numbers.Integral) or isinstance(r[key], bool):
                raise ValueError(f"{where}: {key} must be an integer, got {r[key]!r}")
        if not isinstance(r["score"], numbers.Real) or isinstance(r["score"], bool):
            raise ValueError(f"{where}: score must be a number, got {r['score']!r}")
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


def load_results(results, ground_truth, spec=None) -> list[dict]:
    """A results list, or the path of a COCO results JSON file, checked by :func:`validate_results`."""
    if not isinstance(results, list):
        path = os.fspath(results)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"results file not found: {path}")
        with open(path) as f:
            results = json.load(f)
    validate_results(results, ground_truth, spec)
    return results


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
    with gc_paused():
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


BACKENDS = ("hrnet_edu", "pycocotools")


def results_ap(ground_truth, results, img_ids=None, verbose: bool = False,
               backend: str = "hrnet_edu", spec=None) -> CocoKeypointStats:
    """Run COCOeval (iouType 'keypoints') and return the ten standard numbers.

    Args:
        ground_truth: a ``GroundTruth`` (``read_ground_truth``), or a pycocotools ``COCO`` object or
            the path of a COCO keypoint annotation file together with ``spec``.
        results: list of results entries (``make_results``) or the path of a results JSON file.
            Checked with ``validate_results``; the caller's list is not modified (pycocotools
            writes ``id``/``area``/``bbox`` into the entries, so it gets copies of them).
        img_ids: optional image ids to evaluate (default: every image of ``coco_gt``).
        verbose: print pycocotools' own output (loading, evaluate, accumulate, summarize table).
        backend: "hrnet_edu" (default): ``FastCOCOeval``, pycocotools' COCOeval with our numpy OKS,
            matching and accumulation (bit-identical stats, several times faster);
            "pycocotools": plain ``pycocotools.cocoeval.COCOeval``, the reference.
        spec: the keypoint set (KeypointSpec or built-in name): K and the OKS sigmas given to
            COCOeval (``params.kpt_oks_sigmas``). Default: the ``GroundTruth``'s.

    Returns:
        CocoKeypointStats. Empty results → all zeros, ``empty`` True and a note (pycocotools itself
        crashes on an empty list).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from pycocotools.cocoeval import COCOeval

    gt = load_ground_truth(ground_truth, spec)
    coco_gt, spec = gt.coco, gt.spec
    _check_ground_truth_joints(coco_gt, spec)
    if img_ids is not None:
        img_ids = [int(i) for i in img_ids]
    _check_something_to_evaluate(gt, img_ids)
    results = load_results(results, gt)
    if img_ids is not None:
        results = [r for r in results if r["image_id"] in set(img_ids)]
    if not results:
        note = "no results to evaluate: every number is 0"
        if verbose:
            print(note)
        return CocoKeypointStats(*([0.0] * 10), num_results=0, note=note)

    evaluator = FastCOCOeval if backend == "hrnet_edu" else COCOeval
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

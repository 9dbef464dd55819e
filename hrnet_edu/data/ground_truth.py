"""Reading a COCO person-keypoints ground-truth file, checked once, for training and evaluation alike.

pycocotools' ``COCO(path)`` indexes whatever the JSON holds: NaN keypoints, visibility −1, joints
far outside the image or annotations of images that do not exist all go through, and then give
a loss of 0 or an AP of 1.000 without a word. ``read_ground_truth`` checks the file first and
raises :class:`~hrnet_edu.errors.InputError` — one line naming the file and the image or
annotation id — for anything malformed:

* the file: a JSON object with lists ``images`` and ``annotations`` (and ``categories``);
* images: an integer ``id`` (unique), a ``file_name``, a positive ``width`` and ``height``;
* annotations: an integer ``id`` (unique; for evaluation ≥ 1, because pycocotools' matching writes
  0 for "unmatched"), an integer ``image_id`` that is one of the images, an integer ``category_id``;
* person annotations (category 1), crowd regions included (COCOeval reads their keypoints too):
  ``keypoints`` = 3·K finite numbers (K from the keypoint spec, 17 for COCO), visibility in
  {0, 1, 2}, every labelled joint (v > 0) inside its image up to ``LABEL_MARGIN``; ``bbox`` = 4
  finite numbers; ``area`` ≥ 0 and ``iscrowd`` 0/1 where present; ``num_keypoints``, where
  present, 0 exactly when no joint is labelled (the only thing COCOeval reads of it: CrowdPose's
  own counts leave out head and neck, and are read as they are).
* for evaluation also ``iscrowd``, ``area`` and ``num_keypoints`` (COCOeval's area ranges and its "ignore
  persons without keypoints" rule read them), the person category in ``categories``, and at
  least one person to evaluate;
* the person category's ``keypoints`` names against the spec: the spec decides K, and its names
  must be the category's (all K, or the first K of a longer list: HumanArt's 21 for its annotations'
  COCO 17); other names or another order — PoseTrack's ``head_bottom``, ``head_top`` where COCO has
  the eyes — are an error, since the spec's sigmas and flip pairs would score them wrongly.

Annotations without ``area`` (CrowdPose, PoseTrack): COCOeval needs a person's area (the OKS
scale s² and the area ranges). Where the file is read, a missing ``area`` becomes
``BOX_AREA_FACTOR · w · h`` of the annotation's box, 0.53 · w · h: the rule of CrowdPose's own
evaluation (crowdposetools, and xtcocotools with ``use_area=False``), so that its OKS is the
dataset's. The number filled in is ``GroundTruth.area_from_box``.

What the reference skips instead of failing on (crowd regions, persons without a labelled
joint, degenerate boxes, other categories) is not an error here: the callers skip and count it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from hrnet_edu.errors import InputError
from hrnet_edu.keypoints import SPECS, KeypointSpec, get_spec

PERSON_CATEGORY = 1
# area = 0.53 · w · h for annotations without an area (crowdposetools' rule, see the docstring)
BOX_AREA_FACTOR = 0.53
# A labelled joint may lie this fraction of the image's width (height) beyond its border:
# annotators click at the very edge and resized images round; farther out means wrong
# coordinates or a wrong image size.
LABEL_MARGIN = 0.1


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite_number(value) -> bool:
    return _is_number(value) and math.isfinite(value)


def _check_image(image, n: int, path: str) -> None:
    if not isinstance(image, dict):
        raise InputError(f"{path}: images[{n}] must be an object, got {type(image).__name__}")
    iid = image.get("id")
    if not isinstance(iid, int) or isinstance(iid, bool):
        raise InputError(f"{path}: images[{n}] needs an integer 'id', got {iid!r}")
    if not isinstance(image.get("file_name"), str) or not image["file_name"]:
        raise InputError(f"image id {iid} in {path}: no 'file_name'")
    for key in ("width", "height"):
        if key not in image:
            raise InputError(f"image id {iid} in {path}: no '{key}' (every image needs its width and height "
                             "in pixels)")
        if not _finite_number(image[key]) or image[key] <= 0:
            raise InputError(f"image id {iid} in {path}: '{key}' must be a positive number, "
                             f"got {image[key]!r}")


def _bad_keypoint(kps, aid, path: str) -> InputError:
    """The error for the first non-numeric or non-finite keypoint number of one annotation."""
    for i, value in enumerate(kps):
        if not _finite_number(value):
            what = "not a number" if not _is_number(value) else "not finite"
            return InputError(f"annotation id {aid} in {path}: keypoint number {i} (joint {i // 3}) is "
                              f"{value!r}, {what}")
    return InputError(f"annotation id {aid} in {path}: keypoints are not numbers")


def _spec_hint(k_file: int, spec: KeypointSpec) -> str:
    """What to do when a file's joints are not the spec's: name a built-in spec of that count."""
    fits = [s.name for s in SPECS.values() if s.num_joints == k_file and s != spec]
    named = f"'{fits[0]}'" if fits else "KeypointSpec.from_coco_category(category, sigmas=...)"
    return f"pass the file's keypoint spec: spec={named} (in a config: keypoints=...)"


def _check_category(categories: list, spec: KeypointSpec, path: str) -> None:
    """The person category's keypoint names against the spec (see the module docstring)."""
    person = next((c for c in categories if c["id"] == PERSON_CATEGORY), None)
    names = person.get("keypoints") if person else None
    if not isinstance(names, list) or not names:
        return  # no names to compare: the spec says what the K joints are
    k, listed = spec.num_joints, len(names)
    if listed >= k and tuple(names[:k]) == spec.names:
        return  # the annotations carry the category's first K joints, the spec's
    if listed == k:
        # same K, other joints or another order (PoseTrack's head_bottom/head_top where COCO has
        # the eyes): scored with the spec's sigmas and flip pairs it would be silently wrong
        differ = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(names, spec.names)) if a != b]
        raise InputError(f"{path}: the person category's keypoint names are not those of keypoint spec "
                         f"{spec.name!r} (joint {'; '.join(differ[:3])}{'; …' if len(differ) > 3 else ''}); "
                         "give the file's own spec: KeypointSpec.from_coco_category(category, sigmas=...)")
    shown = ", ".join(map(str, names[:4])) + (", …" if listed > 4 else "")
    raise InputError(f"{path}: the person category lists {listed} keypoints ({shown}) but the keypoint spec "
                     f"{spec.name!r} has K = {k}"
                     + (f" whose names are not the category's first {k}" if listed > k else "")
                     + f"; {_spec_hint(listed, spec)}")


def fill_missing_areas(data) -> int:
    """Give every annotation without ``area`` the area ``BOX_AREA_FACTOR · w · h`` of its box, in place
    (in ``data``, the parsed file); returns how many were filled. Malformed boxes are left to
    ``check_ground_truth``."""
    filled = 0
    annotations = data.get("annotations") if isinstance(data, dict) else None
    for ann in annotations if isinstance(annotations, list) else []:
        if isinstance(ann, dict) and "area" not in ann:
            box = ann.get("bbox")
            if isinstance(box, list) and len(box) == 4 and all(_finite_number(v) for v in box):
                # s² = 0.53 · w · h: crowdposetools' OKS scale and area-range rule
                ann["area"] = BOX_AREA_FACTOR * float(box[2]) * float(box[3])
                filled += 1
    return filled


def _check_layout(data, path: str, for_eval: bool, spec: KeypointSpec) -> None:
    """The file's top level: lists ``images`` and ``annotations``, ``categories`` with integer ids,
    the person category (for evaluation) and its keypoint names against the spec."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a COCO JSON object with 'images' and 'annotations', "
                         f"got {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{path}: '{key}' must be a list, got {type(data.get(key)).__name__}")
    categories = data.get("categories", [])
    if not isinstance(categories, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), int) and not isinstance(c["id"], bool)
            for c in categories):
        raise InputError(f"{path}: 'categories' must be a list of objects with an integer 'id'")
    if for_eval and PERSON_CATEGORY not in {c["id"] for c in categories}:
        # COCOeval evaluates the categories listed here: without the person, nothing is evaluated
        raise InputError(f"{path}: 'categories' has no person category (id {PERSON_CATEGORY})")
    _check_category(categories, spec, path)


def _image_sizes(images: list, path: str) -> dict[int, tuple[float, float]]:
    """{image id: (width, height)} of checked image entries; InputError for a bad or repeated one."""
    sizes = {}
    for n, image in enumerate(images):
        _check_image(image, n, path)
        if image["id"] in sizes:
            raise InputError(f"image id {image['id']} in {path}: the id appears twice in 'images'")
        sizes[image["id"]] = (float(image["width"]), float(image["height"]))
    return sizes


def _check_annotation_ids(ann, n: int, seen: set, sizes: dict, path: str, for_eval: bool) -> str:
    """An annotation's own id (unique; ≥ 1 for evaluation), its image and its category; returns
    "annotation id N in FILE" for the messages of the checks that follow."""
    if not isinstance(ann, dict):
        raise InputError(f"{path}: annotations[{n}] must be an object, got {type(ann).__name__}")
    aid = ann.get("id")
    if not isinstance(aid, int) or isinstance(aid, bool):
        raise InputError(f"{path}: annotations[{n}] needs an integer 'id', got {aid!r}")
    if aid in seen:
        raise InputError(f"annotation id {aid} in {path}: the id appears twice")
    seen.add(aid)
    where = f"annotation id {aid} in {path}"
    if for_eval and aid < 1:
        # pycocotools marks "unmatched" with id 0 in its matching tables: a ground truth (or a
        # detection) with id 0 is matched again and again and scored as a miss — a wrong AP
        raise InputError(f"{path}: annotations[{n}] has id {aid}; COCO evaluation needs ids >= 1")
    image_id = ann.get("image_id")
    if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in sizes:
        raise InputError(f"{where}: image_id {image_id!r} is not in 'images'")
    category = ann.get("category_id")
    if not isinstance(category, int) or isinstance(category, bool):  # pycocotools indexes by it
        raise InputError(f"{where}: needs an integer category_id, got {category!r}")
    return where


def _check_person_fields(ann, where: str, spec: KeypointSpec, for_eval: bool) -> None:
    """A person annotation's ``iscrowd``, 3K ``keypoints`` numbers, ``bbox``, ``area``, ``num_keypoints``."""
    if for_eval and "iscrowd" not in ann:
        raise InputError(f"{where}: no 'iscrowd' (COCOeval needs it)")
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, float):
        raise InputError(f"{where}: iscrowd must be 0 or 1, got {crowd!r}")
    kps, bbox, k = ann.get("keypoints"), ann.get("bbox"), spec.num_joints
    if not isinstance(kps, list) or len(kps) != 3 * k:
        got = len(kps) if isinstance(kps, list) else type(kps).__name__
        hint = f"; {_spec_hint(got // 3, spec)}" if isinstance(got, int) and got % 3 == 0 and got else ""
        raise InputError(f"{where}: expected {3 * k} keypoint numbers (x, y, v for the {k} joints of "
                         f"keypoint spec {spec.name!r}), got {got}{hint}")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_finite_number(v) for v in bbox):
        raise InputError(f"{where}: bbox must be [x, y, w, h] of 4 finite numbers, got {bbox!r}")
    for key in ("area", "num_keypoints"):
        if key not in ann:
            if for_eval:
                raise InputError(f"{where}: no '{key}' (COCOeval needs it)")
            continue
        value = ann[key]
        if not _finite_number(value) or value < 0 or (key == "num_keypoints" and value != int(value)):
            raise InputError(f"{where}: {key} must be a non-negative number, got {value!r}")


def _keypoint_table(persons: list, path: str, k: int) -> np.ndarray:
    """(P, K, 3) float64 keypoints of the person annotations; InputError naming the first non-number."""
    try:
        table = np.array([ann["keypoints"] for ann in persons])
    except (ValueError, TypeError):  # ragged: a keypoint number is itself a list
        table = np.array([], dtype=object)
    if table.dtype.kind not in "iufb":
        for ann in persons:
            if not all(_finite_number(v) for v in ann["keypoints"]):
                raise _bad_keypoint(ann["keypoints"], ann["id"], path)
    table = table.astype(np.float64).reshape(len(persons), k, 3)
    bad = ~np.isfinite(table).all(axis=(1, 2))
    if bad.any():
        ann = persons[int(np.flatnonzero(bad)[0])]
        raise _bad_keypoint(ann["keypoints"], ann["id"], path)
    return table


def _check_keypoint_values(persons: list, table: np.ndarray, sizes: dict, path: str) -> None:
    """Visibility in {0, 1, 2}, labelled joints inside their image (up to ``LABEL_MARGIN``), and
    ``num_keypoints`` = the labelled count — vectorised over all persons (COCO train has 150k):
    only a file that fails is walked again, to name the first bad annotation."""
    v = table[..., 2]
    bad = ~np.isin(v, (0, 1, 2)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        joint = int(np.flatnonzero(~np.isin(v[i], (0, 1, 2)))[0])
        raise InputError(f"annotation id {persons[i]['id']} in {path}: visibility of joint {joint} is "
                         f"{v[i, joint]:g}, not 0 (not labelled), 1 (occluded) or 2 (visible)")
    wh = np.array([sizes[a["image_id"]] for a in persons])[:, None, :]  # (P, 1, 2)
    outside = (v > 0)[..., None] & ((table[..., :2] < -LABEL_MARGIN * wh)
                                    | (table[..., :2] > (1 + LABEL_MARGIN) * wh))
    bad = outside.any(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        joint = int(np.flatnonzero(outside[i].any(axis=1))[0])
        w, h = wh[i, 0]
        raise InputError(f"annotation id {persons[i]['id']} in {path}: labelled joint {joint} at "
                         f"({table[i, joint, 0]:g}, {table[i, joint, 1]:g}) lies far outside its image "
                         f"(id {persons[i]['image_id']}, {w:g}x{h:g})")
    for ann, n_labelled in zip(persons, (v > 0).sum(axis=1).tolist()):
        # pycocotools reads num_keypoints only as "= 0: ignore this person". A count that differs
        # but agrees on that (CrowdPose counts its 12 body joints, not head and neck) is evaluated
        # the same; one that disagrees would ignore a labelled person or score an empty one.
        if "num_keypoints" in ann and (ann["num_keypoints"] == 0) != (n_labelled == 0):
            raise InputError(f"annotation id {ann['id']} in {path}: num_keypoints is "
                             f"{ann['num_keypoints']} but {n_labelled} joints are labelled (v > 0): "
                             "COCOeval would " + ("ignore a labelled person" if n_labelled else
                                                  "score a person without keypoints"))


def check_ground_truth(data, path: str, spec, for_eval: bool = False) -> dict[str, int]:
    """Check a parsed COCO keypoint file (see the module docstring); raise InputError or return the
    counts of person annotations the reference does not learn from / evaluate: ``crowd``,
    ``no_keypoints`` (no joint labelled), ``not_person`` (another category).

    ``spec``: the keypoint spec (a KeypointSpec or a built-in name), which gives the number K of
    joints every person annotation carries.
    """
    spec = get_spec(spec)
    _check_layout(data, path, for_eval, spec)
    sizes = _image_sizes(data["images"], path)
    counts = {"crowd": 0, "no_keypoints": 0, "not_person": 0}
    seen, persons = set(), []
    for n, ann in enumerate(data["annotations"]):
        where = _check_annotation_ids(ann, n, seen, sizes, path, for_eval)
        if ann["category_id"] != PERSON_CATEGORY:
            counts["not_person"] += 1
            continue
        _check_person_fields(ann, where, spec, for_eval)
        persons.append(ann)
    if persons:
        table = _keypoint_table(persons, path, spec.num_joints)
        _check_keypoint_values(persons, table, sizes, path)
        labelled = (table[..., 2] > 0).sum(axis=1)
        crowd = np.array([bool(ann.get("iscrowd", 0)) for ann in persons])
        counts["crowd"] = int(crowd.sum())
        counts["no_keypoints"] = int(((labelled == 0) & ~crowd).sum())
    if for_eval and len(persons) - counts["crowd"] - counts["no_keypoints"] == 0:
        raise InputError(f"{path}: no person with a labelled keypoint to evaluate ({len(data['images'])} "
                         f"images, {len(persons)} person annotations: {counts['crowd']} crowd, "
                         f"{counts['no_keypoints']} without keypoints)")
    return counts


@dataclass(frozen=True)
class GroundTruth:
    """A checked COCO keypoint file: pycocotools' ``COCO`` index of it and what the check found.

    ``coco``: the pycocotools object (``coco.dataset`` is the parsed file); ``spec``: the keypoint
    set it was read with; ``counts``: persons skipped by reason (``check_ground_truth``); ``path``;
    ``for_eval``: checked for COCOeval too; ``area_from_box``: annotations whose ``area`` was filled
    in from their box.
    """

    coco: object
    spec: KeypointSpec
    counts: dict = field(default_factory=dict)
    path: str = "the ground truth"
    for_eval: bool = False
    area_from_box: int = 0


def checked_for_evaluation(gt: GroundTruth) -> GroundTruth:
    """``gt`` checked for COCOeval too (ids ≥ 1, ``iscrowd``, ``area``, ``num_keypoints``, a person
    to evaluate): a dataset reads its file for training's needs, and evaluating it must not score
    what COCOeval would mis-read (an annotation id 0 lowers AP without a word)."""
    if gt.for_eval:
        return gt
    check_ground_truth(gt.coco.dataset, gt.path, gt.spec, for_eval=True)
    return GroundTruth(gt.coco, gt.spec, gt.counts, gt.path, True, gt.area_from_box)


def read_ground_truth(path, spec, for_eval: bool = False) -> GroundTruth:
    """The ``GroundTruth`` of a COCO keypoint file, checked (``check_ground_truth``) with ``spec``.

    Annotations without ``area`` get ``BOX_AREA_FACTOR · w · h`` (``fill_missing_areas``) before
    anything else reads them. Raises FileNotFoundError for a missing file and InputError for
    anything malformed.
    """
    from pycocotools.coco import COCO

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read COCO annotations from {path}: {err}") from None
    spec = get_spec(spec)
    filled = fill_missing_areas(data)
    counts = check_ground_truth(data, path, spec, for_eval=for_eval)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return GroundTruth(coco, spec, counts, path, for_eval, filled)

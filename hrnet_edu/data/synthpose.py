"""SynthPose: a procedural dataset of articulated 2-D figures, in exact COCO keypoint format.

COCO cannot be downloaded here and a laptop cannot train on it, so hrnet-edu ships a generator
whose output is laid out exactly like COCO's person keypoints::

    out_dir/images/train_000001.jpg, …, val_000001.jpg, …
    out_dir/annotations/person_keypoints_train.json   (images, annotations, categories)
    out_dir/annotations/person_keypoints_val.json
    out_dir/synthpose.json                            (generator version and arguments)

so that every other module trains on real COCO by changing a path. Each figure has human
proportions (an ~8-heads canon; lengths below are in body heights h), joint-angle limits, a
head whose face (eyes, nose, ears) or hair tells whether it faces the camera — the person's left
appears on the image *right* when it does — and persons of 32–256 px (for 256² images), rotated,
overlapping, cut by the image border and hidden by occluders. Visibility follows COCO:
v = 2 seen, v = 1 labelled but occluded (by an occluder, a person drawn in front, or its own
head), v = 0 not labelled (outside the image, or the eyes/nose of a head seen from behind), and
then x = y = 0. ``area`` is the figure's pixel mask inside the image (its whole silhouette, so
an occluded person's OKS scale does not shrink); ``bbox`` encloses that mask and every labelled
keypoint, as [x, y, w, h] with the mask's pixel j spanning [j, j + 1), as pycocotools does.

Layouts (``layout=``, ``hrnet-edu synth --layout``): "coco17", COCO's 17 keypoints (the default),
or "crowdpose14", the same figures labelled as CrowdPose labels people (``keypoints.CROWDPOSE14``):
COCO's 12 body joints, the top of the head — the top of the head ellipse the renderer draws,
centre + head_up · its half height — and the neck, the shoulders' midpoint; and, as in
CrowdPose's files, no ``area`` (readers use 0.53 · w · h of the box, see ``data.ground_truth``).
Both layouts of one seed are the same images with the same persons; ``export_layout`` writes the
labels of an existing SynthPose folder in another layout without touching its images.

Determinism: image i of a split draws everything from ``SeedSequence([seed, split, i])``, so
the output does not depend on the number of worker processes; JSON is written with sorted keys
and floats rounded to 2 decimals, so the same seed gives byte-identical annotation files.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from hrnet_edu.data.synth_render import (
    LUMA,
    Figure,
    Shape,
    background,
    figure_shapes,
    paint,
    random_color,
    rasterize_all,
    union_mask,
)  # fmt: skip
from hrnet_edu.keypoints import COCO17, CROWDPOSE14, KeypointSpec

VERSION = "1.0"
SPLITS = {"train": 0, "val": 1}  # the split's number in each image's seed
VAL_ID_OFFSET = 1_000_000  # val image ids start here, so ids are unique over both splits
JPEG_QUALITY = 85
# The keypoint sets SynthPose can label its figures with (see ``layout_joints``).
LAYOUTS: dict[str, KeypointSpec] = {"coco17": COCO17, "crowdpose14": CROWDPOSE14}

# Body proportions in body heights h (ankle to the top of the head ≈ 1).
HIP_HALF, SHOULDER_HALF, SHOULDER_RISE, NECK_RISE = 0.088, 0.125, 0.29, 0.345
UPPER_ARM, FOREARM, THIGH, SHIN = 0.165, 0.145, 0.245, 0.235
HEAD_AXES = (0.056, 0.068)  # half width, half height

# Joint-angle limits in degrees per pose style. Limb angles are measured from the torso's
# downward axis, positive away from the body; elbows and knees only flex (0 = straight).
POSE_STYLES = {
    "stand": {"shoulder": (-5, 25), "elbow": (0, 35), "hip": (-4, 12), "knee": (0, 15)},
    "move": {"shoulder": (-30, 110), "elbow": (0, 120), "hip": (-15, 45), "knee": (0, 70)},
    "free": {"shoulder": (-35, 180), "elbow": (0, 150), "hip": (-25, 95), "knee": (0, 140)},
}
SKIN = ((255, 219, 180), (234, 186, 140), (198, 134, 92), (141, 85, 54), (92, 58, 40))
HAIR = ((30, 24, 20), (70, 45, 25), (120, 80, 40), (215, 190, 120), (160, 160, 160), (150, 40, 20))


def _rot(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (up, right) of a frame turned ``angle`` radians clockwise from upright."""
    return np.array([math.sin(angle), -math.cos(angle)]), np.array([math.cos(angle), math.sin(angle)])


def sample_figure(
    rng: np.random.Generator, center: np.ndarray, height: float, style: str, tilt: float
) -> Figure:
    """A random figure of ``height`` px whose extent is centred on ``center`` (2,), torso turned
    ``tilt`` radians; joint angles drawn inside ``POSE_STYLES[style]``."""
    limits = POSE_STYLES[style]
    up, right = _rot(tilt)
    yaw = rng.normal(0, 0.45) + (math.pi if rng.random() < 0.35 else 0.0)  # 35 % seen from behind
    # the person's left: image right when facing the camera (cos yaw > 0), image left from behind
    left = right if math.cos(yaw) > 0 else -right
    width = rng.uniform(0.6, 1.0)  # the torso turned out of the image plane looks narrower

    def segment(start, angle_deg, side, length):
        # direction = −up·cos θ + side·left·sin θ, θ from "down", positive away from the body
        theta = math.radians(angle_deg)
        foreshorten = 1.0 if rng.random() < 0.6 else rng.uniform(0.55, 1.0)
        return start + (-up * math.cos(theta) + side * left * math.sin(theta)) * length * foreshorten

    j = np.zeros((COCO17.num_joints, 2))
    left_chain, right_chain = (5, 7, 9, 11, 13, 15), (6, 8, 10, 12, 14, 16)
    for side, (shoulder, elbow, wrist, hip, knee, ankle) in ((1, left_chain), (-1, right_chain)):
        j[hip] = side * left * HIP_HALF * width
        j[shoulder] = up * SHOULDER_RISE + side * left * SHOULDER_HALF * width
        for a, b, c, lengths, (root, bend) in (
            (shoulder, elbow, wrist, (UPPER_ARM, FOREARM), ("shoulder", "elbow")),
            (hip, knee, ankle, (THIGH, SHIN), ("hip", "knee")),
        ):
            theta = rng.uniform(*limits[root])
            j[b] = segment(j[a], theta, side, lengths[0])
            j[c] = segment(j[b], theta + rng.choice([-1, 1]) * rng.uniform(*limits[bend]), side, lengths[1])
    head_up, head_right = _rot(tilt + float(np.clip(rng.normal(0, 0.18), -0.6, 0.6)))
    head_center = up * NECK_RISE + head_up * (0.02 + HEAD_AXES[1])
    # face points on a head sphere: azimuth α from the camera direction, elevation e;
    # projected at centre + right·A·sin α·cos e + up·B·sin e, facing us when cos α·cos e > 0
    azimuth = yaw + np.array([0.0, 0.55, -0.55, math.pi / 2, -math.pi / 2])  # nose, l/r eye, l/r ear
    elevation = np.array([-0.3, 0.05, 0.05, 0.0, 0.0])
    j[:5] = (head_center + np.outer(np.sin(azimuth) * np.cos(elevation), head_right) * HEAD_AXES[0]
             + np.outer(np.sin(elevation), head_up) * HEAD_AXES[1])  # fmt: skip
    depth = np.cos(azimuth) * np.cos(elevation)
    face_state = np.full(COCO17.num_joints, 2)
    face_state[:3] = np.where(depth[:3] > 0.2, 2, np.where(depth[:3] > -0.3, 1, 0))
    face_state[3:5] = np.where(depth[3:] > -0.45, 2, 1)
    # place the figure: the middle of its extent (joints and the top of the head) on ``center``
    top = head_center + head_up * HEAD_AXES[1]
    extent = np.vstack([j, top[None]])
    shift = center / height - (extent.min(0) + extent.max(0)) / 2
    return Figure(
        joints=(j + shift) * height, face_state=face_state, height=height, up=up, left=left,
        width=width, head_center=(head_center + shift) * height,
        head_axes=(HEAD_AXES[0] * height, HEAD_AXES[1] * height), head_up=head_up, head_right=head_right,
        yaw=yaw,
    )  # fmt: skip


def _palette(rng: np.random.Generator, bg_luma: float, min_contrast: float) -> dict:
    """Clothes whose brightness differs from the background's by at least ``min_contrast``."""

    def contrasting():
        dark, light = (0, bg_luma - min_contrast), (bg_luma + min_contrast, 255)
        options = [r for r in (dark, light) if r[1] - r[0] > 15]
        return random_color(rng, options[rng.integers(len(options))] if options else (0, 255))

    shirt, trousers = contrasting(), contrasting()
    skin = np.clip(np.array(SKIN[rng.integers(len(SKIN))]) + rng.normal(0, 8, 3), 0, 255)
    skin = tuple(float(c) for c in skin)
    sleeve = skin if rng.random() < 0.4 else tuple(c * rng.uniform(0.55, 0.8) for c in shirt)
    shin = skin if rng.random() < 0.15 else tuple(c * rng.uniform(0.6, 0.85) for c in trousers)
    hair = tuple(float(c) for c in HAIR[rng.integers(len(HAIR))])
    return dict(shirt=shirt, trousers=trousers, sleeve=sleeve, shin=shin, skin=skin, hair=hair,
                shoe=random_color(rng, (0, 90)))  # fmt: skip


def _occluder(rng: np.random.Generator, fig: Figure) -> Shape:
    """A box, a disc or a pole placed over a random joint of ``fig``."""
    size = fig.height * rng.uniform(0.12, 0.4)
    c = fig.joints[rng.integers(5, COCO17.num_joints)] + rng.normal(0, 0.3 * size, 2)
    color, kind = random_color(rng, (20, 235)), rng.random()
    if kind < 0.45:
        w, h = size * rng.uniform(0.5, 1.2), size * rng.uniform(0.5, 1.2)
        return Shape("polygon", (c + np.array([[-w, -h], [w, -h], [w, h], [-w, h]]),), color, 1.0)
    if kind < 0.75:
        axes = (size, size * rng.uniform(0.5, 1.0))
        return Shape("ellipse", (c, axes, rng.uniform(0, math.pi)), color, 1.0)
    end = c + np.array([rng.normal(0, 0.3), -1.0]) * fig.height  # a pole or a tree trunk
    return Shape("limb", (c + (c - end), end, size * 0.3, size * 0.3), color, 1.0, True)


def render_scene(rng: np.random.Generator, size: int,
                 layout: str = "coco17") -> tuple[np.ndarray, list[dict]]:
    """One image (S, S, 3) uint8 and its persons: dicts with ``keypoints`` (K, 3) in ``layout``,
    ``bbox``, ``area``. Which persons are kept is decided on their COCO-17 labels, so the image
    and its persons do not depend on the layout."""
    canvas = background(rng, size)
    n = int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1]))
    # 32–256 px for S = 256, log-uniform with a lean toward larger persons (median ≈ 115 px)
    heights = np.sort(size / 8 * 8 ** rng.random(n) ** 0.7)
    heights = heights[: 2 if heights[-1] > 0.6 * size else n]  # big persons come in few
    people = []
    for i, height in enumerate(heights):  # smaller first: larger (nearer) persons stand in front
        easy = rng.random() < 0.4
        if i > 0 and rng.random() < 0.35:  # overlap a person already placed
            center = people[rng.integers(i)][0].joints.mean(0) + rng.normal(0, 0.3 * height, 2)
        else:
            spread = (0.1, 0.9) if easy or rng.random() < 0.7 else (-0.1, 1.1)
            center = rng.uniform(*spread, 2) * size
        tilt = rng.normal(0, 0.14) if easy or rng.random() < 0.8 else rng.uniform(-math.pi, math.pi)
        style = rng.choice(["stand", "move"]) if easy else rng.choice(list(POSE_STYLES), p=[0.2, 0.5, 0.3])
        fig = sample_figure(rng, center, float(height), str(style), float(tilt))
        y0, x0 = np.clip((center - height / 2).astype(int), 0, size - 1)[::-1]
        bg_luma = float(canvas[y0 : y0 + int(height), x0 : x0 + int(height)].reshape(-1, 3).mean(0) @ LUMA)
        shapes = figure_shapes(fig, _palette(rng, bg_luma, 70 if easy else 30), 1.0 if easy else 0.0)
        people.append((fig, shapes))
    occluders = [_occluder(rng, people[rng.integers(len(people))][0]) for _ in range(rng.integers(1, 3))]
    occluders = occluders if rng.random() < 0.45 else []
    people = [(fig, rasterize_all(shapes, size)) for fig, shapes in people]
    occluders = rasterize_all(occluders, size)
    masks = [union_mask(rasters, size) for _, rasters in people]
    cover_base = union_mask(occluders, size)
    # drop (and never draw) persons with too little left to label: < 3 labelled or < 2 seen
    # joints, or < 30 px inside the image. Dropping only unhides the others, so they stay kept.
    persons = _label([fig for fig, _ in people], masks, cover_base, size)
    v = [p["keypoints"][:, 2] for p in persons]
    keep = [i for i, (vi, p) in enumerate(zip(v, persons))
            if (vi > 0).sum() >= 3 and (vi == 2).sum() >= 2 and p["area"] >= 30]  # fmt: skip
    for i in keep:
        paint(canvas, people[i][1])
    paint(canvas, occluders)
    canvas = canvas * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)  # exposure
    if rng.random() < 0.5:
        canvas += rng.normal(0, rng.uniform(1, 5), canvas.shape)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return image, _label([people[i][0] for i in keep], [masks[i] for i in keep], cover_base, size, layout)


def _check_layout(layout: str) -> KeypointSpec:
    if layout not in LAYOUTS:
        raise ValueError(f"SynthPose: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return LAYOUTS[layout]


def layout_joints(fig: Figure, layout: str = "coco17") -> tuple[np.ndarray, np.ndarray]:
    """The figure's keypoints in a layout: (K, 2) image pixels and (K,) face state (2 seen by its own
    head, 1 hidden behind it, 0 on the back of the head: see ``synth_render.Figure``).

    "coco17": the figure's own 17 joints. "crowdpose14": COCO's body joints 5–16 (the same order
    as CrowdPose's 0–11), the top of the head = head centre + head_up · half height (the top of
    the head ellipse the renderer draws) and the neck = the shoulders' midpoint ½ (p_5 + p_6).
    """
    _check_layout(layout)
    if layout == "coco17":
        return fig.joints, fig.face_state
    head_top = fig.head_center + fig.head_up * fig.head_axes[1]
    neck = (fig.joints[5] + fig.joints[6]) / 2  # ½ (left shoulder + right shoulder)
    joints = np.vstack([fig.joints[5:], head_top[None], neck[None]])  # (14, 2)
    state = np.concatenate([fig.face_state[5:], [2, 2]])  # the head's top and the neck face no way
    return joints, state


def _label(figures: list[Figure], masks: list[np.ndarray], cover: np.ndarray, size: int,
           layout: str = "coco17") -> list[dict]:
    """COCO labels of figures drawn in this order, in front of nothing but later ones and ``cover``,
    with the keypoints of ``layout`` (``layout_joints``)."""
    out = []
    cover = cover.copy()
    for fig, mask in zip(figures[::-1], masks[::-1]):  # front to back: what is in front is known
        joints, face_state = layout_joints(fig, layout)
        xy = np.round(joints, 2)
        inside = np.all((xy >= 0) & (xy <= size - 1), axis=1) & (face_state > 0)
        col, row = np.clip(np.rint(xy), 0, size - 1).astype(int).T
        v = np.where(inside, np.where(cover[row, col] | (face_state == 1), 1, 2), 0)
        keypoints = np.concatenate([np.where(v[:, None] > 0, xy, 0.0), v[:, None]], axis=1)
        # the mask's occupied rows and columns (cheaper than nonzero on the whole image)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        xs = np.concatenate([cols, np.floor(xy[v > 0, 0])])
        ys = np.concatenate([rows, np.floor(xy[v > 0, 1])])
        x0, y0 = (xs.min(), ys.min()) if len(xs) else (0.0, 0.0)  # empty: dropped by the caller
        bbox = [x0, y0, xs.max() + 1 - x0, ys.max() + 1 - y0] if len(xs) else [0.0] * 4
        out.append({"keypoints": keypoints, "bbox": [float(b) for b in bbox], "area": float(mask.sum())})
        cover |= mask
    return out[::-1]


def make_image(seed: int, split: str, index: int, size: int,
               layout: str = "coco17") -> tuple[np.ndarray, dict, list[dict]]:
    """Image ``index`` (0-based) of ``split``: pixels (S, S, 3) uint8, its COCO ``images`` entry and
    its COCO ``annotations`` in ``layout`` (crowdpose14: without ``area``, as CrowdPose's files).
    A pure function of its arguments (the seed of one image)."""
    _check_layout(layout)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], index]))
    image, persons = render_scene(rng, size, layout)
    image_id = index + 1 + (VAL_ID_OFFSET if split == "val" else 0)
    entry = {"id": image_id, "file_name": f"{split}_{index + 1:06d}.jpg", "width": size, "height": size}
    annotations = [
        {
            "id": image_id * 100 + k, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [round(float(x), 2) if c < 2 else int(x)
                          for row in p["keypoints"] for c, x in enumerate(row)],
            "num_keypoints": int((p["keypoints"][:, 2] > 0).sum()),
            "bbox": [round(b, 2) for b in p["bbox"]], "area": round(p["area"], 2),
        }  # fmt: skip
        for k, p in enumerate(persons)
    ]
    if layout == "crowdpose14":
        for ann in annotations:
            del ann["area"]
    return image, entry, annotations


def _image_task(task: tuple) -> tuple[dict, list[dict]]:
    """Worker: make one image, save its JPEG, return its COCO entry and annotations."""
    seed, split, index, size, images_dir, layout = task
    image, entry, annotations = make_image(seed, split, index, size, layout)
    if images_dir is not None:
        path = os.path.join(images_dir, entry["file_name"])
        Image.fromarray(image).save(path, quality=JPEG_QUALITY, optimize=True)
    return entry, annotations


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"SynthPose: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_arguments(out_dir, n_train, n_val, seed, image_size, workers) -> None:
    """Raise a ValueError naming the bad argument of :func:`generate`, if there is one."""
    for name, value in (("n_train", n_train), ("n_val", n_val), ("seed", seed), ("image_size", image_size)):
        _check_count(name, value)
    if n_train + n_val == 0:
        raise ValueError("SynthPose: n_train and n_val are both 0: nothing to generate")
    if not 64 <= image_size <= 2048:
        raise ValueError(f"SynthPose: image_size must be in [64, 2048], got {image_size}")
    if workers is not None and _check_count("workers", workers) == 0:
        raise ValueError("SynthPose: workers must be at least 1")
    for path in (Path(out_dir), Path(out_dir) / "images", Path(out_dir) / "annotations"):
        if path.exists() and not path.is_dir():
            raise ValueError(f"SynthPose: output folder {str(path)!r} exists and is a file")


def _run_tasks(tasks: list[tuple], workers: int | None) -> list[tuple[dict, list[dict]]]:
    """``_image_task`` of every task, in order, on ``workers`` processes (the result does not depend
    on their number)."""
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:
        return [_image_task(t) for t in tasks]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers) as pool:
        return pool.map(_image_task, tasks, chunksize=max(1, len(tasks) // (8 * workers)))


def _write_split(path: Path, split: str, chunk: list[tuple[dict, list[dict]]], layout: str) -> int:
    """One split's COCO keypoint file (sorted keys, compact: byte-reproducible); returns its persons."""
    what = "" if layout == "coco17" else f", {layout} layout"
    coco = {
        "info": {"description": f"SynthPose {VERSION} {split} split (hrnet_edu.data.synthpose{what})",
                 "version": VERSION},  # fmt: skip
        "images": [image for image, _ in chunk],
        "annotations": [a for _, anns in chunk for a in anns],
        "categories": [LAYOUTS[layout].coco_category()],
    }
    path.write_text(json.dumps(coco, sort_keys=True, separators=(",", ":")) + "\n")
    return len(coco["annotations"])


def generate(
    out_dir, n_train: int, n_val: int, seed: int = 0, image_size: int = 256, workers: int | None = None,
    layout: str = "coco17",
) -> dict:
    """Write a SynthPose dataset in COCO keypoint format under ``out_dir``.

    Args:
        out_dir: folder to create or reuse (images/, annotations/, synthpose.json are written).
        n_train, n_val: number of images per split (≥ 0, not both 0).
        seed: non-negative integer; the output is a pure function of (seed, counts, image_size).
        image_size: S, images are S×S (64–2048); person heights scale as 32–256 px × S/256.
        workers: processes (default: all cores); the result does not depend on it.
        layout: the keypoints labelled, "coco17" or "crowdpose14" (see the module docstring).
    Returns:
        dict with ``out_dir``, ``images_dir``, ``train_json``, ``val_json``, ``meta_json`` (paths)
        and ``n_train``, ``n_val``, ``n_persons_train``, ``n_persons_val``.
    Raises:
        ValueError: a negative or non-integer count or seed, a bad size, an unknown layout, or
        ``out_dir`` is a file.
    """
    check_arguments(out_dir, n_train, n_val, seed, image_size, workers)
    _check_layout(layout)
    n_train, n_val, seed, image_size = int(n_train), int(n_val), int(seed), int(image_size)
    out = Path(out_dir)
    images_dir, ann_dir = out / "images", out / "annotations"
    try:
        images_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. /proc/x, a read-only disk: say which folder, in one line
        raise ValueError(f"SynthPose: cannot create the output folder {str(out)!r}: "
                         f"{err.strerror or err}") from None
    counts = {"train": n_train, "val": n_val}
    tasks = [(seed, split, i, image_size, str(images_dir), layout)
             for split in SPLITS for i in range(counts[split])]  # fmt: skip
    results = _run_tasks(tasks, workers)
    # remove images of an earlier, larger run into the same folder, so the folder matches the JSON
    expected = {image["file_name"] for image, _ in results}
    for stale in images_dir.glob("*.jpg"):
        if stale.name.split("_")[0] in SPLITS and stale.name not in expected:
            stale.unlink()
    summary = {"out_dir": str(out), "images_dir": str(images_dir), "meta_json": str(out / "synthpose.json")}
    start = 0
    for split in SPLITS:
        chunk = results[start : start + counts[split]]
        start += counts[split]
        path = ann_dir / f"person_keypoints_{split}.json"
        summary[f"n_persons_{split}"] = _write_split(path, split, chunk, layout)
        summary[f"{split}_json"] = str(path)
        summary[f"n_{split}"] = counts[split]
    meta = {"generator": "hrnet_edu.data.synthpose", "version": VERSION, "seed": seed, "n_train": n_train,
            "n_val": n_val, "image_size": image_size, "jpeg_quality": JPEG_QUALITY,
            "n_persons_train": summary["n_persons_train"],
            "n_persons_val": summary["n_persons_val"]}  # fmt: skip
    if layout != "coco17":  # (the COCO-17 record stays as earlier versions wrote it)
        meta["layout"] = layout
    (out / "synthpose.json").write_text(json.dumps(meta, sort_keys=True, indent=2) + "\n")
    return summary


def export_layout(synth_dir, layout: str, out_dir=None, workers: int | None = None) -> dict:
    """The labels of an existing SynthPose folder in another layout, its images untouched.

    Every image is a pure function of the arguments in ``synth_dir/synthpose.json``, so its persons
    are re-derived (rendered again, without writing a JPEG) and labelled in ``layout``; the files
    are ``out_dir/{layout}_{split}.json`` (default ``out_dir``: ``synth_dir/annotations``), with the
    same image entries, so they read the same ``images/`` folder.
    ``data_samples/synthpose/annotations/crowdpose14_{train,val}.json`` were made this way.

    Returns {"train_json", "val_json", "n_persons_train", "n_persons_val"} (paths and counts).
    """
    _check_layout(layout)
    meta = json.loads((Path(synth_dir) / "synthpose.json").read_text())
    if meta.get("version") != VERSION:
        raise ValueError(f"SynthPose: {synth_dir} was made by generator version {meta.get('version')}, "
                         f"this is {VERSION}: its figures cannot be re-derived")
    out = Path(out_dir) if out_dir is not None else Path(synth_dir) / "annotations"
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": meta["n_train"], "val": meta["n_val"]}
    summary = {}
    for split in SPLITS:
        tasks = [(meta["seed"], split, i, meta["image_size"], None, layout) for i in range(counts[split])]
        path = out / f"{layout}_{split}.json"
        summary[f"n_persons_{split}"] = _write_split(path, split, _run_tasks(tasks, workers), layout)
        summary[f"{split}_json"] = str(path)
    return summary


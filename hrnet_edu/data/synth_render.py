"""Drawing SynthPose scenes: anti-aliased shapes from distance tests, figures, textured backgrounds.

Every shape is drawn by evaluating a distance test on the pixel centres inside its bounding box
(numpy, no Python loop over pixels). A pixel whose centre lies at signed distance d from the
shape's outline (d < 0 inside) gets the coverage

    α = clip(0.5 − d, 0, 1)          (a one-pixel anti-aliased edge)

and belongs to the shape's *mask* when α > 0.5. Because the masks are plain numpy arithmetic,
the annotations (areas, boxes, occlusion flags) do not depend on the Pillow version; Pillow is
used only to encode the JPEG and to upsample small noise grids for the background.

Three shape kinds are enough for a person: a *limb* (a tapered capsule from a to b with radii
r_a, r_b), an *ellipse* (head, hands, feet, face details) and a convex *polygon* (torso, pelvis).
Pixel convention: integer coordinates are pixel centres (see ``hrnet_edu.geometry``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# ITU-R BT.601 luma weights: the "brightness" used to keep figures in contrast with the background.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Shape:
    """One filled shape. ``kind`` is "limb" (params a(2,), b(2,), r_a, r_b), "ellipse"
    (centre (2,), semi-axes (A, B), angle in radians of the A axis) or "polygon" (vertices (P, 2),
    convex). ``color`` is RGB in [0, 255]; ``outline`` > 0 draws a dark rim that many pixels wide;
    ``shade`` darkens limbs toward their edges so they read as tubes."""

    kind: str
    params: tuple
    color: tuple[float, float, float]
    outline: float = 0.0
    shade: bool = False


@dataclass(frozen=True)
class Raster:
    """A rasterised shape: coverage ``alpha`` (h, w) of the fill and ``alpha_rim`` of fill + rim,
    ``shade`` (h, w) brightness factor, placed at rows y0:y0+h, columns x0:x0+w of the image."""

    y0: int
    x0: int
    alpha: np.ndarray
    alpha_rim: np.ndarray
    shade: np.ndarray | None


def _bounds(points: np.ndarray, margin: float, size: int) -> tuple[int, int, int, int] | None:
    lo = np.floor(points.min(axis=0) - margin).astype(int)
    hi = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], size), min(hi[1], size)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def rasterize(shape: Shape, size: int) -> Raster | None:
    """Coverage of ``shape`` on a size×size image, or None when it misses the image entirely."""
    p = shape.params
    if shape.kind == "limb":
        a, b, ra, rb = np.asarray(p[0], float), np.asarray(p[1], float), float(p[2]), float(p[3])
        box = _bounds(np.stack([a, b]), max(ra, rb) + shape.outline + 1, size)
    elif shape.kind == "ellipse":
        c, (sa, sb), angle = np.asarray(p[0], float), p[1], float(p[2])
        box = _bounds(c[None], max(sa, sb) + shape.outline + 1, size)
    else:
        verts = np.asarray(p[0], float)
        box = _bounds(verts, shape.outline + 1, size)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    # pixel-centre coordinates as a column and a row: numpy broadcasts them to (h, w)
    ys, xs = np.arange(y0, y1, dtype=np.float64)[:, None], np.arange(x0, x1, dtype=np.float64)[None, :]
    if shape.kind == "limb":
        # t = projection of the pixel on the segment ab, clipped to it; r(t) = r_a + t (r_b − r_a)
        ab = b - a
        t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / max(ab @ ab, 1e-9), 0.0, 1.0)
        axis_dist = np.hypot(xs - a[0] - t * ab[0], ys - a[1] - t * ab[1])
        radius = ra + t * (rb - ra)
        d, rel = axis_dist - radius, axis_dist / np.maximum(radius, 1e-6)
    elif shape.kind == "ellipse":
        dx, dy = xs - c[0], ys - c[1]
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / sa
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / sb
        rel = np.hypot(u, v)
        # (q − 1)·min(A, B): the exact distance for a circle, a fair one for a mild ellipse
        d = (rel - 1.0) * min(sa, sb)
    else:
        # convex polygon: signed distance ≈ max over edges of the distance to the edge's line
        edges = np.roll(verts, -1, axis=0) - verts
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
        # turn every normal outward: away from the centroid, whatever the vertex order
        inward = ((verts.mean(0) - verts) * normals).sum(1) > 0
        normals[inward] *= -1
        dx, dy = xs[..., None] - verts[:, 0], ys[..., None] - verts[:, 1]
        d, rel = (dx * normals[:, 0] + dy * normals[:, 1]).max(axis=-1), 0.0
    d = np.broadcast_to(d, (y1 - y0, x1 - x0))
    alpha = np.clip(0.5 - d, 0.0, 1.0)
    alpha_rim = np.clip(0.5 + shape.outline - d, 0.0, 1.0) if shape.outline > 0 else alpha
    # tube shading: 1 on the limb's axis, 0.65 at its edge
    shade = 1.0 - 0.35 * np.clip(rel, 0.0, 1.0) ** 2 if shape.shade else None
    return Raster(y0, x0, alpha, alpha_rim, shade)


def composite(canvas: np.ndarray, shape: Shape, raster: Raster) -> None:
    """Paint ``raster`` of ``shape`` onto ``canvas`` (S, S, 3) float in place: rim, then fill."""
    h, w = raster.alpha.shape
    region = canvas[raster.y0 : raster.y0 + h, raster.x0 : raster.x0 + w]
    color = np.asarray(shape.color, np.float64)
    if shape.outline > 0:
        region += (0.3 * color - region) * raster.alpha_rim[..., None]
    fill = color if raster.shade is None else color * raster.shade[..., None]
    region += (fill - region) * raster.alpha[..., None]


def rasterize_all(shapes: list[Shape], size: int) -> list[tuple[Shape, Raster]]:
    """Rasterise ``shapes`` once (they are used twice: for the masks, then for painting)."""
    return [(shape, raster) for shape in shapes if (raster := rasterize(shape, size)) is not None]


def paint(canvas: np.ndarray, rasters: list[tuple[Shape, Raster]]) -> None:
    """Paint rasterised shapes in order (back to front) onto ``canvas`` (S, S, 3) in place."""
    for shape, raster in rasters:
        composite(canvas, shape, raster)


def union_mask(rasters: list[tuple[Shape, Raster]], size: int) -> np.ndarray:
    """The pixels (S, S) bool covered by any of the rasterised shapes (coverage > 0.5)."""
    mask = np.zeros((size, size), bool)
    for _, raster in rasters:
        h, w = raster.alpha.shape
        mask[raster.y0 : raster.y0 + h, raster.x0 : raster.x0 + w] |= raster.alpha_rim > 0.5
    return mask


def random_color(rng: np.random.Generator, luma_range: tuple[float, float] = (0, 255)) -> tuple:
    """An RGB colour (0–255) whose luma lies in ``luma_range`` (rejection sampling, ≤ 20 tries)."""
    for _ in range(20):
        color = rng.uniform(0, 255, 3)
        if luma_range[0] <= color @ LUMA <= luma_range[1]:
            break
    return tuple(float(c) for c in color)


def muted(color: tuple, saturation: float) -> tuple:
    """``color`` pulled toward its own grey: saturation 1 keeps it, 0 gives grey of the same luma."""
    grey = np.asarray(color) @ LUMA
    return tuple(float(grey + (c - grey) * saturation) for c in color)


def _smooth_noise(rng: np.random.Generator, size: int, grid: int, amplitude: float) -> np.ndarray:
    """Low-frequency colour noise (S, S, 3): a grid×grid random image upsampled bilinearly."""
    small = np.clip(128 + rng.normal(0, amplitude, (grid, grid, 3)), 0, 255).astype(np.uint8)
    big = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(big, np.float64) - 128.0


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured, cluttered background (S, S, 3) float in [0, 255].

    Layers: a two-colour gradient (a wall, a floor), low-frequency colour noise, sometimes a
    stripe or checker pattern, then clutter: boxes, blobs, sticks and head-like discs, some of
    them limb-like on purpose so that the network must use context, not only "a tube is a limb".
    """
    ys, xs = np.arange(size)[:, None] / size, np.arange(size)[None, :] / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip((np.cos(angle) * (xs - 0.5) + np.sin(angle) * (ys - 0.5)) * 2 + 0.5, 0, 1)[..., None]
    c0 = np.array(muted(random_color(rng, (50, 210)), rng.uniform(0.2, 0.7)))
    c1 = np.array(muted(random_color(rng, (50, 210)), rng.uniform(0.2, 0.7)))
    canvas = c0 + (c1 - c0) * ramp
    canvas += _smooth_noise(rng, size, int(rng.integers(3, 14)), rng.uniform(8, 30))
    if rng.random() < 0.4:
        freq, theta = rng.uniform(4, 20), rng.uniform(0, np.pi)
        phase = (np.cos(theta) * xs + np.sin(theta) * ys) * freq * 2 * np.pi
        pattern = np.sin(phase) if rng.random() < 0.5 else np.sign(np.sin(phase) * np.sin(freq * 6.28 * ys))
        canvas += rng.uniform(6, 25) * pattern[..., None]
    clutter = []
    for _ in range(int(rng.integers(2, 18))):
        kind, color = rng.random(), muted(random_color(rng, (20, 235)), rng.uniform(0.3, 0.9))
        c, r = rng.uniform(-0.1, 1.1, 2) * size, rng.uniform(0.02, 0.15) * size
        if kind < 0.35:
            w, h = r, r * rng.uniform(0.3, 1.5)
            corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
            rot = rng.uniform(-0.5, 0.5)
            rmat = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
            clutter.append(Shape("polygon", (c + corners @ rmat.T,), color))
        elif kind < 0.6:
            axes = (r, r * rng.uniform(0.3, 1.0))
            clutter.append(Shape("ellipse", (c, axes, rng.uniform(0, np.pi)), color))
        elif kind < 0.9:  # limb-like distractor sticks
            b = c + rng.normal(0, r, 2)
            w = rng.uniform(0.008, 0.03) * size
            clutter.append(Shape("limb", (c, b, w, w * rng.uniform(0.6, 1.2)), color, shade=True))
        else:  # head-like discs
            clutter.append(Shape("ellipse", (c, (r * 0.25, r * 0.3), 0.0), color))
    paint(canvas, rasterize_all(clutter, size))
    return canvas


@dataclass(frozen=True)
class Figure:
    """A posed figure in image pixels, ready to draw.

    ``joints`` (K, 2) are the 17 COCO keypoints; ``face_state`` (K,) says what the figure's own
    head does to each: 2 seen, 1 hidden behind the head (labelled, v = 1), 0 on the back of the
    head (unlabelled, as COCO leaves the eyes of a person seen from behind). ``up`` and ``left``
    (2,) are unit vectors of the torso (``left`` is the *person's* left: image right when the
    figure faces the camera); ``head_up``, ``head_right`` the head's frame; ``yaw`` the face
    direction in radians (0 = toward the camera, π = away); ``width`` the torso turn factor.
    """

    joints: np.ndarray
    face_state: np.ndarray
    height: float
    up: np.ndarray
    left: np.ndarray
    width: float
    head_center: np.ndarray
    head_axes: tuple[float, float]
    head_up: np.ndarray
    head_right: np.ndarray
    yaw: float


def _darker(color: tuple, factor: float) -> tuple:
    return tuple(float(c) * factor for c in color)


def figure_shapes(fig: Figure, colors: dict, outline: float) -> list[Shape]:
    """The shapes of a figure, back to front: legs, torso, arms, head and face.

    ``colors`` holds RGB tuples for shirt, sleeve (forearm), trousers, shin, skin, hair, shoe.
    Segments differ in shade the way clothes do (sleeve vs shirt, shin vs thigh), elbows and
    knees carry a darker patch, hands are skin and feet are shoes: cues that make every joint
    locatable, while left and right are told apart only by the face and the shirt's front.
    """
    j, h, u, lf = fig.joints, fig.height, fig.up, fig.left * fig.width
    r = lambda x: max(x * h, 0.7)  # noqa: E731 — radii in body heights, at least 0.7 px
    s: list[Shape] = []
    for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
        s.append(Shape("limb", (j[hip], j[knee], r(0.052), r(0.041)), colors["trousers"], outline, True))
        s.append(Shape("limb", (j[knee], j[ankle], r(0.040), r(0.029)), colors["shin"], outline, True))
        s.append(Shape("ellipse", (j[knee], (r(0.036), r(0.036)), 0.0), _darker(colors["trousers"], 0.7)))
        shin = (j[ankle] - j[knee]) / max(np.linalg.norm(j[ankle] - j[knee]), 1e-6)
        angle = float(np.arctan2(shin[1], shin[0])) + np.pi / 2
        foot = (j[ankle] + shin * 0.02 * h, (r(0.042), r(0.024)), angle)
        s.append(Shape("ellipse", foot, colors["shoe"], outline))
    hl, hr, sl, sr = j[11], j[12], j[5], j[6]
    torso = [sl + (lf * 0.02 + u * 0.025) * h, sr + (-lf * 0.02 + u * 0.025) * h,
             hr - lf * 0.035 * h, hr - (lf * 0.03 + u * 0.05) * h,
             hl + (lf * 0.03 - u * 0.05) * h, hl + lf * 0.035 * h]  # fmt: skip
    s.append(Shape("polygon", (np.stack(torso),), colors["shirt"], outline))
    pelvis = [hl + (lf * 0.05 + u * 0.045) * h, hr + (-lf * 0.05 + u * 0.045) * h,
              hr - (lf * 0.045 + u * 0.06) * h, hl + (lf * 0.045 - u * 0.06) * h]  # fmt: skip
    s.append(Shape("polygon", (np.stack(pelvis),), colors["trousers"], outline))
    neck = (sl + sr) / 2 + u * 0.03 * h
    front = np.cos(fig.yaw) > 0
    if front:  # the shirt's button placket is seen only from the front
        light = tuple(c + (255 - c) * 0.55 for c in colors["shirt"])
        s.append(Shape("limb", (neck - u * 0.03 * h, (hl + hr) / 2 + u * 0.1 * h, r(0.009), r(0.009)), light))
    s.append(Shape("limb", (neck - u * 0.02 * h, fig.head_center, r(0.027), r(0.025)), colors["skin"]))
    for shoulder, elbow, wrist in ((5, 7, 9), (6, 8, 10)):
        s.append(Shape("limb", (j[shoulder], j[elbow], r(0.034), r(0.028)), colors["shirt"], outline, True))
        s.append(Shape("limb", (j[elbow], j[wrist], r(0.027), r(0.021)), colors["sleeve"], outline, True))
        s.append(Shape("ellipse", (j[elbow], (r(0.026), r(0.026)), 0.0), _darker(colors["sleeve"], 0.7)))
        s.append(Shape("ellipse", (j[wrist], (r(0.025), r(0.025)), 0.0), colors["skin"], outline, True))
    return s + _head_shapes(fig, colors, outline)


def _head_shapes(fig: Figure, colors: dict, outline: float) -> list[Shape]:
    """Hair-covered head ellipse, ears, the face (skin) turned by the yaw, eyes and nose."""
    j, h, c, (a, b) = fig.joints, fig.height, fig.head_center, fig.head_axes
    head_angle = float(np.arctan2(fig.head_right[1], fig.head_right[0]))
    ear = (max(0.015 * h, 0.6), max(0.022 * h, 0.8))
    depth = np.cos(fig.yaw + np.array([np.pi / 2, -np.pi / 2]))  # left ear, right ear
    behind = [Shape("ellipse", (j[k], ear, head_angle), colors["skin"], outline)
              for k, dk in zip((3, 4), depth) if -0.45 < dk <= 0.15]  # fmt: skip
    s = behind + [Shape("ellipse", (c, (a, b), head_angle), colors["hair"], outline)]
    if np.cos(fig.yaw) > -0.1:
        # the face: a skin ellipse shifted toward where the head turns (sin yaw), narrower in profile
        shift = fig.head_right * a * 0.45 * np.sin(fig.yaw) - fig.head_up * 0.14 * b
        width = a * (0.93 - 0.45 * abs(np.sin(fig.yaw)))
        s.append(Shape("ellipse", (c + shift, (width, 0.8 * b), head_angle), colors["skin"]))
    s += [Shape("ellipse", (j[k], ear, head_angle), colors["skin"])
          for k, dk in zip((3, 4), depth) if dk > 0.15]  # fmt: skip
    eye = max(0.011 * h, 0.5)
    s += [Shape("ellipse", (j[k], (eye, eye), 0.0), (25.0, 25.0, 35.0))
          for k in (1, 2) if fig.face_state[k] == 2]  # fmt: skip
    if fig.face_state[0] == 2:
        s.append(Shape("ellipse", (j[0], (eye * 1.1, eye * 1.3), head_angle), _darker(colors["skin"], 0.6)))
    return s

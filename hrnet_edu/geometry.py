"""Boxes, crops and the one pixel convention of hrnet-edu.

Pixel convention (used by every module, tested in ``tests/test_geometry.py``)
-----------------------------------------------------------------------------
* A point (x, y) is in pixels, x to the right, y down. **Integer coordinates are pixel
  centres**: pixel (row i, column j) is the unit square centred on (x = j, y = i), so an image
  of width W spans x ∈ [−0.5, W − 0.5].
* A horizontal flip of an image of width W therefore maps x → W − 1 − x (the reference's
  convention; flipping twice is the identity).
* Heatmap ↔ input crop: a heatmap of stride 4 (H/4 × W/4) relates to its input crop by
  x_in = 4 · x_hm, as in the reference implementation (targets at ``int(x_in / 4 + 0.5)``;
  decoding through the crop transform built with the heatmap size). Strictly, the centre of
  heatmap pixel 0 sits over input pixels 0..3, whose centre is x_in = 1.5; the reference's
  mapping ignores this (stride − 1) / 2 offset and the network simply learns it. We keep the
  reference's mapping so that published weights give the published numbers.
* Image ↔ input crop: the similarity transform of :func:`crop_transform`, which maps the box
  centre to the middle of the crop (w/2, h/2) — the reference's ``get_affine_transform``.

Box → centre and scale (the reference's ``_xywh2cs``)
-----------------------------------------------------
The reference describes a person box by its centre c and a *scale* s = (w, h) / 200, where the
box has first been grown to the input's aspect ratio and then padded by 1.25 so that the crop
keeps some context around the person. The 200 ("pixel_std") is a historical unit inherited from
the MPII tools; we keep it because checkpoints, detection files and the augmentation ranges
(scale ± 35 %) are all expressed in it.
"""

from __future__ import annotations

import numpy as np

PIXEL_STD = 200.0
BOX_PADDING = 1.25


def box_to_center_scale(
    boxes: np.ndarray, aspect_ratio: float, padding: float = BOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """COCO boxes ``[x, y, w, h]`` → centres and scales, as the reference computes them.

    Args:
        boxes: (..., 4) boxes in image pixels, COCO ``[x, y, w, h]``.
        aspect_ratio: input width / input height (0.75 for 256×192).
        padding: growth factor applied after fixing the aspect ratio (reference: 1.25).

    Returns:
        center: (..., 2) box centres ``(x + w/2, y + h/2)``.
        scale: (..., 2) ``(w', h') / 200 · padding`` where (w', h') is the box grown to the
            aspect ratio (only ever grown, never shrunk).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (..., 4) as [x, y, w, h], got {boxes.shape}")
    x, y, w, h = np.moveaxis(boxes, -1, 0)
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    # Grow the short side so that w' / h' = aspect_ratio exactly.
    w2 = np.where(w > aspect_ratio * h, w, h * aspect_ratio)
    h2 = np.where(w > aspect_ratio * h, w / aspect_ratio, h)
    scale = np.stack([w2, h2], axis=-1) / PIXEL_STD * padding
    return center, scale


def crop_transform(
    center: np.ndarray,
    scale: np.ndarray,
    output_size: tuple[int, int],
    rotation: np.ndarray | float = 0.0,
    inverse: bool = False,
) -> np.ndarray:
    """The 2×3 affine matrix from the image to a crop of ``output_size`` (or back).

    The crop is a similarity transform: it maps the centre c to the middle of the output,
    scales isotropically by k = W_out / (200 · s_x), and rotates the content by ``rotation``
    degrees (counter-clockwise as seen on screen, the reference's sign)::

        p_out = k · R(θ) · (p_img − c) + (W_out / 2, H_out / 2),
        R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]]

    This is exactly what the reference's three-point ``get_affine_transform`` builds
    (shift = 0), written in closed form so that it is vectorized over a batch.

    Args:
        center: (..., 2) crop centres in image pixels.
        scale: (..., 2) crop scales in units of 200 px; only s_x sets the zoom, as in the
            reference (s_y is implied by the aspect ratio).
        output_size: (W_out, H_out) of the crop: the input size, or the heatmap size to map
            heatmap coordinates directly.
        rotation: (...) or scalar, degrees.
        inverse: return the crop → image matrix instead.

    Returns:
        (..., 2, 3) float64 matrices M with ``p' = M[:, :2] @ p + M[:, 2]``.
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    theta = np.deg2rad(np.asarray(rotation, dtype=np.float64))
    w_out, h_out = float(output_size[0]), float(output_size[1])
    batch = np.broadcast_shapes(center.shape[:-1], scale.shape[:-1], theta.shape)
    k = w_out / (PIXEL_STD * scale[..., 0])
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.empty(batch + (2, 2))
    rot[..., 0, 0], rot[..., 0, 1] = cos, sin
    rot[..., 1, 0], rot[..., 1, 1] = -sin, cos
    half_out = np.array([w_out * 0.5, h_out * 0.5])
    m = np.empty(batch + (2, 3))
    if not inverse:
        # p_out = k R (p − c) + o  →  linear part k R, offset o − k R c
        lin = k[..., None, None] * rot
        m[..., :2] = lin
        m[..., 2] = half_out - np.einsum("...ij,...j->...i", lin, center)
    else:
        # p = c + (1/k) Rᵀ (p_out − o)
        lin = np.swapaxes(rot, -1, -2) / k[..., None, None]
        m[..., :2] = lin
        m[..., 2] = center - np.einsum("...ij,...j->...i", lin, np.broadcast_to(half_out, center.shape))
    return m


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply 2×3 affine matrices to points.

    Args:
        points: (..., P, 2) points (x, y).
        matrix: (..., 2, 3), broadcast against the leading dimensions of ``points``.

    Returns:
        (..., P, 2) transformed points, float64.
    """
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.einsum("...ij,...pj->...pi", matrix[..., :2], points) + matrix[..., None, :, 2]


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """Mirror x in an image of ``width`` pixels (x → W − 1 − x); points: (..., 2)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] = width - 1 - out[..., 0]
    return out

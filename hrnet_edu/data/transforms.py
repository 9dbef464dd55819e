"""Top-down crops: training augmentation, the image → input affine warp, normalization.

A top-down sample is the person box's crop warped to a fixed input size (W×H = 192×256 in the
paper's main setting). The whole geometry of a sample is ONE 2×3 affine matrix M from the
original image to the input crop (``geometry.crop_transform``, composed with a mirror when the
sample is flipped); the pixels are warped with M and the keypoints are mapped with M, so image
and labels cannot drift apart.

Augmentation, as in the paper (Sec. 4.1) and the reference implementation
------------------------------------------------------------------------
* half body (p = 0.3, only when more than 8 joints are labelled): the crop is replaced by the
  box of the upper (COCO joints 0–10) or lower (11–16) body joints, grown to the aspect ratio,
  ×1.5 (which joints are the upper body is the keypoint spec's ``upper_body``);
* scale: s ← s · clip(1 + 0.35 · N(0, 1), 0.65, 1.35);
* rotation: θ = clip(45 · N(0, 1), −90, 90) degrees with probability 0.6, else 0;
* horizontal flip (p = 0.5): x → W_img − 1 − x and every left joint swaps with its right partner
  (the spec's ``flip_index``; COCO-17's by default).

We never flip the pixels: the mirror F(x, y) = (W_img − 1 − x, y) is folded into the matrix,
M = C(c', s, θ) ∘ F with c' the mirrored centre, which is exactly the reference's
"flip the image, then crop" and lets a GPU warp a whole batch from matrices alone.

Two warps, one interpolation (bilinear, zero border, integer coordinates at pixel centres — the
pixel convention of ``hrnet_edu.geometry``):

* :func:`warp_crop` — one uint8 image on the CPU with OpenCV's ``warpAffine``, the per-sample path
  of ``CocoKeypoints``. OpenCV maps pixel indices directly (dst(u, v) = src(M⁻¹ (u, v))), which is
  our convention as it stands, and its constant border blends with 0 exactly like grid_sample's
  zero padding, so the two warps agree up to uint8 rounding and OpenCV's 1/32-px fixed-point
  sample positions. On one core it is several times faster than grid_sample (grid + sampling,
  float) and than Pillow's ``Image.transform(AFFINE, BILINEAR)``, whose per-pixel generic loop is
  slow and whose border is not the zero blend (``benchmarks/bench_data.py`` measures the three).
  :func:`normalize_crop` then normalises the uint8 crop, also with OpenCV.
* :func:`warp_batch` / :func:`warp_image` — ``torch.nn.functional.grid_sample`` (align_corners=False,
  the normalisation written so that integer coordinates are pixel centres) on float tensors of
  any device: the batched GPU path (:class:`GpuBatchTransform`) and float images.

Shapes: N batch, K joints, H×W input crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import PIXEL_STD, crop_transform, transform_points
from ..heatmaps import HeatmapCodec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HALF_BODY_PADDING = 1.5


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (the reference's COCO settings are the defaults).

    Attributes:
        scale_factor: scale multiplier 1 + f · N(0, 1), clipped to [1 − f, 1 + f].
        rotation_factor: rotation f · N(0, 1) degrees, clipped to [−2f, 2f].
        rotation_prob: probability of rotating at all.
        flip_prob: probability of a horizontal flip.
        half_body_prob: probability of a half-body crop (when enough joints are labelled).
        half_body_min_joints: a half-body crop needs strictly more labelled joints than this.
    """

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


PAPER_AUGMENT = AugmentConfig()
NO_AUGMENT = AugmentConfig(scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0, flip_prob=0.0,
                           half_body_prob=0.0)


@dataclass(frozen=True)
class CropParams:
    """The geometry of one sample: crop centre (2,) and scale (2,) in the (possibly mirrored)
    image, rotation in degrees, whether the image is mirrored, and whether half body was used."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False
    half_body: bool = False


def half_body_box(joints: np.ndarray, visible: np.ndarray, aspect_ratio: float, upper: bool, upper_body):
    """The reference's half-body crop: centre and scale of the upper- or lower-body joints.

    Args:
        joints: (K, 2) image coordinates; visible: (K,) > 0 where labelled.
        aspect_ratio: input W / H; upper: the coin flip that prefers the upper body.
        upper_body: the upper-body joint indices, ``KeypointSpec.upper_body`` (COCO's 0–10).

    Returns:
        (center (2,), scale (2,)) or None when fewer than 2 joints are available. The upper body
        is used when ``upper`` and it has > 2 joints, else the lower body if it has > 2, else upper.
        The centre is the joints' mean (not the box centre), as in the reference.
    """
    labelled = np.asarray(visible) > 0
    is_upper = np.isin(np.arange(len(labelled)), upper_body)
    up, low = joints[labelled & is_upper], joints[labelled & ~is_upper]
    chosen = up if (upper and len(up) > 2) else (low if len(low) > 2 else up)
    if len(chosen) < 2:
        return None
    center = chosen.mean(axis=0)
    w, h = chosen.max(axis=0) - chosen.min(axis=0)
    # grow the short side to the input aspect ratio w / h = aspect_ratio
    w, h = (w, w / aspect_ratio) if w > aspect_ratio * h else (h * aspect_ratio, h)
    return center, np.array([w, h]) / PIXEL_STD * HALF_BODY_PADDING


def sample_crop(rng: np.random.Generator, center, scale, joints, visible, image_width: int,
                aspect_ratio: float, cfg: AugmentConfig, upper_body) -> CropParams:
    """Draw one sample's augmentation, in the reference's order (half body, scale, rotation, flip).

    Args:
        rng: the sample's generator; center (2,), scale (2,): the box crop; joints (K, 2) and
        visible (K,): the labels in image coordinates; image_width: W of the original image;
        upper_body: the upper-body joints of the half-body crop (see ``half_body_box``).

    Returns:
        CropParams with the centre already mirrored (x → W − 1 − x) when flipped.
    """
    center, scale = np.asarray(center, np.float64), np.asarray(scale, np.float64)
    half = False
    if (np.sum(np.asarray(visible) > 0) > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob):
        box = half_body_box(joints, visible, aspect_ratio, upper=rng.standard_normal() < 0.5,
                            upper_body=upper_body)
        if box is not None:
            (center, scale), half = box, True
    # s ← s · clip(1 + f·N(0,1), 1 − f, 1 + f)
    f = cfg.scale_factor
    # (Python's min/max on the scalars: np.clip costs ~4 µs a call, a sizeable part of a sample's draw)
    scale = scale * min(max(1.0 + f * rng.standard_normal(), 1.0 - f), 1.0 + f)
    # θ = clip(f·N(0,1), −2f, 2f) with probability p, else 0
    r = cfg.rotation_factor
    rotation = float(min(max(r * rng.standard_normal(), -2 * r), 2 * r))
    rotation = rotation if rng.random() < cfg.rotation_prob else 0.0
    flip = bool(rng.random() < cfg.flip_prob)
    if flip:
        center = np.array([image_width - 1 - center[0], center[1]])
    return CropParams(center, scale, rotation, flip, half)


def crop_matrix(params: CropParams, image_width: int, output_size: tuple[int, int]) -> np.ndarray:
    """The image → crop affine matrix M = C(c, s, θ) ∘ F (F the mirror x → W − 1 − x if flipped).

    Args:
        params: the sample's crop; image_width: W of the original image; output_size: (W, H).

    Returns:
        (2, 3) float64 matrix.
    """
    m = crop_transform(params.center, params.scale, output_size, params.rotation)
    if params.flip:
        # C ∘ F: the linear part's first column changes sign, the offset gains (W − 1)·column 0
        m = m.copy()
        m[:, 2] += (image_width - 1) * m[:, 0]
        m[:, 0] = -m[:, 0]
    return m


def transform_joints(joints: np.ndarray, matrix: np.ndarray, flip: bool,
                     input_size: tuple[int, int], flip_index) -> np.ndarray:
    """Map labelled joints into the input crop; a mirrored crop swaps left and right joints.

    Args:
        joints: (K, 3) image coordinates and visibility (v > 0 labelled).
        matrix: (2, 3) image → crop; flip: whether ``matrix`` contains the mirror.
        input_size: (H, W) of the crop.
        flip_index: the left ↔ right permutation of the K joints (``KeypointSpec.flip_index``).

    Returns:
        (K, 3) float32 crop coordinates and visibility in {0, 1}. A joint that lands outside the
        crop ([−0.5, W − 0.5] × [−0.5, H − 0.5]) is marked 0, so it gets no target weight.
        Unlabelled joints are (0, 0, 0).
    """
    h, w = input_size
    xy = transform_points(joints[:, :2], matrix)
    vis = (joints[:, 2] > 0) & np.all((xy >= -0.5) & (xy <= np.array([w, h]) - 0.5), axis=1)
    out = np.concatenate([xy * vis[:, None], vis[:, None]], axis=1).astype(np.float32)
    # after a mirror, channel k holds what was joint flip_index[k] (left ↔ right)
    if flip and len(flip_index) != len(out):
        raise ValueError(f"flip_index has {len(flip_index)} entries for K = {len(out)} joints")
    return out[list(flip_index)] if flip else out


def source_region(matrix: np.ndarray, image_shape: tuple[int, int], output_size: tuple[int, int]):
    """The part of the image that the crop reads, so that only it is converted to float.

    Args:
        matrix: (2, 3) image → crop; image_shape: (H_img, W_img); output_size: (W, H) of the crop.

    Returns:
        (y0, y1, x0, x1) slice bounds (never empty) and the (2, 3) matrix from the slice to the
        crop. Bilinear samples only touch the pixels floor(p) and floor(p) + 1 of the
        corners' hull, so warping the slice gives the same result as warping the whole image.
    """
    w_out, h_out = output_size
    inv = crop_inverse(matrix)
    corners = np.array([[0, 0], [w_out - 1, 0], [0, h_out - 1], [w_out - 1, h_out - 1]], np.float64)
    src = transform_points(corners, inv)
    lo = np.floor(src.min(axis=0)).astype(int) - 1
    hi = np.floor(src.max(axis=0)).astype(int) + 2
    size = np.array([image_shape[1], image_shape[0]])
    # keep at least one pixel: a crop entirely off the image then still reads only zeros
    x0, y0 = np.clip(lo, 0, size - 1)
    x1, y1 = np.clip(hi, [x0 + 1, y0 + 1], size)
    shifted = matrix.copy()
    # p_crop = A (p_slice + o) + t  →  offset t + A o
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return (int(y0), int(y1), int(x0), int(x1)), shifted


def crop_inverse(matrix):
    """Invert (..., 2, 3) affine matrices (numpy or torch): [A | t]⁻¹ = [A⁻¹ | −A⁻¹ t].

    A⁻¹ is written in closed form (adj A / det A): a batched ``linalg.inv`` on 2×2 blocks costs
    more in call overhead than the whole arithmetic.
    """
    lib = torch if isinstance(matrix, torch.Tensor) else np
    a, b, tx = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    c, d, ty = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    det = a * d - b * c
    # A⁻¹ = [[d, −b], [−c, a]] / det ;  t' = −A⁻¹ t
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    rows = [lib.stack([ia, ib, -(ia * tx + ib * ty)], -1), lib.stack([ic, id_, -(ic * tx + id_ * ty)], -1)]
    return lib.stack(rows, -2)


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int],
              out: np.ndarray | None = None) -> np.ndarray:
    """Warp one uint8 image to a crop on the CPU (OpenCV ``warpAffine``, bilinear, zero border).

    Args:
        image: (H_img, W_img, C) uint8, C ≤ 4, C-contiguous.
        matrix: (2, 3) image → crop; OpenCV inverts it and samples the image at M⁻¹ (u, v) for
            every crop pixel (u, v), integer coordinates being pixel centres on both sides — our
            convention, so the matrix goes in unchanged.
        output_size: (W, H) of the crop.
        out: optional (H, W, C) uint8 C-contiguous array to write into (e.g. a row of a batch).

    Returns:
        (H, W, C) uint8 (``out`` when given). Against :func:`warp_image` on the same matrix the
        values differ by the rounding to uint8 (≤ ½ level) plus OpenCV's fixed-point sample
        positions (rounded to 1/32 px: ≤ 1/64 px times the local image gradient).
    """
    w_out, h_out = output_size
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (int(w_out), int(h_out)), dst=out,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_batch(images: torch.Tensor, matrices: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Warp a batch of images to crops with bilinear sampling and a zero border.

    Args:
        images: (N, C, H_img, W_img) any real or uint8 dtype (images of different sizes may be
            zero-padded at the bottom/right: padding does not move pixel coordinates).
        matrices: (N, 2, 3) image → crop matrices.
        output_size: (W, H) of the crops.

    Returns:
        (N, C, H, W) float32, same value range as the input, on the images' device.
    """
    n, _, h_img, w_img = images.shape
    w_out, h_out = output_size
    dev = images.device
    inv = crop_inverse(matrices.to(device=dev, dtype=torch.float64))  # crop pixel → image pixel
    # grid_sample, align_corners=False: pixel centre x ↔ x_n = (2x + 1)/W − 1 (edges at ±1).
    # G = N_img ∘ M⁻¹ maps a crop pixel (u, v) straight to normalized image coordinates.
    scale = torch.tensor([2.0 / w_img, 2.0 / h_img], dtype=torch.float64, device=dev)
    g = inv * scale[:, None]
    g[:, :, 2] += 1.0 / torch.tensor([w_img, h_img], dtype=torch.float64, device=dev) - 1.0
    g = g.float()
    u = torch.arange(w_out, dtype=torch.float32, device=dev).view(1, 1, w_out, 1)
    v = torch.arange(h_out, dtype=torch.float32, device=dev).view(1, h_out, 1, 1)
    col = g.transpose(1, 2)[:, None, None]  # (N, 1, 1, 3, 2): the columns of G
    # (x_n, y_n) = G (u, v, 1) for every crop pixel, (N, H, W, 2) — two fused broadcasts,
    # cheaper on a CPU than affine_grid's batched matmul
    grid = torch.addcmul(torch.addcmul(col[..., 2, :], u, col[..., 0, :]), v, col[..., 1, :])
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_image(image, matrix, output_size: tuple[int, int]) -> torch.Tensor:
    """Warp one image to a crop (see :func:`warp_batch`).

    Args:
        image: (H_img, W_img, 3) numpy array (uint8 or float) or a (3, H_img, W_img) tensor.
        matrix: (2, 3) image → crop (numpy or tensor); output_size: (W, H).

    Returns:
        (3, H, W) float32 tensor, same value range as the input.
    """
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    matrix = torch.as_tensor(np.asarray(matrix) if not isinstance(matrix, torch.Tensor) else matrix)
    return warp_batch(image[None], matrix[None], output_size)[0]


# (x/255 − μ)/σ = x · 1/(255σ) + (−μ/σ): normalisation is one scale and one shift per channel
NORM_SCALE = tuple(1.0 / (255.0 * s) for s in IMAGENET_STD)
NORM_SHIFT = tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) RGB in [0, 255], any real or uint8 dtype and any strides → (x / 255 − mean) / std
    with ImageNet statistics, float32, contiguous, on the images' device.

    A channels-last view such as ``torch.from_numpy(crops).permute(0, 3, 1, 2)`` of (N, H, W, 3)
    uint8 crops is read as it is: the cast, the transpose and the affine map are one pass.
    """
    scale = torch.tensor(NORM_SCALE, device=images.device).view(3, 1, 1)
    shift = torch.tensor(NORM_SHIFT, device=images.device).view(3, 1, 1)
    # The explicit contiguous ``out``: left to itself addcmul would copy a permuted input's
    # channels-last layout, and stacking such views into a batch later costs more than the
    # transposing write does here.
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    return torch.addcmul(shift, images, scale, out=out)


def normalize_crop(crop: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """One (H, W, 3) uint8 RGB crop → (3, H, W) float32, the same map as :func:`normalize` — the
    CPU per-sample version (``CocoKeypoints``).

    OpenCV splits the crop into its three planes and scales-and-shifts each into ``out``
    (``addWeighted`` with a zero second weight computes x · a + b in float32, vectorised):
    on one core about half the time of torch's mixed-dtype pass over a permuted uint8 view.

    Args:
        crop: (H, W, 3) uint8; out: optional (3, H, W) float32 C-contiguous array to write into.
    """
    if out is None:
        out = np.empty((3,) + crop.shape[:2], np.float32)
    for c, plane in enumerate(cv2.split(crop)):
        cv2.addWeighted(plane, NORM_SCALE[c], plane, 0.0, NORM_SHIFT[c], dst=out[c], dtype=cv2.CV_32F)
    return out


def denormalize(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) normalized tensor → (H, W, 3) uint8 RGB numpy image (for drawing)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255.0
    pixels = image.detach().float().cpu() * std + mean
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def gpu_collate(samples: list[dict]) -> dict:
    """Collate ``CocoKeypoints(raw=True)`` samples: zero-pad the uint8 regions to one size.

    Returns the default-collated metadata plus ``raw_image`` (N, H_max, W_max, 3) uint8 and
    ``matrix`` (N, 2, 3) float64. Padding at the bottom/right moves no pixel coordinate and
    reads as the zero border, so the warp is unchanged.
    """
    regions = [s["raw_image"] for s in samples]
    h = max(r.shape[0] for r in regions)
    w = max(r.shape[1] for r in regions)
    raw = torch.zeros((len(regions), h, w, 3), dtype=torch.uint8)
    for i, r in enumerate(regions):
        raw[i, : r.shape[0], : r.shape[1]] = r
    rest = [{k: v for k, v in s.items() if k != "raw_image"} for s in samples]
    return {**torch.utils.data.default_collate(rest), "raw_image": raw}


class GpuBatchTransform:
    """Finish a raw batch on a device: warp, normalize and encode targets for the whole batch.

    The CPU workers only decode JPEGs and cut out each crop's source region; the float
    conversion, bilinear warp and Gaussian targets, which dominate the CPU cost, run here.

    Args:
        codec: the ``heatmaps.HeatmapCodec`` (input size, stride, the targets' σ and kind), the
            dataset's; device: where to compute (default: CUDA if available, else CPU).

    Call with a :func:`gpu_collate` batch → the same keys as the CPU samples, batched on ``device``:
    ``image`` (N, 3, H, W), ``target`` (N, K, H/4, W/4), ``target_weight`` (N, K), ``joints`` …
    """

    def __init__(self, codec: HeatmapCodec, device=None):
        self.codec = codec
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def __call__(self, batch: dict) -> dict:
        h, w = self.codec.input_size
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()
               if k not in ("raw_image", "matrix")}
        raw = batch["raw_image"].to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        out["image"] = normalize(warp_batch(raw, batch["matrix"].to(self.device), (w, h)))
        joints = out["joints"]
        out["target"], out["target_weight"] = self.codec.encode(joints[..., :2], joints[..., 2])
        return out

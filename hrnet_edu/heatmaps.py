"""Heatmaps: keypoints → Gaussian targets → keypoints (paper §3, "Heatmap estimation").

HRNet does not regress coordinates. For each of the K joints it predicts a heatmap of a quarter
of the input resolution, and it is trained with a mean-squared error against a target that is
a 2-D Gaussian centred on the ground-truth keypoint. At test time the keypoint is read off
where the heatmap peaks. This module is the codec pair (encode, decode), the flip test and the
map from heatmap back to image coordinates.

Note — shapes and conventions:
    N batch, K joints, H×W heatmap size (64×48 for a 256×192 input). Keypoints are (x, y) in
    HEATMAP pixels with the pixel convention of :mod:`hrnet_edu.geometry`: integer
    coordinates are pixel centres, and x_in = 4 · x_hm between input crop and heatmap.
    Every function takes numpy arrays or torch tensors (any device) and returns the same kind;
    numpy inputs are converted to torch internally, so there is one implementation of each idea.

Reference targets vs unbiased targets (``encode_heatmaps(unbiased=...)``):
    * reference: the Gaussian is centred on μ = ⌊x + ½⌋, the grid point nearest the keypoint
      (the reference writes ``int(x + 0.5)``, which equals ⌊x + ½⌋ for every x ≥ −½, i.e. for
      every keypoint on the map). The target therefore says "the joint is at μ", up to ±½ px
      off: the network learns a quantised answer, and argmax decoding can never do better.
    * unbiased (Zhang et al., DARK, CVPR 2020): the Gaussian is centred on the exact sub-pixel
      (x, y); only the truncation window stays around μ. Its peak may be below 1, and a
      second-order (Taylor) decoder recovers (x, y) to a small fraction of a pixel.
    Both are unnormalised (peak value 1 at the centre) and truncated to the reference's square
    window: exactly zero wherever |x_grid − μ_x| > 3σ or |y_grid − μ_y| > 3σ, i.e. a
    (6σ + 1)² patch for the reference's σ = 2 and σ = 3. (For a σ with non-integer 3σ the
    reference's ``int()`` truncation makes the patch one pixel lopsided; we keep it symmetric.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hrnet_edu.geometry import crop_transform, transform_points

DECODE_METHODS = ("argmax", "shift", "dark")
TARGET_KINDS = ("reference", "unbiased")


def _to_torch(x, device=None) -> tuple[torch.Tensor, bool]:
    """(tensor, was_numpy): numpy (or lists) become CPU tensors; tensors pass through."""
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x), device=device), True


def _back(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x


def _float(x: torch.Tensor) -> torch.Tensor:
    """As a floating tensor: ints and float16 go to float32, float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of heatmap pixels, got {sigma}")
    return sigma


def _check_heatmaps(heatmaps: torch.Tensor, what: str = "heatmaps") -> None:
    if heatmaps.ndim not in (3, 4):
        raise ValueError(f"{what} must have shape (N, K, H, W) or (K, H, W), got {tuple(heatmaps.shape)}")
    # One pass over the data: min and max both propagate NaN, and catch ±inf.
    if heatmaps.numel() and not torch.isfinite(torch.stack(torch.aminmax(heatmaps))).all():
        raise ValueError(f"{what} contain NaN or infinite values")


def encode_heatmaps(keypoints, visible, heatmap_size: tuple[int, int], sigma: float, unbiased=False):
    """Gaussian target heatmaps and per-joint target weights (the reference's ``generate_target``).

    Args:
        keypoints: (N, K, 2) or (K, 2) keypoints (x, y) in heatmap pixels.
        visible: (N, K) or (K,); > 0 means labelled (COCO v = 1 or 2). The coordinates of an
            unlabelled joint are ignored (they may be 0 or NaN).
        heatmap_size: (H, W) of the heatmaps, e.g. (64, 48).
        sigma: standard deviation of the Gaussian in heatmap pixels (reference: 2 for 64×48).
        unbiased: centre the Gaussian on the sub-pixel keypoint instead of the nearest grid
            point (see the module docstring).

    Returns:
        heatmaps: (N, K, H, W) or (K, H, W) float32, peak 1, exactly 0 outside the 3σ window
            and for joints of weight 0.
        weights: (N, K) or (K,) float32, 1 for a labelled joint whose window touches the map,
            else 0 (reference rule: ul = μ − 3σ, br = μ + 3σ + 1 and weight 0 when
            ul_x ≥ W or ul_y ≥ H or br_x < 0 or br_y < 0; note that this keeps weight 1 with an
            all-zero target when br is exactly 0, as the reference does).

    Numpy in → numpy out; torch in → torch out on the same device.
    """
    kp, was_numpy = _to_torch(keypoints)
    vis, _ = _to_torch(visible, device=kp.device)
    if kp.ndim not in (2, 3) or kp.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (N, K, 2) or (K, 2), got {tuple(kp.shape)}")
    if tuple(vis.shape) != tuple(kp.shape[:-1]):
        raise ValueError(
            f"visible must have shape {tuple(kp.shape[:-1])} to match keypoints, got {tuple(vis.shape)}"
        )
    if len(heatmap_size) != 2 or min(int(s) for s in heatmap_size) <= 0:
        raise ValueError(f"heatmap_size must be (H, W) with positive sizes, got {heatmap_size}")
    h, w = (int(s) for s in heatmap_size)
    sigma = _check_sigma(sigma)
    kp = _float(kp)
    labelled = vis.to(kp.device) > 0  # (N, K)
    if not (torch.isfinite(kp).all(dim=-1) | ~labelled).all():
        raise ValueError("keypoints of labelled joints (visible > 0) must be finite, found NaN or inf")
    kp = torch.where(labelled[..., None], kp, torch.zeros((), dtype=kp.dtype, device=kp.device))

    radius = 3.0 * sigma
    # μ = ⌊p + ½⌋: the grid point nearest the keypoint, (N, K, 2)
    mu = torch.floor(kp + 0.5)
    # The reference's patch corners: ul = μ − 3σ (inclusive), br = μ + 3σ + 1 (exclusive).
    ul, br = mu - radius, mu + radius + 1.0
    on_map = (ul[..., 0] < w) & (ul[..., 1] < h) & (br[..., 0] >= 0) & (br[..., 1] >= 0)
    weights = (labelled & on_map).to(kp.dtype)

    centre = kp if unbiased else mu
    # The Gaussian is separable, G(x, y) = g(x − c_x) · g(y − c_y): evaluate the two 1-D
    # profiles, (N, K, W) and (N, K, H), and take their outer product below.
    xs = torch.arange(w, dtype=kp.dtype, device=kp.device)
    ys = torch.arange(h, dtype=kp.dtype, device=kp.device)
    # g(d) = exp(−d² / 2σ²), cut to the square window |grid − μ| ≤ 3σ
    gx = torch.exp(-((xs - centre[..., 0:1]) ** 2) / (2 * sigma**2)) * ((xs - mu[..., 0:1]).abs() <= radius)
    gy = torch.exp(-((ys - centre[..., 1:2]) ** 2) / (2 * sigma**2)) * ((ys - mu[..., 1:2]).abs() <= radius)
    # G = w_k · g_y ⊗ g_x, (N, K, H, W); the big product in float32
    gy, gx = (gy * weights[..., None]).float(), gx.float()
    heatmaps = gy[..., :, None] * gx[..., None, :]
    return _back(heatmaps, was_numpy), _back(weights.float(), was_numpy)


def _value_at(flat: torch.Tensor, px: torch.Tensor, py: torch.Tensor, dx: int, dy: int, w: int, h: int):
    """flat[n, k, (py + dy) · W + (px + dx)] for (N, K, H·W) maps; indices clamped to the map."""
    x = (px + dx).clamp(0, w - 1)
    y = (py + dy).clamp(0, h - 1)
    return flat.gather(-1, (y * w + x)[..., None])[..., 0]


def gaussian_kernel(sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian g(t) = exp(−t² / 2σ²) / Σ over t = −⌈3σ⌉ … ⌈3σ⌉: (2⌈3σ⌉ + 1,)."""
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=dtype, device=device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_blur(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth every heatmap with a Gaussian of ``sigma`` (kernel 2⌈3σ⌉ + 1, zero border).

    Args:
        heatmaps: (N, K, H, W) tensor. sigma: in heatmap pixels.

    Returns:
        (N, K, H, W) smoothed heatmaps, rescaled so that each keeps its original maximum
        (DARK's "modulation": the blur must not change the confidence scale).
    """
    n, k, h, w = heatmaps.shape
    g = gaussian_kernel(sigma, heatmaps.dtype, heatmaps.device)
    r = len(g) // 2
    # Separable 2-D convolution, batched over N·K single-channel images.
    x = heatmaps.reshape(n * k, 1, h, w)
    x = F.conv2d(x, g.view(1, 1, 1, -1), padding=(0, r))
    x = F.conv2d(x, g.view(1, 1, -1, 1), padding=(r, 0)).reshape(n, k, h, w)
    old_max = heatmaps.amax(dim=(-2, -1), keepdim=True)
    new_max = x.amax(dim=(-2, -1), keepdim=True)
    return x * torch.where(new_max > 0, old_max / new_max.clamp_min(1e-30), torch.ones_like(new_max))


def _dark_offset(heatmaps: torch.Tensor, px: torch.Tensor, py: torch.Tensor, sigma: float) -> torch.Tensor:
    """DARK's sub-pixel offset (N, K, 2) at the integer argmax (px, py), both (N, K) long.

    DARK smooths the whole heatmap, rescales it to its original maximum and takes the log.
    The rescaling only adds a constant to the log, which no derivative sees, and the Taylor
    step reads the smoothed map at 13 points within 2 px of the argmax: so we blur just the
    (5 + 2⌈3σ⌉)² patch around the argmax. Same numbers as ``gaussian_blur`` on the full map,
    without its cost (see ``tests/test_heatmaps.py``).
    """
    _, _, h, w = heatmaps.shape
    g = gaussian_kernel(sigma, heatmaps.dtype, heatmaps.device)
    r = len(g) // 2
    # Patch of side S = 2(2 + r) + 1 centred on the argmax, zero outside the map: (N, K, S, S).
    p = 2 + r
    side = torch.arange(-p, p + 1, device=heatmaps.device)
    rows = (py[..., None] + side)[..., :, None]  # (N, K, S, 1)
    cols = (px[..., None] + side)[..., None, :]  # (N, K, 1, S)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).flatten(-2)
    patch = heatmaps.flatten(-2).gather(-1, index).unflatten(-1, (2 * p + 1, 2 * p + 1)) * inside
    # Separable Gaussian blur, "valid" part only: (N, K, S, S) → (N, K, 5, 5) around the argmax.
    blurred = patch.unfold(-1, 2 * r + 1, 1) @ g
    blurred = blurred.unfold(-2, 2 * r + 1, 1) @ g
    # DARK works on the log of the smoothed heatmap: for a Gaussian it is a quadratic, so one
    # Newton step from the argmax lands on the centre.
    log_hm = torch.log(blurred.clamp_min(1e-10))

    def at(dx: int, dy: int) -> torch.Tensor:
        return log_hm[..., 2 + dy, 2 + dx]

    # Central differences; the second derivatives use a step of 2 px, as DARK does.
    dx = 0.5 * (at(1, 0) - at(-1, 0))
    dy = 0.5 * (at(0, 1) - at(0, -1))
    dxx = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dyy = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    # Guards, each keeping the argmax where it fails: the stencil is on the map (2 ≤ px ≤ W − 3,
    # DARK's condition); the Hessian is negative definite (d_xx < 0, det > 0), so the quadratic
    # has a maximum to step to; and that maximum is within σ of the argmax in x and in y (a
    # longer step means the Gaussian model does not describe this map). DARK itself only asks
    # det ≠ 0, which on a flat or noisy map steps to saddles hundreds of pixels away; on a
    # heatmap with a clear peak, even a noisy one, the guards do not trigger.
    ok = (px >= 2) & (px <= w - 3) & (py >= 2) & (py <= h - 3) & (dxx < 0) & (det > 1e-12)
    safe_det = torch.where(ok, det, torch.ones_like(det))
    # offset = −ℋ⁻¹ ∇,  ℋ⁻¹ = [[d_yy, −d_xy], [−d_xy, d_xx]] / det ℋ
    off_x = -(dyy * dx - dxy * dy) / safe_det
    off_y = -(dxx * dy - dxy * dx) / safe_det
    offset = torch.stack([off_x, off_y], dim=-1)
    ok = ok & (offset.abs() <= sigma).all(dim=-1)
    return offset * ok[..., None]


def decode_heatmaps(heatmaps, method: str = "shift", sigma: float | None = None):
    """Heatmaps → keypoints: argmax, plus an optional sub-pixel refinement.

    Args:
        heatmaps: (N, K, H, W) or (K, H, W), torch (any device) or numpy.
        method: "argmax" (integer peak), "shift" (the reference: a quarter pixel toward the
            higher neighbour in x and in y, only when 1 < px < W − 1 and 1 < py < H − 1), or
            "dark" (Zhang et al. 2020: smooth with a Gaussian of ``sigma``, take the log and
            one second-order Taylor step from the argmax; the step is taken only toward a
            maximum less than σ away in x and in y, else the argmax is kept).
        sigma: the sigma of the training targets; needed by "dark" only (no default: DARK's
            blur must be the targets' own, which a ``HeatmapCodec`` carries).

    Returns:
        coords: (N, K, 2) or (K, 2) float32 (x, y) in heatmap pixels; (0, 0) where the
            maximum is ≤ 0, as in the reference.
        confidences: (N, K) or (K,) float32, the maximum of each heatmap.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decoding method {method!r}; choose one of {DECODE_METHODS}")
    hm, was_numpy = _to_torch(heatmaps)
    _check_heatmaps(hm)
    unbatched = hm.ndim == 3
    hm = _float(hm[None] if unbatched else hm)
    _, _, h, w = hm.shape
    flat = hm.flatten(-2)  # (N, K, H·W)
    conf, idx = flat.max(dim=-1)  # first maximum, like numpy's argmax
    px, py = idx % w, idx // w
    coords = torch.stack([px, py], dim=-1).to(hm.dtype)

    if method == "shift":
        ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
        diff_x = _value_at(flat, px, py, 1, 0, w, h) - _value_at(flat, px, py, -1, 0, w, h)
        diff_y = _value_at(flat, px, py, 0, 1, w, h) - _value_at(flat, px, py, 0, -1, w, h)
        # p ← p + ¼ · sign(∂H): a quarter pixel toward the higher neighbour
        coords = coords + 0.25 * torch.stack([diff_x.sign(), diff_y.sign()], dim=-1) * ok[..., None]
    elif method == "dark":
        if sigma is None:
            raise ValueError("DARK decoding needs the sigma of the training targets (a HeatmapCodec's sigma)")
        coords = coords + _dark_offset(hm, px, py, _check_sigma(sigma))

    # The reference zeroes the coordinates of a non-positive peak (nothing was detected).
    coords = coords * (conf > 0)[..., None]
    coords, conf = coords.float(), conf.float()
    if unbatched:
        coords, conf = coords[0], conf[0]
    return _back(coords, was_numpy), _back(conf, was_numpy)


def flip_back(heatmaps, flip_index, shift: bool = True):
    """Mirror the heatmaps predicted for a horizontally flipped input back to the original.

    Mirroring the image swaps the person's left and right, so the channels are permuted with
    ``flip_index`` and the columns reversed (x → W − 1 − x). With ``shift`` the result is then
    moved one column to the right (column 0 kept), as the reference does: with the heatmap ↔
    input map x_in = 4 · x_hm, the mirrored prediction sits 0.75 px to the left of the
    unflipped one, and a whole-pixel shift is the reference's approximation of that 0.75.

    Args:
        heatmaps: (N, K, H, W) or (K, H, W), numpy or torch.
        flip_index: (K,) permutation of the channels, the keypoint set's ``KeypointSpec.flip_index``.
        shift: apply the reference's one-column shift.

    Returns:
        The mirrored heatmaps, same shape and kind; the input is not modified.
    """
    hm, was_numpy = _to_torch(heatmaps)
    if hm.ndim not in (3, 4):
        raise ValueError(f"heatmaps must have shape (N, K, H, W) or (K, H, W), got {tuple(hm.shape)}")
    if len(flip_index) != hm.shape[-3]:
        raise ValueError(f"flip_index has {len(flip_index)} entries but the heatmaps have K = {hm.shape[-3]}")
    index = torch.as_tensor(flip_index, dtype=torch.long, device=hm.device)
    out = hm.index_select(-3, index).flip(-1)
    if shift:
        # out[..., 1:] = out[..., :-1], column 0 kept
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return _back(out, was_numpy)


def flip_test_average(heatmaps, heatmaps_flipped_input, flip_index, shift: bool = True):
    """The flip test: ½ (H(x) + flip_back(H(mirror(x)))).

    Args:
        heatmaps: (N, K, H, W) predicted for the input. heatmaps_flipped_input: the same shape,
            predicted for the horizontally mirrored input. flip_index, shift: see ``flip_back``.

    Returns:
        (N, K, H, W) averaged heatmaps, same kind as ``heatmaps``.
    """
    hm, was_numpy = _to_torch(heatmaps)
    hm_flipped, _ = _to_torch(heatmaps_flipped_input, device=hm.device)
    if hm.shape != hm_flipped.shape:
        raise ValueError(
            f"heatmaps {tuple(hm.shape)} and heatmaps_flipped_input {tuple(hm_flipped.shape)} differ in shape"
        )
    return _back(0.5 * (hm + flip_back(hm_flipped, flip_index, shift)), was_numpy)


def heatmap_to_image(coords_hm, center, scale, heatmap_size: tuple[int, int], rotation=0.0):
    """Heatmap coordinates → original-image coordinates through the inverse crop transform.

    The crop transform is rebuilt with the heatmap size as its output size, so the ×4 stride
    is part of the matrix (the reference's ``transform_preds``).

    Args:
        coords_hm: (N, K, 2) keypoints in heatmap pixels. center, scale: (N, 2) of the crops
            (scale in units of 200 px). heatmap_size: (H, W). rotation: (N,) or scalar degrees.

    Returns:
        (N, K, 2) keypoints in image pixels: float64 numpy for numpy input, a tensor with the
        dtype and device of ``coords_hm`` for torch input.
    """
    coords, was_numpy = _to_torch(coords_hm)
    if coords.shape[-1] != 2 or coords.ndim < 2:
        raise ValueError(f"coords_hm must have shape (N, K, 2), got {tuple(coords.shape)}")
    center = _to_torch(center)[0].detach().cpu().numpy()
    scale = _to_torch(scale)[0].detach().cpu().numpy()
    batch = tuple(coords.shape[:-2])
    if center.shape != batch + (2,) or scale.shape != batch + (2,):
        raise ValueError(
            f"center and scale must have shape {batch + (2,)} to match coords_hm {tuple(coords.shape)}, "
            f"got {center.shape} and {scale.shape}"
        )
    h, w = heatmap_size
    matrix = crop_transform(center, scale, output_size=(w, h), rotation=rotation, inverse=True)  # (N, 2, 3)
    out = transform_points(coords.detach().cpu().numpy(), matrix)
    if was_numpy:
        return out
    return torch.as_tensor(out, dtype=_float(coords).dtype, device=coords.device)


def heatmaps_to_keypoints(heatmaps, center, scale, rotation=0.0, decode: str = "shift",
                          sigma: float | None = None):
    """Decode heatmaps and map the keypoints back to the image (the reference's ``get_final_preds``).

    Args:
        heatmaps: (N, K, h, w), torch or numpy. center, scale: (N, 2) of the crops (scale in units of 200 px).
        rotation: (N,) or scalar crop rotation in degrees. decode: "argmax", "shift" or "dark";
        sigma: the targets' sigma (needed by DARK only).

    Returns:
        keypoints (N, K, 2) float64 image pixels, confidences (N, K) float32 (numpy).
    """
    hm, _ = _to_torch(heatmaps)  # numpy or torch in; numpy out
    coords, conf = decode_heatmaps(hm, method=decode, sigma=sigma)  # heatmap px, (N, K, 2)
    # heatmap px → image px through the inverse crop transform (built for the heatmap size)
    keypoints = heatmap_to_image(_back(coords, True), _to_torch(center)[0].cpu().numpy(),
                                 _to_torch(scale)[0].cpu().numpy(), tuple(hm.shape[-2:]),
                                 rotation=_to_torch(rotation)[0].cpu().numpy())
    return keypoints, _back(conf, True)


@dataclass(frozen=True)
class HeatmapCodec:
    """How one network's heatmaps are made and read: keypoints ↔ heatmaps ↔ image, in one object.

    The training targets and their decoding belong together: DARK's Taylor step models the map as
    the Gaussian the targets were drawn with (its σ), and unbiased targets are what make its
    sub-pixel answer worth having. So one frozen object holds them; the training config builds it
    (``TrainConfig.codec``), every checkpoint stores it, and the datasets, the GPU batch transform,
    validation, evaluation, prediction and export take it.

    Fields:
        input_size: (H, W) of the network's input crops in pixels, e.g. (256, 192).
        stride: input pixels per heatmap pixel (4 in HRNet): heatmaps are (H/stride, W/stride).
        sigma: σ of the target Gaussians in heatmap pixels (the reference: 2 at 64×48, 3 at 96×72).
        target: "reference" (centred on the nearest heatmap pixel) or "unbiased" (on the sub-pixel
            keypoint, DARK's targets); see the module docstring.
        decoding: "argmax", "shift" (the reference's ¼ pixel) or "dark".
        flip_shift: the reference's one-column shift when the flip test mirrors heatmaps back.
    """

    input_size: tuple[int, int]
    stride: int = 4
    sigma: float = 2.0
    target: str = "reference"
    decoding: str = "shift"
    flip_shift: bool = True

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(int(s) for s in self.input_size))
        size, stride = self.input_size, self.stride
        if len(size) != 2 or stride < 1 or any(s <= 0 or s % stride for s in size):
            raise ValueError(f"input_size must be (H, W) with H and W positive multiples of the stride "
                             f"{self.stride}, got {self.input_size}")
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))
        if self.target not in TARGET_KINDS:
            raise ValueError(f"target must be one of {TARGET_KINDS}, got {self.target!r}")
        if self.decoding not in DECODE_METHODS:
            raise ValueError(f"decoding must be one of {DECODE_METHODS}, got {self.decoding!r}")

    @classmethod
    def from_dict(cls, fields: dict) -> HeatmapCodec:
        """The codec of ``dataclasses.asdict(codec)`` (as stored in checkpoints)."""
        return cls(**{**fields, "input_size": tuple(fields["input_size"])})

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H/stride, W/stride): the size of the heatmaps, e.g. (64, 48)."""
        return (self.input_size[0] // self.stride, self.input_size[1] // self.stride)

    def encode(self, keypoints, visible):
        """Target heatmaps of keypoints given in INPUT-crop pixels (x_hm = x_in / stride).

        Args:
            keypoints: (N, K, 2) or (K, 2) (x, y) in input pixels. visible: (N, K) or (K,), > 0 labelled.
        Returns:
            heatmaps (N, K, H/s, W/s) and weights (N, K), as ``encode_heatmaps``.
        """
        kp, was_numpy = _to_torch(keypoints)
        vis, _ = _to_torch(visible, device=kp.device)
        # heatmap ↔ input: x_hm = x_in / stride (the reference's mapping, see geometry)
        heatmaps, weights = encode_heatmaps(_float(kp) / float(self.stride), vis, self.heatmap_size,
                                            self.sigma, unbiased=self.target == "unbiased")
        return _back(heatmaps, was_numpy), _back(weights, was_numpy)

    def decode(self, heatmaps):
        """(N, K, h, w) heatmaps → keypoints (N, K, 2) in heatmap pixels and confidences (N, K)."""
        return decode_heatmaps(heatmaps, self.decoding, self.sigma)

    def to_image(self, heatmaps, center, scale, rotation=0.0):
        """Decode (N, K, h, w) heatmaps and map the keypoints back through the inverse crop transform.

        Returns:
            keypoints (N, K, 2) float64 image pixels and confidences (N, K) float32 (numpy).
        """
        return heatmaps_to_keypoints(heatmaps, center, scale, rotation, self.decoding, self.sigma)

    def describe(self) -> str:
        """One line for logs and headers, e.g. "dark decoding, unbiased targets σ=2, 64x48 heatmaps"."""
        h, w = self.heatmap_size
        flip = "" if self.flip_shift else ", flip without shift"
        return f"{self.decoding} decoding, {self.target} targets σ={self.sigma:g}, {h}x{w} heatmaps{flip}"

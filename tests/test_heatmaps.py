"""Heatmap codec: encode vs a per-joint reference loop, round trips, flip test, coordinates."""

import math

import numpy as np
import pytest
import torch

from hrnet_edu import geometry
from hrnet_edu.heatmaps import (
    DECODE_METHODS,
    HeatmapCodec,
    decode_heatmaps,
    encode_heatmaps,
    flip_back,
    flip_test_average,
    gaussian_blur,
    gaussian_kernel,
    heatmap_to_image,
)
from hrnet_edu.keypoints import COCO17

FLIP_INDEX = COCO17.flip_index

H, W = 64, 48


def _reference_targets(keypoints, visible, size, sigma, unbiased=False):
    """Straightforward per-joint loop, written like the reference's generate_target."""
    h, w = size
    n, k, _ = keypoints.shape
    target = np.zeros((n, k, h, w), np.float64)
    weight = np.zeros((n, k))
    tmp = 3 * sigma
    for i in range(n):
        for j in range(k):
            if visible[i, j] <= 0:
                continue
            x, y = keypoints[i, j]
            mu_x, mu_y = math.floor(x + 0.5), math.floor(y + 0.5)
            ul = [mu_x - tmp, mu_y - tmp]
            br = [mu_x + tmp + 1, mu_y + tmp + 1]
            if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
                continue
            weight[i, j] = 1.0
            cx, cy = (x, y) if unbiased else (mu_x, mu_y)
            for yy in range(max(0, math.ceil(ul[1])), min(h, math.floor(br[1] - 1) + 1)):
                for xx in range(max(0, math.ceil(ul[0])), min(w, math.floor(br[0] - 1) + 1)):
                    target[i, j, yy, xx] = math.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return target, weight


def _random_keypoints(rng, n, k, margin=-10.0):
    xs, ys = rng.uniform(margin, W - 1 - margin, (n, k)), rng.uniform(margin, H - 1 - margin, (n, k))
    kp = np.stack([xs, ys], -1)
    vis = rng.integers(0, 3, (n, k))  # COCO v in {0, 1, 2}
    return kp, vis


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("unbiased", [False, True])
def test_encode_matches_per_joint_loop(sigma, unbiased):
    rng = np.random.default_rng(int(sigma * 10) + unbiased)
    kp, vis = _random_keypoints(rng, 3, 17)
    hm, wt = encode_heatmaps(kp, vis, (H, W), sigma, unbiased)
    ref_hm, ref_wt = _reference_targets(kp, vis, (H, W), sigma, unbiased)
    np.testing.assert_array_equal(wt, ref_wt)
    np.testing.assert_allclose(hm, ref_hm, atol=2e-7)


def test_reference_target_values_and_window():
    # σ = 2 at an integer point: peak 1, exactly the (6σ+1)² = 13×13 patch is non-zero.
    hm, wt = encode_heatmaps(np.array([[20.3, 30.2]]), np.array([1]), (H, W), sigma=2.0)
    assert wt[0] == 1.0 and hm[0, 30, 20] == 1.0
    ys, xs = np.nonzero(hm[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (14, 26, 24, 36)
    assert hm[0, 30, 26] == pytest.approx(math.exp(-36 / 8), rel=1e-6)
    # Unbiased: same window around the rounded centre, peak below 1, centred on the sub-pixel point.
    hm_u, _ = encode_heatmaps(np.array([[20.3, 30.2]]), np.array([1]), (H, W), sigma=2.0, unbiased=True)
    assert (np.nonzero(hm_u[0])[1].min(), np.nonzero(hm_u[0])[1].max()) == (14, 26)
    assert hm_u[0, 30, 20] == pytest.approx(math.exp(-(0.09 + 0.04) / 8), rel=1e-6)


@pytest.mark.parametrize("unbiased", [False, True])
def test_targets_exactly_zero_outside_3_sigma(unbiased):
    rng = np.random.default_rng(3)
    kp, _ = _random_keypoints(rng, 4, 17, margin=0.0)
    for sigma in (1.0, 1.5, 2.0, 3.0):
        hm, _ = encode_heatmaps(kp, np.ones((4, 17)), (H, W), sigma, unbiased)
        mu = np.floor(kp + 0.5)
        far_x = np.abs(np.arange(W) - mu[..., 0:1]) > 3 * sigma  # (N, K, W)
        far_y = np.abs(np.arange(H) - mu[..., 1:2]) > 3 * sigma  # (N, K, H)
        outside = far_y[..., :, None] | far_x[..., None, :]
        assert np.all(hm[outside] == 0.0)
        assert np.all(hm[~outside] > 0.0)


def test_weights_zero_for_unlabelled_and_off_map_joints():
    sigma = 2.0
    kp = np.array(
        [
            [20.0, 20.0],  # on the map, labelled
            [20.0, 20.0],  # on the map, unlabelled
            [W + 5.4, 20.0],  # off the map, but its window reaches column W − 1 → kept
            [W + 6.0, 20.0],  # ul_x = W: fully outside → 0
            [20.0, -7.6],  # μ_y = −8: br_y = −1 < 0 → 0
            [-7.0, 20.0],  # μ_x = −7: br_x = 0, window fully outside, yet weight 1 (reference)
            [np.nan, np.nan],  # unlabelled NaN coordinates are ignored
        ]
    )
    vis = np.array([2, 0, 1, 1, 1, 1, 0])
    hm, wt = encode_heatmaps(kp, vis, (H, W), sigma)
    np.testing.assert_array_equal(wt, [1, 0, 1, 0, 0, 1, 0])
    assert hm[1].max() == 0 and hm[3].max() == 0 and hm[4].max() == 0 and hm[6].max() == 0
    assert hm[2, 20, W - 1] == pytest.approx(math.exp(-36 / 8), rel=1e-6)
    assert hm[5].max() == 0  # the reference's off-by-one: weight 1, all-zero target


@pytest.mark.parametrize("unbiased", [False, True])
def test_round_trip_error_bounds(unbiased):
    rng = np.random.default_rng(7)
    kp = np.stack([rng.uniform(6, W - 7, (60, 17)), rng.uniform(6, H - 7, (60, 17))], -1)
    hm, _ = encode_heatmaps(kp, np.ones((60, 17)), (H, W), sigma=2.0, unbiased=unbiased)
    decoded = {m: decode_heatmaps(hm, m, sigma=2.0)[0] for m in DECODE_METHODS}
    err = {m: np.abs(decoded[m] - kp) for m in DECODE_METHODS}
    assert err["argmax"].max() <= 0.5 + 1e-6
    assert err["shift"].max() <= 0.5 + 1e-6
    if unbiased:
        # The quarter shift halves the worst case of argmax; DARK recovers the sub-pixel point.
        assert err["shift"].max() <= 0.25 + 1e-6
        assert 0.10 < err["shift"].mean() < 0.15 and 0.2 < err["argmax"].mean() < 0.3
        assert err["dark"].max() < 0.01
    else:
        # A reference target is symmetric about the grid point: every decoder returns μ.
        for m in DECODE_METHODS:
            np.testing.assert_allclose(decoded[m], np.floor(kp + 0.5), atol=1e-5)


def test_shift_uses_the_reference_border_condition():
    hm = np.zeros((1, 1, 8, 8), np.float32)
    hm[0, 0, 4, 1], hm[0, 0, 4, 2], hm[0, 0, 5, 1] = 1.0, 0.5, 0.5  # peak at px = 1: no shift
    np.testing.assert_array_equal(decode_heatmaps(hm, "shift")[0][0, 0], [1.0, 4.0])
    hm = np.zeros((1, 1, 8, 8), np.float32)
    hm[0, 0, 4, 2], hm[0, 0, 4, 3], hm[0, 0, 3, 2] = 1.0, 0.5, 0.25  # px = 2: right and up
    np.testing.assert_array_equal(decode_heatmaps(hm, "shift")[0][0, 0], [2.25, 3.75])


def _dark_loop(hm, sigma):
    """DARK written per joint with numpy only: blur, log, Taylor step (independent of the library)."""
    r = math.ceil(3 * sigma)
    g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    g /= g.sum()
    n, k, h, w = hm.shape
    out = np.zeros((n, k, 2))
    for i in range(n):
        for j in range(k):
            m = hm[i, j].astype(np.float64)
            py, px = np.unravel_index(np.argmax(m), m.shape)
            b = np.apply_along_axis(lambda v: np.convolve(v, g, "same"), 1, m)
            b = np.apply_along_axis(lambda v: np.convolve(v, g, "same"), 0, b)
            b *= m.max() / b.max()
            lg = np.log(np.maximum(b, 1e-10))
            out[i, j] = px, py
            if 1 < px < w - 2 and 1 < py < h - 2:
                d = np.array([lg[py, px + 1] - lg[py, px - 1], lg[py + 1, px] - lg[py - 1, px]]) / 2
                dxx = (lg[py, px + 2] - 2 * lg[py, px] + lg[py, px - 2]) / 4
                dyy = (lg[py + 2, px] - 2 * lg[py, px] + lg[py - 2, px]) / 4
                dxy = (lg[py + 1, px + 1] - lg[py - 1, px + 1] - lg[py + 1, px - 1] + lg[py - 1, px - 1]) / 4
                if dxx < 0 and dxx * dyy - dxy**2 > 0:  # a maximum to step to
                    offset = -np.linalg.solve(np.array([[dxx, dxy], [dxy, dyy]]), d)
                    if np.abs(offset).max() <= sigma:  # ... within sigma
                        out[i, j] += offset
    return out


def test_dark_matches_per_joint_loop_on_noisy_heatmaps():
    rng = np.random.default_rng(11)
    kp = np.stack([rng.uniform(0, W - 1, (2, 17)), rng.uniform(0, H - 1, (2, 17))], -1)
    hm, _ = encode_heatmaps(kp, np.ones((2, 17)), (H, W), sigma=2.0, unbiased=True)
    hm = (hm + rng.normal(0, 0.05, hm.shape)).clip(0, None).astype(np.float32)
    coords, _ = decode_heatmaps(hm.astype(np.float64), "dark", sigma=2.0)
    np.testing.assert_allclose(coords, _dark_loop(hm, 2.0), atol=1e-4)


def test_dark_stays_within_sigma_of_the_argmax_on_noise():
    # Pure noise has no peak to refine: DARK's Newton step must not jump across the map.
    noise = torch.randn(20, 17, H, W)
    for hm in (noise, noise.clamp_min(0), noise.abs()):
        argmax, _ = decode_heatmaps(hm, "argmax")
        dark, _ = decode_heatmaps(hm, "dark", sigma=2.0)
        assert torch.isfinite(dark).all() and (dark - argmax).abs().max() <= 2.0


def test_decode_confidence_and_empty_heatmaps():
    hm = np.zeros((2, 3, H, W), np.float32)
    hm[0, 1, 10, 20] = 0.7
    for method in DECODE_METHODS:
        coords, conf = decode_heatmaps(hm, method, sigma=2.0)
        assert np.all(np.isfinite(coords))
        np.testing.assert_array_equal(conf, np.array([[0, 0.7, 0], [0, 0, 0]], np.float32))
        # The reference reports (0, 0) for a peak ≤ 0.
        np.testing.assert_array_equal(coords[1], 0.0)
        np.testing.assert_array_equal(coords[0, 1], [20.0, 10.0])


def test_gaussian_blur_keeps_the_maximum():
    hm = torch.zeros(1, 2, 16, 16)
    hm[0, 0, 5, 7] = 0.8
    out = gaussian_blur(hm, 2.0)
    assert out[0, 0].max().item() == pytest.approx(0.8) and out[0, 1].abs().max() == 0
    assert out[0, 0].argmax().item() == 5 * 16 + 7


def test_numpy_and_torch_agree():
    rng = np.random.default_rng(5)
    kp, vis = _random_keypoints(rng, 4, 17)
    for unbiased in (False, True):
        hm_np, wt_np = encode_heatmaps(kp, vis, (H, W), 2.0, unbiased)
        hm_t, wt_t = encode_heatmaps(torch.from_numpy(kp), torch.from_numpy(vis), (H, W), 2.0, unbiased)
        assert isinstance(hm_t, torch.Tensor) and isinstance(hm_np, np.ndarray)
        np.testing.assert_array_equal(hm_t.numpy(), hm_np)
        np.testing.assert_array_equal(wt_t.numpy(), wt_np)
    for method in DECODE_METHODS:
        c_np, s_np = decode_heatmaps(hm_np, method, sigma=2.0)
        c_t, s_t = decode_heatmaps(torch.from_numpy(hm_np), method, sigma=2.0)
        np.testing.assert_array_equal(c_t.numpy(), c_np)
        np.testing.assert_array_equal(s_t.numpy(), s_np)
    np.testing.assert_array_equal(flip_back(torch.from_numpy(hm_np), FLIP_INDEX).numpy(),
                                  flip_back(hm_np, FLIP_INDEX))


def test_shapes_and_dtypes():
    kp = np.array([[10.0, 12.0]] * 17)  # unbatched (K, 2), float64
    hm, wt = encode_heatmaps(kp, np.ones(17, dtype=np.int64), (H, W), 2.0)
    assert hm.shape == (17, H, W) and wt.shape == (17,) and hm.dtype == wt.dtype == np.float32
    hm_t, wt_t = encode_heatmaps(torch.ones(2, 5, 2, dtype=torch.float16), torch.ones(2, 5), (8, 6), sigma=1)
    assert hm_t.shape == (2, 5, 8, 6) and hm_t.dtype == torch.float32 and wt_t.shape == (2, 5)
    coords, conf = decode_heatmaps(hm, "dark", sigma=2.0)
    assert coords.shape == (17, 2) and conf.shape == (17,) and coords.dtype == conf.dtype == np.float32
    coords_t, conf_t = decode_heatmaps(torch.from_numpy(hm)[None].double(), "shift")
    assert coords_t.shape == (1, 17, 2) and coords_t.dtype == torch.float32 and conf_t.shape == (1, 17)
    assert flip_back(hm, FLIP_INDEX).shape == hm.shape


def test_bad_input_raises_value_error():
    kp, vis = np.zeros((2, 17, 2)), np.ones((2, 17))
    with pytest.raises(ValueError, match="keypoints must have shape"):
        encode_heatmaps(np.zeros((2, 17, 3)), vis, (H, W), 2.0)
    with pytest.raises(ValueError, match="visible must have shape"):
        encode_heatmaps(kp, np.ones((2, 16)), (H, W), 2.0)
    with pytest.raises(ValueError, match="sigma"):
        encode_heatmaps(kp, vis, (H, W), sigma=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        encode_heatmaps(kp, vis, (H, W), sigma=0.0)
    with pytest.raises(ValueError, match="heatmap_size"):
        encode_heatmaps(kp, vis, (0, W), 2.0)
    with pytest.raises(TypeError, match="sigma"):  # no default σ: the targets' σ is always given
        encode_heatmaps(kp, vis, (H, W))
    kp[0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        encode_heatmaps(kp, vis, (H, W), 2.0)
    hm = np.zeros((2, 17, H, W), np.float32)
    with pytest.raises(ValueError, match="unknown decoding method"):
        decode_heatmaps(hm, "softargmax")
    with pytest.raises(ValueError, match="shape"):
        decode_heatmaps(hm[0, 0], "argmax")
    with pytest.raises(ValueError, match="sigma"):
        decode_heatmaps(hm, "dark", sigma=-2)
    with pytest.raises(ValueError, match="DARK decoding needs the sigma"):
        decode_heatmaps(hm, "dark")
    hm[1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        decode_heatmaps(hm, "shift")
    with pytest.raises(ValueError, match="flip_index"):
        flip_back(np.zeros((1, 5, 4, 4)), FLIP_INDEX)
    with pytest.raises(ValueError, match="differ in shape"):
        flip_test_average(np.zeros((1, 17, 4, 4)), np.zeros((1, 17, 4, 5)), FLIP_INDEX)
    with pytest.raises(TypeError, match="flip_index"):  # no COCO-17 default
        flip_back(np.zeros((1, 17, 4, 4)))


def test_flip_back_is_an_involution_without_shift():
    hm = torch.rand(2, 17, 8, 6)
    once = flip_back(hm, FLIP_INDEX, shift=False)
    assert torch.equal(flip_back(once, FLIP_INDEX, shift=False), hm)
    # Channel k of the result is channel FLIP_INDEX[k] of the input, mirrored: x → W − 1 − x.
    assert torch.equal(once[:, 5, :, 0], hm[:, FLIP_INDEX[5], :, -1])
    assert torch.equal(once[:, 0, :, 2], hm[:, 0, :, 6 - 1 - 2])


def test_flip_back_with_shift():
    hm = torch.rand(2, 17, 8, 6)
    # One shift right, column 0 kept.
    shifted = flip_back(hm, FLIP_INDEX, shift=True)
    unshifted = flip_back(hm, FLIP_INDEX, shift=False)
    assert torch.equal(shifted[..., 1:], unshifted[..., :-1])
    assert torch.equal(shifted[..., 0], unshifted[..., 0])
    # Twice: the mirror turns the second right shift into a left shift, so the two cancel
    # everywhere except column 0, which is lost to the border (it now repeats column 1).
    twice = flip_back(shifted, FLIP_INDEX, shift=True)
    assert torch.equal(twice[..., 1:], hm[..., 1:]) and torch.equal(twice[..., 0], hm[..., 1])


def test_flip_test_recovers_keypoints_within_a_quarter_pixel():
    # Targets as a perfectly trained network would predict them, for an input and its mirror
    # (input width 4·W, mirror x_in → 4W − 1 − x_in, heatmap x = x_in / 4).
    rng = np.random.default_rng(2)
    kp_in = np.stack([rng.uniform(40, 150, (8, 17)), rng.uniform(40, 210, (8, 17))], -1)
    kp_mirror = geometry.flip_points(kp_in, 4 * W)[:, FLIP_INDEX]
    vis = np.ones((8, 17))
    hm, _ = encode_heatmaps(kp_in / 4, vis, (H, W), 2.0, unbiased=True)
    hm_mirror, _ = encode_heatmaps(kp_mirror / 4, vis, (H, W), 2.0, unbiased=True)
    # Mirrored back without the shift the peak sits 0.75 px to the left; the one-column shift
    # leaves +0.25 px; the average of both views is then off by ≈ +0.125 px in x only.
    for shift, dx in ((False, -0.75), (True, 0.25)):
        back, _ = decode_heatmaps(flip_back(hm_mirror, FLIP_INDEX, shift), "dark", sigma=2.0)
        np.testing.assert_allclose(back[..., 0] - kp_in[..., 0] / 4, dx, atol=0.01)
        np.testing.assert_allclose(back[..., 1], kp_in[..., 1] / 4, atol=0.01)
    avg, _ = decode_heatmaps(flip_test_average(hm, hm_mirror, FLIP_INDEX), "dark", sigma=2.0)
    np.testing.assert_allclose(avg[..., 0] - kp_in[..., 0] / 4, 0.125, atol=0.02)


def test_heatmap_to_image_hand_computed():
    # Crop centred at (100, 200), scale s_x = 1 (200 px wide) onto a 48×64 heatmap:
    # k = 48 / 200 = 0.24 heatmap px per image px, heatmap middle (24, 32) ↔ the centre.
    center, scale = np.array([[100.0, 200.0]]), np.array([[1.0, 4.0 / 3.0]])
    coords = np.array([[[24.0, 32.0], [0.0, 0.0], [36.0, 8.0]]])
    expected = np.array([[[100.0, 200.0], [0.0, 200 - 32 / 0.24], [150.0, 100.0]]])
    np.testing.assert_allclose(heatmap_to_image(coords, center, scale, (H, W)), expected, atol=1e-9)
    # The same as mapping with geometry's transform directly; torch in → torch out.
    m = geometry.crop_transform(center, scale, (W, H), inverse=True)
    out_t = heatmap_to_image(torch.tensor(coords, dtype=torch.float32), torch.tensor(center), scale, (H, W))
    assert out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), geometry.transform_points(coords, m), atol=1e-4)
    with pytest.raises(ValueError, match="coords_hm"):
        heatmap_to_image(np.zeros((1, 17, 3)), center, scale, (H, W))
    with pytest.raises(ValueError, match="center and scale"):
        heatmap_to_image(np.zeros((2, 17, 2)), center, scale, (H, W))


def test_codec_encodes_input_pixels_and_decodes_as_the_functions():
    # the codec is the functions with its fields: keypoints in INPUT pixels, x_hm = x_in / stride
    rng = np.random.default_rng(11)
    kp_hm, vis = _random_keypoints(rng, 3, 17)
    for stride in (4, 8):
        for target in ("reference", "unbiased"):
            codec = HeatmapCodec((H * stride, W * stride), stride=stride, sigma=1.5, target=target)
            assert codec.heatmap_size == (H, W)
            hm, wt = codec.encode(kp_hm * stride, vis)
            ref_hm, ref_wt = encode_heatmaps(kp_hm, vis, (H, W), 1.5, unbiased=target == "unbiased")
            np.testing.assert_allclose(hm, ref_hm, atol=1e-6)
            np.testing.assert_array_equal(wt, ref_wt)
    hm_t = torch.from_numpy(hm)
    for method in DECODE_METHODS:
        codec = HeatmapCodec((4 * H, 4 * W), sigma=1.5, decoding=method)
        coords, conf = codec.decode(hm_t)
        ref_coords, ref_conf = decode_heatmaps(hm_t, method, sigma=1.5)
        assert torch.equal(coords, ref_coords) and torch.equal(conf, ref_conf)
        # to_image: decode, then the inverse crop transform built for the heatmap size
        center, scale = np.tile([[100.0, 200.0]], (3, 1)), np.tile([[1.0, 4.0 / 3.0]], (3, 1))
        kp_img, conf_img = codec.to_image(hm_t, center, scale, np.zeros(3))
        np.testing.assert_allclose(kp_img, heatmap_to_image(ref_coords.numpy(), center, scale, (H, W)),
                                   atol=1e-9)
        np.testing.assert_array_equal(conf_img, ref_conf.numpy())


def test_codec_fields_are_checked_and_round_trip():
    import dataclasses

    codec = HeatmapCodec((256, 192), sigma=2.0, target="unbiased", decoding="dark")
    assert codec.heatmap_size == (64, 48) and codec.stride == 4 and codec.flip_shift
    assert HeatmapCodec.from_dict(dataclasses.asdict(codec)) == codec
    assert HeatmapCodec.from_dict({**dataclasses.asdict(codec), "input_size": [256, 192]}) == codec
    assert codec.describe() == "dark decoding, unbiased targets σ=2, 64x48 heatmaps"
    assert "flip without shift" in dataclasses.replace(codec, flip_shift=False).describe()
    with pytest.raises(ValueError, match=r"input_size must be \(H, W\) with H and W positive multiples of "
                                         r"the stride 4"):
        HeatmapCodec((255, 192))
    with pytest.raises(ValueError, match="multiples of the stride 8"):
        HeatmapCodec((68, 48), stride=8)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        HeatmapCodec((256, 192), sigma=0.0)
    with pytest.raises(ValueError, match="decoding must be one of"):
        HeatmapCodec((256, 192), decoding="softargmax")
    with pytest.raises(ValueError, match="target must be one of"):
        HeatmapCodec((256, 192), target="biased")


def test_gaussian_kernel_is_normalised_and_symmetric():
    for sigma in (1.0, 1.5, 2.0, 3.0):
        g = gaussian_kernel(sigma, dtype=torch.float64)
        r = math.ceil(3 * sigma)
        assert g.shape == (2 * r + 1,) and g.sum().item() == pytest.approx(1.0)
        assert torch.equal(g, g.flip(0)) and g.argmax().item() == r
        t = torch.arange(-r, r + 1, dtype=torch.float64)
        torch.testing.assert_close(g / g[r], torch.exp(-(t**2) / (2 * sigma**2)))


def test_codec_round_trip_takes_numpy_as_well_as_torch():
    """encode → to_image recovers keypoints in image pixels, whether the heatmaps are numpy or torch."""
    from hrnet_edu.heatmaps import HeatmapCodec

    codec = HeatmapCodec((256, 192), sigma=2.0, target="unbiased", decoding="dark")
    # a crop centred at (96, 128) with scale 0.96 × 1.28 (192 × 256 px): image px = input px here
    keypoints = np.array([[[100.3, 140.7], [50.0, 200.2]]])
    heatmaps, _ = codec.encode(keypoints, np.array([[2, 2]]))
    center, scale = np.array([[96.0, 128.0]]), np.array([[0.96, 1.28]])
    from_numpy, conf = codec.to_image(heatmaps, center, scale)
    from_torch, _ = codec.to_image(torch.as_tensor(heatmaps), torch.as_tensor(center), torch.as_tensor(scale))
    np.testing.assert_allclose(from_numpy, keypoints, atol=0.02)  # DARK on its own targets: sub-pixel
    np.testing.assert_allclose(from_torch, from_numpy, atol=1e-4)
    assert conf.shape == (1, 2) and (conf > 0.9).all()

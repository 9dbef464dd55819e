"""Crops, warps and augmentation: round trips, an independent bilinear sampler, bright dots, and the
OpenCV uint8 warp against the grid_sample warp."""

import numpy as np
import pytest
import torch

from hrnet_edu.data.transforms import (
    NO_AUGMENT,
    PAPER_AUGMENT,
    CropParams,
    crop_inverse,
    crop_matrix,
    denormalize,
    half_body_box,
    normalize,
    normalize_crop,
    sample_crop,
    source_region,
    transform_joints,
    warp_batch,
    warp_crop,
    warp_image,
)
from hrnet_edu.geometry import crop_transform, flip_points, transform_points
from hrnet_edu.keypoints import COCO17

FLIP_INDEX, KEYPOINT_NAMES, UPPER_BODY = COCO17.flip_index, COCO17.names, COCO17.upper_body

OUT = (192, 256)  # (W, H)


def random_params(rng, image_w=320, image_h=240, flip=None):
    center = rng.uniform([0.2 * image_w, 0.2 * image_h], [0.8 * image_w, 0.8 * image_h])
    s = rng.uniform(0.5, 1.6)
    return CropParams(center, np.array([s, s / 0.75]), float(rng.uniform(-90, 90)),
                      bool(rng.random() < 0.5) if flip is None else flip)


def bilinear_reference(image, matrix, out_w, out_h):
    """From scratch: for every crop pixel centre, the image point M⁻¹p, bilinear, zero outside."""
    inv = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    src = transform_points(np.stack([xs.ravel(), ys.ravel()], 1), inv)
    x0, y0 = np.floor(src[:, 0]).astype(int), np.floor(src[:, 1]).astype(int)
    fx, fy = src[:, 0] - x0, src[:, 1] - y0
    h, w = image.shape[:2]

    def at(yy, xx):
        ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        return np.where(ok[:, None], image[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)

    out = (at(y0, x0) * ((1 - fx) * (1 - fy))[:, None] + at(y0, x0 + 1) * (fx * (1 - fy))[:, None]
           + at(y0 + 1, x0) * ((1 - fx) * fy)[:, None] + at(y0 + 1, x0 + 1) * (fx * fy)[:, None])
    return out.reshape(out_h, out_w, -1)


def test_matrix_and_inverse_round_trip_points():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = random_params(rng)
        m = crop_matrix(p, 320, OUT)
        pts = rng.uniform(-50, 400, size=(17, 2))
        back = transform_points(transform_points(pts, m), crop_inverse(m))
        assert np.abs(back - pts).max() < 1e-4
        if not p.flip:  # the inverse equals geometry's closed-form inverse crop
            inv = crop_transform(p.center, p.scale, OUT, p.rotation, inverse=True)
            np.testing.assert_allclose(crop_inverse(m), inv, atol=1e-9)
    torch_inv = crop_inverse(torch.from_numpy(m))
    np.testing.assert_allclose(torch_inv.numpy(), crop_inverse(m), atol=1e-12)


def test_flip_folded_into_matrix_equals_flip_image_then_crop():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, size=(60, 80, 3))
    p = random_params(rng, 80, 60, flip=True)
    p = CropParams(p.center, p.scale / 4, p.rotation, True)
    m = crop_matrix(p, 80, (48, 64))
    # the reference: mirror the pixels, then crop around the (already mirrored) centre
    plain = crop_transform(p.center, p.scale, (48, 64), p.rotation)
    expected = warp_image(image[:, ::-1].copy(), plain, (48, 64))
    np.testing.assert_allclose(warp_image(image, m, (48, 64)).numpy(), expected.numpy(), atol=0.01)
    pts = rng.uniform(0, 80, size=(5, 2))
    np.testing.assert_allclose(transform_points(pts, m), transform_points(flip_points(pts, 80), plain),
                               atol=1e-9)


def test_warp_equals_from_scratch_bilinear_sampler():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(70, 90, 3)).astype(np.uint8)
    for _ in range(3):
        p = random_params(rng, 90, 70)
        p = CropParams(p.center, p.scale / 4, p.rotation, p.flip)
        m = crop_matrix(p, 90, (24, 32))
        got = warp_image(image, m, (24, 32)).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, bilinear_reference(image.astype(np.float64), m, 24, 32), atol=2e-2)


def test_identity_matrix_reproduces_the_image_exactly():
    image = np.random.default_rng(3).integers(0, 256, size=(16, 12, 3)).astype(np.uint8)
    out = warp_image(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), (12, 16))
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), image, atol=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_bright_dot_lands_where_the_matrix_says(seed):
    rng = np.random.default_rng(10 + seed)
    h, w = 240, 320
    dot = rng.uniform([80, 60], [w - 80, h - 60])
    ys, xs = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xs - dot[0]) ** 2 + (ys - dot[1]) ** 2) / (2 * 2.0**2))
    image = np.repeat((255 * blob)[..., None], 3, axis=2).astype(np.float32)
    # a crop around the dot, zoom k = 192 / (200 s) between ~0.6 and ~1.9; a flipped crop's
    # centre lives in the mirrored image
    flip = bool(seed % 2)
    centre = dot + rng.uniform(-20, 20, 2)
    p = CropParams(flip_points(centre, w) if flip else centre, np.full(2, rng.uniform(0.5, 1.6)),
                   float(rng.uniform(-90, 90)), flip)
    m = crop_matrix(p, w, OUT)
    crop = warp_image(image, m, OUT)[0].numpy()
    expected = transform_points(dot[None], m)[0]
    cy, cx = np.mgrid[0 : OUT[1], 0 : OUT[0]]
    centroid = np.array([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    # a half-pixel convention slip would show as an offset of ~0.5·k px; we measure < 0.02
    assert np.abs(centroid - expected).max() < 0.1, (centroid, expected)


def test_source_region_warp_equals_full_image_warp():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(300, 400, 3)).astype(np.uint8)
    for params in [random_params(rng, 400, 300), CropParams(np.array([5.0, 290]), np.array([0.4, 0.5])),
                   CropParams(np.array([-500.0, -500]), np.array([0.3, 0.4]))]:
        m = crop_matrix(params, 400, OUT)
        (y0, y1, x0, x1), shifted = source_region(m, image.shape[:2], OUT)
        assert 0 <= y0 < y1 <= 300 and 0 <= x0 < x1 <= 400
        np.testing.assert_allclose(warp_image(image[y0:y1, x0:x1], shifted, OUT).numpy(),
                                   warp_image(image, m, OUT).numpy(), atol=0.05)


def test_flip_twice_is_identity_and_swaps_left_right_names():
    assert tuple(np.array(FLIP_INDEX)[list(FLIP_INDEX)]) == tuple(range(17))
    for k, name in enumerate(KEYPOINT_NAMES):
        other = KEYPOINT_NAMES[FLIP_INDEX[k]]
        assert other == name.replace("left", "@").replace("right", "left").replace("@", "right")
    pts = np.random.default_rng(5).uniform(0, 100, size=(17, 2))
    np.testing.assert_allclose(flip_points(flip_points(pts, 101), 101), pts)
    # a flipped crop puts the image's left wrist (index 9) in the right-wrist channel (10)
    joints = np.concatenate([pts, np.ones((17, 1))], 1)
    centre = np.array([50.0, 50.0])
    p = CropParams(flip_points(centre, 101), np.array([0.5, 0.5 / 0.75]), 0.0, True)
    m = crop_matrix(p, 101, OUT)
    flipped = transform_joints(joints, m, True, (OUT[1], OUT[0]), FLIP_INDEX)
    plain = crop_transform(p.center, p.scale, OUT)
    np.testing.assert_allclose(flipped[10, :2], transform_points(flip_points(pts[9:10], 101), plain)[0],
                               atol=1e-4)
    # mirroring twice (matrix ∘ mirror ∘ mirror) with two swaps gives the unflipped crop back
    twice = transform_joints(joints, crop_matrix(p, 101, OUT), True, (OUT[1], OUT[0]), FLIP_INDEX)
    twice = twice[list(FLIP_INDEX)]
    np.testing.assert_allclose(twice[:, :2], transform_points(flip_points(pts, 101), plain), atol=1e-4)


def test_joints_outside_the_crop_lose_their_weight():
    joints = np.array([[100.0, 100.0, 1.0], [1000.0, 100.0, 1.0], [100.0, 100.0, 0.0]])
    m = crop_transform(np.array([100.0, 100.0]), np.array([1.0, 4 / 3]), OUT)
    out = transform_joints(joints, m, False, (256, 192), FLIP_INDEX)
    np.testing.assert_array_equal(out[:, 2], [1, 0, 0])
    np.testing.assert_allclose(out[0, :2], [96, 128])
    assert out.dtype == np.float32
    # the flip permutation is the keypoint set's, always given, and must fit its K joints
    with pytest.raises(ValueError, match="flip_index has 17 entries for K = 3 joints"):
        transform_joints(joints, m, True, (256, 192), FLIP_INDEX)


def test_half_body_crop_contains_its_joints():
    rng = np.random.default_rng(6)
    for _ in range(30):
        joints = rng.uniform(0, 300, size=(17, 2))
        visible = (rng.random(17) < 0.8).astype(float)
        upper = bool(rng.random() < 0.5)
        box = half_body_box(joints, visible, 0.75, upper, UPPER_BODY)
        if box is None:
            continue
        centre, scale = box
        assert scale[0] / scale[1] == pytest.approx(0.75)
        lab_up = (visible > 0) & (np.arange(17) < 11)
        lab_low = (visible > 0) & (np.arange(17) >= 11)
        chosen = lab_up if (upper and lab_up.sum() > 2) else (lab_low if lab_low.sum() > 2 else lab_up)
        np.testing.assert_allclose(centre, joints[chosen].mean(0))
        inside = transform_points(joints[chosen], crop_transform(centre, scale, OUT))
        assert (inside >= 0).all() and (inside <= np.array(OUT) - 1).all()


def test_augmentation_ranges_probabilities_and_reproducibility():
    joints, vis = np.random.default_rng(7).uniform(50, 150, size=(17, 2)), np.ones(17)
    centre, scale = np.array([100.0, 100.0]), np.array([1.0, 4 / 3])
    draws = [sample_crop(np.random.default_rng(i), centre, scale, joints, vis, 200, 0.75, PAPER_AUGMENT,
                         UPPER_BODY)
             for i in range(2000)]
    whole = [d for d in draws if not d.half_body]
    ratio = np.array([d.scale[0] / scale[0] for d in whole])
    rot = np.array([d.rotation for d in draws])
    assert ratio.min() >= 0.65 - 1e-12 and ratio.max() <= 1.35 + 1e-12
    assert np.abs(rot).max() <= 90 and np.mean(rot == 0) == pytest.approx(0.4, abs=0.04)
    assert np.mean([d.flip for d in draws]) == pytest.approx(0.5, abs=0.04)
    assert np.mean([d.half_body for d in draws]) == pytest.approx(0.3, abs=0.04)
    for d in draws[:50]:  # a flipped centre is mirrored, an unflipped one untouched
        if not d.half_body:
            assert d.center[0] == pytest.approx(200 - 1 - 100 if d.flip else 100)
    again = sample_crop(np.random.default_rng(3), centre, scale, joints, vis, 200, 0.75, PAPER_AUGMENT,
                        UPPER_BODY)
    d3 = draws[3]
    assert (again.rotation, again.flip, again.half_body) == (d3.rotation, d3.flip, d3.half_body)
    np.testing.assert_array_equal(again.scale, draws[3].scale)
    still = sample_crop(np.random.default_rng(0), centre, scale, joints, vis, 200, 0.75, NO_AUGMENT,
                        UPPER_BODY)
    np.testing.assert_allclose(still.center, centre)
    np.testing.assert_allclose(still.scale, scale)
    assert still.rotation == 0 and not still.flip and not still.half_body


def test_warp_batch_matches_single_warps_with_padding():
    rng = np.random.default_rng(8)
    images = [rng.integers(0, 256, size=s).astype(np.uint8) for s in [(40, 30, 3), (25, 50, 3)]]
    mats = [crop_matrix(CropParams(np.array([15.0, 20]), np.array([0.1, 0.13]), 30.0, True), 30, (24, 32)),
            crop_matrix(CropParams(np.array([25.0, 12]), np.array([0.12, 0.16]), -10.0), 50, (24, 32))]
    batch = torch.zeros(2, 3, 40, 50, dtype=torch.uint8)
    for i, im in enumerate(images):
        batch[i, :, : im.shape[0], : im.shape[1]] = torch.from_numpy(im).permute(2, 0, 1)
    out = warp_batch(batch, torch.from_numpy(np.stack(mats)), (24, 32))
    for i in range(2):
        single = warp_image(images[i], mats[i], (24, 32))
        np.testing.assert_allclose(out[i].numpy(), single.numpy(), atol=0.01)


def test_normalize_denormalize_round_trip():
    image = torch.from_numpy(np.random.default_rng(9).integers(0, 256, size=(3, 8, 6))).float()
    x = normalize(image)
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 2.5
    np.testing.assert_array_equal(denormalize(x), image.permute(1, 2, 0).numpy().astype(np.uint8))


# ---- the OpenCV uint8 warp (warp_crop) against grid_sample (warp_image) ------------------------
# OpenCV rounds the output to uint8 (≤ ½ level) and each sample position to 1/32 px (≤ 1/64 px
# per axis), so |Δ| ≤ ½ + (|∂f/∂x| + |∂f/∂y|) / 64 levels, f the image's bilinear interpolant.
def smooth_image(h=240, w=320):
    """Smooth RGB uint8 test image: neighbouring pixels differ by ≤ 120/9 + 1 levels in x and
    ≤ 120/13 + 1 in y (the +1 from rounding), so |Δ| ≤ ½ + (14.4 + 10.3) / 64 < 0.9."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([127 + 120 * np.sin(xs / 9.0 + c) * np.cos(ys / 13.0 - c) for c in range(3)],
                    -1).round().astype(np.uint8)


def source_points(matrix, out_w, out_h):
    """(H, W, 2): the image point M⁻¹ (u, v) each crop pixel samples."""
    v, u = np.mgrid[0:out_h, 0:out_w]
    src = transform_points(np.stack([u.ravel(), v.ravel()], 1), crop_inverse(matrix))
    return src.reshape(out_h, out_w, 2)


def test_opencv_warp_equals_grid_sample_warp_away_from_the_border():
    rng = np.random.default_rng(20)
    image = smooth_image()
    worst = 0.0
    for _ in range(12):
        m = crop_matrix(random_params(rng), 320, OUT)
        got = warp_crop(image, m, OUT)
        assert got.dtype == np.uint8 and got.shape == (OUT[1], OUT[0], 3)
        ref = warp_image(image, m, OUT).permute(1, 2, 0).numpy()
        # where the whole 2×2 bilinear support is inside the image the zero border plays no part
        src = source_points(m, *OUT)
        inside = np.all((src >= 0) & (src <= np.array([320, 240]) - 1), axis=-1)
        assert inside.mean() > 0.3
        diff = np.abs(got - ref.astype(np.float64))[inside]
        worst = max(worst, diff.max())
        assert diff.mean() < 0.35  # mostly the uint8 rounding, mean ¼ level
    assert worst < 0.9  # the bound above; we measure ~0.73


def test_opencv_warp_border_blends_with_zero_like_grid_sample():
    # a constant image c: bilinear with a zero border gives c · a_x · a_y, a the share of the
    # 1-px support inside the image, a_x = clip(min(x + 1, W − x), 0, 1) — a 1-px ramp, not
    # Pillow's hard cut at the pixel edge x = −½
    c, h, w = 200.0, 60, 80
    image = np.full((h, w, 3), int(c), np.uint8)
    rng = np.random.default_rng(21)
    for _ in range(6):
        p = CropParams(rng.uniform([0, 0], [w, h]), np.full(2, rng.uniform(0.2, 0.5)),
                       float(rng.uniform(-90, 90)))
        m = crop_matrix(p, w, (48, 64))
        src = source_points(m, 48, 64)
        share = np.clip(np.minimum(src + 1, np.array([w, h]) - src), 0, 1).prod(-1)
        got = warp_crop(image, m, (48, 64))[..., 0].astype(np.float64)
        assert ((share > 0) & (share < 1)).sum() > 20  # the crop does cross the border
        np.testing.assert_array_less(np.abs(got - c * share), 0.5 + 2 * c / 64)
        np.testing.assert_array_equal(got[share == 1], c)
        np.testing.assert_array_equal(got[share == 0], 0)


def test_opencv_warp_identity_and_integer_shift_are_exact():
    image = np.random.default_rng(22).integers(0, 256, size=(16, 12, 3)).astype(np.uint8)
    np.testing.assert_array_equal(warp_crop(image, np.array([[1.0, 0, 0], [0, 1.0, 0]]), (12, 16)), image)
    # p_crop = p_img + (2, −3): crop pixel (u, v) is image pixel (u − 2, v + 3), zero outside
    out = np.empty((16, 12, 3), np.uint8)
    got = warp_crop(image, np.array([[1.0, 0, 2], [0, 1.0, -3]]), (12, 16), out=out)
    assert got is out or np.shares_memory(got, out)
    np.testing.assert_array_equal(out[:13, 2:], image[3:, :10])
    assert not out[13:].any() and not out[:, :2].any()


@pytest.mark.parametrize("seed", range(4))
def test_opencv_warp_bright_dot_lands_where_the_matrix_says(seed):
    rng = np.random.default_rng(30 + seed)
    h, w = 240, 320
    dot = rng.uniform([80, 60], [w - 80, h - 60])
    ys, xs = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xs - dot[0]) ** 2 + (ys - dot[1]) ** 2) / (2 * 2.0**2))
    image = np.repeat((255 * blob)[..., None], 3, axis=2).round().astype(np.uint8)
    flip = bool(seed % 2)
    centre = dot + rng.uniform(-20, 20, 2)
    p = CropParams(flip_points(centre, w) if flip else centre, np.full(2, rng.uniform(0.5, 1.6)),
                   float(rng.uniform(-90, 90)), flip)
    m = crop_matrix(p, w, OUT)
    crop = warp_crop(image, m, OUT)[..., 0].astype(np.float64)
    expected = transform_points(dot[None], m)[0]
    cy, cx = np.mgrid[0 : OUT[1], 0 : OUT[0]]
    centroid = np.array([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    # a half-pixel convention slip would be ~0.5·k px; uint8 rounding of the blob costs ~0.01
    assert np.abs(centroid - expected).max() < 0.1, (centroid, expected)


def test_both_normalizations_equal_the_formula_on_uint8_crops():
    crops = np.random.default_rng(23).integers(0, 256, size=(2, 8, 6, 3)).astype(np.uint8)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((crops / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    # torch, on a channels-last view of the batch
    x = normalize(torch.from_numpy(crops).permute(0, 3, 1, 2))
    assert x.is_contiguous() and x.dtype == torch.float32 and x.shape == (2, 3, 8, 6)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)
    # OpenCV, one crop at a time into a row of a batch
    rows = np.full((2, 3, 8, 6), np.nan, np.float32)
    for i in range(2):
        assert np.shares_memory(normalize_crop(crops[i], out=rows[i]), rows)
    np.testing.assert_allclose(rows, x.numpy(), atol=1e-6)
    assert normalize_crop(crops[0]).dtype == np.float32

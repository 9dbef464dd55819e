import numpy as np
import pytest

from hrnet_edu import geometry as g


def _three_point_affine(center, scale, rot, out_w, out_h):
    """The reference's construction: three point pairs, solved as a linear system."""
    src_w = scale[0] * 200.0
    r = np.deg2rad(rot)
    sn, cs = np.sin(r), np.cos(r)
    src_dir = np.array([0.0 * cs - (-0.5 * src_w) * sn, 0.0 * sn + (-0.5 * src_w) * cs])
    dst_dir = np.array([0.0, -0.5 * out_w])
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0], src[1] = center, center + src_dir
    dst[0], dst[1] = [out_w * 0.5, out_h * 0.5], np.array([out_w * 0.5, out_h * 0.5]) + dst_dir
    for p in (src, dst):
        d = p[0] - p[1]
        p[2] = p[1] + np.array([-d[1], d[0]])
    a = np.concatenate([src, np.ones((3, 1))], axis=1)
    return np.linalg.solve(a, dst).T  # (2, 3)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0, 180.0])
def test_crop_transform_matches_three_point_construction(rot):
    rng = np.random.default_rng(0)
    center = rng.uniform(0, 500, 2)
    scale = rng.uniform(0.3, 2.0, 2)
    m = g.crop_transform(center, scale, (192, 256), rot)
    np.testing.assert_allclose(m, _three_point_affine(center, scale, rot, 192, 256), atol=1e-9)


def test_inverse_round_trip_batched():
    rng = np.random.default_rng(1)
    n = 50
    center = rng.uniform(0, 640, (n, 2))
    scale = rng.uniform(0.2, 3.0, (n, 2))
    rot = rng.uniform(-90, 90, n)
    pts = rng.uniform(-50, 700, (n, 17, 2))
    fwd = g.crop_transform(center, scale, (192, 256), rot)
    inv = g.crop_transform(center, scale, (192, 256), rot, inverse=True)
    back = g.transform_points(g.transform_points(pts, fwd), inv)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # The centre goes to the middle of the crop.
    mid = g.transform_points(center[:, None], fwd)[:, 0]
    np.testing.assert_allclose(mid, np.broadcast_to([96.0, 128.0], (n, 2)), atol=1e-9)


def test_box_to_center_scale_reference_values():
    # A tall box is widened to 3:4, then padded by 1.25 (reference _xywh2cs).
    c, s = g.box_to_center_scale(np.array([10.0, 20.0, 30.0, 100.0]), 0.75)
    np.testing.assert_allclose(c, [25.0, 70.0])
    np.testing.assert_allclose(s, [75.0 / 200 * 1.25, 100.0 / 200 * 1.25])
    # A wide box is heightened.
    _, s = g.box_to_center_scale(np.array([0.0, 0.0, 150.0, 100.0]), 0.75)
    np.testing.assert_allclose(s, [150.0 / 200 * 1.25, 200.0 / 200 * 1.25])
    with pytest.raises(ValueError, match="shape"):
        g.box_to_center_scale(np.zeros(3), 0.75)


def test_flip_is_involution():
    pts = np.random.default_rng(2).uniform(0, 100, (5, 2))
    np.testing.assert_allclose(g.flip_points(g.flip_points(pts, 64), 64), pts)
    np.testing.assert_allclose(g.flip_points(np.array([[0.0, 3.0]]), 64), [[63.0, 3.0]])

"""Heatmap losses vs direct formulas (reference definitions in REFERENCE.md)."""

import itertools

import pytest
import torch

from hrnet_edu.losses import JointsMSELoss, JointsOHKMLoss


def _batch(n=3, k=17, h=8, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, k, h, w, generator=g, dtype=torch.float64)
    target = torch.rand(n, k, h, w, generator=g, dtype=torch.float64)
    weight = (torch.rand(n, k, generator=g) > 0.3).double()
    return pred, target, weight


def test_mse_equals_half_mean_of_weighted_squares():
    pred, target, weight = _batch()
    n, k, h, w = pred.shape
    # 0.5 · mean over (N, K, H, W) of w_k² (pred − target)², written as an explicit sum
    direct = 0.0
    for i, j, y, x in itertools.product(range(n), range(k), range(h), range(w)):
        direct += weight[i, j] ** 2 * (pred[i, j, y, x] - target[i, j, y, x]) ** 2
    direct = 0.5 * direct / (n * k * h * w)
    loss = JointsMSELoss()(pred, target, weight)
    assert torch.allclose(loss.double(), torch.as_tensor(direct), rtol=1e-6)
    # (N, K, 1) weights, as the reference's datasets return them, give the same value
    assert torch.allclose(JointsMSELoss()(pred, target, weight[..., None]), loss)


def test_mse_without_target_weight_is_half_torch_mse():
    pred, target, _ = _batch()
    loss = JointsMSELoss(use_target_weight=False)(pred, target)
    assert torch.allclose(loss.double(), 0.5 * torch.nn.functional.mse_loss(pred, target).double())


def test_unlabelled_joint_has_no_gradient():
    pred, target, weight = _batch()
    weight[0, 3] = 0
    pred.requires_grad_(True)
    JointsMSELoss()(pred, target, weight).backward()
    assert pred.grad[0, 3].abs().max() == 0
    assert pred.grad[0, 4].abs().max() > 0 or weight[0, 4] == 0


@pytest.mark.parametrize("topk", [1, 8, 17])
def test_ohkm_matches_brute_force(topk):
    pred, target, weight = _batch(n=4)
    n, k = pred.shape[:2]
    # brute force: per sample, every joint's ½·mean over H·W, sort descending in Python, keep topk
    expected = 0.0
    for i in range(n):
        errors = [(weight[i, j] * (pred[i, j] - target[i, j])) ** 2 for j in range(k)]
        per_joint = [0.5 * float(e.mean()) for e in errors]
        expected += sum(sorted(per_joint, reverse=True)[:topk]) / topk
    expected /= n
    loss = JointsOHKMLoss(topk=topk)(pred, target, weight)
    assert abs(float(loss) - expected) < 1e-9
    if topk == k:  # keeping every joint is the plain MSE loss
        assert torch.allclose(loss, JointsMSELoss()(pred, target, weight))


def test_bad_inputs_raise():
    pred, target, weight = _batch()
    with pytest.raises(ValueError, match="target_weight"):
        JointsMSELoss()(pred, target)
    with pytest.raises(ValueError, match="N, K, H, W"):
        JointsMSELoss()(pred, target[..., :-1], weight)
    with pytest.raises(ValueError, match="topk"):
        JointsOHKMLoss(topk=18)(pred, target, weight)
    with pytest.raises(ValueError, match="topk"):
        JointsOHKMLoss(topk=0)


def test_loss_is_fp32_for_half_inputs():
    pred, target, weight = _batch()
    loss = JointsMSELoss()(pred.bfloat16(), target.bfloat16(), weight)
    assert loss.dtype == torch.float32

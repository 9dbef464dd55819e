"""Heatmap losses: the weighted MSE of the paper (§4.1), online hard keypoint mining, and the
reference's training accuracy (``pck_accuracy``).

HRNet is trained by regressing K heatmaps, one per joint, towards Gaussian targets centred on
the labelled joints ("The loss function, defined as the mean squared error, is applied for
comparing the predicted heatmaps and the groundtruth heatmaps", Sun et al. 2019, §3).

Note: shapes
    N batch, K joints, H×W heatmap size (the input size / 4).
    pred, target: (N, K, H, W); target_weight w: (N, K) or (N, K, 1) — 0 for a joint that is not
    labelled or whose Gaussian falls fully outside the heatmap, 1 otherwise.

The 0.5 factor. The reference computes, per joint k,
``0.5 · MSE(pred_k · w_k, target_k · w_k)`` and averages over the K joints, i.e.

    L = 0.5 · mean over (N, K, H, W) of w_k² (pred − target)²

The 0.5 is the ½ of ½(y − ŷ)² — it makes the gradient (pred − target) instead of 2 (pred − target).
With Adam it changes nothing about the optimisation (Adam is invariant to a constant rescaling of
the loss), but it does halve every logged loss value; we keep it so that our loss curves can be
compared number for number with the reference's logs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hrnet_edu.heatmaps import decode_heatmaps


def _per_joint_squared_error(
    pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None
) -> torch.Tensor:
    """Mean over H·W of ½ w_k² (pred − target)², per sample and joint → (N, K).

    Args:
        pred: (N, K, H, W) predicted heatmaps.
        target: (N, K, H, W) target heatmaps.
        target_weight: (N, K) or (N, K, 1) per-joint weights, or None for all ones.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must both be (N, K, H, W) heatmaps, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    # Accumulate in fp32 even when the network ran in bf16/fp16 (AMP): the squared errors of
    # mostly-zero heatmaps are tiny and would lose all their digits in half precision.
    dtype = torch.promote_types(pred.dtype, torch.float32)
    diff = pred.to(dtype) - target.to(dtype)  # (N, K, H, W)
    if target_weight is not None:
        w = target_weight.to(dtype).reshape(pred.shape[0], pred.shape[1], 1, 1)
        if w.shape[:2] != pred.shape[:2]:
            raise ValueError(f"target_weight must be (N, K) = {tuple(pred.shape[:2])}")
        # w_k (pred − target): the reference multiplies both heatmaps by w before the MSE.
        diff = diff * w
    # ½ · mean over H·W of (w_k (pred − target))²
    return 0.5 * diff.pow(2).mean(dim=(2, 3))  # (N, K)


class JointsMSELoss(nn.Module):
    """The reference's heatmap loss: ``L = 0.5 · mean_{N,K,H,W} w_k² (pred − target)²``.

    Args:
        use_target_weight: multiply each joint's error by its target weight (reference: True).
            Unlabelled joints then contribute 0 and do not pull their heatmap towards zero.

    Shapes: ``forward(pred (N,K,H,W), target (N,K,H,W), target_weight (N,K)) -> scalar``.
    """

    def __init__(self, use_target_weight: bool = True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        weight = target_weight if self.use_target_weight else None
        if self.use_target_weight and target_weight is None:
            raise ValueError("JointsMSELoss(use_target_weight=True) needs target_weight (N, K)")
        # L = mean over N and K of the per-joint ½·mean over H·W  (= ½ mean over N, K, H, W)
        return _per_joint_squared_error(pred, target, weight).mean()


class JointsOHKMLoss(nn.Module):
    """Online hard keypoint mining (Chen et al., CPN 2018), as the reference implements it.

    Per sample, the per-joint losses ``ℓ_nk = ½ · mean_{H,W} w_k² (pred − target)²`` are computed,
    only the ``topk`` largest (the hardest joints) are kept and summed, divided by ``topk``, and the
    result is averaged over the batch:

        L = mean_n (1/topk) Σ_{k ∈ top-k(ℓ_n·)} ℓ_nk

    Args:
        topk: joints kept per sample (reference: 8 of 17).
        use_target_weight: as in :class:`JointsMSELoss`.

    Shapes: ``forward(pred (N,K,H,W), target (N,K,H,W), target_weight (N,K)) -> scalar``.
    """

    def __init__(self, topk: int = 8, use_target_weight: bool = True):
        super().__init__()
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        self.topk = topk
        self.use_target_weight = use_target_weight

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.use_target_weight and target_weight is None:
            raise ValueError("JointsOHKMLoss(use_target_weight=True) needs target_weight (N, K)")
        if pred.dim() == 4 and pred.shape[1] < self.topk:
            raise ValueError(f"topk={self.topk} is larger than the number of joints K={pred.shape[1]}")
        per_joint = _per_joint_squared_error(
            pred, target, target_weight if self.use_target_weight else None
        )  # (N, K)
        # Keep the top-k hardest joints of each sample (vectorised over the batch).
        hardest, _ = torch.topk(per_joint, k=self.topk, dim=1, sorted=False)  # (N, topk)
        # L = mean_n Σ_top-k ℓ_nk / topk
        return (hardest.sum(dim=1) / self.topk).mean()


def pck_accuracy(pred_heatmaps, target_heatmaps, threshold: float = 0.5):
    """The reference's training-time accuracy (``accuracy()``): NOT the COCO metric.

    A PCK computed on heatmaps: predicted and target keypoints are the argmax of each heatmap;
    their distance is normalised by (H/10, W/10) — applied, as in the reference, as x / (H/10)
    and y / (W/10) — and a joint is correct when the normalised distance is < threshold
    (0.5, i.e. about 1/20 of the heatmap side). Joints whose target argmax has x ≤ 1 or y ≤ 1
    (an all-zero target, i.e. no label, gives (0, 0)) are skipped, as in the reference; the
    target weights are not used.

    Args:
        pred_heatmaps, target_heatmaps: (N, K, H, W) numpy arrays or torch tensors (any device).
        threshold: normalised distance threshold.

    Returns:
        per_joint: (K,) float64 accuracy per joint, −1 where no sample of that joint counts;
        mean: float, the mean over joints that count (0 when none);
        count: int, the number of joints that count.
    """
    pred, target = (np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
                    for x in (pred_heatmaps, target_heatmaps))
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"expected two (N, K, H, W) heatmap batches, got {pred.shape} and {target.shape}")
    h, w = pred.shape[2], pred.shape[3]
    # integer argmax (x, y), (0, 0) where a map has no positive value: the reference's get_max_preds
    p, t = (decode_heatmaps(x, method="argmax")[0].astype(np.float64) for x in (pred, target))  # (N, K, 2)
    norm = np.array([h, w], dtype=np.float64) / 10  # the reference divides (x, y) by (H, W)/10
    counted = (t[..., 0] > 1) & (t[..., 1] > 1)  # (N, K)
    # d = ‖p / norm − t / norm‖, in units of a tenth of the heatmap side
    dist = np.linalg.norm(p / norm - t / norm, axis=-1)  # (N, K)
    n_counted = counted.sum(axis=0)  # (K,)
    hits = ((dist < threshold) & counted).sum(axis=0)
    per_joint = np.where(n_counted > 0, hits / np.maximum(n_counted, 1), -1.0)
    valid = n_counted > 0
    count = int(valid.sum())
    mean = float(per_joint[valid].mean()) if count else 0.0
    return per_joint, mean, count

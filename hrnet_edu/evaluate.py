"""From a checkpoint to COCO keypoint AP: the top-down test pipeline of the paper (§4.1, "Testing").

For every person box (ground truth, or a person detector's box) the crop is run through the
network, optionally together with its mirror image (flip test), the heatmaps are decoded to
keypoints, mapped back to the image with the inverse crop transform, rescored, de-duplicated with
OKS-NMS per image and evaluated with pycocotools::

    crops (N, 3, H, W) ─ HRNet ─▶ heatmaps (N, K, H/4, W/4) ─ flip test ─▶ decode ─▶ (N, K, 2) heatmap px
        ─ inverse crop transform ─▶ (N, K, 2) image px ─ rescore ─▶ OKS-NMS ─▶ results ─ COCOeval ─▶ AP

This module is the one place where that chain is written; training (``train.validate``), the
command line (``commands.checkpoint_ap``) and notebook 08 all call it. ``predict_dataset`` returns
plain numpy arrays, so that under torchrun each rank can predict its shard and rank 0 can
``merge_predictions`` them.

Two objects say how: the ``heatmaps.HeatmapCodec`` (the decoding, its σ, the flip test's shift,
the way back to the image) and the keypoint set (``keypoints.KeypointSpec``: the flip test swaps the
channels of its ``flip_index``, OKS-NMS and COCOeval use its ``sigmas``). Both are passed in; the
whole-pipeline ``model_ap`` takes them from the ``CocoKeypoints`` dataset, which was built with them.

Shapes: N person instances, K joints (17 for COCO), H×W the input crop (heatmaps H/4 × W/4).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from hrnet_edu import coco_eval
from hrnet_edu.heatmaps import HeatmapCodec, flip_test_average
from hrnet_edu.keypoints import KeypointSpec, get_spec
from hrnet_edu.oks import oks_nms

PREDICTION_KEYS = ("indices", "image_ids", "ann_ids", "keypoints", "confidences", "box_scores", "areas")


def _base_indices(dataset) -> np.ndarray:
    """(N,) index of each of ``dataset``'s samples in the base dataset (through Subsets)."""
    if isinstance(dataset, Subset):
        return _base_indices(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    return np.arange(len(dataset), dtype=np.int64)


def model_device(model: torch.nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def predict_heatmaps(model, images: torch.Tensor, flip_index, flip: bool = True,
                     flip_shift: bool = True) -> torch.Tensor:
    """Heatmaps of a batch of crops, with the flip test.

    Args:
        model: maps (N, 3, H, W) → (N, K, H/4, W/4) (in eval mode; not changed here).
        images: (N, 3, H, W) normalized crops on the model's device.
        flip_index: (K,) the left ↔ right channel permutation (``KeypointSpec.flip_index``).
        flip: also run the mirrored crops and average ``½ (H(x) + flip_back(H(mirror x)))``;
            both go through the network in one batch of 2N.
        flip_shift: the reference's one-column shift in ``flip_back`` (``HeatmapCodec.flip_shift``).

    Returns:
        (N, K, H/4, W/4) float32 heatmaps.
    """
    if not flip:
        return model(images).float()
    n = images.shape[0]
    # mirror x → W − 1 − x: reverse the columns of the crop
    out = model(torch.cat([images, images.flip(-1)])).float()
    return flip_test_average(out[:n], out[n:], flip_index, shift=flip_shift)


def predict_dataset(model, dataset, codec: HeatmapCodec, spec, flip: bool = True, batch_size: int = 32,
                    device=None, progress: bool = False, num_workers: int = 0) -> dict:
    """Run ``model`` over every sample of ``dataset`` and return keypoints in image coordinates.

    Args:
        model: an HRNet (or anything mapping (N, 3, H, W) → (N, K, H/4, W/4)); put in eval mode
            for the pass and restored afterwards.
        dataset: ``CocoKeypoints`` (``train=False``), a ``Subset`` of one (e.g. a rank's shard),
            or any map-style dataset of the same sample dicts.
        codec: how the heatmaps are decoded (``decoding``, its ``sigma``, ``flip_shift``) and mapped
            back to the image. spec: the keypoint set (its ``flip_index`` for the flip test).
        flip: flip test. batch_size: crops per forward pass (2× that with ``flip``).
        device: where to run; the model is moved there. None: the model's current device.
        progress: show a tqdm progress bar. num_workers: DataLoader workers.

    Returns:
        dict of numpy arrays (the N predicted samples, in the dataset's order):
        ``indices`` (N,) int64 index in the base dataset, ``image_ids`` (N,) int64, ``ann_ids``
        (N,) int64 (−1 for detections), ``keypoints`` (N, K, 2) float64 image pixels,
        ``confidences`` (N, K) float32 heatmap maxima, ``box_scores`` (N,) float32,
        ``areas`` (N,) float64 = (200·s_x)·(200·s_y), the crop area the reference uses in OKS-NMS.
    """
    spec = get_spec(spec)
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="evaluate", unit="batch")
    parts: dict[str, list] = {k: [] for k in PREDICTION_KEYS[1:]}
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            for name, value in _predict_batch(model, batch, device, codec, spec, flip).items():
                parts[name].append(value)
    finally:
        model.train(was_training)
    return _concatenate(parts, _base_indices(dataset), spec.num_joints)


def _predict_batch(model, batch: dict, device, codec: HeatmapCodec, spec: KeypointSpec, flip: bool) -> dict:
    """One loader batch → its predictions (numpy; keypoints in image pixels), ``PREDICTION_KEYS[1:]``."""
    images = batch["image"].to(device, non_blocking=True)
    heatmaps = predict_heatmaps(model, images, spec.flip_index, flip, codec.flip_shift)  # (N, K, h, w)
    keypoints, conf = codec.to_image(heatmaps, batch["center"], batch["scale"], batch["rotation"])
    return {"keypoints": keypoints, "confidences": conf, "image_ids": batch["image_id"].numpy(),
            "ann_ids": batch["ann_id"].numpy(), "box_scores": batch["score"].numpy(),
            "areas": batch["area"].numpy().astype(np.float64)}


def _concatenate(parts: dict[str, list], base_indices: np.ndarray, num_joints: int) -> dict:
    """The batches' predictions as one dict of arrays (empty arrays of the right shapes for none)."""
    k = num_joints
    empty = {"keypoints": np.zeros((0, k, 2)), "confidences": np.zeros((0, k), np.float32),
             "image_ids": np.zeros(0, np.int64), "ann_ids": np.zeros(0, np.int64),
             "box_scores": np.zeros(0, np.float32), "areas": np.zeros(0)}
    out = {name: np.concatenate(p) if p else empty[name] for name, p in parts.items()}
    out["indices"] = base_indices[: len(out["image_ids"])]
    return {name: out[name] for name in PREDICTION_KEYS}


def merge_predictions(parts: list[dict]) -> dict:
    """Concatenate the ``predict_dataset`` outputs of several ranks into one, in base-dataset order.

    Each sample is kept once (a shard padded by repeating samples, as ``DistributedSampler`` pads,
    counts once), so the merged predictions equal those of a single-process pass.
    """
    merged = {k: np.concatenate([p[k] for p in parts]) for k in PREDICTION_KEYS}
    _, first = np.unique(merged["indices"], return_index=True)  # sorted by index, first occurrence
    return {k: v[first] for k, v in merged.items()}


def predictions_to_results(preds: dict, sigmas, nms_threshold: float | None = 0.9,
                           rescore_threshold: float = 0.2, return_keep: bool = False):
    """Rescore, apply OKS-NMS per image and build COCO results entries (the reference's ``evaluate``).

    Args:
        preds: a ``predict_dataset`` (or ``merge_predictions``) dict.
        sigmas: (K,) the OKS constants of OKS-NMS, the keypoint set's (``KeypointSpec.sigmas``).
        nms_threshold: OKS above which a pose of the same image is suppressed (0.9); None: no NMS.
        rescore_threshold: keypoints with confidence above it enter the instance score (0.2).
        return_keep: also return the (M,) indices into ``preds`` of the kept poses.

    Returns:
        list of M results entries (``coco_eval.make_results``), image by image; and ``keep``.
    """
    if nms_threshold is not None and not (math.isfinite(nms_threshold) and 0 < nms_threshold <= 1):
        # 0 or less keeps one pose per image, NaN keeps all: each a different AP, none the reference's
        raise ValueError(f"the OKS-NMS threshold must be in (0, 1] (the reference's 0.9), "
                         f"got {nms_threshold}")
    # score = box score × mean of the confidences > 0.2
    scores = coco_eval.rescore(preds["box_scores"], preds["confidences"], threshold=rescore_threshold)
    keep = []
    image_ids = preds["image_ids"]
    for image_id in np.unique(image_ids):
        idx = np.flatnonzero(image_ids == image_id)
        if nms_threshold is None:
            keep.append(idx)
            continue
        # The reference's OKS-NMS uses the crop areas (200·s)² and all K keypoints.
        keep.append(idx[oks_nms(preds["keypoints"][idx], scores[idx], preds["areas"][idx], nms_threshold,
                                sigmas=sigmas)])
    keep = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    if not len(keep):  # no instance at all (e.g. every detection below the score threshold)
        return ([], keep) if return_keep else []
    results = coco_eval.make_results(image_ids[keep], preds["keypoints"][keep], preds["confidences"][keep],
                                     scores[keep])
    return (results, keep) if return_keep else results


def predictions_ap(preds: dict, ground_truth, nms_threshold: float | None = 0.9, results_path=None,
                   img_ids=None, return_results: bool = False):
    """COCO keypoint AP/AR of predictions: rescoring, OKS-NMS, results file, COCOeval.

    Args:
        preds: a ``predict_dataset`` / ``merge_predictions`` dict.
        ground_truth: the ``data.ground_truth.GroundTruth`` predicted on (a dataset's
            ``.ground_truth``); its keypoint spec gives the sigmas of OKS-NMS and COCOeval.
        nms_threshold: see ``predictions_to_results``. results_path: also write the results JSON.
        img_ids: images to evaluate (default: every image of the ground truth, as the reference).
        return_results: also return the results entries evaluated.

    Returns:
        CocoKeypointStats (the ten numbers); with ``return_results``, (stats, results).
    """
    gt = coco_eval.load_ground_truth(ground_truth)
    # OKS-NMS and COCOeval with the keypoint set's sigmas
    results = predictions_to_results(preds, gt.spec.sigmas, nms_threshold)
    if results_path is not None:
        coco_eval.write_results(results, results_path)
    stats = coco_eval.results_ap(gt, results, img_ids=img_ids)
    return (stats, results) if return_results else stats


def model_ap(model, dataset, flip: bool = True, nms_threshold: float | None = 0.9, results_path=None,
             batch_size: int = 32, device=None, progress: bool = False, img_ids=None, num_workers: int = 0,
             codec: HeatmapCodec | None = None):
    """``predict_dataset`` + ``predictions_ap``: the whole test pipeline of the paper.

    ``dataset`` is a ``CocoKeypoints``: its ``codec``, ``spec`` and ``ground_truth`` say how to decode,
    flip and score (``codec`` replaces the dataset's, e.g. to compare decodings).

    Returns:
        (CocoKeypointStats, results): the ten COCO numbers and the results entries evaluated.
    """
    preds = predict_dataset(model, dataset, codec or dataset.codec, dataset.spec, flip=flip,
                            batch_size=batch_size, device=device, progress=progress, num_workers=num_workers)
    return predictions_ap(preds, dataset.ground_truth, nms_threshold, results_path, img_ids,
                          return_results=True)

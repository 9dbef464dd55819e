"""From a checkpoint to COCO keypoint AP: the top-down test pipeline of the paper (§4.1, "Testing").

For every person box (ground truth, or a person detector's box) the crop is run through the
network, optionally together with its mirror image (flip test), the heatmaps are decoded to
keypoints, mapped back to the image with the inverse crop transform, rescored, de-duplicated with
OKS-NMS per image and evaluated with pycocotools::

    crops (N, 3, H, W) ─ HRNet ─▶ heatmaps (N, K, H/4, W/4) ─ flip test ─▶ decode ─▶ (N, K, 2) heatmap px
        ─ inverse crop transform ─▶ (N, K, 2) image px ─ rescore ─▶ OKS-NMS ─▶ results ─ COCOeval ─▶ AP

This module is the one place where that chain is written; training (``train.validate``), the
command line and notebook 08 all call it. ``predict_dataset`` returns plain numpy arrays, so that
under torchrun each rank can predict its shard and rank 0 can ``merge_predictions`` them.

The keypoint set (``keypoints.KeypointSpec``) enters in three places: the flip test swaps the
channels of its ``flip_index``, OKS-NMS and COCOeval use its ``sigmas``; both are taken from the
dataset's ``spec`` (COCO-17 unless the dataset was made with another), or passed explicitly.

Shapes: N person instances, K joints (17 for COCO), H×W the input crop (heatmaps H/4 × W/4).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from hrnet_edu import coco_eval
from hrnet_edu.checkpoints import (
    load_checkpoint_file,
    load_reference_weights,
    published_state_dict,
    resolve_device,
)
from hrnet_edu.errors import InputError
from hrnet_edu.heatmaps import flip_test_average, heatmaps_to_keypoints
from hrnet_edu.keypoints import KeypointSpec, get_spec
from hrnet_edu.oks import oks_nms

PREDICTION_KEYS = ("indices", "image_ids", "ann_ids", "keypoints", "confidences", "box_scores", "areas")


def _base(dataset):
    """The dataset under any number of ``Subset`` wrappers (it holds ``.coco``, ``.sigma``)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def dataset_spec(dataset_or_coco) -> KeypointSpec:
    """The keypoint spec of a dataset (through Subsets), of a ground truth read with one, else COCO-17."""
    base = _base(dataset_or_coco)
    if isinstance(getattr(base, "spec", None), KeypointSpec):
        return base.spec
    coco = getattr(base, "coco", base)
    return get_spec(getattr(coco, "hrnet_edu_checked", {}).get("spec"))


def _base_indices(dataset) -> np.ndarray:
    """(N,) index of each of ``dataset``'s samples in the base dataset (through Subsets)."""
    if isinstance(dataset, Subset):
        return _base_indices(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    return np.arange(len(dataset), dtype=np.int64)


def model_device(model: torch.nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def predict_heatmaps(model, images: torch.Tensor, flip: bool = True, flip_shift: bool = True,
                     flip_index=None) -> torch.Tensor:
    """Heatmaps of a batch of crops, with the flip test.

    Args:
        model: maps (N, 3, H, W) → (N, K, H/4, W/4) (in eval mode; not changed here).
        images: (N, 3, H, W) normalized crops on the model's device.
        flip: also run the mirrored crops and average ``½ (H(x) + flip_back(H(mirror x)))``;
            both go through the network in one batch of 2N.
        flip_shift: the reference's one-column shift in ``flip_back`` (see ``heatmaps``).
        flip_index: (K,) the left ↔ right channel permutation (``KeypointSpec.flip_index``);
            default COCO-17's.

    Returns:
        (N, K, H/4, W/4) float32 heatmaps.
    """
    if not flip:
        return model(images).float()
    n = images.shape[0]
    # mirror x → W − 1 − x: reverse the columns of the crop
    out = model(torch.cat([images, images.flip(-1)])).float()
    flip_index = get_spec(None).flip_index if flip_index is None else flip_index
    return flip_test_average(out[:n], out[n:], shift=flip_shift, flip_index=flip_index)


def predict_dataset(model, dataset, batch_size: int = 32, flip: bool = True, decode: str = "shift",
                    device=None, progress: bool = False, flip_shift: bool = True, sigma: float | None = None,
                    num_workers: int = 0, flip_index=None) -> dict:
    """Run ``model`` over every sample of ``dataset`` and return keypoints in image coordinates.

    Args:
        model: an HRNet (or anything mapping (N, 3, H, W) → (N, K, H/4, W/4)); put in eval mode
            for the pass and restored afterwards.
        dataset: ``CocoKeypoints`` (``train=False``), a ``Subset`` of one (e.g. a rank's shard),
            or any map-style dataset of the same sample dicts.
        batch_size: crops per forward pass (2× that with ``flip``).
        flip: flip test. flip_shift: the reference's one-column shift in the flip test.
        decode: "argmax", "shift" (the reference) or "dark".
        device: where to run; the model is moved there. None: the model's current device.
        progress: show a tqdm progress bar. num_workers: DataLoader workers.
        sigma: target sigma for DARK decoding (default: the dataset's ``sigma``, else 2).
        flip_index: the flip test's channel permutation (default: the dataset's spec's, see
            ``dataset_spec``).

    Returns:
        dict of numpy arrays (the N predicted samples, in the dataset's order):
        ``indices`` (N,) int64 index in the base dataset, ``image_ids`` (N,) int64, ``ann_ids``
        (N,) int64 (−1 for detections), ``keypoints`` (N, K, 2) float64 image pixels,
        ``confidences`` (N, K) float32 heatmap maxima, ``box_scores`` (N,) float32,
        ``areas`` (N,) float64 = (200·s_x)·(200·s_y), the crop area the reference uses in OKS-NMS.
    """
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    if sigma is None:
        sigma = float(getattr(_base(dataset), "sigma", 2.0))
    if flip_index is None:
        flip_index = dataset_spec(dataset).flip_index
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
            for name, value in _predict_batch(model, batch, device, flip, flip_shift, decode, sigma,
                                              flip_index).items():
                parts[name].append(value)
    finally:
        model.train(was_training)
    num_joints = getattr(getattr(model, "cfg", None), "num_joints", 17)
    return _concatenate(parts, _base_indices(dataset), num_joints)


def _predict_batch(model, batch: dict, device, flip: bool, flip_shift: bool, decode: str,
                   sigma: float, flip_index) -> dict:
    """One loader batch → its predictions (numpy; keypoints in image pixels), ``PREDICTION_KEYS[1:]``."""
    images = batch["image"].to(device, non_blocking=True)
    heatmaps = predict_heatmaps(model, images, flip, flip_shift, flip_index)  # (N, K, h, w)
    keypoints, conf = heatmaps_to_keypoints(heatmaps, batch["center"], batch["scale"],
                                            batch["rotation"], decode, sigma)
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


def predictions_to_results(preds: dict, nms_threshold: float | None = 0.9, rescore_threshold: float = 0.2,
                           return_keep: bool = False, sigmas=None):
    """Rescore, apply OKS-NMS per image and build COCO results entries (the reference's ``evaluate``).

    Args:
        preds: a ``predict_dataset`` (or ``merge_predictions``) dict.
        nms_threshold: OKS above which a pose of the same image is suppressed (0.9); None: no NMS.
        rescore_threshold: keypoints with confidence above it enter the instance score (0.2).
        return_keep: also return the (M,) indices into ``preds`` of the kept poses.
        sigmas: (K,) the OKS constants of OKS-NMS (``KeypointSpec.sigmas``); default COCO-17's.

    Returns:
        list of M results entries (``coco_eval.make_results``), image by image; and ``keep``.
    """
    # score = box score × mean of the confidences > 0.2
    scores = coco_eval.rescore(preds["box_scores"], preds["confidences"], threshold=rescore_threshold)
    sigmas = get_spec(None).sigmas if sigmas is None else sigmas
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


def predictions_ap(preds: dict, dataset_or_coco, nms_threshold: float | None = 0.9, results_path=None,
                   img_ids=None, return_results: bool = False, spec=None):
    """COCO keypoint AP/AR of predictions: rescoring, OKS-NMS, results file, COCOeval.

    Args:
        preds: a ``predict_dataset`` / ``merge_predictions`` dict.
        dataset_or_coco: the dataset predicted (its ``.coco`` is the ground truth), a pycocotools
            ``COCO`` or the path of an annotation file.
        nms_threshold: see ``predictions_to_results``. results_path: also write the results JSON.
        img_ids: images to evaluate (default: every image of the ground truth, as the reference).
        return_results: also return the results entries evaluated.
        spec: the keypoint set, whose sigmas OKS-NMS and COCOeval use; default: the dataset's
            (``dataset_spec``).

    Returns:
        CocoKeypointStats (the ten numbers); with ``return_results``, (stats, results).
    """
    coco_gt = getattr(_base(dataset_or_coco), "coco", dataset_or_coco)
    # OKS-NMS and COCOeval with the keypoint set's sigmas
    spec = dataset_spec(dataset_or_coco) if spec is None else get_spec(spec)
    results = predictions_to_results(preds, nms_threshold, sigmas=spec.sigmas)
    if results_path is not None:
        coco_eval.write_results(results, results_path)
    stats = coco_eval.results_ap(coco_gt, results, img_ids=img_ids, spec=spec)
    return (stats, results) if return_results else stats


def model_ap(model, dataset, flip: bool = True, decode: str = "shift", nms_threshold: float | None = 0.9,
             results_path=None, batch_size: int = 32, device=None, progress: bool = False, img_ids=None,
             **predict_kwargs):
    """``predict_dataset`` + ``predictions_ap``: the whole test pipeline of the paper.

    Returns:
        (CocoKeypointStats, results): the ten COCO numbers and the results entries evaluated.
    """
    preds = predict_dataset(model, dataset, batch_size=batch_size, flip=flip, decode=decode, device=device,
                            progress=progress, **predict_kwargs)
    return predictions_ap(preds, dataset, nms_threshold, results_path, img_ids, return_results=True)


# ----------------------------------------------------------------------------- checkpoints
def load_checkpoint(path, config=None, device="cpu", overrides=()):
    """A model ready for evaluation from one of our checkpoints or a reference ``.pth``.

    Args:
        path: ``train``'s ``best.pt`` / ``last.pt`` (a dict with "model" and "config"), a plain
            state dict such as the reference's published ``pose_hrnet_w32_256x192.pth``, mmpose's
            published file, or a ``weights`` catalogue name or URL (fetched into the cache).
        config: a ``TrainConfig`` or preset name. Required for published files not named like a
            catalogue model (they do not say their input size); for our checkpoints it overrides
            the stored config.
        device: where to put the model.
        overrides: ``key=value`` items applied to that config (``overrides.apply_overrides``)
            before the network is built, e.g. ``["data_root=/data/coco"]``.

    Returns:
        (model in eval mode, TrainConfig).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a published file without ``config`` whose input size is unknown, or weights of
            another architecture than the config's (the message lists the missing / unexpected /
            mis-shaped keys).
    """
    from hrnet_edu.configs import get_config
    from hrnet_edu.model import build_model
    from hrnet_edu.overrides import apply_overrides, config_from_dict
    from hrnet_edu.weights import published_model_config, resolve

    path = resolve(os.fspath(path))  # a weights catalogue name or URL: its (downloaded) cached file
    state = load_checkpoint_file(path)  # "not a checkpoint: PATH (reason)" for anything unreadable
    if not isinstance(state, dict):
        raise InputError(f"not a checkpoint: {path} (holds a {type(state).__name__}, not a state dict)")
    ours = isinstance(state.get("config"), dict) and "model" in state
    if config is None:
        # a published file (mmpose's, the reference's) has no config: its catalogue entry gives it
        cfg = config_from_dict(state["config"]) if ours else published_model_config(path, state)
    else:
        cfg = get_config(config) if isinstance(config, str) else config
    cfg = apply_overrides(cfg, list(overrides))
    model = build_model(cfg.model)
    try:
        load_reference_weights(model, published_state_dict(state))  # mmpose's key names → ours
    except ValueError as err:
        # first line: the verdict with the counts ("missing: none, unexpected: none, mis-shaped
        # (236)"); then load_reference_weights' listing of the keys
        counts = [line.strip().rstrip(":") for line in str(err).splitlines()
                  if line.startswith("  ") and not line.startswith("    ")]
        raise InputError(f"checkpoint {path} is not an HRNet of config {cfg.name!r} (model {cfg.model}): "
                         f"{', '.join(counts)}\n{err}") from None
    return model.eval().to(device), cfg


def runtime_model(model, cfg, runtime: str, onnx_path=None, device="cpu"):
    """The network the commands run: ``model`` itself (runtime "torch"), or for "onnx" an
    ``export.OnnxRunner`` of it (ONNX Runtime, CPU only). Returns (network, device)."""
    if runtime == "torch":
        if onnx_path is not None:
            raise ValueError("--onnx needs --runtime onnx")
        return model, device
    if torch.device(device).type != "cpu":
        raise ValueError(f"--runtime onnx runs on the CPU only, got --device {device}")
    from hrnet_edu.export import onnx_runner_for

    return onnx_runner_for(model, cfg, onnx_path), torch.device("cpu")


def runtime_device(device: str, runtime: str) -> torch.device:
    """``checkpoints.resolve_device``, where "auto" means the CPU for ONNX Runtime (it runs there)."""
    return resolve_device("cpu" if runtime == "onnx" and device == "auto" else device)


def check_output_file(path, what: str = "--out") -> None:
    """Refuse an output path that cannot be a file before the work, not after it."""
    if path is None:
        return
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise InputError(f"{what} {path} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise InputError(f"{what} {path}: {parent} is not a folder")


def _skip_note(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


# ----------------------------------------------------------------------------- what the command runs
def results_file_ap(results, ann=None, config=None, overrides=(), out=None, keypoints=None):
    """The ten COCO numbers of a results JSON file (``hrnet-edu evaluate --results``).

    The ground truth is ``ann``, or else the ``val_ann`` of the preset ``config`` (with ``overrides``
    applied, e.g. ``data_root=...``); InputError when neither says which ground truth. The keypoint
    set is ``keypoints`` (a spec or built-in name), else the config's, else COCO-17.

    Returns:
        (CocoKeypointStats, one line saying what was evaluated).
    """
    from hrnet_edu.configs import get_config
    from hrnet_edu.overrides import apply_overrides

    check_output_file(out)
    if config is None and overrides:
        raise InputError(f"key=value overrides ({' '.join(overrides)}) need --config: they change a preset")
    cfg = apply_overrides(get_config(config), list(overrides)) if config is not None else None
    if ann is None:
        if cfg is None:
            raise InputError("--results needs its ground truth: --ann FILE, or --config NAME (its val_ann)")
        ann = cfg.val_path(cfg.val_ann)
    spec = get_spec(keypoints if keypoints is not None else cfg.spec if cfg is not None else None)
    coco_gt = coco_eval.load_coco(ann, spec)
    stats = coco_eval.results_ap(coco_gt, results, spec=spec)
    ignored = _skip_note(coco_gt.hrnet_edu_checked["counts"])
    return stats, f"results {results} on {ann} (ground truth not evaluated: {ignored})"


def checkpoint_ap(checkpoint, config=None, overrides=(), ann=None, images=None, boxes="gt",
                  flip: bool = True, decode: str = "shift", nms_threshold: float | None = 0.9,
                  results_path=None, batch_size: int = 32, device="auto", workers: int = 2,
                  runtime: str = "torch", onnx_path=None, skip_bad_images: bool = False,
                  progress: bool = False):
    """The ten COCO numbers of a checkpoint on a validation set (``hrnet-edu evaluate --checkpoint``).

    Args:
        checkpoint, config, overrides: see ``load_checkpoint`` (the checkpoint is read once).
        ann, images: a COCO-format keypoint file and its image folder, given together; default:
            the config's ``val_ann`` / ``val_images``.
        boxes: "gt" or a COCO person-detection results file. flip, decode, nms_threshold,
            results_path, batch_size: see ``model_ap``. workers: DataLoader workers.
        device: "auto", "cpu", "cuda", "cuda:N". runtime: "torch", or "onnx" (ONNX Runtime on the
            CPU; ``onnx_path``: an exported graph of this checkpoint, else it is exported first).
        skip_bad_images: leave out missing / unreadable images (counted in the line returned, and
            left out of the evaluation) instead of stopping. progress: a tqdm bar.

    Returns:
        (CocoKeypointStats, one line of the settings: config, instances, skipped, flip, decode, ...).
    """
    from hrnet_edu.data.coco import CocoKeypoints

    check_output_file(results_path)
    if (ann is None) != (images is None):
        raise InputError("--ann and --images go together: the annotation file and its image folder")
    device = runtime_device(device, runtime)
    model, cfg = load_checkpoint(checkpoint, config, device=device, overrides=overrides)
    # --ann/--images: any COCO-format set, whatever file names the checkpoint's config was trained with
    if ann is None:
        ann, images = cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images)
    dataset = CocoKeypoints(ann, images, input_size=cfg.input_size,
                            sigma=cfg.sigma, heatmap_stride=cfg.heatmap_stride, train=False, augment=None,
                            boxes=boxes, spec=cfg.spec)  # the checkpoint's keypoint set
    dataset.check_images(skip_bad_images)  # every image's header, before the long part
    if len(dataset) == 0:
        raise InputError(f"nothing to evaluate: no instances in {ann} ({boxes} boxes; skipped: "
                         f"{_skip_note(dataset.num_skipped)})")
    model, device = runtime_model(model, cfg, runtime, onnx_path, device)
    # images left out by skip_bad_images are left out of the evaluation too (their persons
    # would count as missed); the settings line says how many
    img_ids = None
    if dataset.unreadable_image_ids:
        img_ids = sorted(set(dataset.image_ids) - set(dataset.unreadable_image_ids))
    stats, _ = model_ap(model, dataset, flip=flip, decode=decode, nms_threshold=nms_threshold,
                        results_path=results_path, batch_size=batch_size, device=device,
                        progress=progress, num_workers=workers, img_ids=img_ids)
    settings = (f"{cfg.name} ({cfg.spec.name}): {len(dataset)} instances ({boxes} boxes) of {ann}, skipped: "
                f"{_skip_note(dataset.num_skipped)}; flip={flip}, "
                f"decode={decode}, input {cfg.input_size[0]}x{cfg.input_size[1]}, device {device}, "
                f"runtime {runtime}"
                + (f", results → {results_path}" if results_path else ""))
    return stats, settings

"""What ``hrnet-edu evaluate`` runs: a checkpoint (or a results file) → the ten COCO numbers and one
line saying exactly what was evaluated.

The test pipeline itself is ``evaluate``; the checkpoint → model step is ``checkpoints.load_checkpoint``.
This module joins them for the command line (``cli.py`` parses, this runs): which ground truth,
which runtime (PyTorch or ONNX Runtime), which decoding — the checkpoint's codec unless told
otherwise — and the settings line that names them.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from hrnet_edu import coco_eval
from hrnet_edu.checkpoints import load_checkpoint, resolve_device
from hrnet_edu.errors import InputError
from hrnet_edu.evaluate import model_ap
from hrnet_edu.keypoints import get_spec


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


def results_file_ap(results, ann=None, config=None, overrides=(), out=None, keypoints=None):
    """The ten COCO numbers of a results JSON file (``hrnet-edu evaluate --results``).

    The ground truth is ``ann``, or else the ``val_ann`` of the preset ``config`` (with ``overrides``
    applied, e.g. ``data_root=...``); InputError when neither says which ground truth. The keypoint
    set is ``keypoints`` (a spec or built-in name), else the config's, else COCO-17 (the results
    file format's own: COCO's person keypoints), which the settings line names.

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
    spec = get_spec(keypoints if keypoints is not None else cfg.spec if cfg is not None else "coco17")
    gt = coco_eval.load_ground_truth(ann, spec)
    stats = coco_eval.results_ap(gt, results)
    ignored = _skip_note(gt.counts)
    return stats, f"results {results} on {ann} ({spec.name}; ground truth not evaluated: {ignored})"


def checkpoint_ap(checkpoint, config=None, overrides=(), ann=None, images=None, boxes="gt",
                  flip: bool = True, decode: str | None = None, nms_threshold: float | None = 0.9,
                  results_path=None, batch_size: int = 32, device="auto", workers: int = 2,
                  runtime: str = "torch", onnx_path=None, skip_bad_images: bool = False,
                  progress: bool = False):
    """The ten COCO numbers of a checkpoint on a validation set (``hrnet-edu evaluate --checkpoint``).

    Args:
        checkpoint, config, overrides: see ``checkpoints.load_checkpoint`` (the checkpoint is read once).
        ann, images: a COCO-format keypoint file and its image folder, given together; default:
            the config's ``val_ann`` / ``val_images``.
        boxes: "gt" or a COCO person-detection results file. flip, nms_threshold, results_path,
            batch_size: see ``evaluate.model_ap``. workers: DataLoader workers.
        decode: "argmax", "shift" or "dark"; None: the checkpoint's own (its codec's ``decoding``).
        device: "auto", "cpu", "cuda", "cuda:N". runtime: "torch", or "onnx" (ONNX Runtime on the
            CPU; ``onnx_path``: an exported graph of this checkpoint, else it is exported first).
        skip_bad_images: leave out missing / unreadable images (counted in the line returned, and
            left out of the evaluation) instead of stopping. progress: a tqdm bar.

    Returns:
        (CocoKeypointStats, one line of the settings: config, instances, files, skipped, flip,
        decoding, NMS threshold, ...).
    """
    check_output_file(results_path)
    if (ann is None) != (images is None):
        raise InputError("--ann and --images go together: the annotation file and its image folder")
    device = runtime_device(device, runtime)
    model, cfg = load_checkpoint(checkpoint, config, device=device, overrides=overrides)
    _refuse_overrides_that_miss_the_evaluation(cfg, overrides, given_files=ann is not None)
    codec = cfg.codec if decode is None else dataclasses.replace(cfg.codec, decoding=decode)
    # --ann/--images: any COCO-format set, whatever file names the checkpoint's config was trained with
    if ann is None:
        ann, images = cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images)
    dataset = _evaluation_set(ann, images, codec, cfg.spec, boxes, skip_bad_images)
    model, device = runtime_model(model, cfg, runtime, onnx_path, device)
    # images left out by skip_bad_images are left out of the evaluation too (their persons
    # would count as missed); the settings line says how many
    img_ids = None
    if dataset.unreadable_image_ids:
        img_ids = sorted(set(dataset.image_ids) - set(dataset.unreadable_image_ids))
    stats, _ = model_ap(model, dataset, flip=flip, nms_threshold=nms_threshold, results_path=results_path,
                        batch_size=batch_size, device=device, progress=progress, num_workers=workers,
                        img_ids=img_ids)
    source = "the checkpoint's" if decode is None else "--decode"
    settings = (f"{cfg.name} ({cfg.spec.name}): {len(dataset)} instances ({boxes} boxes) of {ann}, images "
                f"{images}, skipped: {_skip_note(dataset.num_skipped)}; flip={flip}, {codec.describe()} "
                f"({source}), NMS threshold {nms_threshold}, input {cfg.input_size[0]}x{cfg.input_size[1]}, "
                f"device {device}, runtime {runtime}"
                + (f", results → {results_path}" if results_path else ""))
    return stats, settings


def _refuse_overrides_that_miss_the_evaluation(cfg, overrides, given_files: bool) -> None:
    """An override that would not change what is evaluated is refused, never dropped: ``data_root=``
    when the validation set is read from ``val_root`` (the CPU recipe's bundled split), or any data
    folder override next to ``--ann/--images``."""
    keys = {item.split("=", 1)[0].strip() for item in overrides}
    data_keys = sorted(keys & {"data_root", "val_root", "val_ann", "val_images"})
    if given_files and data_keys:
        raise InputError(f"{', '.join(k + '=' for k in data_keys)} and --ann/--images both say what to "
                         "evaluate: give one of them")
    if "data_root" in keys and cfg.val_root is not None and "val_root" not in keys:
        raise InputError(f"data_root= does not reach the evaluation: config {cfg.name!r} reads its "
                         f"validation set from val_root={cfg.val_root}; override val_root=... (with "
                         "val_ann=..., val_images=...) or give --ann FILE --images FOLDER")


def _evaluation_set(ann, images, codec, spec, boxes, skip_bad_images: bool):
    """The ``CocoKeypoints`` evaluation set of a checkpoint, its images' headers checked first."""
    from hrnet_edu.data.coco import CocoKeypoints

    dataset = CocoKeypoints(ann, images, codec=codec, spec=spec, train=False, augment=None, boxes=boxes)
    dataset.check_images(skip_bad_images)  # every image's header, before the long part
    if len(dataset) == 0:
        raise InputError(f"nothing to evaluate: no instances in {ann} ({boxes} boxes; skipped: "
                         f"{_skip_note(dataset.num_skipped)})")
    return dataset

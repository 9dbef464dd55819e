"""Checkpoint files: writing them atomically, reading ours and the reference's, building the network
a checkpoint describes, and the device to load onto.

Every ``torch.save`` and ``torch.load`` of hrnet-edu is in this module, and so is checkpoint → model
(``load_checkpoint``).

* Our training checkpoints (``OUT/last.pt`` every epoch, ``OUT/best.pt`` on a new best AP) are dicts
  ``{"model", "optimizer", "scheduler", "scaler", "epoch", "best_ap", "config", "metrics", "rng"}``
  (``CHECKPOINT_KEYS``) with ``epoch`` = the number of completed epochs and ``config`` =
  ``dataclasses.asdict(TrainConfig)``, and ``codec`` = ``dataclasses.asdict`` of its
  ``heatmaps.HeatmapCodec`` (how its heatmaps are encoded and decoded; older checkpoints without it
  get the one their config builds); exported weights (``export_weights``) keep ``model``, ``config``
  and ``codec``.
* The reference implementation's published weights (``pose_hrnet_w32_256x192.pth`` …) are plain
  state dicts; our module names are the reference's, so they load strictly with
  ``load_reference_weights`` and no renaming (it also accepts ours, ``{"state_dict": …}`` and
  ``module.``-prefixed keys).
* Writing is atomic (``runfolder.atomic_write``: a temporary file, fsync, ``os.replace``), so a
  run killed while saving leaves the previous complete file, never a truncated one.
* Reading uses ``torch.load(weights_only=True)`` on the CPU: a checkpoint cannot run code, and
  anything that is not one becomes one line, "not a checkpoint: PATH (reason)".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hrnet_edu.errors import InputError
from hrnet_edu.runfolder import atomic_write

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "best_ap", "config", "codec",
                   "metrics", "rng")


# ----------------------------------------------------------------------------- writing
def save_checkpoint(state: dict, path: str) -> None:
    """``torch.save(state, path)`` atomically: write ``path.<pid>.tmp``, fsync, then ``os.replace`` it.

    ``os.replace`` is atomic on POSIX, so readers (and a resumed run) see either the old complete
    file or the new complete file, never a partial one (``runfolder.atomic_write``); Windows
    replaces the file in one call too, without POSIX's written guarantee.
    """
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def export_weights(checkpoint: str, path: str, record: dict) -> None:
    """Write ``path`` = {"model": fp32 state dict, "config"} of a training checkpoint, and ``path``
    with .json = ``record`` (how the weights were made); both atomically."""
    state = load_checkpoint_state(checkpoint)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_checkpoint({k: state[k] for k in ("model", "config", "codec") if k in state}, path)

    def write_record(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)

    atomic_write(os.path.splitext(path)[0] + ".json", write_record)


# ----------------------------------------------------------------------------- reading
def load_checkpoint_file(path) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, any failure as "not a checkpoint: PATH (reason)".

    torch answers random bytes with an IndexError, an empty file with a bare EOFError, a truncated
    one with a zip-reader message, and other pickles with advice to pass ``weights_only=False``
    — which would let the file run code, so it is never passed on.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"not a checkpoint: {path} (a folder)")
    if os.path.getsize(path) == 0:
        raise InputError(f"not a checkpoint: {path} (empty file)")
    with open(path, "rb") as f:
        head = f.read(4)
    zipped = head == b"PK\x03\x04"  # torch.save's format is a zip archive
    try:
        # numpy arrays are data too: mmpose's published files keep some in their "meta"
        with torch.serialization.safe_globals(numpy_array_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:  # torch raises anything from IndexError to RuntimeError here
        text = str(err)
        global_name = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
        if global_name or "Unsupported global" in text:
            # a pickled object the safe loader refuses (a class, a function such as os.system):
            # never loaded, whatever else the file holds
            name = global_name.group(1) if global_name else "?"
            reason = f"not a plain-tensor checkpoint: it holds Python objects ({name}) besides tensors and " \
                     "plain containers; refused, as loading them could run code"
        elif not zipped and head[:1] == b"\x80":  # pickle's PROTO opcode: a bare pickle, not torch.save's zip
            reason = ("not a plain-tensor checkpoint: a bare Python pickle; refused, as loading it could "
                      "run code")
        elif zipped or "zip archive" in text or "central directory" in text:
            reason = "truncated or corrupted: not a complete PyTorch zip archive"
        else:
            reason = f"not a PyTorch checkpoint file: {type(err).__name__}"
        raise InputError(f"not a checkpoint: {path} ({reason})") from None


def load_checkpoint_state(path: str, map_location="cpu") -> dict:
    """A checkpoint written by ``train`` or ``export_weights``: the dict, weights on ``map_location``.

    FileNotFoundError for no file; InputError "not a checkpoint: PATH (reason)" for anything else
    that is not a dict (random bytes, an empty or truncated file, a bare tensor).
    """
    state = load_checkpoint_file(path)
    if not isinstance(state, dict):
        raise InputError(f"not a checkpoint: {path} (holds a {type(state).__name__}, not a dict)")
    if map_location != "cpu":
        state["model"] = {k: v.to(map_location) for k, v in state["model"].items()}
    return state


def state_dict_of(obj) -> dict:
    """A raw state dict, or {"state_dict": …} / {"model": …} (ours), "module." prefixes stripped."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else "—"
        raise ValueError("not a state dict: expected a mapping name → tensor (or one under 'state_dict' "
                         f"or 'model'), got {type(obj).__name__} with keys {keys}")
    # DataParallel / DistributedDataParallel save every key as "module.<name>".
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_reference_weights(model: nn.Module, state_dict_or_path) -> nn.Module:
    """Load a checkpoint in the reference format (or ours) strictly into ``model``; return the model.

    Args:
        model: an ``HRNet`` whose config matches the checkpoint (width, joints, stages).
        state_dict_or_path: a path to a ``.pth`` file (read with ``torch.load(weights_only=True)``
            onto the CPU), a state dict, or a dict holding one under "state_dict" or "model".
    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: keys are missing, unexpected or of another shape; the message lists them.
    A missing BatchNorm ``num_batches_tracked`` counter (old PyTorch checkpoints) is allowed: it is
    not used in training mode with a fixed momentum nor in evaluation.
    """
    source = "state dict"
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        source = os.fspath(state_dict_or_path)
        state_dict_or_path = load_checkpoint_file(source)
    state = state_dict_of(state_dict_or_path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or misshaped:
        def listing(title, items):
            more = f"\n    … and {len(items) - 20} more" if len(items) > 20 else ""
            shown = "\n    ".join(items[:20]) + more
            return f"  {title} ({len(items)}):\n    {shown}" if items else f"  {title}: none"
        raise ValueError(f"checkpoint ({source}) does not match the model "
                         f"({type(model).__name__}, {len(expected)} state-dict entries):\n"
                         + "\n".join([listing("missing", missing), listing("unexpected", unexpected),
                                      listing("mis-shaped", misshaped)]))
    model.load_state_dict(state, strict=False)  # key sets checked above (num_batches_tracked may be absent)
    return model


def transfer_weights(model: nn.Module, state_dict_or_checkpoint, source_spec, target_spec) -> dict:
    """Load weights trained on one keypoint set into ``model``, built for another (fine-tuning).

    Only the last 1×1 convolution, ``final_layer``, depends on the keypoint set: its weight is
    (K, C, 1, 1) and its bias (K,), one row per heatmap. Every other tensor is loaded as it is
    (strictly, as ``load_reference_weights``); row j of the head comes from the source's row of the
    joint with the same name (``target_spec.index_in(source_spec)``), and the rows of joints the
    source does not have keep ``model``'s own initialisation. With equal specs this is a plain
    strict load.

    Args:
        model: the network for ``target_spec`` (K_target heatmaps), initialised.
        state_dict_or_checkpoint: a state dict, or one of our checkpoints ({"model": …}).
        source_spec, target_spec: KeypointSpecs or built-in names (``keypoints.get_spec``).

    Returns:
        {"copied": target joint names whose head rows were copied, "new": those left initialised}.
    Raises:
        ValueError: the head does not have the source's K rows, or another tensor does not match.
    """
    from hrnet_edu.keypoints import get_spec

    source, target = get_spec(source_spec), get_spec(target_spec)
    state = dict(state_dict_of(state_dict_or_checkpoint))
    own = model.state_dict()
    index = target.index_in(source)  # (K_target,) source row of each target joint, −1 for none
    for key in (k for k in own if k.split(".")[0] == "final_layer"):
        if key not in state:
            continue  # reported as missing by load_reference_weights
        if state[key].shape[0] != source.num_joints or own[key].shape[0] != target.num_joints:
            raise ValueError(f"{key}: the weights have {state[key].shape[0]} rows and the model "
                             f"{own[key].shape[0]}, not the {source.num_joints} of keypoint spec "
                             f"{source.name!r} and the {target.num_joints} of {target.name!r}")
        rows = own[key].clone()
        for j, i in enumerate(index):
            if i >= 0:
                rows[j] = state[key][i]  # the head row of the joint of the same name
        state[key] = rows
    load_reference_weights(model, state)
    return {"copied": [n for n, i in zip(target.names, index) if i >= 0],
            "new": [n for n, i in zip(target.names, index) if i < 0]}


# ----------------------------------------------------------------------------- checkpoint → model
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
            before the network is built, e.g. ``["val_decode=shift"]``.

    Returns:
        (model in eval mode, TrainConfig). The config's ``codec`` is the checkpoint's: the stored
        one where the file has it (it must agree with the config's), else the config's own.

    Raises:
        FileNotFoundError: no file at ``path``.
        InputError: not a checkpoint, a published file without ``config`` whose input size is
            unknown, or weights of another architecture than the config's (the message lists the
            missing / unexpected / mis-shaped keys).
    """
    from hrnet_edu.configs import get_config
    from hrnet_edu.model import build_model
    from hrnet_edu.overrides import apply_overrides, config_from_dict
    from hrnet_edu.weights import resolve

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
    _check_stored_codec(state, cfg, path, overridden=config is not None or bool(overrides))
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


def _check_stored_codec(state: dict, cfg, path: str, overridden: bool) -> None:
    """A stored codec must be the one the stored config builds (a file edited by hand, or written by
    another version, would otherwise be decoded one way and reported another)."""
    from hrnet_edu.heatmaps import HeatmapCodec

    stored = state.get("codec")
    if not isinstance(stored, dict) or overridden:
        return  # older checkpoints: the config's codec; overrides change the config on purpose
    if HeatmapCodec.from_dict(stored) != cfg.codec:
        raise InputError(f"checkpoint {path}: its stored codec {stored} disagrees with the one its config "
                         f"builds ({cfg.codec})")


# ----------------------------------------------------------------------------- device
def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The device called ``name``: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N", "mps".

    InputError for anything else, or for CUDA where there is none (torch would fail later, at the
    first tensor moved there). ``local_rank`` (a torchrun process): a bare "cuda" becomes
    ``cuda:local_rank``, and the CUDA device is made the current one.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name} but CUDA is not available here (use cpu or auto)")
    if device.type == "cuda" and local_rank is not None:
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


# ----------------------------------------------------------------------------- published files
# mmpose's top-down models keep the reference's module names below two prefixes: the backbone
# (``mmpose/models/backbones/hrnet.py``: conv1, bn1, conv2, bn2, layer1, transition1, stage2, …,
# the same nesting) under "backbone.", and the 1×1 heatmap convolution under "head.final_layer."
# (mmpose 1.x ``HeatmapHead`` with ``deconv_out_channels=None``: no other tensors) or
# "keypoint_head.final_layer." (0.x ``TopdownHeatmapSimpleHead`` with no deconvolutions).
MMPOSE_PREFIXES = (("backbone.", ""), ("head.final_layer.", "final_layer."),
                   ("keypoint_head.final_layer.", "final_layer."))

# What the reference initializes from an ImageNet network (its PRETRAINED_LAYERS): the stem, stage 1,
# the transitions and stages 2–4, chosen by the first part of the key. The classifier's own parts
# (incre_modules, downsamp_modules, its final_layer, classifier) are not in the list.
PRETRAINED_LAYERS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2",
                     "stage3", "transition3", "stage4")


def published_state_dict(obj) -> dict:
    """Our key names for a published file's state dict: mmpose's 1.x / 0.x layout renamed
    (``MMPOSE_PREFIXES``); the reference's ``.pth`` and our checkpoints, which already use our
    names, come back as ``state_dict_of`` gives them."""
    renamed = {}
    for key, value in state_dict_of(obj).items():
        if key.startswith("data_preprocessor."):
            continue  # mmpose's input mean / std (ImageNet's, as ours), dropped by its own publishing script
        for old, new in MMPOSE_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        renamed[key] = value
    return renamed


def published_width(state_dict: Mapping) -> int | None:
    """C, the width of branch 0, from the first transition (``transition1.0.0.weight`` (C, 256, 3, 3))."""
    weight = state_dict.get("transition1.0.0.weight")
    return int(weight.shape[0]) if weight is not None else None


def load_pretrained_backbone(model: nn.Module, state_dict_or_path) -> dict:
    """Initialize ``model`` from an ImageNet HRNet as the reference does; return what was loaded.

    A tensor is loaded when the first part of its key is in ``PRETRAINED_LAYERS`` and the pose
    network has that key; it must then have the same shape (else ValueError, one line). Skipped,
    and counted by reason: keys of other layers (the classification head) and keys the pose network
    does not have (the classifier's last stage-4 module keeps all four branches' exchange units,
    ours only the one that feeds branch 0). Everything not loaded keeps its initialization.

    Returns:
        {"loaded": n tensors, "skipped": {"not in PRETRAINED_LAYERS": n, "not in the pose network": n},
        "missing": n backbone tensors of ``model`` the file lacks (left initialized),
        "source": the path or "state dict"}.
    """
    source = "state dict"
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        source = os.fspath(state_dict_or_path)
        state_dict_or_path = load_checkpoint_file(source)
    try:
        state = published_state_dict(state_dict_or_path)
    except ValueError as err:
        raise InputError(f"{source}: {str(err).splitlines()[0]}") from None
    own = model.state_dict()
    chosen = {k: v for k, v in state.items() if k.split(".")[0] in PRETRAINED_LAYERS}
    wanted = {k: v for k, v in chosen.items() if k in own}
    misshaped = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in wanted.items()
                 if v.shape != own[k].shape]
    if misshaped:
        raise InputError(f"{source}: {len(misshaped)} backbone tensors do not fit this network (another "
                         f"width?), e.g. {misshaped[0]}")
    model.load_state_dict(wanted, strict=False)
    absent = [k for k in own if k.split(".")[0] in PRETRAINED_LAYERS and k not in state
              and not k.endswith("num_batches_tracked")]
    return {"loaded": len(wanted), "source": source, "missing": len(absent),
            "skipped": {"not in PRETRAINED_LAYERS": len(state) - len(chosen),
                        "not in the pose network": len(chosen) - len(wanted)}}


def numpy_array_globals() -> list:
    """What unpickling a numeric numpy array or scalar needs (its reconstructor, ``ndarray``, the dtypes),
    for ``torch.serialization.safe_globals``; also under numpy 1.x's module name ``numpy.core``, which
    files written with numpy 1 carry. Object arrays stay refused: their elements are pickled objects."""
    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    found = [np.ndarray, np.dtype, *(getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")
                                     and n != "ObjectDType")]
    for name in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, name)
        found += [fn, (fn, f"numpy.core.multiarray.{name}")]
    return found


def initialize_backbone(model, name_or_path: str, progress: bool = True) -> dict:
    """``TrainConfig.pretrained``: fetch the ImageNet HRNet if needed (``resolve``) and load its backbone
    into ``model`` (``load_pretrained_backbone``); returns its report (counts loaded and
    skipped by reason) with ``name``."""
    from hrnet_edu.weights import resolve

    path = resolve(name_or_path, progress)
    return {"name": name_or_path, **load_pretrained_backbone(model, path)}


def published_model_config(path: str, state):
    """The ``TrainConfig`` of a published file without one (mmpose's, the reference's), from the
    catalogue model its name carries (``entry_for_file``); InputError asking for ``--config`` when the
    name says nothing (its width is in the file, its input size is not)."""
    from hrnet_edu.weights import entry_for_file, published_config

    w = entry_for_file(path)
    if w is not None:
        return published_config(w)
    try:
        width = published_width(published_state_dict(state))
    except ValueError:
        width = None
    what = f"an HRNet-W{width}" if width else "weights"
    preset = "coco_w48_384x288" if width == 48 else "coco_w32_256x192"
    raise InputError(f"{path} holds {what} without a config and is not named like a catalogue model, so its "
                     f"input size is unknown: name the architecture with --config (e.g. --config {preset})")

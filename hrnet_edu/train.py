"""The training loop: Adam + step schedule on the weighted heatmap MSE (paper §4.1), on 1 or N GPUs.

One epoch = one pass over the training crops: forward (N, 3, H, W) → heatmaps (N, K, H/4, W/4),
loss against the Gaussian targets (``losses.py``), backward, Adam step; every ``val_every``
epochs the network is evaluated with COCO AP (``evaluate.py``), and a checkpoint is written.

What a reader should find here, in order: distributed set-up (torchrun), seeding, the data
loaders, one epoch, validation, the run folder's log and ``train`` (which ties them together);
``hrnet-edu train --config NAME [--out DIR] [--resume] [key=value ...]`` (``cli.py``) calls it.

Reproducibility. At the start of every epoch the torch / numpy / python generators are seeded
from (seed, epoch, rank): the data order and the augmentations of epoch e then do not depend on
how many epochs this process has already run, which is what lets ``--resume`` continue a killed
run bit for bit (on CPU with ``torch.use_deterministic_algorithms(True)``; cuDNN kernels are not
bit-reproducible by default). The generator states are stored in the checkpoint too.

Checkpoints: ``out_dir/last.pt`` every epoch, ``out_dir/best.pt`` on a new best AP, written
atomically; what they hold and how they are written and read is ``checkpoints.py``.

The run folder (``runfolder.py``): one run at a time (a lock naming the holder's PID); a folder
holding a run is reused only with ``--resume`` (its own config; overrides that change it need
``--apply-changes``, which logs them) or ``--overwrite``; every file — checkpoints, ``log.jsonl``,
``config.json`` — is replaced atomically, ``best.pt`` before ``last.pt``, so a kill at any moment
leaves loadable files that agree with each other.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from functools import partial

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from hrnet_edu.checkpoints import (
    CHECKPOINT_KEYS,
    initialize_backbone,
    load_checkpoint_state,
    resolve_device,
    save_checkpoint,
    transfer_weights,
)
from hrnet_edu.configs import TrainConfig
from hrnet_edu.cpu_settings import choose as choose_machine_settings
from hrnet_edu.data.transforms import GpuBatchTransform, gpu_collate
from hrnet_edu.errors import InputError
from hrnet_edu.losses import JointsMSELoss, JointsOHKMLoss
from hrnet_edu.model import build_model
from hrnet_edu.overrides import config_changes, config_from_dict
from hrnet_edu.runfolder import (
    RunLock,
    append_log_record,
    atomic_write_text,
    check_run_folder,
    clean_stale_temporaries,
    read_log,
)


# ----------------------------------------------------------------------------- distributed set-up
@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a torchrun job: rank r of world_size processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> tuple[DistInfo, bool]:
    """Join the process group when launched by torchrun (env RANK / WORLD_SIZE), else single process.

    Returns (info, created): ``created`` is True when this call initialised the group (and so
    ``train`` must destroy it at the end). Backend: nccl on CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), False
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local), created


# ----------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator: data code may use it)
    torch.manual_seed(seed)


def get_rng_state() -> dict:
    """The generator states, in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- data, model, loss
def build_datasets(cfg: TrainConfig, check_images: bool = False, skip_unreadable: bool = False):
    """(train_set, val_set): ``CocoKeypoints`` crops and targets of ``cfg.codec``, joints of ``cfg.spec``.

    ``check_images``: the pre-flight check of every image file (``CocoKeypoints.check_images``);
    ``skip_unreadable``: leave out (and count) the samples of missing or unreadable images instead of
    stopping. InputError for an empty training set (or validation set, when validating).
    """
    from hrnet_edu.data.coco import CocoKeypoints

    common = dict(codec=cfg.codec, spec=cfg.spec, seed=cfg.seed)
    train_set = CocoKeypoints(cfg.path(cfg.train_ann), cfg.path(cfg.train_images), train=True,
                              augment=cfg.augment, raw=cfg.warp_on_device, **common)  # fmt: skip
    val_set = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), train=False,
                            augment=None,
                            **common)  # fmt: skip
    if check_images:
        # every image's header now, not the first missing file an hour into the run
        train_set.check_images(skip_unreadable)
        if cfg.val_every:
            val_set.check_images(skip_unreadable)
    if len(train_set) == 0:
        raise InputError(f"no training samples in {train_set.ann_file} "
                         f"({len(train_set.image_ids)} images; skipped: {train_set.num_skipped or 'none'})")
    if cfg.val_every and len(val_set) == 0:
        raise InputError(f"no validation samples in {val_set.ann_file} "
                         f"({len(val_set.image_ids)} images; skipped: {val_set.num_skipped or 'none'})")
    if cfg.max_train_images is not None:
        train_set = Subset(train_set, range(min(cfg.max_train_images, len(train_set))))
    return train_set, val_set


def build_criterion(cfg: TrainConfig) -> torch.nn.Module:
    """The heatmap loss named by ``cfg.loss``."""
    return JointsOHKMLoss(topk=8) if cfg.loss == "ohkm" else JointsMSELoss(use_target_weight=True)


def make_loader(dataset, cfg: TrainConfig, epoch: int, info: DistInfo, device: torch.device) -> DataLoader:
    """Shuffled loader for one epoch; its order depends only on (seed, epoch), never on history."""
    if info.world_size > 1:
        sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=True, seed=cfg.seed,
                                     drop_last=True)  # fmt: skip
        sampler.set_epoch(epoch)
    else:
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sampler = RandomSampler(dataset, generator=generator)
    n_batches = len(sampler) // cfg.batch_size
    if n_batches == 0:
        raise ValueError(
            f"{len(sampler)} training instances per process is fewer than batch_size={cfg.batch_size}: "
            "lower batch_size or use more data"
        )
    # drop_last: a last batch of 1 would break BatchNorm's batch statistics.
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                      collate_fn=gpu_collate if cfg.warp_on_device else None,
                      num_workers=cfg.workers, pin_memory=device.type == "cuda",
                      generator=torch.Generator().manual_seed(cfg.seed + epoch))  # fmt: skip


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain HRNet inside torch.compile and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


# ----------------------------------------------------------------------------- one epoch
class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


def learning_rate_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """lr_t / cfg.lr at optimizer step t (counted from 0 over the whole run).

    Warm-up: × min(1, (t + 1) / T_w) with T_w = warmup_epochs · steps_per_epoch steps.
    "step" (the paper): × factor^(number of lr_steps ≤ the epoch of t).
    "cosine": × ½ (1 + cos(π t / T)), T = epochs · steps_per_epoch — decays to 0 at the end, which
    on a short run gives the low-lr refinement that the paper's late ×0.1 steps give its long one.
    """
    warm_steps = cfg.warmup_epochs * steps_per_epoch
    warm = min(1.0, (step + 1) / warm_steps) if warm_steps > 0 else 1.0
    if cfg.lr_schedule == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * step / (cfg.epochs * steps_per_epoch)))
    passed = sum(step // steps_per_epoch >= m for m in cfg.lr_steps)
    return warm * cfg.lr_factor**passed


def train_one_epoch(model, loader, criterion, optimizer, scaler, cfg: TrainConfig, device, epoch: int,
                    info: DistInfo, progress=False, scheduler=None, batch_transform=None,
                    on_record=None) -> dict:  # fmt: skip
    """One pass over ``loader``; returns the epoch's record (mean loss, grad norms, img/s, step losses).

    ``batch_transform``: applied to each loader batch first (``GpuBatchTransform`` when
    ``cfg.warp_on_device``: the raw regions become crops and targets on the device).
    ``progress``: False (silent), "bar" (a tqdm bar: a terminal) or "lines" (one line on stderr every
    ``cfg.log_every`` steps: CI, nohup, a notebook); True means "bar". ``on_record``: called with each
    "step" record as it is made (the trainer appends it to ``log.jsonl`` there and then).

    Each step (``train_step``): heatmaps = model(images (N,3,H,W)) → (N,K,H/4,W/4); L = loss(heatmaps,
    target, w); backward (scaled for fp16); ‖∇‖ after unscaling; Adam step; ``scheduler.step()`` (the
    learning rate is set per step, see ``learning_rate_factor``). Raises TrainingDiverged
    naming epoch and step when L is not finite (checked on the loss averaged over all ranks, so
    every rank stops at the same step).
    """
    from tqdm.auto import tqdm

    progress = "bar" if progress is True else progress
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    losses, norms, steps = [], [], []
    n_images, start = 0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=progress != "bar", leave=False)
    for step, batch in enumerate(bar):
        loss_value, norm_value, n = train_step(model, batch, criterion, optimizer, scaler, params, cfg,
                                               device, info, batch_transform)
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"loss became {loss_value} at epoch {epoch + 1}, step {step + 1} (of {len(loader)}); "
                "training stopped, the last good checkpoint (if any) is kept"
            )
        if scheduler is not None:
            scheduler.step()
        losses.append(loss_value)
        norms.append(norm_value)
        n_images += n
        rate, lr = n_images / (time.perf_counter() - start), optimizer.param_groups[0]["lr"]
        if step % cfg.log_every == 0 or step == len(loader) - 1:
            steps.append({"kind": "step", "epoch": epoch + 1, "step": step + 1, "loss": loss_value,
                          "grad_norm": norm_value, "lr": lr})  # fmt: skip
            if on_record is not None:
                on_record(steps[-1])
            if progress == "lines":
                print(f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{len(loader)}: loss {loss_value:.3e}, "
                      f"lr {lr:.1e}, {rate:.0f} img/s", file=sys.stderr, flush=True)
        if progress == "bar":
            bar.set_postfix(loss=f"{loss_value:.2e}", lr=f"{lr:.1e}", img_s=f"{rate:.0f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "kind": "epoch", "epoch": epoch + 1, "loss": float(np.mean(losses)),
        "lr": optimizer.param_groups[0]["lr"],
        "grad_norm_mean": float(np.mean(norms)), "grad_norm_max": float(np.max(norms)),
        "images_per_s": n_images / seconds, "epoch_time_s": seconds, "steps": steps,
    }  # fmt: skip


def train_step(model, batch, criterion, optimizer, scaler, params, cfg: TrainConfig, device, info: DistInfo,
               batch_transform=None) -> tuple[float, float, int]:
    """One optimizer step on one loader batch: (loss, gradient norm — both averaged over the ranks —,
    images seen by all ranks). The parameters are not updated when the loss is not finite."""
    amp_dtype = cfg.autocast_dtype(device.type)
    memory_format = torch.channels_last if cfg.uses_channels_last(device.type) else torch.contiguous_format
    if batch_transform is not None:  # cfg.warp_on_device: crops and targets made here, on the device
        batch = batch_transform(batch)
    images = batch["image"].to(device, non_blocking=True, memory_format=memory_format)
    target = batch["target"].to(device, non_blocking=True)
    weight = batch["target_weight"].to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        heatmaps = model(images)  # (N, K, H/4, W/4)
    loss = criterion(heatmaps, target, weight)  # fp32 (the loss upcasts)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # so that the gradient norm is the true one under fp16
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm=float("inf"))
    stats = torch.stack([loss.detach().float(), grad_norm.float()])
    if info.world_size > 1:
        dist.all_reduce(stats)
        stats /= info.world_size
    loss_value, norm_value = stats.tolist()
    if math.isfinite(loss_value):
        scaler.step(optimizer)
        scaler.update()
    return loss_value, norm_value, images.shape[0] * info.world_size


def validate(model, val_set, cfg: TrainConfig, device, info: DistInfo = DistInfo(),
             return_predictions: bool = False):
    """COCO keypoint AP/AR of ``model`` on ``val_set`` (flip test and decoding from ``cfg``).

    Under torchrun every rank predicts its share of the crops; the predictions are gathered on
    rank 0 (``all_gather_object``), which rescores, applies OKS-NMS and runs COCOeval. Returns
    the ten numbers (keyed ``coco_eval.STAT_KEYS``) on rank 0 and None on the other ranks; with
    ``return_predictions`` also the ``evaluate.predict_dataset`` dict they come from (merged, on
    rank 0), as (numbers, predictions).
    """
    from hrnet_edu import evaluate

    model = unwrap(model)
    was_training = model.training
    model.eval()
    kwargs = dict(codec=cfg.codec, spec=cfg.spec, batch_size=cfg.val_batch_size, flip=cfg.val_flip,
                  device=device, num_workers=cfg.workers)  # fmt: skip
    if info.world_size > 1:
        shard = Subset(val_set, range(info.rank, len(val_set), info.world_size))
        gathered = [None] * info.world_size
        dist.all_gather_object(gathered, evaluate.predict_dataset(model, shard, **kwargs))
        preds = evaluate.merge_predictions(gathered) if info.is_main else None
    else:
        preds = evaluate.predict_dataset(model, val_set, **kwargs)
    model.train(was_training)
    metrics = evaluate.predictions_ap(preds, val_set.ground_truth).as_record() if preds is not None else None
    return (metrics, preds) if return_predictions else metrics


def _read_log(path: str, max_epoch: int) -> list[dict]:
    """The records of ``log.jsonl`` up to ``max_epoch`` (a resumed run drops those of the lost epoch)."""
    if not os.path.exists(path):
        return []
    return [r for r in read_log(path) if r.get("epoch", 0) <= max_epoch]


def _write_log(path: str, records: list[dict]) -> None:
    # the whole log, atomically: a kill never leaves half a line, and nothing is appended to a
    # log that a checkpoint does not match (a few MB for the paper's 210 epochs)
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def _apply_changes(cfg: TrainConfig, optimizer, scheduler, steps_per_epoch: int) -> None:
    """Make the restored optimizer follow ``cfg`` where it stores its own copy of a value (the lr, the
    weight decay): otherwise a resumed run would keep the old ones whatever the config says."""
    for group in optimizer.param_groups:
        group["initial_lr"] = cfg.lr
        group["weight_decay"] = cfg.weight_decay
    scheduler.base_lrs = [cfg.lr] * len(optimizer.param_groups)
    # LambdaLR's last_epoch counts the optimizer steps done: the lr of the next step is lr · factor(it)
    factor = learning_rate_factor(cfg, scheduler.last_epoch, steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * factor
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def train(cfg: TrainConfig, out_dir: str, resume: bool = False, progress: bool | None = None,
          overwrite: bool = True, apply_changes: bool = True, skip_bad_images: bool = False) -> dict:
    """Train ``cfg.model`` on ``cfg``'s data; write checkpoints and ``log.jsonl`` under ``out_dir``.

    Args:
        cfg: the run's configuration (``configs.get_config`` + ``apply_overrides``).
        out_dir: where ``last.pt``, ``best.pt``, ``log.jsonl`` and ``config.json`` go.
        resume: continue from ``out_dir/last.pt`` (model, optimizer, schedule, scaler, RNG, epoch).
        progress: True: a tqdm bar; False: silent; None: a bar when stderr is a terminal, else a
            line every ``log_every`` steps and one per epoch (rank 0 only).
        overwrite: start afresh in a folder that holds a run (its files are replaced only once
            the new run has started: data read, model built; its old best.pt goes too). False:
            refuse such a folder (``hrnet-edu train`` without ``--overwrite``).
        apply_changes: with ``resume``, ``cfg`` may differ from the stored config: the changes
            are applied (a new lr or weight decay also into the restored optimizer) and logged
            as a "config_change" record. False: such a resume is refused, listing the keys
            (``hrnet-edu train --resume`` without ``--apply-changes``).

    The defaults suit a caller that passes the config it wants (a notebook extending a run
    epoch by epoch, ``demo``); the command line passes False for both unless asked.
        skip_bad_images: leave out missing / unreadable images (counted) instead of stopping.

    Returns a summary dict (epochs done, final loss, best and last AP, wall time, img/s, peak
    GPU memory, skipped samples, the keypoint set, ``init_from``: which head rows ``cfg.init_from``
    gave, by joint name (``checkpoints.transfer_weights``; None without it), ``pretrained``: the
    tensors ``cfg.pretrained`` loaded and skipped (``weights.initialize_backbone``), history, and
    ``model``: the trained network itself) — on every rank, the AP numbers only on rank 0.

    The folder is locked for the run (``runfolder.RunLock``): a second run into it is refused.
    """
    check_run_folder(out_dir, resume, overwrite)  # before anything is built or written
    wanted = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    info, created_group = init_distributed(torch.device(wanted).type)
    lock = None
    threads_before = torch.get_num_threads()
    try:
        if info.is_main:
            os.makedirs(out_dir, exist_ok=True)
            lock = RunLock(out_dir).acquire()
            check_run_folder(out_dir, resume, overwrite)  # again, now that no other run can change it
            clean_stale_temporaries(out_dir)
        return _train_locked(cfg, out_dir, resume, progress, apply_changes, skip_bad_images, info)
    finally:
        torch.set_num_threads(threads_before)
        if lock is not None:
            lock.release()
        if created_group:
            dist.destroy_process_group()


def _train_locked(cfg, out_dir, resume, progress, apply_changes, skip_bad_images, info) -> dict:
    device = resolve_device(cfg.device, local_rank=info.local_rank)
    cfg, machine = _machine_settings(cfg, device, info, progress, out_dir if resume else None)
    progress = _progress_mode(progress, info)
    model, transferred = _initial_model(cfg, device, resume)
    # before anything is written: bad data fails first
    train_set, val_set = build_datasets(cfg, check_images=True, skip_unreadable=skip_bad_images)
    skipped = {"train": dict(_base(train_set).num_skipped), "val": dict(val_set.num_skipped)}
    pretrained = _pretrained(model, cfg, info, progress) if not resume else None
    steps_per_epoch = len(make_loader(train_set, cfg, 0, info, device))
    optimizer, scheduler, scaler = _optimization(model, cfg, device, steps_per_epoch)
    criterion = build_criterion(cfg)
    batch_transform = GpuBatchTransform(cfg.codec, device) if cfg.warp_on_device else None
    start_epoch, best_ap, history, changes = 0, -1.0, [], {}
    if resume:
        start_epoch, best_ap, history, changes = _restore(
            cfg, out_dir, apply_changes, model, optimizer, scheduler, scaler, steps_per_epoch)
    # The run has really started (data read, model built, checkpoint restored): only now is
    # anything of an earlier run in this folder replaced.
    log_records = _start_log(cfg, out_dir, resume, start_epoch, changes, machine) if info.is_main else []
    # step records reach log.jsonl as they are made (a resume drops those past its checkpoint)
    on_record = partial(append_log_record, os.path.join(out_dir, "log.jsonl")) if info.is_main else None
    net = _wrap(model, cfg, info, device)
    _prepare_device(cfg, device)
    wall_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        # Everything random in epoch e (order, augmentation) is a function of (seed, e, rank).
        seed_everything(cfg.seed + 1000 * epoch + 7919 * info.rank)
        _base(train_set).set_epoch(epoch)
        loader = make_loader(train_set, cfg, epoch, info, device)
        record = train_one_epoch(net, loader, criterion, optimizer, scaler, cfg, device, epoch, info,
                                 progress, scheduler, batch_transform, on_record)  # fmt: skip
        _share_buffers(model, info)
        if cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            metrics = validate(net, val_set, cfg, device, info)
            if metrics is not None:
                record["val"] = metrics
        steps = record.pop("steps")
        history.append(record)
        if progress == "lines":
            _print_epoch(record, cfg)
        if info.is_main:
            new_best = "val" in record and record["val"]["ap"] > best_ap
            best_ap = record["val"]["ap"] if new_best else best_ap
            state = _checkpoint_state(model, optimizer, scheduler, scaler, epoch + 1, best_ap, cfg, history)
            log_records.extend([*steps, record])
            _save_epoch(out_dir, log_records, state, new_best)
        if info.world_size > 1:
            dist.barrier()  # no rank races ahead of rank 0's checkpoint
    done = history[start_epoch:] or history
    return {
        "config": cfg.name, "out_dir": out_dir, "epochs": len(history), "final_loss": history[-1]["loss"],
        "best_ap": best_ap if best_ap >= 0 else None, "wall_time_s": time.perf_counter() - wall_start,
        "last_val": next((r["val"] for r in reversed(history) if "val" in r), None),
        "images_per_s": float(np.mean([r["images_per_s"] for r in done])), "device": str(device),
        "world_size": info.world_size, "peak_memory_gb": _peak_memory_gb(device), "skipped": skipped,
        "config_changes": {k: list(v) for k, v in changes.items()}, "keypoints": cfg.spec.name,
        "init_from": transferred, "pretrained": pretrained, "history": history, "model": model,
        "cpu_settings": machine.as_record(),
    }  # fmt: skip


def _base(dataset):
    """The ``CocoKeypoints`` under a ``max_train_images`` Subset (it holds the epoch and the skip counts)."""
    return getattr(dataset, "dataset", dataset)


def _machine_settings(cfg: TrainConfig, device, info: DistInfo, progress: bool | None, resumed_from=None):
    """(cfg with its "auto" precision, memory format, threads and workers chosen on this machine, the
    ``cpu_settings.CpuSettings``); the choices are printed first unless ``progress`` is False. A resumed
    run (``resumed_from``: its folder) keeps the choice it made: bit-exact, no new probe."""
    if resumed_from is not None:
        cfg = _resumed_machine_settings(cfg, resumed_from)
    machine = choose_machine_settings(cfg, device.type,
                                      processes=int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size)))
    if progress is not False and info.is_main:
        print("\n".join(f"hrnet-edu train: {line}" for line in machine.lines()), file=sys.stderr, flush=True)
    return machine.apply(cfg), machine


MACHINE_FIELDS = ("cpu_bf16", "cpu_channels_last", "cpu_threads", "workers")


def _resumed_machine_settings(cfg: TrainConfig, out_dir: str) -> TrainConfig:
    """``cfg`` with each of its "auto" machine settings replaced by the value the run in ``out_dir``
    chose (its ``config.json``): a resumed run computes as it did, whatever a new probe would say."""
    path = os.path.join(out_dir, "config.json")
    if not os.path.isfile(path):
        return cfg
    with open(path) as f:
        stored = json.load(f)
    chosen = {k: stored[k] for k in MACHINE_FIELDS
              if getattr(cfg, k) == "auto" and stored.get(k, "auto") != "auto"}
    return dataclasses.replace(cfg, **chosen)


def _peak_memory_gb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _progress_mode(progress, info: DistInfo):
    """False, "bar" or "lines" (``train_one_epoch``): None means a bar on a terminal, elsewhere (CI,
    nohup) a line every ``log_every`` steps; only rank 0 reports."""
    if progress is None:
        progress = "bar" if sys.stderr.isatty() else "lines"
    return progress if info.is_main else False


def _pretrained(model, cfg: TrainConfig, info: DistInfo, progress) -> dict | None:
    """ImageNet initialization, as the paper (``cfg.pretrained``, not with ``init_from``): the backbone
    loaded by name (``checkpoints.initialize_backbone``), its counts said on stderr; the report or None."""
    if not cfg.pretrained or cfg.init_from:
        return None
    if info.world_size > 1 and not info.is_main:
        dist.barrier()  # rank 0 downloads the file first (a barrier after, below), the others read it
    pretrained = initialize_backbone(model, cfg.pretrained, bool(progress))
    if info.world_size > 1 and info.is_main:
        dist.barrier()
    if info.is_main:
        not_loaded = ", ".join(f"{n} {why}" for why, n in pretrained["skipped"].items())
        print(f"hrnet-edu train: pretrained {cfg.pretrained}: {pretrained['loaded']} tensors loaded, "
              f"skipped {not_loaded}", file=sys.stderr)
    return pretrained


def _print_epoch(record: dict, cfg: TrainConfig) -> None:
    """The epoch's line when the output is not a terminal (CI, nohup): loss, speed, validation AP."""
    val = f", val AP {record['val']['ap']:.3f}" if "val" in record else ""
    print(f"epoch {record['epoch']}/{cfg.epochs}: loss {record['loss']:.3e}, {record['images_per_s']:.0f} "
          f"img/s{val}", file=sys.stderr, flush=True)


def _prepare_device(cfg: TrainConfig, device) -> None:
    """CUDA: peak-memory statistics from zero; a CPU: ``cfg.cpu_threads`` compute threads (restored by
    ``train``: the caller keeps its setting)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)


def _share_buffers(model, info: DistInfo) -> None:
    """Parameters agree on every rank (gradients are all-reduced) but BatchNorm running statistics are
    each rank's own since the last forward: take rank 0's everywhere, so that sharded validation and
    the checkpoint see one and the same network."""
    if info.world_size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def _checkpoint_state(model, optimizer, scheduler, scaler, epoch: int, best_ap: float, cfg: TrainConfig,
                      history: list) -> dict:
    """The checkpoint after ``epoch`` completed epochs (``checkpoints.CHECKPOINT_KEYS``)."""
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
        "best_ap": best_ap, "config": dataclasses.asdict(cfg), "codec": dataclasses.asdict(cfg.codec),
        "metrics": history, "rng": get_rng_state(),
    }  # fmt: skip


def _initial_model(cfg: TrainConfig, device, resume: bool):
    """(the network the run starts from, the ``transfer_weights`` report or None): seeded initial weights
    (the same on every rank), or with ``cfg.init_from`` a checkpoint's weights (fine-tuning: the weights
    only; optimizer and schedule start anew), in channels-last where the run uses it."""
    seed_everything(cfg.seed)  # the same initial weights on every rank
    model = build_model(cfg.model).to(device)
    transferred = None
    if cfg.init_from and not resume:
        source = load_checkpoint_state(cfg.init_from, map_location=device)
        # a checkpoint of another keypoint set gives its head rows by joint name; one whose config
        # predates ``keypoints`` (or a plain state dict, as the reference's published weights) is COCO-17
        source_spec = (source.get("config") or {}).get("keypoints") or "coco17"
        transferred = transfer_weights(model, source, source_spec, cfg.spec)
    if cfg.uses_channels_last(device.type):
        model = model.to(memory_format=torch.channels_last)
    return model, transferred


def _optimization(model, cfg: TrainConfig, device, steps_per_epoch: int):
    """(Adam, its per-step learning-rate schedule, the fp16 gradient scaler) of a run."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # lr_t = lr · learning_rate_factor(t), stepped after every optimizer step
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: learning_rate_factor(cfg, t, steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.amp == "fp16")
    return optimizer, scheduler, scaler


def _wrap(model, cfg: TrainConfig, info: DistInfo, device) -> torch.nn.Module:
    """The network the epochs run: ``model`` in DistributedDataParallel (torchrun) and torch.compile
    (``cfg.compile``) wrappers; ``unwrap`` undoes them."""
    net = model
    if info.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if cfg.compile else net


def _restore(cfg, out_dir, apply_changes, model, optimizer, scheduler, scaler, steps_per_epoch):
    """``--resume``: model, optimizer, schedule, scaler and RNG from ``out_dir/last.pt``.

    Returns (epochs done, best AP, history, config changes). InputError for a checkpoint that is
    not a training one, or for a changed config without ``apply_changes``.
    """
    last_path, best_path = os.path.join(out_dir, "last.pt"), os.path.join(out_dir, "best.pt")
    state = load_checkpoint_state(last_path)
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise InputError(f"not a checkpoint: {last_path} (not a training checkpoint of hrnet-edu: no "
                         f"{', '.join(missing)})")
    changes = config_changes(state["config"], cfg)
    if changes and not apply_changes:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())
        raise InputError(f"--resume with a config that differs from the run's in {out_dir} ({listed}): "
                         "drop those overrides, or pass --apply-changes to apply them")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    start_epoch, best_ap, history = state["epoch"], state["best_ap"], list(state["metrics"])
    set_rng_state(state["rng"])
    if "lr" in changes or "weight_decay" in changes:
        _apply_changes(cfg, optimizer, scheduler, steps_per_epoch)
    if best_ap >= 0 and not os.path.exists(best_path):
        # (a run of an earlier version killed while writing its first best.pt): the next
        # validation writes one, rather than the run ending without any
        print(f"hrnet-edu train: warning: {best_path} is missing although the run had a best AP "
              f"{best_ap:.4f}; the next validation writes a new one", file=sys.stderr)
        best_ap = -1.0
    return start_epoch, best_ap, history, changes


def _start_log(cfg, out_dir, resume, start_epoch, changes, machine) -> list[dict]:
    """Rank 0, once the run has started: the log so far (+ a "config_change" record, + the machine
    settings chosen: a "cpu_settings" record), ``config.json``; a fresh run (``--overwrite``) removes
    the old run's weights. Returns the log's records."""
    log_path = os.path.join(out_dir, "log.jsonl")
    log_records = _read_log(log_path, start_epoch) if resume else []
    if changes:
        log_records.append({"kind": "config_change", "epoch": start_epoch,
                            "changes": {k: list(v) for k, v in changes.items()}})
    log_records.append({**machine.as_record(), "epoch": start_epoch})
    if not resume:
        for stale in ("last.pt", "best.pt"):  # --overwrite: the old run's weights go with its log
            if os.path.exists(os.path.join(out_dir, stale)):
                os.remove(os.path.join(out_dir, stale))
    _write_log(log_path, log_records)
    atomic_write_text(os.path.join(out_dir, "config.json"), json.dumps(dataclasses.asdict(cfg), indent=1))
    return log_records


def _save_epoch(out_dir: str, log_records: list[dict], state: dict, new_best: bool) -> None:
    """Rank 0 at the end of an epoch: the log, ``best.pt`` (on a new best AP), ``last.pt``.

    Order: the log (a resume drops records past last.pt's epoch), best.pt, and last.pt last — a
    kill before last.pt is replaced repeats this epoch, best.pt included, so a last.pt never
    records a best AP whose best.pt was not written.
    """
    _write_log(os.path.join(out_dir, "log.jsonl"), log_records)
    if new_best:
        save_checkpoint(state, os.path.join(out_dir, "best.pt"))
    save_checkpoint(state, os.path.join(out_dir, "last.pt"))


def resumed_config(out_dir: str, name: str) -> TrainConfig:
    """The config a run in ``out_dir`` was started with (stored in its ``last.pt``), for ``--resume``.

    InputError when ``out_dir`` holds no run to resume, when its checkpoint holds no config, or when
    the run is of another preset than ``name``.
    """
    check_run_folder(out_dir, resume=True, overwrite=False)
    last = os.path.join(out_dir, "last.pt")
    stored = load_checkpoint_state(last).get("config")
    if not isinstance(stored, dict):
        raise InputError(f"not a checkpoint: {last} (no training config in it)")
    if stored.get("name") != name:
        raise InputError(f"--config {name}, but the run in {out_dir} is {stored.get('name')!r}")
    return config_from_dict(stored)

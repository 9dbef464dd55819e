"""``hrnet-edu demo``: the README's main job — train on SynthPose on a CPU, evaluate, write a report.

Steps: (0) generate a SynthPose training set of ``DEMO_IMAGES`` images into ``data/synthpose_demo``
(skipped when it is already there; distinct figures teach a small network more than repeated ones),
(1) evaluate the *untrained* network (its seeded initial weights) on the bundled validation split,
(2) train the CPU recipe ``synthpose_w16_128x96_cpu`` shortened by ``DEMO_OVERRIDES``, (3) evaluate
the trained network with the paper's test settings (flip test, sub-pixel
decoding, rescoring, OKS-NMS, COCOeval), and (4) write ``OUT/report.md`` with the AP table, the
loss curve (``loss.png``) and a grid of predictions (``predictions.png``).

``--export PATH.pt`` also stores the trained weights (model + config only, fp32) and a JSON record
of how they were made (``PATH.json``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import time

import numpy as np
import torch
from matplotlib.figure import Figure

from hrnet_edu.checkpoints import export_weights
from hrnet_edu.configs import TrainConfig, get_config
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.train import AP_KEYS, build_datasets, train

AP_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
DEMO_CONFIG = "synthpose_w16_128x96_cpu"
DEMO_DATA, DEMO_IMAGES = "data/synthpose_demo", 4000
# the recipe's schedule compressed to a few CPU minutes; validated once, at the end
DEMO_OVERRIDES = [f"data_root={DEMO_DATA}", "epochs=5", "warmup_epochs=0.3", "val_every=5"]


def ensure_demo_data(root: str = DEMO_DATA, n_images: int = DEMO_IMAGES) -> str:
    """Generate the demo's SynthPose training set (seed 0, no val split) unless ``root`` holds it."""
    from hrnet_edu.data.synthpose import generate

    meta = os.path.join(root, "synthpose.json")
    if os.path.exists(meta):
        with open(meta) as f:
            if json.load(f).get("n_train") == n_images:
                return root
    generate(root, n_train=n_images, n_val=0, seed=0)
    return root


def evaluate_model(model, val_set, cfg: TrainConfig):
    """(ten COCO numbers as a dict, predict_dataset output) with the config's flip / decode settings."""
    from hrnet_edu import evaluate

    preds = evaluate.predict_dataset(model, val_set, batch_size=cfg.val_batch_size, flip=cfg.val_flip,
                                     decode=cfg.val_decode, device="cpu")  # fmt: skip
    stats = evaluate.evaluate_predictions(preds, val_set)
    return {k: float(getattr(stats, k)) for k in AP_KEYS}, preds


def loss_figure(log_path: str) -> Figure:
    """Training loss per logged step and validation AP per epoch, from ``log.jsonl``."""
    with open(log_path) as f:
        records = [json.loads(line) for line in f]
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    per_epoch = max(r["step"] for r in steps)
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    x = [r["epoch"] - 1 + r["step"] / per_epoch for r in steps]
    ax.semilogy(x, [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="logged steps")
    ax.semilogy([r["epoch"] for r in epochs], [r["loss"] for r in epochs], "o-", label="epoch mean")
    ax.set(xlabel="epoch", ylabel="loss (0.5·weighted MSE)", title="training loss")
    ax.legend()
    val = [r for r in epochs if "val" in r]
    ax2.plot([r["epoch"] for r in val], [r["val"]["ap"] for r in val], "o-", label="AP")
    ax2.plot([r["epoch"] for r in val], [r["val"]["ap50"] for r in val], "s--", label="AP50")
    top = max([0.1] + [r["val"]["ap50"] for r in val])
    ax2.set(xlabel="epoch", ylabel="COCO keypoint AP (val)", title="validation")
    ax2.set_ylim(0, min(1.0, 1.15 * top))
    ax2.legend()
    return fig


def predictions_figure(val_set, preds: dict, n: int = 8, threshold: float = 0.2) -> Figure:
    """The first ``n`` validation images with every predicted pose (joints of confidence > threshold)."""
    from hrnet_edu.data.coco import load_image
    from hrnet_edu.evaluate import predictions_to_results
    from hrnet_edu.viz import draw_pose

    results = predictions_to_results(preds)
    image_ids = val_set.image_ids[:n]
    fig = Figure(figsize=(2.6 * min(n, 4), 2.8 * ((n + 3) // 4)), layout="constrained")
    axes = np.atleast_1d(fig.subplots((n + 3) // 4, min(n, 4))).ravel()
    for ax, image_id in zip(axes, image_ids):
        info = val_set.coco.imgs[int(image_id)]
        ax.imshow(load_image(os.path.join(val_set.image_dir, info["file_name"])))
        for r in (r for r in results if r["image_id"] == image_id):
            kp = np.asarray(r["keypoints"]).reshape(-1, 3)  # (K, 3): x, y, confidence
            draw_pose(ax, kp[:, :2], kp[:, 2] > threshold, radius=2.0, linewidth=1.5)
        ax.set_title(f"image {image_id}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


def ap_table(rows: dict[str, dict]) -> str:
    lines = ["| network | " + " | ".join(AP_NAMES) + " |", "|---|" + "---|" * len(AP_NAMES)]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in AP_KEYS) + " |")
    return "\n".join(lines)


def run_demo(out_dir: str, overrides: list[str], config: str = DEMO_CONFIG, export: str | None = None,
             progress: bool | None = None, command: str | None = None) -> dict:  # fmt: skip
    """Untrained vs trained AP on the validation split; writes report.md, loss.png, predictions.png.

    ``overrides`` are applied after ``DEMO_OVERRIDES`` (so ``epochs=…`` or ``data_root=…`` win).
    ``command``: how the demo was started, for the report (``hrnet-edu demo`` passes its command
    line; default ``run_demo([...overrides])``).
    """
    from hrnet_edu.evaluate import load_checkpoint
    from hrnet_edu.model import build_model

    start_all = time.perf_counter()
    overrides = [*DEMO_OVERRIDES, *overrides] if config == DEMO_CONFIG else list(overrides)
    cfg = apply_overrides(get_config(config), overrides)
    if cfg.data_root == DEMO_DATA:
        ensure_demo_data()
    data_seconds = time.perf_counter() - start_all
    os.makedirs(out_dir, exist_ok=True)
    _, val_set = build_datasets(cfg)
    torch.manual_seed(cfg.seed)  # the same initial weights as the training run starts from
    untrained, _ = evaluate_model(build_model(cfg.model), val_set, cfg)
    start = time.perf_counter()
    summary = train(cfg, os.path.join(out_dir, "run"), progress=progress)
    train_seconds = time.perf_counter() - start
    best = os.path.join(out_dir, "run", "best.pt")
    best = best if os.path.exists(best) else os.path.join(out_dir, "run", "last.pt")
    model, _ = load_checkpoint(best)
    trained, preds = evaluate_model(model, val_set, cfg)
    total_seconds = time.perf_counter() - start_all
    loss_figure(os.path.join(out_dir, "run", "log.jsonl")).savefig(os.path.join(out_dir, "loss.png"), dpi=100)
    predictions_figure(val_set, preds).savefig(os.path.join(out_dir, "predictions.png"), dpi=100)
    threads = cfg.cpu_threads or torch.get_num_threads()  # what training ran with (train restores the rest)
    device = f"CPU ({threads} compute thread(s) + {cfg.workers} data worker(s), " \
             f"{platform.processor() or platform.machine()})"
    command = command or f"run_demo({overrides})"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = [
        f"# hrnet-edu demo: `{cfg.name}` on SynthPose ({date})", "",
        f"HRNet-W{cfg.model.width}, input {cfg.input_size[0]}×{cfg.input_size[1]}, heatmaps "
        f"{cfg.heatmap_size[0]}×{cfg.heatmap_size[1]}, sigma {cfg.sigma}, {summary['epochs']} epochs, batch "
        f"{cfg.batch_size}, Adam lr {cfg.lr} (×{cfg.lr_factor} at {list(cfg.lr_steps)}), "
        f"data `{cfg.data_root}`.",
        f"Device: {device}. Generating the training data took {data_seconds:.0f} s, training "
        f"{train_seconds:.0f} s ({summary['images_per_s']:.1f} img/s); everything (data, evaluations, "
        f"figures) {total_seconds:.0f} s.", "",
        f"## COCO keypoint AP on the validation split ({len(val_set)} persons, ground-truth boxes)", "",
        f"Flip test: {cfg.val_flip}, decoding: {cfg.val_decode}, OKS-NMS 0.9.", "",
        ap_table({"untrained (initial weights)": untrained,
                  f"trained ({summary['epochs']} epochs)": trained}),
        "",
        "## Training loss and validation AP", "", "![loss](loss.png)", "",
        "## Predictions on the first validation images", "", "![predictions](predictions.png)", "",
        f"Command: `{command}`. Run folder: `{os.path.join(out_dir, 'run')}` (checkpoints, log.jsonl).", "",
    ]  # fmt: skip
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(report))
    result = {"config": cfg.name, "overrides": list(overrides), "untrained": untrained, "trained": trained,
              "val": trained, "wall_time_s": train_seconds,
              "train_seconds": train_seconds, "data_seconds": data_seconds, "total_seconds": total_seconds,
              "device": device, "date": date,
              "command": command, "epochs": summary["epochs"], "eval": {"flip": cfg.val_flip,
              "decode": cfg.val_decode, "nms_threshold": 0.9, "boxes": "gt", "split": cfg.val_ann},
              "config_dict": dataclasses.asdict(cfg)}  # fmt: skip
    if export:
        export_weights(best, export, result)
    return result

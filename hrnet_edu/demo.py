"""``hrnet-edu demo``: the README's main job — train on SynthPose on a CPU, evaluate, write a report.

Steps: (0) generate a SynthPose training set of ``DEMO_IMAGES`` images into ``data/synthpose_demo``
(skipped when it is already there; distinct figures teach a small network more than repeated ones),
(1) evaluate the *untrained* network (its seeded initial weights) on the bundled validation split,
(2) train the CPU recipe ``synthpose_w16_128x96_cpu`` shortened by ``DEMO_OVERRIDES``, (3) evaluate
the trained network with the paper's test settings (flip test, sub-pixel decoding, rescoring,
OKS-NMS, COCOeval: ``train.validate``), and (4) write ``OUT/report.md`` with the AP table, the
loss curve (``viz.loss_figure``) and a grid of predictions (``viz.predictions_figure``).

``--export PATH.pt`` also stores the trained weights (model + config only, fp32) and a JSON record
of how they were made (``PATH.json``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time

import torch

from hrnet_edu.checkpoints import export_weights, resolve_device
from hrnet_edu.coco_eval import STAT_KEYS, STAT_NAMES
from hrnet_edu.configs import get_config
from hrnet_edu.cpu_settings import choose as choose_machine_settings
from hrnet_edu.cpu_settings import cpu_name
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.train import build_datasets, train, validate
from hrnet_edu.viz import loss_figure, predictions_figure

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


def ap_table(rows: dict[str, dict]) -> str:
    """A markdown table of the ten COCO numbers, one row per {name: ``train.validate`` numbers}."""
    lines = ["| network | " + " | ".join(STAT_NAMES) + " |", "|---|" + "---|" * len(STAT_NAMES)]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in STAT_KEYS) + " |")
    return "\n".join(lines)


def run_demo(out_dir: str, overrides: list[str], config: str = DEMO_CONFIG, export: str | None = None,
             progress: bool | None = None, command: str | None = None) -> dict:  # fmt: skip
    """Untrained vs trained AP on the validation split; writes report.md, loss.png, predictions.png.

    ``overrides`` are applied after ``DEMO_OVERRIDES`` (so ``epochs=…`` or ``data_root=…`` win).
    ``command``: how the demo was started, for the report (``hrnet-edu demo`` passes its command
    line; default ``run_demo([...overrides])``).
    """
    from hrnet_edu.checkpoints import load_checkpoint
    from hrnet_edu.model import build_model

    start_all = time.perf_counter()
    overrides = [*DEMO_OVERRIDES, *overrides] if config == DEMO_CONFIG else list(overrides)
    cfg = apply_overrides(get_config(config), overrides)
    if cfg.data_root == DEMO_DATA:
        ensure_demo_data()
    data_seconds = time.perf_counter() - start_all
    os.makedirs(out_dir, exist_ok=True)
    _, val_set = build_datasets(cfg)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # the same initial weights as the training run starts from
    # evaluating needs only the loader's workers (no probe); training chooses all four, once, and says why
    untrained = validate(build_model(cfg.model).to(device), val_set,
                         choose_machine_settings(cfg, device.type, probe=False).apply(cfg), device)
    start = time.perf_counter()
    summary = train(cfg, os.path.join(out_dir, "run"), progress=progress)
    train_seconds = time.perf_counter() - start
    machine = summary["cpu_settings"]  # what training chose, and why
    cfg = dataclasses.replace(cfg, **{k: machine[k] for k in ("cpu_bf16", "cpu_channels_last", "cpu_threads",
                                                              "workers")})
    best = os.path.join(out_dir, "run", "best.pt")
    best = best if os.path.exists(best) else os.path.join(out_dir, "run", "last.pt")
    model, _ = load_checkpoint(best, device=device)
    trained, preds = validate(model, val_set, cfg, device, return_predictions=True)
    total_seconds = time.perf_counter() - start_all
    _write_figures(out_dir, val_set, preds, cfg)
    threads = cfg.cpu_threads or torch.get_num_threads()  # what training ran with (train restores the rest)
    hardware = f"CPU ({threads} compute thread(s) + {cfg.workers} data worker(s), {cpu_name()})"
    command = command or f"run_demo({overrides})"
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = {"untrained (initial weights)": untrained, f"trained ({summary['epochs']} epochs)": trained}
    _write_report(out_dir, cfg, summary, rows, len(val_set), (data_seconds, train_seconds, total_seconds),
                  hardware, command, date, machine)
    result = {"config": cfg.name, "overrides": list(overrides), "untrained": untrained, "trained": trained,
              "val": trained, "wall_time_s": train_seconds,
              "train_seconds": train_seconds, "data_seconds": data_seconds, "total_seconds": total_seconds,
              "device": hardware, "date": date, "cpu_settings": machine,
              "command": command, "epochs": summary["epochs"], "eval": {"flip": cfg.val_flip,
              "decode": cfg.val_decode, "nms_threshold": 0.9, "boxes": "gt", "split": cfg.val_ann},
              "config_dict": dataclasses.asdict(cfg)}  # fmt: skip
    if export:
        export_weights(best, export, result)
    return result


def _write_figures(out_dir: str, val_set, preds: dict, cfg) -> None:
    """loss.png (the run's log.jsonl) and predictions.png (the first 8 validation images, after OKS-NMS)."""
    from hrnet_edu.data.coco import load_image
    from hrnet_edu.evaluate import predictions_to_results
    from hrnet_edu.runfolder import read_log

    records = read_log(os.path.join(out_dir, "run", "log.jsonl"))
    loss_figure(records).savefig(os.path.join(out_dir, "loss.png"), dpi=100)
    shown = {i: load_image(os.path.join(val_set.image_dir, val_set.coco.imgs[i]["file_name"]))
             for i in val_set.image_ids[:8]}
    results = predictions_to_results(preds, cfg.spec.sigmas)
    predictions_figure(shown, results, cfg.spec).savefig(os.path.join(out_dir, "predictions.png"), dpi=100)


def _write_report(out_dir: str, cfg, summary: dict, rows: dict, n_persons: int, seconds: tuple,
                  hardware: str, command: str, date: str, machine: dict) -> None:
    """report.md: the recipe, the machine settings chosen and why (``machine``: training's
    "cpu_settings"), the times (data, training, everything), the AP table ``rows``, the figures."""
    data_seconds, train_seconds, total_seconds = seconds
    schedule, precision = _recipe(cfg)
    report = [
        f"# hrnet-edu demo: `{cfg.name}` on SynthPose ({date})", "",
        f"HRNet-W{cfg.model.width}, input {cfg.input_size[0]}×{cfg.input_size[1]}, heatmaps "
        f"{cfg.heatmap_size[0]}×{cfg.heatmap_size[1]}, sigma {cfg.sigma}, {summary['epochs']} epochs, batch "
        f"{cfg.batch_size}, Adam lr {cfg.lr} ({schedule}), data `{cfg.data_root}`; on a CPU: {precision}.",
        "Chosen for this machine when training started (`cpu_settings.choose`; `cpu_bf16=`, "
        "`cpu_channels_last=`, `cpu_threads=`, `workers=` overrides set them):", "",
        *[f"- {key}: {why}" for key, why in machine["reasons"].items()], "",
        f"Device: {hardware}. Generating the training data took {data_seconds:.0f} s, training "
        f"{train_seconds:.0f} s ({summary['images_per_s']:.1f} img/s); everything (data, evaluations, "
        f"figures) {total_seconds:.0f} s.", "",
        f"## COCO keypoint AP on the validation split ({n_persons} persons, ground-truth boxes)", "",
        f"Flip test: {cfg.val_flip}, {cfg.codec.describe()}, OKS-NMS 0.9.", "",
        ap_table(rows),
        "",
        "## Training loss and validation AP", "", "![loss](loss.png)", "",
        "## Predictions on the first validation images", "", "![predictions](predictions.png)", "",
        f"Command: `{command}`. Run folder: `{os.path.join(out_dir, 'run')}` (checkpoints, log.jsonl).", "",
    ]  # fmt: skip
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(report))


def _recipe(cfg) -> tuple[str, str]:
    """The report's words for the learning-rate schedule and the CPU precision switches."""
    schedule = (f"cosine decay after {cfg.warmup_epochs:g} warm-up epochs" if cfg.lr_schedule == "cosine"
                else f"×{cfg.lr_factor} at epochs {list(cfg.lr_steps)}")
    cpu_switches = [name for name, on in (("bf16 autocast", cfg.autocast_dtype("cpu") is not None),
                                          ("channels-last", cfg.uses_channels_last("cpu"))) if on]
    return schedule, ", ".join(cpu_switches) or "fp32"

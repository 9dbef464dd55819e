"""Turn a finished training run into a committed checkpoint: weights + a JSON record of how it was made.

    python benchmarks/record_checkpoint.py runs/final_w16 \\
        data_samples/checkpoints/synthpose_w16_128x96_cpu.pt \\
        --command "OMP_NUM_THREADS=1 hrnet-edu train --config synthpose_w16_128x96_cpu --out runs/final_w16"

Writes ``OUT.pt`` = {"model": fp32 state dict, "config": the run's TrainConfig as a dict, with its data
paths reset to the preset's relative ones} and ``OUT.json``: the ten COCO numbers on the bundled val
split (flip test, ground-truth boxes, the config's decoding) measured here on the written file, the
left/right inversion share (``analysis.error_taxonomy``), per-joint errors of the network and of the
mean pose, the run's per-epoch validation history, wall time, data, machine, date and command.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform

import numpy as np
import torch

from hrnet_edu import analysis, evaluate
from hrnet_edu.checkpoints import load_checkpoint, load_checkpoint_state
from hrnet_edu.configs import get_config
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.overrides import config_from_dict


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("run", help="training run folder (best.pt or last.pt, log.jsonl)")
    parser.add_argument("out", help="checkpoint file to write (.pt; the record goes beside it as .json)")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--data", default="hrnet-edu synth --out data/synthpose_20k --train 20000 --val 0 "
                        "--seed 0")
    parser.add_argument("--which", default="last.pt", help="last.pt (default) or best.pt")
    args = parser.parse_args()
    torch.set_num_threads(1)

    state = load_checkpoint_state(os.path.join(args.run, args.which))
    cfg = config_from_dict(state["config"])
    preset = get_config(cfg.name)
    # the run may have been given absolute data paths; the committed file names the preset's own
    cfg = dataclasses.replace(cfg, data_root=preset.data_root, val_root=preset.val_root)
    tmp = f"{args.out}.tmp"
    torch.save({"model": state["model"], "config": dataclasses.asdict(cfg),
                "codec": dataclasses.asdict(cfg.codec)}, tmp)
    os.replace(tmp, args.out)

    model, cfg = load_checkpoint(args.out)  # measure what was written, decoded with its codec
    codec, spec = cfg.codec, cfg.spec
    val = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=codec, spec=spec,
                        train=False, augment=None)
    preds = evaluate.predict_dataset(model, val, codec, spec, batch_size=64, flip=cfg.val_flip)
    stats = evaluate.predictions_ap(preds, val.ground_truth)
    taxonomy = analysis.error_taxonomy(val.ground_truth, evaluate.predictions_to_results(preds, spec.sigmas))
    train = CocoKeypoints(cfg.val_path(cfg.train_ann), cfg.val_path(cfg.train_images), codec=codec, spec=spec,
                          train=False, augment=None)
    gt = analysis.crop_ground_truth(val)
    network = analysis.joint_errors(analysis.predictions_in_crop(preds, val), gt[preds["indices"]])
    baseline = analysis.joint_errors(analysis.mean_pose(analysis.crop_ground_truth(train)), gt)

    history, minutes, samples = [], 0.0, 0
    for record in state["metrics"]:
        minutes += record["epoch_time_s"] / 60
        samples += round(record["images_per_s"] * record["epoch_time_s"])
        if "val" in record:
            history.append({"epoch": record["epoch"], "train_minutes": round(minutes, 2), "samples": samples,
                            "loss": record["loss"], "ap": record["val"]["ap"], "ap75": record["val"]["ap75"]})
    meta_path = os.path.join(preset.data_root, "synthpose.json")
    data = {}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            data = json.load(f)
    out = {
        "config": cfg.name, "epochs": state["epoch"], "checkpoint_of_run": args.which,
        "val": stats.as_record(),
        "eval": {"flip": cfg.val_flip, "decode": codec.decoding, "flip_shift": codec.flip_shift,
                 "nms_threshold": 0.9,
                 "rescore_threshold": 0.2, "boxes": "gt",
                 "split": "data_samples/synthpose val (150 images, 300 persons)"},
        "inversion_share": taxonomy.overall()["inversion"], "taxonomy": taxonomy.overall(),
        "joint_error_px": dict(zip(spec.names, np.round(network, 2).tolist())),
        "mean_pose_error_px": dict(zip(spec.names, np.round(baseline, 2).tolist())),
        "history": history, "wall_time_s": round(60 * minutes),
        "wall_time_note": "sum of the training epochs (validations excluded); the 2 cores were shared with "
                          "other jobs of the session part of the time",
        "data": {"command": args.data, "seed": data.get("seed"), "n_train_images": data.get("n_train"),
                 "n_train_persons": data.get("n_persons_train")},
        "command": args.command,
        "device": f"CPU ({os.cpu_count()} cores, {platform.machine()}), torch {torch.__version__}, "
                  f"{cfg.cpu_threads} compute thread + {cfg.workers} data worker",
        "date": datetime.date.today().isoformat(),
        "weights": "fp32 state dict under 'model', the TrainConfig as a dict under 'config', its "
                   "HeatmapCodec under 'codec' (hrnet_edu.checkpoints.load_checkpoint)",
        "made_with": "python benchmarks/record_checkpoint.py " + f"{args.run} {args.out}",
    }  # fmt: skip
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: out[k] for k in ("val", "inversion_share", "wall_time_s")}, indent=1))
    print("every joint better than the mean pose:", bool(np.all(network < baseline)))


if __name__ == "__main__":
    main()

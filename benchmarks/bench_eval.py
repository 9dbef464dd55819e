"""Evaluation throughput: person instances per second of ``evaluate.model_ap`` (and of the network alone).

    .venv/bin/python benchmarks/bench_eval.py                       # CPU, CPU config, SynthPose sample
    .venv/bin/python benchmarks/bench_eval.py --device cuda --config synthpose_w32_256x192 \
        data_root=data_samples/synthpose --batch-size 64 --workers 8

Three numbers per setting (flip test on and off):
* ``network``: forward passes only, on random crops already on the device (the upper bound);
* ``pipeline``: ``predict_dataset`` + rescoring + OKS-NMS + COCOeval on crops already decoded
  and held in memory (what the test-time post-processing costs on top of the network);
* ``end_to_end``: ``evaluate.model_ap`` on the dataset, JPEG decoding and warping included.
Prints one JSON object. Timings on a shared machine are noisy: run on a quiet one to report.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from hrnet_edu import checkpoints, evaluate
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.configs import get_config
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.model import HRNet
from hrnet_edu.overrides import apply_overrides


class InMemory(list):
    """Decoded samples held in memory, with the dataset's codec, spec and ground truth."""

    def __init__(self, dataset, n):
        super().__init__(dataset[i] for i in range(n))
        self.codec, self.spec, self.ground_truth = dataset.codec, dataset.spec, dataset.ground_truth


def timed(fn, repeat: int) -> float:
    fn()  # warm-up (cuDNN autotuning, allocator, lazy imports)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthpose_w16_128x96_cpu")
    parser.add_argument("--checkpoint", help="weights to load (default: a freshly initialised network)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--max-instances", type=int, default=300, help="instances of the val split to use")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = apply_overrides(get_config(args.config), args.overrides)
    device = checkpoints.resolve_device(args.device)
    if args.checkpoint:
        model, cfg = load_checkpoint(args.checkpoint, cfg, device=device)
    else:
        model = HRNet(cfg.model).to(device).eval()
    dataset = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec,
                            spec=cfg.spec, train=False, augment=None)
    n = min(args.max_instances, len(dataset))
    subset = torch.utils.data.Subset(dataset, range(n))
    memory = InMemory(dataset, n)
    crops = torch.randn(args.batch_size, 3, *cfg.input_size, device=device)
    report = {"config": cfg.name, "device": str(device), "threads": torch.get_num_threads(), "instances": n,
              "batch_size": args.batch_size, "input": list(cfg.input_size), "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    for flip in (False, True):
        key = "flip" if flip else "no_flip"
        net = timed(lambda f=flip: evaluate.predict_heatmaps(model, crops, cfg.spec.flip_index, flip=f),
                    args.repeat)
        pipe = timed(lambda f=flip: evaluate.model_ap(model, memory, flip=f, batch_size=args.batch_size,
                                                      device=device), args.repeat)
        # model_ap's two steps, on a Subset (the first n instances) of the dataset
        e2e = timed(lambda f=flip: evaluate.predictions_ap(evaluate.predict_dataset(
            model, subset, dataset.codec, dataset.spec, flip=f, batch_size=args.batch_size, device=device,
            num_workers=args.workers), dataset.ground_truth), 1)
        report[key] = {"network_per_s": args.batch_size / net, "pipeline_per_s": n / pipe,
                       "end_to_end_per_s": n / e2e}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()

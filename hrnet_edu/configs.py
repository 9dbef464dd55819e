"""Training configurations: one frozen dataclass and its named presets.

The paper's COCO setting (§4.1): input 256×192 (or 384×288), heatmaps at 1/4 of the input,
Gaussian targets (the paper says a standard deviation of 1 pixel; the reference configuration uses
sigma 2 heatmap px, 3 at 384×288, and so do we), Adam with learning rate 1e-3 divided by 10 at
epochs 170 and 200, 210 epochs, 32 images per GPU on 4 GPUs, no weight decay.

Presets (plain functions; ``PRESETS`` maps their names to them so the command line can find them):

* ``synthpose_w32_256x192`` — the GPU default: HRNet-W32 on a SynthPose set made by
  ``hrnet-edu synth --out data/synthpose``; the paper's schedule compressed to a short run.
* ``synthpose_w16_128x96_cpu`` — the CPU recipe: a small HRNet trained on a CPU on 20,000 generated
  SynthPose images (``make data``), its machine settings chosen on the machine it runs on.
* ``coco_w32_256x192``, ``coco_w48_384x288`` — the paper's settings, for a user-supplied COCO folder
  holding ``annotations/person_keypoints_{train,val}2017.json``, ``train2017/`` and ``val2017/``.

Changing a preset: ``dataclasses.replace(cfg, epochs=3)`` in Python, ``key=value`` on the command line
(``overrides.apply_overrides``); ``overrides.config_from_dict`` reads a config back from a checkpoint.

Relative paths (``data_root``) are looked up in the working directory first and then in the
repository root, so a notebook running inside ``notebooks/`` finds ``data_samples/`` as well.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field

import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.baseline import BaselineConfig
from hrnet_edu.data.transforms import AugmentConfig
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import KeypointSpec, get_spec

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; ``dataclasses.asdict(cfg)`` is stored in every checkpoint.

    Data: ``data_root`` joined with the annotation files and image folders below.
    Shapes: the network sees (N, 3, H, W) crops with ``input_size = (H, W)`` and predicts
    (N, K, H/4, W/4) heatmaps; ``sigma`` is the target Gaussian's standard deviation in heatmap px.
    ``input_size``, ``sigma``, ``unbiased_targets`` and ``val_decode`` make the run's
    ``heatmaps.HeatmapCodec`` (``codec``), built once here and stored in every checkpoint.
    ``batch_size`` is per process (per GPU): the effective batch is batch_size × world size.
    ``amp`` is one of "none", "bf16", "fp16" and, like ``channels_last``, only acts on CUDA; on a CPU
    ``cpu_bf16`` and ``cpu_channels_last`` do (see ``autocast_dtype``, ``uses_channels_last``).
    ``cpu_bf16``, ``cpu_channels_last``, ``cpu_threads`` and ``workers`` may be "auto": chosen for
    the machine when training starts (``cpu_settings.choose``; ``train`` stores the chosen values).
    ``keypoints`` names the keypoint set of the data (a built-in name of ``keypoints.SPECS``, e.g.
    "coco17" or "crowdpose14", or a ``KeypointSpec``; ``spec`` resolves it): K, the flip pairs and
    the OKS sigmas come from it, and the network's ``model.num_joints`` is set to its K.
    """

    name: str = "custom"
    # an HRNet, or the high-to-low SimpleBaseline (baseline.BaselineConfig) for comparisons
    model: hrnet_model.HRNetConfig | BaselineConfig = field(default_factory=lambda: hrnet_model.W32)
    # --- data
    data_root: str = "data/synthpose"
    val_root: str | None = None  # where val_ann and val_images are; None: data_root
    train_ann: str = "annotations/person_keypoints_train.json"
    train_images: str = "images"
    val_ann: str = "annotations/person_keypoints_val.json"
    val_images: str = "images"
    keypoints: str | KeypointSpec = "coco17"  # the keypoint set (keypoints.SPECS name or a KeypointSpec)
    input_size: tuple[int, int] = (256, 192)
    sigma: float = 2.0
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    # start from the weights of this checkpoint (fine-tuning), not from init; one of another keypoint
    # set gives the head rows of the joints of the same name (checkpoints.transfer_weights)
    init_from: str | None = None
    # initialize the backbone from an ImageNet HRNet, as the paper (a weights catalogue name such as
    # "hrnet_w32_imagenet", a URL or a path; checkpoints.load_pretrained_backbone); ignored with init_from
    pretrained: str | None = None
    max_train_images: int | None = None  # use only the first n training instances (smoke runs)
    # --- optimisation (Adam + MultiStepLR, as the reference)
    batch_size: int = 32
    epochs: int = 210
    lr: float = 1e-3
    lr_steps: tuple[int, ...] = (170, 200)
    lr_factor: float = 0.1
    # "step": MultiStepLR on lr_steps (the paper); "cosine": per-step cosine decay to 0 over the run
    lr_schedule: str = "step"
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs (per step; both schedules)
    unbiased_targets: bool = False  # Gaussians centred on the sub-pixel keypoint (DARK), see heatmaps
    weight_decay: float = 0.0
    loss: str = "mse"  # "mse" (JointsMSELoss) or "ohkm" (JointsOHKMLoss, top 8 joints)
    # --- hardware
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    # "auto" in the next four: chosen from the machine when training starts (cpu_settings.choose)
    workers: int | str = 4
    cpu_threads: int | str = 0  # torch compute threads while training on a CPU; 0: torch's default
    # the same two switches for training on a CPU (off by default: they pay only on CPUs with native
    # bf16, AVX512-BF16 or AMX, measured by benchmarks/bench_cpu_train_step.py)
    cpu_bf16: bool | str = False  # bf16 autocast of the forward pass (the loss stays fp32)
    cpu_channels_last: bool | str = False
    amp: str = "bf16"
    channels_last: bool = True
    compile: bool = False
    # Warp the training crops and draw their targets on ``device``, a batch at a time
    # (data.transforms.GpuBatchTransform): the loader workers only decode each image and cut out its
    # crop's source region (``CocoKeypoints(raw=True)``). For a GPU whose CPU workers cannot keep up;
    # the crops differ from the per-sample path by at most ½ grey level (its uint8 rounding).
    warp_on_device: bool = False
    # --- bookkeeping
    val_every: int = 10  # validate every n epochs and after the last one; 0: never
    val_flip: bool = True
    val_decode: str = "shift"
    val_batch_size: int = 64
    log_every: int = 20  # steps between "step" records in log.jsonl
    seed: int = 0

    def __post_init__(self):
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if self.loss not in ("mse", "ohkm"):
            raise ValueError(f"loss must be 'mse' or 'ohkm', got {self.loss!r}")
        if self.batch_size < 1 or self.epochs < 1 or self.val_every < 0:
            raise ValueError("batch_size and epochs must be >= 1 and val_every >= 0 (0: never validate)")
        for key in ("cpu_bf16", "cpu_channels_last"):
            if not isinstance(getattr(self, key), bool) and getattr(self, key) != "auto":
                raise ValueError(f"{key} must be true, false or auto, got {getattr(self, key)!r}")
        for key in ("cpu_threads", "workers"):
            value = getattr(self, key)
            counts = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if value != "auto" and not counts:
                raise ValueError(f"{key} must be an integer >= 0 or auto, got {value!r}")
        if self.lr_schedule not in ("step", "cosine"):
            raise ValueError(f"lr_schedule must be 'step' or 'cosine', got {self.lr_schedule!r}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if list(self.lr_steps) != sorted(self.lr_steps):
            raise ValueError(f"lr_steps must be increasing, got {self.lr_steps}")
        # values that otherwise fail deep inside a run (a ZeroDivisionError at the first step for
        # log_every=0, torch's device-string error) or train silently on nonsense (lr <= 0)
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.lr_factor) and self.lr_factor > 0):
            raise ValueError(f"lr_factor must be a positive number, got {self.lr_factor!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1 (steps between log records), got {self.log_every}")
        if self.val_batch_size < 1:
            raise ValueError(f"val_batch_size must be >= 1, got {self.val_batch_size}")
        if self.max_train_images is not None and self.max_train_images < 1:
            raise ValueError(f"max_train_images must be >= 1 or none, got {self.max_train_images}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(self.device)):
            raise ValueError(f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")
        # the spec decides K: one heatmap per joint of the keypoint set (ValueError for an unknown name)
        k = get_spec(self.keypoints).num_joints
        if self.model.num_joints != k:
            object.__setattr__(self, "model", dataclasses.replace(self.model, num_joints=k))
        # input size, stride, σ and decoding checked once, where the codec is built
        object.__setattr__(self, "_codec", HeatmapCodec(
            tuple(self.input_size), self.model.output_stride, self.sigma,
            "unbiased" if self.unbiased_targets else "reference", self.val_decode))

    @property
    def codec(self) -> HeatmapCodec:
        """The run's heatmap codec: input size, the model's output stride, σ, target kind, decoding."""
        return self._codec

    @property
    def spec(self) -> KeypointSpec:
        """The keypoint set of the data (``keypoints`` resolved: a built-in name or the spec itself)."""
        return get_spec(self.keypoints)

    def autocast_dtype(self, device_type: str) -> torch.dtype | None:
        """The autocast dtype of the training forward pass on this device type, None for fp32."""
        if device_type == "cuda":
            return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)
        _check_resolved(self.cpu_bf16, "cpu_bf16", device_type)
        return torch.bfloat16 if device_type == "cpu" and self.cpu_bf16 else None

    def uses_channels_last(self, device_type: str) -> bool:
        """Whether the model and its input batches are NHWC (channels-last) on this device type."""
        if device_type == "cuda":
            return self.channels_last
        _check_resolved(self.cpu_channels_last, "cpu_channels_last", device_type)
        return device_type == "cpu" and self.cpu_channels_last

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel: the model's output stride (4 in HRNet and the paper)."""
        return self.codec.stride

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H/4, W/4) (H/s, W/s at ``heatmap_stride`` s): the size of the predicted heatmaps."""
        return self.codec.heatmap_size

    def path(self, name: str, root: str | None = None) -> str:
        """``data_root/<name>`` (or ``root/<name>``), a relative root found from the cwd or the repo root."""
        root = self.data_root if root is None else root
        if not os.path.isabs(root) and not os.path.exists(root):
            candidate = os.path.join(REPO_ROOT, root)
            root = candidate if os.path.exists(candidate) else root
        return os.path.join(root, name)

    def val_path(self, name: str) -> str:
        """``val_root/<name>``, or ``data_root/<name>`` when the config has no separate ``val_root``."""
        return self.path(name, self.val_root)


def _check_resolved(value, key: str, device_type: str) -> None:
    if device_type == "cpu" and value == "auto":
        raise ValueError(f"{key}='auto' is decided when training starts: apply cpu_settings.choose(cfg) "
                         "first")


def synthpose_w32_256x192() -> TrainConfig:
    """HRNet-W32, 256×192, on a generated SynthPose set (``hrnet-edu synth --out data/synthpose``).

    The paper's recipe (Adam 1e-3, ×0.1 twice, batch 32/GPU; the reference's sigma 2) with the
    210-epoch schedule compressed to 40 epochs: SynthPose figures are simpler than COCO people and
    10k images of them converge much sooner. Batch 64 fills one modern GPU better than 32.
    """
    return TrainConfig(
        name="synthpose_w32_256x192", model=hrnet_model.W32, data_root="data/synthpose",
        batch_size=64, epochs=40, lr_steps=(30, 36), val_every=5, workers=12,
    )  # fmt: skip


def synthpose_w16_128x96_cpu() -> TrainConfig:
    """The CPU recipe: ``model.W16_1UNIT`` at 128×96 on 20,000 generated SynthPose images, on a CPU.

    Made with ``hrnet-edu synth --out data/synthpose_20k --train 20000 --val 0 --seed 0`` (``make data``,
    37,476 persons) and validated on the bundled ``data_samples/synthpose`` val split. Chosen by the
    learning-curve study ``benchmarks/bench_cpu_recipes.py`` (results in ``benchmarks/results/``):

    * network: W16's widths with one module per stage and one residual unit per branch (0.74 M
      parameters) learned more per CPU-minute than W8 (cheaper per crop, slower per crop seen), full
      W16 or a one-unit W32 (better per crop, too slow per crop);
    * data: distinct figures beat repeated ones — 20,000 generated images instead of the bundled 500;
    * targets: σ = 2 heatmap px (twice the reference's σ = 2 on 64×48, relative to the person: more
      non-zero target pixels, a stronger gradient off the all-zero plateau) centred on the sub-pixel
      keypoint (``unbiased_targets``), decoded with DARK (``val_decode="dark"``);
    * schedule: Adam, linear warm-up over 0.3 epoch, cosine decay to 0 (a short run gets its low-lr
      refinement from the decay, where the paper's 210 epochs get it from the ×0.1 steps), batch 32;
    * hardware, chosen on the machine when training starts (``"auto"``; ``cpu_settings.choose``, which
      says what it chose and why): bf16 autocast and channels-last on the CPU (``cpu_bf16``,
      ``cpu_channels_last``) where PyTorch reports native bf16 *and* a short probe of the training
      step finds them faster — about twice as fast a step on a CPU with AVX512-BF16, several times
      slower on one without, which trains in fp32 — and the usable cores split between compute
      threads (``cpu_threads``) and data-loading workers (``workers``): on 2 cores one of each.
      Explicit values (``cpu_bf16=false``, ``cpu_threads=2``, ``workers=0``…) win. Measurements:
      ``benchmarks/bench_cpu_train_step.py`` (the step), ``benchmarks/bench_cpu_choice.py`` (the
      automatic choice against fixed ones, with and without native bf16), ``hrnet_edu.evidence``
      (what bf16 costs in AP); results in ``benchmarks/results/`` and the README's Measured table.

    The committed ``data_samples/checkpoints/synthpose_w16_128x96_cpu.pt`` is this recipe trained in
    fp32 with one compute thread and one worker; its JSON record holds its AP, time and machine.
    """
    return TrainConfig(
        name="synthpose_w16_128x96_cpu", model=hrnet_model.W16_1UNIT, data_root="data/synthpose_20k",
        val_root="data_samples/synthpose", input_size=(128, 96), sigma=2.0, unbiased_targets=True,
        batch_size=32, epochs=15, lr=2e-3, lr_schedule="cosine", warmup_epochs=0.3, lr_steps=(),
        device="cpu", workers="auto", cpu_threads="auto", amp="none", channels_last=False, cpu_bf16="auto",
        cpu_channels_last="auto", val_every=1,
        val_decode="dark", val_batch_size=64, log_every=20,
    )  # fmt: skip


def coco_w32_256x192() -> TrainConfig:
    """The paper's HRNet-W32 256×192 COCO setting (override ``data_root=/path/to/coco``), starting from
    the ImageNet HRNet-W32 (``pretrained``: fetched into the weights cache when training starts)."""
    return TrainConfig(
        name="coco_w32_256x192", model=hrnet_model.W32, data_root="data/coco",
        train_ann="annotations/person_keypoints_train2017.json", train_images="train2017",
        val_ann="annotations/person_keypoints_val2017.json", val_images="val2017",
        input_size=(256, 192), sigma=2.0, batch_size=32, epochs=210, lr=1e-3, lr_steps=(170, 200),
        workers=8, val_every=10, pretrained="hrnet_w32_imagenet",
    )  # fmt: skip


def coco_w48_384x288() -> TrainConfig:
    """The paper's HRNet-W48 384×288 COCO setting: heatmaps 96×72, sigma 3, from the ImageNet HRNet-W48."""
    return dataclasses.replace(
        coco_w32_256x192(), name="coco_w48_384x288", model=hrnet_model.W48, input_size=(384, 288), sigma=3.0,
        pretrained="hrnet_w48_imagenet",
    )


PRESETS = {
    "synthpose_w32_256x192": synthpose_w32_256x192,
    "synthpose_w16_128x96_cpu": synthpose_w16_128x96_cpu,
    "coco_w32_256x192": coco_w32_256x192,
    "coco_w48_384x288": coco_w48_384x288,
}


def get_config(name: str) -> TrainConfig:
    """The preset called ``name`` (see ``PRESETS``); ValueError listing the known names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown config {name!r}; known configs: {', '.join(PRESETS)}")
    return PRESETS[name]()

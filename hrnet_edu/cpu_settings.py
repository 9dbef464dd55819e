"""The CPU recipe's machine-dependent choices, made on the machine it runs on, each with its reason.

Four settings of ``TrainConfig`` depend on the computer rather than on the experiment: the
precision of the forward pass (``cpu_bf16``: bf16 autocast or fp32), the memory format of the
model and its input batches (``cpu_channels_last``: NHWC or NCHW), the torch compute threads
(``cpu_threads``) and the DataLoader processes (``workers``). A value of ``"auto"`` asks
``choose`` to decide; an explicit value always wins and is never second-guessed.

* Precision and memory format. bf16 autocast halves the bytes a convolution moves and, on a CPU
  with native bf16 arithmetic (x86: AVX512-BF16 or AMX; arm64: the BF16 extension), doubles the
  training step's speed; on a CPU without it oneDNN emulates bf16 and the step is several times
  *slower*. What PyTorch reports about the CPU (``torch.cpu.get_capabilities``) decides where it
  is conclusive — no native bf16: fp32 — and a timed probe of a few training steps of the actual
  network decides where it is not: a CPU that reports bf16 may still be barred from using it
  (``ONEDNN_MAX_CPU_ISA`` limits oneDNN's instruction sets, as a laptop's emulation does) or use
  it slowly. The probe times fp32 (NCHW) against bf16 with channels-last — an open memory format
  follows the precision — one warm-up step and up to ``PROBE_STEPS`` timed steps each, interleaved
  so that a load that comes and goes hits both alike, and keeps the faster (fp32 unless bf16 beats
  it by ``PROBE_MARGIN``).
* Threads and workers. From the cores this process may run on (``os.sched_getaffinity`` on
  Linux, ``os.cpu_count`` elsewhere), split between compute threads and loader workers by
  ``split_cores``.

``choose(cfg, "cpu")`` returns a ``CpuSettings``; ``CpuSettings.apply(cfg)`` gives the config with
the four values filled in, ``lines()`` says what was chosen and why (``train`` prints them and logs
them as a "cpu_settings" record of ``log.jsonl``; ``demo`` writes them into its report).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from dataclasses import dataclass

import torch

from hrnet_edu.configs import TrainConfig
from hrnet_edu.model import build_model

AUTO = "auto"
PROBE_BATCH = 8  # crops per probe step: few, so that the probe takes seconds (the same kernels as at 32)
PROBE_STEPS = 3  # timed steps per candidate at most (after one warm-up step)
PROBE_DROP = 2.0  # a candidate this many times slower than the best after a timed step is not timed again
PROBE_DROP_WARMUP = 4.0  # the same for the warm-up step, which also holds one-time costs
PROBE_MARGIN = 0.05  # the other candidate must beat the first (fp32) by 5 % to be chosen (probe noise)
# One loader worker decodes, warps and draws targets for several times as many SynthPose crops per
# second as one compute thread trains on (benchmarks/results/cpu_choice.json: "data_per_core" vs the
# step), so one worker feeds about this many compute threads.
THREADS_PER_WORKER = 4


@dataclass(frozen=True)
class CpuSettings:
    """What a run uses for the four machine-dependent settings, and one reason per setting.

    ``probe_ms``: the probe's best step time (ms) per candidate ("fp32", "bf16+channels-last", …),
    empty when no probe ran. ``threads`` 0 leaves torch's default.
    """

    bf16: bool
    channels_last: bool
    threads: int
    workers: int
    reasons: dict[str, str]
    probe_ms: dict[str, float] = dataclasses.field(default_factory=dict)

    def apply(self, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with ``cpu_bf16``, ``cpu_channels_last``, ``cpu_threads`` and ``workers`` set to these."""
        return dataclasses.replace(cfg, cpu_bf16=self.bf16, cpu_channels_last=self.channels_last,
                                   cpu_threads=self.threads, workers=self.workers)

    def lines(self) -> list[str]:
        """One line per setting: ``precision: fp32 (this CPU has no native bf16 …)``."""
        return [f"{key}: {self.reasons[key]}" for key in ("precision", "memory format", "threads", "workers")]

    def as_record(self) -> dict:
        """The "cpu_settings" record of ``log.jsonl``."""
        return {"kind": "cpu_settings", "cpu_bf16": self.bf16, "cpu_channels_last": self.channels_last,
                "cpu_threads": self.threads, "workers": self.workers, "reasons": dict(self.reasons),
                "probe_ms": dict(self.probe_ms)}  # fmt: skip


# ----------------------------------------------------------------------------- cores
def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (Linux), else all of the machine's."""
    if hasattr(os, "sched_getaffinity"):  # Linux: taskset, cgroups' cpusets and the like limit it
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # macOS, Windows


def split_cores(cores: int) -> tuple[int, int]:
    """(compute threads, loader workers) for ``cores`` cores, together using each core once.

    One core: loading in the main process (0 workers) — a worker would only take turns with the
    compute thread. Two or more: one worker per ``THREADS_PER_WORKER`` compute threads, at least
    one (2 cores: 1 thread + 1 worker, 4: 3 + 1, 8: 6 + 2, 16: 13 + 3).
    """
    if cores <= 1:
        return 1, 0
    workers = max(1, round(cores / (THREADS_PER_WORKER + 1)))
    return cores - workers, workers


def _threads_and_workers(cfg: TrainConfig, cores: int, cpu: bool) -> tuple[int, int, str, str]:
    """(threads, workers, why threads, why workers); an explicit value is kept, the other fills the rest."""
    where = f"{cores} usable core{'s' if cores != 1 else ''}"
    # on an accelerator the main process only drives it: every other core loads data
    auto_threads, auto_workers = split_cores(cores) if cpu else (0, max(0, cores - 1))
    threads_set, workers_set = cfg.cpu_threads != AUTO, cfg.workers != AUTO
    if workers_set:
        workers, why_workers = cfg.workers, f"{cfg.workers} (set in the config)"
    elif threads_set and cpu:
        workers = min(auto_workers, max(0, cores - (cfg.cpu_threads or cores)))
        why_workers = f"{workers}: what the {where} leave beside cpu_threads={cfg.cpu_threads}"
    elif workers := auto_workers:
        why_workers = (f"{workers}: of {where}, one loader per {THREADS_PER_WORKER} compute threads"
                       if cpu else f"{workers}: all of {where} but the main process's")
    else:
        why_workers = f"0: {where}, so the main process loads the data"
    if threads_set:
        threads, why_threads = cfg.cpu_threads, f"{cfg.cpu_threads or 'torch default'} (set in the config)"
    elif not cpu:
        threads, why_threads = 0, "torch default (not a CPU run)"
    elif workers_set:
        threads = max(1, cores - workers)
        why_threads = f"{threads}: the {where} less the {workers} loader(s) set in the config"
    else:
        threads = auto_threads
        why_threads = f"{threads}: of {where}, the rest ({workers}) load data"
    return threads, workers, why_threads, why_workers


# ----------------------------------------------------------------------------- precision
def native_bf16() -> tuple[bool | None, str]:
    """(whether PyTorch reports native bf16 arithmetic on this CPU, what it reports).

    None when this build of PyTorch cannot tell (no ``torch.cpu.get_capabilities``): not conclusive.
    """
    caps = dict(torch.cpu.get_capabilities()) if hasattr(torch.cpu, "get_capabilities") else None
    if caps is None:
        if hasattr(torch.cpu, "_is_avx512_bf16_supported"):  # builds before get_capabilities (x86)
            found = torch.cpu._is_avx512_bf16_supported()
            return found, "AVX512-BF16" if found else "no AVX512-BF16"
        return None, "this PyTorch build does not report the CPU's features"
    arch = caps.get("architecture", "this CPU")
    # x86: AVX512-BF16 or AMX tiles with bf16; arm64: the BF16 extension (NEON or SVE)
    names = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16", "bf16": "BF16", "sve_bf16": "SVE-BF16"}
    found = [label for key, label in names.items() if caps.get(key)]
    return bool(found), f"{arch} with {' and '.join(found)}" if found else f"{arch} without native bf16"


def cpu_name() -> str:
    """The CPU's model name as PyTorch's cpuinfo reads it ("AMD EPYC", "Apple M2"), else the platform's."""
    caps = dict(torch.cpu.get_capabilities()) if hasattr(torch.cpu, "get_capabilities") else {}
    return str(caps.get("cpu_name") or platform.processor() or platform.machine() or "unknown CPU")


def _label(bf16: bool, channels_last: bool) -> str:
    return ("bf16" if bf16 else "fp32") + ("+channels-last" if channels_last else "")


def _probe_step(cfg: TrainConfig, bf16: bool, channels_last: bool, images, target):
    """A fresh network and Adam, and a closure running one training step of them on (images, target)."""
    model = build_model(cfg.model)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    images = images.contiguous(memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            heatmaps = model(images)  # (N, K, H/4, W/4)
        loss = ((heatmaps.float() - target) ** 2).mean()  # the recipe's MSE, without joint weights
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def probe_step_times(cfg: TrainConfig, candidates: list[tuple[bool, bool]], threads: int,
                     batch_size: int = PROBE_BATCH) -> tuple[dict[tuple[bool, bool], float], set]:
    """Best seconds per training step of ``cfg.model`` for each (bf16, channels_last) candidate.

    One warm-up step each (oneDNN chooses and builds its kernels), timed; a candidate
    ``PROBE_DROP_WARMUP`` times slower than the fastest there (emulated bf16: 5-40×) is not run again
    and keeps its warm-up time. Then up to ``PROBE_STEPS`` interleaved timed steps, dropping a
    candidate ``PROBE_DROP`` times slower than the best. Random (N, 3, H, W) crops and
    (N, K, H/4, W/4) targets at ``batch_size``; the global random state and the thread count are
    left as they were. Returns (best seconds, the candidates timed only in their warm-up step).
    """
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            (h, w), (hh, ww) = cfg.input_size, cfg.heatmap_size
            images = torch.randn(batch_size, 3, h, w)
            target = torch.rand(batch_size, cfg.model.num_joints, hh, ww) * 0.1
            steps = {c: _probe_step(cfg, *c, images, target) for c in candidates}
            best = {c: step() for c, step in steps.items()}  # the warm-up
            steps = {c: s for c, s in steps.items() if best[c] < PROBE_DROP_WARMUP * min(best.values())}
            warmup_only = set(candidates) - set(steps)
            for c in steps:
                best[c] = math.inf  # the warm-up step's one-time costs are not the step's
            for _ in range(PROBE_STEPS):
                for c, step in steps.items():
                    best[c] = min(best[c], step())
                fastest = min(best.values())
                steps = {c: s for c, s in steps.items() if best[c] < PROBE_DROP * fastest}
                if len(steps) == 1:
                    break
    finally:
        torch.set_num_threads(threads_before)
    return best, warmup_only


def _precision(cfg: TrainConfig, threads: int, probe: bool) -> tuple[bool, bool, dict[str, str], dict]:
    """(bf16, channels_last, their reasons, probe ms): explicit values kept, the open ones decided."""
    native, seen = native_bf16()
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    if limit:
        seen += f", but ONEDNN_MAX_CPU_ISA={limit} limits oneDNN"
    bf16_options = [cfg.cpu_bf16] if cfg.cpu_bf16 != AUTO else [False] if native is False else [False, True]
    # an open memory format follows the precision: channels-last, for which oneDNN's bf16 kernels are
    # made, with bf16; the plain NCHW with fp32 (channels-last is not faster in fp32 on every CPU)
    candidates = [(b, b if cfg.cpu_channels_last == AUTO else cfg.cpu_channels_last) for b in bf16_options]
    times, warmup_only = {}, set()
    if len(candidates) > 1 and probe:
        times, warmup_only = probe_step_times(cfg, candidates, threads)
    # plain fp32 NCHW (the first candidate) unless another is clearly faster; it also stands without a probe
    choice = min(times, key=times.get) if times else candidates[0]
    if times and times[choice] > (1 - PROBE_MARGIN) * times[candidates[0]]:
        choice = candidates[0]
    bf16, channels_last = choice

    def versus(other: tuple[bool, bool]) -> str:
        """'the bf16 step 8.1× slower in the probe': ``other``'s best time against the choice's."""
        ratio = times[other] / times[choice]
        first = " (its first step, not run again)" if other in warmup_only else ""
        how = f"{ratio:.2f}× slower" if ratio >= 1 else f"only {1 / ratio:.2f}× faster (within the margin)"
        return f"the {_label(*other)} step {how} in the probe{first}"

    other_precision = [c for c in times if c[0] != bf16]
    if cfg.cpu_bf16 != AUTO:
        why = f"{'bf16 autocast' if bf16 else 'fp32'} (set in the config)"
    elif native is False:
        why = f"fp32: this CPU has no native bf16 ({seen})"
    elif not other_precision:
        why = f"fp32: no probe was run ({seen})"
    else:
        why = f"{'bf16 autocast' if bf16 else 'fp32'}: {seen}; {versus(min(other_precision, key=times.get))}"
    if cfg.cpu_channels_last != AUTO:
        why_cl = f"{'channels-last' if channels_last else 'NCHW'} (set in the config)"
    elif bf16:
        why_cl = "channels-last: with bf16 autocast (oneDNN's bf16 kernels are made for it)"
    else:
        why_cl = "NCHW: with fp32 (PyTorch's default memory format)"
    probe_ms = {_label(*c): round(t * 1e3, 1) for c, t in times.items()}
    return bf16, channels_last, {"precision": why, "memory format": why_cl}, probe_ms


# ----------------------------------------------------------------------------- the choice
def choose(cfg: TrainConfig, device_type: str = "cpu", cores: int | None = None, probe: bool = True,
           processes: int = 1) -> CpuSettings:
    """The run's precision, memory format, threads and workers: ``cfg``'s explicit values, the rest chosen.

    ``cores``: the usable cores (default ``usable_cores()``), shared by ``processes`` training
    processes on this machine (torchrun's local world size). ``probe=False`` skips the timed probe
    (the open choices fall back to fp32 NCHW); so does a run of several processes, where every rank
    must choose alike. On another device than the CPU, the CPU switches are off (``amp`` and
    ``channels_last`` act there) and only the workers are chosen.
    """
    cores = max(1, (cores or usable_cores()) // max(1, processes))
    cpu = device_type == "cpu"
    threads, workers, why_threads, why_workers = _threads_and_workers(cfg, cores, cpu)
    if cpu:
        bf16, channels_last, reasons, probe_ms = _precision(cfg, threads, probe and processes == 1)
    else:
        bf16 = cfg.cpu_bf16 if cfg.cpu_bf16 != AUTO else False
        channels_last = cfg.cpu_channels_last if cfg.cpu_channels_last != AUTO else False
        reasons, probe_ms = {"precision": f"{device_type}: amp={cfg.amp}",
                             "memory format": f"{device_type}: channels_last={cfg.channels_last}"}, {}
    reasons = {**reasons, "threads": why_threads, "workers": why_workers}
    return CpuSettings(bf16, channels_last, threads, workers, reasons, probe_ms)

"""Counting parameters and multiply-adds the way the paper's table does.

torch's ``FlopCounterMode`` counts 2 FLOPs per multiply-add of every convolution and matrix product.
The paper's "GFLOPs" column is really *giga multiply-adds* with a binary giga:

    paper GFLOPs = MACs / 1024³,   MACs = FLOPs / 2

(HRNet-W32 at 256×192: 7.645·10⁹ MACs → 7.12, printed as 7.1). Counting runs on the "meta" device:
shapes only, no arithmetic, so even HRNet-W48 at 384×288 is counted in about a second on a CPU.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _on_meta(model: nn.Module) -> nn.Module:
    """A shape-only copy of ``model`` (the model itself if it already lives on the meta device)."""
    if all(p.device.type == "meta" for p in model.parameters()):
        return model
    return copy.deepcopy(model).to("meta")


def macs_by_module(model: nn.Module, input_size=(256, 192), batch: int = 1) -> dict[str, int]:
    """Multiply-adds of one forward pass of an (N=batch, 3, H, W) input, for every named submodule.

    Returns {"" (the whole model): total, "conv1": …, "stage2.0.fuse_layers": …, …}; a module's
    count includes its children's. Names are ``model.named_modules()`` names.
    """
    meta = _on_meta(model)
    was_training = meta.training
    meta.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(batch, 3, *input_size, device="meta"))
    meta.train(was_training)
    root = type(meta).__name__
    result = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            continue
        key = "" if name == root else name.removeprefix(root + ".")
        result[key] = sum(ops.values()) // 2  # FlopCounterMode counts 2 FLOPs per multiply-add
    result.setdefault("", 0)
    return result


def count_macs(model: nn.Module, input_size=(256, 192), batch: int = 1) -> int:
    """Total multiply-adds of convolutions and matrix products for an (N, 3, H, W) input."""
    return macs_by_module(model, input_size, batch)[""]


def paper_gflops(macs: int) -> float:
    """The paper's "GFLOPs": multiply-adds / 1024³."""
    return macs / 1024**3


def count_parameters(model: nn.Module, prefix: str = "") -> int:
    """Number of parameters whose name starts with ``prefix`` (buffers such as BN statistics excluded)."""
    return sum(p.numel() for name, p in model.named_parameters() if name.startswith(prefix))

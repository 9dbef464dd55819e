"""Reading the network: capture HRNet's intermediate feature maps by name, and reduce them for display.

``capture(model)`` registers forward hooks on an unmodified :class:`hrnet_edu.model.HRNet` and
stores, for one forward pass, what each part of the paper's Figure 1 computes. It finds the parts
through the model's own accessors (``HRNet.stage1``, ``stages()``, ``head``, ``HRModule.branches``
and ``.exchange``), never by attribute names. Names (s = stage 2..4, m = module in the stage,
r = branch, 0 being the highest resolution as in ``blocks``; output k, input i as in ``fusion``)::

    stem                           (N, 64, H/4, W/4)     the two stride-2 convolutions (+BN, ReLU)
    stage1                         (N, 256, H/4, W/4)    stage 1 (layer1, four bottlenecks)
    stage{s}                       list of (N, C·2^r, H/2^(r+2), W/2^(r+2)), the stage's fused
                                                         outputs (branch 0 only after stage 4)
    stage{s}.module{m}.branch{r}   (N, C·2^r, ...)       branch r after its residual units
    stage{s}.module{m}.exchange              list        the exchange unit's fused outputs
    stage{s}.module{m}.exchange.out{k}       tensor      fused output k = ReLU(Σ_i a(X_i, k))
    stage{s}.module{m}.exchange.out{k}.from{i}  tensor   contribution a(X_i, k) of input i to output k
    heatmaps                       (N, K, H/4, W/4)      the final 1×1 head

(64 and 256 are the paper's stem and stage-1 widths; the CPU presets W16/W8 use narrower ones.)

Contributions are computed inside the hook by the exchange unit's own ``contributions`` method on
the inputs it received, so they are exactly the terms its forward sums (no fusion re-implemented
here). Captured tensors are detached copies (optionally moved to another device, e.g. the CPU).

The reductions below turn a captured (C, H, W) map into something one can look at: a channel grid,
a mean/max map, the top-k channels, a PCA-to-RGB image, and each input's share of a fused output.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------
# Naming: walk the model's structure once.
# ---------------------------------------------------------------------------------------------


def _stages(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """(s, stage s) for the stages s = 2, 3, … the model has, in order (``HRNet.stages()``)."""
    return [(s, stage) for s, (_, stage) in enumerate(model.stages(), start=2)]


def _exchange_shape(unit) -> list[int]:
    """Number of inputs feeding each output of an exchange unit (unit[k][i])."""
    if unit is None:
        return []
    return [len(row) for row in unit]


def layer_names(model: nn.Module) -> list[str]:
    """Every name ``capture`` accepts for this model, in forward order (see the module docstring)."""
    names = ["stem", "stage1"]
    for s, stage in _stages(model):
        for m, module in enumerate(stage):
            prefix = f"stage{s}.module{m}"
            names += [f"{prefix}.branch{r}" for r in range(len(module.branches))]
            shape = _exchange_shape(module.exchange)
            if shape:
                names.append(f"{prefix}.exchange")
            for k, n_in in enumerate(shape):
                names.append(f"{prefix}.exchange.out{k}")
                names += [f"{prefix}.exchange.out{k}.from{i}" for i in range(n_in)]
        names.append(f"stage{s}")
    names.append("heatmaps")
    return names


def _select(valid: list[str], names) -> set[str]:
    """Resolve requested names (exact or fnmatch patterns like 'stage3.*.branch0') to valid names."""
    if names is None:
        return set(valid)
    if isinstance(names, str):
        names = [names]
    chosen: set[str] = set()
    for name in names:
        is_pattern = any(ch in name for ch in "*?[")
        hits = fnmatch.filter(valid, name) if is_pattern else [n for n in valid if n == name]
        if not hits:
            close = difflib.get_close_matches(name, valid, n=6, cutoff=0.6)
            listing = ", ".join(valid) if len(valid) <= 40 else ", ".join(valid[:6] + ["…"] + valid[-3:])
            raise ValueError(
                f"unknown layer name {name!r}; close matches: {close or 'none'}. "
                f"This model has {len(valid)} valid names ({listing}); list them all with "
                f"hrnet_edu.features.layer_names(model). Patterns such as 'stage3.*.branch0' are accepted."
            )
        chosen.update(hits)
    return chosen


# ---------------------------------------------------------------------------------------------
# Capture.
# ---------------------------------------------------------------------------------------------


class FeatureStore(dict):
    """A dict name → tensor (or list of tensors) whose KeyError lists what was captured."""

    def __missing__(self, key):
        raise KeyError(f"{key!r} was not captured; captured names: {sorted(self)}")


@contextmanager
def capture(model: nn.Module, names=None, *, device=None):
    """Record intermediate outputs of ``model`` by name during the forward passes inside the block.

    Usage::

        with capture(model, ["stage2", "stage4.module2.exchange.out0.from3"]) as feats:
            heatmaps = model(images)          # images (N, 3, H, W)
        feats["stage2"][1]                    # (N, 2C, H/8, W/8)

    Args:
        model: an HRNet (not modified; hooks only).
        names: None (everything, see ``layer_names``), one name, or a list of names / fnmatch patterns.
        device: where to put the stored copies (e.g. "cpu"); None keeps the model's device.

    Yields:
        A ``FeatureStore`` (dict) filled by the forward pass; a later forward overwrites entries.

    Raises:
        ValueError: a requested name is not valid for this model (close matches are listed).

    Every hook is removed when the block exits, also when it exits with an exception.
    """
    wanted = _select(layer_names(model), names)
    store = FeatureStore()

    def keep(t: Tensor) -> Tensor:
        # A copy, so in-place ops later in the forward (ReLU(inplace=True), +=) cannot change it.
        return t.detach().to(device or t.device, copy=True)

    def put(name: str, value) -> None:
        if name in wanted:
            store[name] = [keep(t) for t in value] if isinstance(value, (list, tuple)) else keep(value)

    handles = []
    try:
        handles.append(model.stage1.register_forward_pre_hook(lambda mod, inp: put("stem", inp[0])))
        handles.append(model.stage1.register_forward_hook(lambda mod, inp, out: put("stage1", out)))
        for s, stage in _stages(model):
            # the fused outputs only: the last module passes its other branches on unfused
            handles.append(stage.register_forward_hook(
                lambda mod, inp, out, s=s, n=stage[-1].num_fused: put(f"stage{s}", out[:n])))
            for m, module in enumerate(stage):
                prefix = f"stage{s}.module{m}"
                for r, branch in enumerate(module.branches):
                    handles.append(branch.register_forward_hook(
                        lambda mod, inp, out, n=f"{prefix}.branch{r}": put(n, out)))
                unit = module.exchange
                if unit is not None and any(n.startswith(f"{prefix}.exchange") for n in wanted):
                    handles.append(unit.register_forward_hook(
                        lambda mod, inp, out, p=prefix: _exchange_hook(mod, inp, out, p, wanted, put)))
        handles.append(model.head.register_forward_hook(lambda mod, inp, out: put("heatmaps", out)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def _exchange_hook(unit, inputs, outputs, prefix: str, wanted: set[str], put) -> None:
    """Store an exchange unit's outputs and, when asked for, its per-input contributions."""
    put(f"{prefix}.exchange", outputs)
    for k, y in enumerate(outputs):
        put(f"{prefix}.exchange.out{k}", y)
    if any(".from" in n and n.startswith(prefix + ".") for n in wanted):
        with torch.no_grad():
            # contributions[k][i] = a(X_i, k): the very terms the unit's forward sums for output k.
            contributions = unit.contributions(inputs[0])
        for k, row in enumerate(contributions):
            for i, c in enumerate(row):
                put(f"{prefix}.exchange.out{k}.from{i}", c)


def exchange_contributions(store: dict, prefix: str) -> list[list[Tensor]]:
    """Gather captured contributions of one exchange unit: result[k][i] = a(X_i, k), each (N, C_k, H_k, W_k).

    ``prefix`` is e.g. "stage3.module0"; the store must hold its ".exchange.out{k}.from{i}" names.
    """
    pattern = re.compile(re.escape(prefix) + r"\.exchange\.out(\d+)\.from(\d+)$")
    found = {tuple(map(int, m.groups())): v for name, v in store.items() if (m := pattern.match(name))}
    if not found:
        raise ValueError(f"no contributions of {prefix!r} captured (e.g. '{prefix}.exchange.out0.from0')")
    n_out = 1 + max(k for k, _ in found)
    return [[found[k, i] for i in range(1 + max(i for kk, i in found if kk == k))] for k in range(n_out)]


# ---------------------------------------------------------------------------------------------
# Reductions for display (pure functions; torch tensors in, CPU tensors / arrays out).
# ---------------------------------------------------------------------------------------------


def activation_map(fmap: Tensor, reduce: str = "mean") -> Tensor:
    """Collapse the channel axis: (..., C, H, W) -> (..., H, W).

    reduce: "mean" (average activation), "max" (strongest channel per pixel), "rms" (energy,
    sqrt(mean over C of x²), sign-free: use it for contributions, which are not ReLU'd).
    """
    if fmap.dim() < 3:
        raise ValueError(f"expected a (..., C, H, W) feature map, got shape {tuple(fmap.shape)}")
    if reduce == "mean":
        return fmap.mean(dim=-3)
    if reduce == "max":
        return fmap.amax(dim=-3)
    if reduce == "rms":
        return fmap.pow(2).mean(dim=-3).sqrt()
    raise ValueError(f"reduce must be 'mean', 'max' or 'rms', got {reduce!r}")


def top_channels(fmap: Tensor, k: int = 8) -> tuple[Tensor, Tensor]:
    """The k most active channels of (C, H, W) or (N, C, H, W), by mean |activation| over N, H, W.

    Returns (indices (k,) int64, scores (k,) float), most active first.
    """
    if fmap.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(fmap.shape)}")
    x = fmap if fmap.dim() == 4 else fmap.unsqueeze(0)
    score = x.abs().mean(dim=(0, 2, 3))  # (C,)
    values, indices = score.topk(min(k, score.numel()))
    return indices, values


def channel_grid(fmap: Tensor, channels=None, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile channels of a (C, H, W) map into one image, each channel min-max scaled to [0, 1].

    Args:
        fmap: (C, H, W) one sample's feature map.
        channels: which channels, in order (default all).
        ncols: tiles per row (default ceil(sqrt(n))).
        pad: blank pixels between tiles (NaN, so matplotlib leaves them empty).

    Returns:
        (rows·(H+pad)−pad, ncols·(W+pad)−pad) float32 array.
    """
    if fmap.dim() != 3:
        raise ValueError(f"expected one sample (C, H, W), got shape {tuple(fmap.shape)}")
    x = fmap.detach().float().cpu()
    if channels is not None:
        x = x[torch.as_tensor(channels, dtype=torch.long)]
    n, h, w = x.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / ncols))
    lo = x.amin(dim=(1, 2), keepdim=True)
    hi = x.amax(dim=(1, 2), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-12)  # a constant channel shows as 0
    grid = np.full((rows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan, dtype=np.float32)
    for t in range(n):  # loop over tiles (a few dozen), not pixels
        r, c = divmod(t, ncols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = x[t].numpy()
    return grid


def pca_rgb(fmap: Tensor, components: int = 3) -> Tensor:
    """Project every pixel's C-vector on the top principal components and show them as RGB.

    Args:
        fmap: (C, H, W) or (N, C, H, W); with N > 1 one basis is fitted to all N samples so that
            colours mean the same thing across images.

    Returns:
        (H, W, components) or (N, H, W, components) float32 in [0, 1] (CPU).

    The sign of a principal component is arbitrary; it is fixed here so that the largest loading
    of each component is positive, making the colours reproducible.
    """
    single = fmap.dim() == 3
    x = (fmap.unsqueeze(0) if single else fmap).detach().float().cpu()
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(-1, c)  # (N·H·W, C)
    centred = pixels - pixels.mean(dim=0)
    # centred = U Σ Vᵀ; the rows of Vᵀ are the principal directions in channel space.
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    basis = vt[:components]  # (q, C)
    sign = torch.sign(basis.gather(1, basis.abs().argmax(dim=1, keepdim=True)))
    basis = basis * torch.where(sign == 0, torch.ones_like(sign), sign)
    proj = centred @ basis.T  # (N·H·W, q)
    if proj.shape[1] < components:  # fewer channels than components: pad with zeros
        proj = torch.cat([proj, proj.new_zeros(len(proj), components - proj.shape[1])], dim=1)
    lo, hi = proj.amin(dim=0), proj.amax(dim=0)
    rgb = ((proj - lo) / (hi - lo).clamp_min(1e-12)).reshape(n, h, w, components)
    return rgb[0] if single else rgb


def contribution_shares(contributions, per_sample: bool = False) -> Tensor:
    """Each input branch's share of each fused output: share[k, i] = ‖a(X_i, k)‖ / Σ_i' ‖a(X_i', k)‖.

    Args:
        contributions: nested list, contributions[k][i] = a(X_i, k) of shape (N, C_k, H_k, W_k)
            (from ``ExchangeUnit.contributions`` or ``exchange_contributions``).
        per_sample: norms per sample (→ (N, outputs, inputs)) instead of over the batch (→ (outputs, inputs)).

    Returns:
        float64 CPU tensor; every row sums to one (a row of all-zero contributions stays zero).
    """
    dims = (1, 2, 3) if per_sample else (0, 1, 2, 3)
    norms = torch.stack([
        torch.stack([c.detach().double().cpu().pow(2).sum(dim=dims).sqrt() for c in row], dim=-1)
        for row in contributions
    ], dim=-2)  # (..., outputs, inputs)
    return norms / norms.sum(dim=-1, keepdim=True).clamp_min(1e-300)


def describe(name: str, fmap: Tensor | None = None, input_size=None) -> str:
    """A readable title: "stage3.module0.branch1" -> "stage 3 · module 0 · branch 1 (C=32, 32×24, 1/8)".

    fmap (N, C, H, W) or (C, H, W) adds width and resolution; input_size (H, W) adds the stride.
    """
    text = re.sub(r"(stage|module|branch|out|from)(\d+)", r"\1 \2", name).replace(".", " · ")
    text = text.replace(" · from", " ← in")
    if fmap is not None:
        c, h, w = fmap.shape[-3:]
        extra = f"C={c}, {h}×{w}"
        if input_size is not None:
            extra += f", 1/{input_size[0] // h}"
        text += f" ({extra})"
    return text


def fit_linear_probe(fmap: Tensor, targets: Tensor, weights: Tensor | None = None,
                     ridge: float = 1e-3) -> nn.Conv2d:
    """Fit a 1×1 convolution (C → K) from features to target heatmaps by ridge regression.

    A probe asks "how much of the heatmap can be read *linearly* from these features?": the
    trained network has a head only after stage 4, so to compare stages we fit one per stage.

    Args:
        fmap: (N, C, H, W) features at the heatmap resolution.
        targets: (N, K, H, W) target heatmaps.
        weights: (N, K) per-joint weights (0 = unlabelled: that sample does not train joint k).
        ridge: λ relative to the mean feature energy (scale-free regularisation).

    Returns:
        A float32 ``nn.Conv2d(C, K, 1)`` with w_k = argmin Σ_n w_nk ‖X_n w + b − y_nk‖² + λ‖w‖².
    """
    n, c = fmap.shape[:2]
    k = targets.shape[1]
    x = fmap.detach().double().cpu().flatten(2).transpose(1, 2)  # (N, P, C)
    x = torch.cat([x, x.new_ones(n, x.shape[1], 1)], dim=2)  # (N, P, C+1): last column = bias
    y = targets.detach().double().cpu().flatten(2)  # (N, K, P)
    w = torch.ones(n, k, dtype=torch.float64) if weights is None else weights.detach().double().cpu()
    gram = x.transpose(1, 2) @ x  # (N, C+1, C+1) per-sample XᵀX
    lhs = torch.einsum("nk,nij->kij", w, gram)  # (K, C+1, C+1) = Σ_n w_nk X_nᵀX_n
    rhs = torch.einsum("nk,npi,nkp->ki", w, x, y)  # (K, C+1) = Σ_n w_nk X_nᵀ y_nk
    reg = torch.eye(c + 1, dtype=torch.float64)
    reg[c, c] = 0.0  # the bias is not shrunk
    lam = ridge * lhs.diagonal(dim1=1, dim2=2)[:, :c].mean(dim=1).clamp_min(1e-12)  # (K,)
    solution = torch.linalg.solve(lhs + lam[:, None, None] * reg, rhs)  # (K, C+1)
    probe = nn.Conv2d(c, k, 1)
    with torch.no_grad():
        probe.weight.copy_(solution[:, :c, None, None].float())
        probe.bias.copy_(solution[:, c].float())
    return probe

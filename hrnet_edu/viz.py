"""Drawing helpers: poses, heatmaps, feature maps and exchange-unit contributions (matplotlib).

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (so nothing is shown or
kept in pyplot's global list; a notebook displays the returned figure), except ``draw_pose``, which
draws on an axis you pass. ``feature_browser`` returns an ipywidgets box to explore a network.

Heatmaps are drawn over the input crop with the reference's mapping x_in = 4 · x_hm (see
``hrnet_edu.geometry``): heatmap pixel (i, j) covers the crop square centred on (4j, 4i).
"""

from __future__ import annotations

import re

import numpy as np
import torch
from matplotlib.figure import Figure

from hrnet_edu import features
from hrnet_edu.keypoints import KEYPOINT_COLORS, KEYPOINT_NAMES, LIMB_COLORS, SKELETON


def draw_pose(ax, keypoints, visible=None, *, radius=3.0, linewidth=2.0, alpha=1.0):
    """Draw one person's keypoints and skeleton on a matplotlib axis.

    Args:
        ax: a matplotlib Axes (already showing the image, if any).
        keypoints: (K, 2) pixel coordinates (x, y), or (K, 3) with visibility/confidence last.
        visible: (K,) > 0 where the joint is drawn; default: all (or column 3 of keypoints).
        radius, linewidth, alpha: marker radius (points), limb width, opacity.

    Returns:
        The axis, for chaining.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (K, 2) or (K, 3), got {kp.shape}")
    if visible is None:
        visible = kp[:, 2] if kp.shape[1] == 3 else np.ones(len(kp))
    vis = np.asarray(visible) > 0
    for (a, b), color in zip(SKELETON, LIMB_COLORS):
        if a < len(kp) and b < len(kp) and vis[a] and vis[b]:
            ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=color, linewidth=linewidth, alpha=alpha)
    colors = np.array(KEYPOINT_COLORS[: len(kp)])
    ax.scatter(kp[vis, 0], kp[vis, 1], s=radius**2 * 4, c=colors[vis], edgecolors="white",
               linewidths=0.5, alpha=alpha, zorder=3)
    return ax


def _figure(n: int, ncols: int, size: float = 2.4, height: float | None = None):
    """A pyplot-free figure with n axes on a grid of ncols columns; returns (fig, flat list of axes)."""
    ncols = max(1, min(n, ncols))
    rows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(size * ncols, (height or size) * rows + 0.4), layout="constrained")
    axes = [fig.add_subplot(rows, ncols, i + 1) for i in range(n)]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def show_heatmap(ax, heatmap, image=None, *, stride: int = 4, alpha: float = 0.6, cmap: str = "jet"):
    """Draw one (h, w) heatmap over an (H, W, 3) crop on ``ax``, aligned by x_in = stride · x_hm."""
    hm = _numpy(heatmap)
    h, w = hm.shape
    if image is not None:
        ax.imshow(_numpy(image))
    half = stride / 2
    ax.imshow(hm, cmap=cmap, alpha=alpha if image is not None else 1.0, interpolation="bilinear",
              extent=(-half, stride * w - half, stride * h - half, -half), vmin=0.0, vmax=max(1e-6, hm.max()))
    if image is not None:
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
    return ax


def overlay_heatmaps(image, heatmaps, joints=None, keypoints=None, *, stride: int = 4, ncols: int = 6,
                     title: str | None = None) -> Figure:
    """Heatmaps over the input crop.

    Args:
        image: (H, W, 3) crop (uint8 or floats in [0, 1]).
        heatmaps: (K, H/4, W/4) one sample's heatmaps.
        joints: None → one panel with the maximum over the K joints; a list of joint indices →
            one panel per joint, titled with its name.
        keypoints: optional (K, 2|3) crop coordinates to draw as a skeleton (``draw_pose``).

    Returns:
        The figure (1 axis, or len(joints) axes).
    """
    hm = _numpy(heatmaps)
    panels = [(hm.max(axis=0), "max over joints")] if joints is None else [
        (hm[k], KEYPOINT_NAMES[k] if hm.shape[0] == len(KEYPOINT_NAMES) else f"joint {k}") for k in joints]
    fig, axes = _figure(len(panels), ncols, size=2.4, height=2.4 * image.shape[0] / image.shape[1])
    for ax, (panel, name) in zip(axes, panels):
        show_heatmap(ax, panel, image, stride=stride)
        if keypoints is not None:
            draw_pose(ax, keypoints, radius=1.5, linewidth=1.0)
        ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def feature_grid(fmap, name: str = "", *, input_size=None, channels=None, k: int = 16, ncols: int = 8,
                 cmap: str = "viridis") -> Figure:
    """One panel per channel of a (C, H, W) map, each at its native resolution.

    Args:
        fmap: (C, H, W) one sample's feature map (e.g. ``feats["stage3.module0.branch1"][0]``).
        name: the capture name, turned into the title (stage / module / branch, width, resolution).
        input_size: (H_in, W_in) of the network input, to show the stride (1/4, 1/8, ...).
        channels: which channels; default the k most active ones (``features.top_channels``).

    Returns:
        The figure: one axis per channel titled "c<index>", the suptitle describing the map.
    """
    if channels is None:
        channels = features.top_channels(fmap, k)[0].tolist()
    fig, axes = _figure(len(channels), ncols, size=1.5, height=1.5 * fmap.shape[-2] / fmap.shape[-1])
    for ax, c in zip(axes, channels):
        ax.imshow(_numpy(fmap[c]), cmap=cmap, interpolation="nearest")
        ax.set_title(f"c{c}", fontsize=7)
    fig.suptitle(features.describe(name, fmap, input_size), fontsize=9)
    return fig


def _stage_rows(store: dict) -> list[tuple[str, list]]:
    """(stage label, [branch maps]) for stages 1..4: the branches of each stage's last module
    (after their residual units, before the exchange unit) when captured, else the stage outputs."""
    rows = [("stage1", [store["stage1"]])] if "stage1" in store else []
    for s in (2, 3, 4):
        pattern = re.compile(rf"stage{s}\.module(\d+)\.branch0")
        modules = [int(m.group(1)) for n in store if (m := pattern.fullmatch(n))]
        if modules:
            prefix = f"stage{s}.module{max(modules)}.branch"
            rows.append((f"stage{s}", [store[f"{prefix}{r}"] for r in range(s) if f"{prefix}{r}" in store]))
        elif f"stage{s}" in store:
            rows.append((f"stage{s}", store[f"stage{s}"]))
    return rows


def stage_overview(store: dict, index: int = 0, reduce: str = "mean", input_size=None) -> Figure:
    """Every branch at every stage, side by side: rows = stages 1..4, columns = branches r.

    ``store`` holds captured features (see ``features.capture``): "stage1" (N, 4P, H/4, W/4), and for
    s ≥ 2 the branch outputs "stage{s}.module{m}.branch{r}" of the stage's last module (all s
    branches, also in stage 4 whose last exchange unit keeps branch 0 only), or else "stage{s}".
    Each panel is ``activation_map(...)[index]`` at the branch's native resolution, or with
    reduce="pca" the top three principal components of its channels as RGB (``features.pca_rgb``).
    Returns a figure with one axis per (stage, branch) present (empty grid cells removed).
    """
    rows = _stage_rows(store)
    if not rows:
        raise ValueError("store holds no 'stage1'..'stage4' entries; capture them first")
    ncols = max(len(outs) for _, outs in rows)
    fig = Figure(figsize=(2.2 * ncols, 2.4 * len(rows)), layout="constrained")
    for i, (name, outs) in enumerate(rows):
        for r, out in enumerate(outs):
            ax = fig.add_subplot(len(rows), ncols, i * ncols + r + 1, xticks=[], yticks=[])
            x = out[index]  # (C, h, w)
            shown = features.pca_rgb(x) if reduce == "pca" else features.activation_map(x, reduce)
            ax.imshow(_numpy(shown), cmap="magma", interpolation="nearest")
            ax.set_title(features.describe(f"{name}.branch{r}", out, input_size), fontsize=7)
    what = "PCA (RGB) of the channels" if reduce == "pca" else f"{reduce} activation"
    fig.suptitle(f"{what} of every branch at every stage", fontsize=9)
    return fig


def contribution_figure(contributions, name: str = "", index: int = 0) -> Figure:
    """The exchange unit's terms a(X_j, i) as pictures: rows = outputs i, columns = inputs j.

    contributions[i][j]: (N, C_i, H_i, W_i); each panel is the per-pixel RMS over channels of
    sample ``index``, titled with its share of output i (``features.contribution_shares``).
    """
    shares = features.contribution_shares(contributions)
    n_out, n_in = shares.shape
    fig = Figure(figsize=(2.0 * n_in, 2.1 * n_out + 0.3), layout="constrained")
    for i, row in enumerate(contributions):
        for j, c in enumerate(row):
            ax = fig.add_subplot(n_out, n_in, i * n_in + j + 1, xticks=[], yticks=[])
            ax.imshow(_numpy(features.activation_map(c[index], "rms")), cmap="magma", interpolation="nearest")
            ax.set_title(f"out {i} ← in {j}: {shares[i, j]:.2f}", fontsize=7)
    fig.suptitle(f"{name} exchange unit: RMS of each contribution (share of the output)", fontsize=9)
    return fig


def shares_figure(shares_by_unit: dict) -> Figure:
    """Share matrices of several exchange units, one panel each (rows = output i, columns = input j).

    shares_by_unit: name → (outputs, inputs) array from ``features.contribution_shares``.
    """
    fig, axes = _figure(len(shares_by_unit), 4, size=2.3)
    for ax, (name, shares) in zip(axes, shares_by_unit.items()):
        s = _numpy(shares)
        ax.imshow(s, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(s):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="k" if v < 0.6 else "w")
        ax.set_xticks(range(s.shape[1]), [f"in {j}" for j in range(s.shape[1])], fontsize=7)
        ax.set_yticks(range(s.shape[0]), [f"out {i}" for i in range(s.shape[0])], fontsize=7)
        ax.set_title(name, fontsize=8)
    return fig


def browser_figure(store: dict, crops, index: int, name: str, view="mean", keypoints=None) -> Figure:
    """Three panels: the input crop, one captured map at its native resolution, the heatmaps.

    Args:
        store: captured features (needs ``name`` and "heatmaps").
        crops: (N, H, W, 3) input crops for display (uint8 or [0, 1] floats).
        index: which sample.
        name: a tensor-valued capture name, e.g. "stage3.module1.branch2".
        view: "mean" | "max" | "rms" | "pca" (a reduction over channels) or an int channel index.
        keypoints: optional (N, K, 2|3) crop coordinates drawn on the crop.
    """
    fmap = store[name][index]  # (C, h, w)
    crop = _numpy(crops[index])
    fig, (ax_in, ax_map, ax_hm) = _figure(3, 3, size=2.8, height=2.8 * crop.shape[0] / crop.shape[1])
    ax_in.imshow(crop)
    if keypoints is not None:
        draw_pose(ax_in, _numpy(keypoints[index]), radius=1.5, linewidth=1.0)
    ax_in.set_title(f"input crop {crop.shape[0]}×{crop.shape[1]}", fontsize=8)
    if view == "pca":
        ax_map.imshow(_numpy(features.pca_rgb(fmap)), interpolation="nearest")
    elif isinstance(view, str):
        ax_map.imshow(_numpy(features.activation_map(fmap, view)), cmap="magma", interpolation="nearest")
    else:
        ax_map.imshow(_numpy(fmap[int(view)]), cmap="magma", interpolation="nearest")
    what = view if isinstance(view, str) else f"channel {int(view)}"
    ax_map.set_title(features.describe(name, fmap, crop.shape[:2]) + f"\n{what}", fontsize=7)
    show_heatmap(ax_hm, _numpy(store["heatmaps"][index]).max(axis=0), crop)
    ax_hm.set_title("heatmaps (max over joints)", fontsize=8)
    return fig


def feature_browser(model, images, crops, keypoints=None):
    """An ipywidgets explorer: pick image, stage, module, branch, channel or reduction.

    Args:
        model: an HRNet (run once in eval mode under no_grad; its train/eval flag is restored).
        images: (N, 3, H, W) normalized network input.
        crops: (N, H, W, 3) the same crops for display; keypoints: optional (N, K, 2|3).

    Returns:
        An ``ipywidgets.VBox``; its ``.figure`` attribute holds the figure currently shown.
    """
    import ipywidgets as widgets
    from IPython.display import display

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), features.capture(model, device="cpu") as store:
            model(images)
    finally:
        model.train(was_training)
    names = [n for n in features.layer_names(model) if n in store and isinstance(store[n], torch.Tensor)]
    stages = ["stem", "stage1"] + sorted({n.split(".")[0] for n in names if ".module" in n})
    w_image = widgets.IntSlider(0, 0, len(images) - 1, description="image")
    w_stage = widgets.Dropdown(options=stages, value=stages[-1], description="stage")
    w_module = widgets.Dropdown(description="module")
    w_kind = widgets.ToggleButtons(options=["branch", "exchange"], description="output")
    w_branch = widgets.Dropdown(description="branch")
    w_view = widgets.Dropdown(options=["mean", "max", "pca", "channel"], description="show")
    w_channel = widgets.IntSlider(0, 0, 0, description="channel")
    out = widgets.Output()
    box = widgets.VBox([widgets.HBox([w_image, w_stage, w_module]),
                        widgets.HBox([w_kind, w_branch]), widgets.HBox([w_view, w_channel]), out])
    busy = []  # re-entrancy guard: setting options fires change events

    def current_name() -> str:
        if w_stage.value in ("stem", "stage1"):
            return w_stage.value
        if w_kind.value == "branch":
            return f"{w_stage.value}.module{w_module.value}.branch{w_branch.value}"
        return f"{w_stage.value}.module{w_module.value}.exchange.out{w_branch.value}"

    def refresh(_=None) -> None:
        if busy:
            return
        busy.append(1)
        try:
            nested = w_stage.value not in ("stem", "stage1")
            for w in (w_module, w_kind, w_branch):
                w.disabled = not nested
            if nested:
                inside = [n for n in names if n.startswith(w_stage.value + ".")]
                modules = sorted({int(n.split(".")[1][len("module"):]) for n in inside})
                w_module.options = modules
                if w_module.value not in modules:
                    w_module.value = modules[-1]
                tag = ".branch" if w_kind.value == "branch" else ".exchange.out"
                prefix = f"{w_stage.value}.module{w_module.value}{tag}"
                branches = sorted({int(n[len(prefix):]) for n in names if n.startswith(prefix)})
                w_branch.options = branches
                if w_branch.value not in branches:
                    w_branch.value = branches[0]
            name = current_name()
            w_channel.max = store[name].shape[1] - 1
            w_channel.disabled = w_view.value != "channel"
            view = w_channel.value if w_view.value == "channel" else w_view.value
            box.figure = browser_figure(store, crops, w_image.value, name, view, keypoints)
            out.clear_output(wait=True)
            with out:
                display(box.figure)
        finally:
            busy.clear()

    for w in (w_image, w_stage, w_module, w_kind, w_branch, w_view, w_channel):
        w.observe(refresh, names="value")
    refresh()
    return box

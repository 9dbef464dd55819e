"""Drawing helpers: poses, heatmaps, feature maps, exchange-unit contributions, the network, and a
training run's loss curve and predictions (matplotlib).

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
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from hrnet_edu import features
from hrnet_edu.keypoints import KeypointSpec, get_spec
from hrnet_edu.model import HRNetConfig


def draw_pose(ax, keypoints, visible=None, *, spec: KeypointSpec | str, radius=3.0, linewidth=2.0,
              alpha=1.0):
    """Draw one person's keypoints and skeleton on a matplotlib axis.

    Args:
        ax: a matplotlib Axes (already showing the image, if any).
        keypoints: (K, 2) pixel coordinates (x, y), or (K, 3) with visibility/confidence last.
        visible: (K,) > 0 where the joint is drawn; default: all (or column 3 of keypoints).
        spec: the keypoint set whose skeleton and palette are drawn (limbs of joints beyond K are
            skipped).
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
    spec = get_spec(spec)
    for (a, b), color in zip(spec.skeleton, spec.limb_colors):
        if a < len(kp) and b < len(kp) and vis[a] and vis[b]:
            ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=color, linewidth=linewidth, alpha=alpha)
    colors = np.array(spec.colors[: len(kp)])
    ax.scatter(kp[vis, 0], kp[vis, 1], s=radius**2 * 4, c=colors[vis], edgecolors="white",
               linewidths=0.5, alpha=alpha, zorder=3)
    return ax


def loss_figure(records: list[dict]) -> Figure:
    """Training loss per logged step and validation AP per epoch, from the records of a run's
    ``log.jsonl`` (``runfolder.read_log``)."""
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


def predictions_figure(images: dict, results: list[dict], spec, threshold: float = 0.2) -> Figure:
    """Images with every predicted pose drawn (joints of confidence > threshold).

    Args:
        images: {image id: (H, W, 3) uint8 image}, drawn in this order.
        results: COCO results entries (``evaluate.predictions_to_results``: rescored, after OKS-NMS).
        spec: the keypoint set whose skeleton is drawn.
    """
    n = len(images)
    fig = Figure(figsize=(2.6 * min(n, 4), 2.8 * ((n + 3) // 4)), layout="constrained")
    axes = np.atleast_1d(fig.subplots((n + 3) // 4, min(n, 4))).ravel()
    for ax, (image_id, image) in zip(axes, images.items()):
        ax.imshow(image)
        for r in (r for r in results if r["image_id"] == image_id):
            kp = np.asarray(r["keypoints"]).reshape(-1, 3)  # (K, 3): x, y, confidence
            draw_pose(ax, kp[:, :2], kp[:, 2] > threshold, radius=2.0, linewidth=1.5, spec=spec)
        ax.set_title(f"image {image_id}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


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


def show_heatmap(ax, heatmap, image=None, *, stride: int = 4, alpha: float = 0.8, cmap: str = "magma",
                 vmin: float = 0.0, vmax: float | None = 1.0):
    """Draw one (h, w) heatmap over an (H, W, 3) crop on ``ax``, aligned by x_in = stride · x_hm.

    The colour scale is fixed to [vmin, vmax] (default [0, 1], the range of the targets) so that
    panels drawn side by side can be compared and share one colorbar; ``vmax=None`` scales each map
    to its own maximum. Over an image the opacity grows with the value (√ of the normalised value,
    times ``alpha``): a perceptual colormap such as magma is black at 0, and a uniform alpha would
    darken the whole crop, while this keeps the background visible and only the peaks coloured.

    Returns:
        The heatmap's ``AxesImage`` (pass it to ``fig.colorbar``).
    """
    hm = _numpy(heatmap)
    h, w = hm.shape
    if vmax is None:
        vmax = max(vmin + 1e-6, float(hm.max()))
    if image is not None:
        ax.imshow(_numpy(image))
        opacity = alpha * np.sqrt(np.clip((hm - vmin) / (vmax - vmin), 0.0, 1.0))
    else:
        opacity = None
    half = stride / 2
    im = ax.imshow(hm, cmap=cmap, alpha=opacity, interpolation="bilinear", vmin=vmin, vmax=vmax,
                   extent=(-half, stride * w - half, stride * h - half, -half))
    if image is not None:
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
    return im


def overlay_heatmaps(image, heatmaps, joints=None, keypoints=None, *, stride: int = 4, ncols: int = 6,
                     title: str | None = None, vmax: float | None = 1.0, colorbar: bool = True,
                     spec: KeypointSpec | str) -> Figure:
    """Heatmaps over the input crop, on one shared colour scale.

    Args:
        image: (H, W, 3) crop (uint8 or floats in [0, 1]).
        heatmaps: (K, H/4, W/4) one sample's heatmaps.
        joints: None → one panel with the maximum over the K joints; a list of joint indices →
            one panel per joint, titled with its name.
        keypoints: optional (K, 2|3) crop coordinates to draw as a skeleton (``draw_pose``).
        vmax: top of the shared colour scale (default 1, the targets' peak); None: the largest
            value over all panels.
        colorbar: add one colorbar for all panels (an extra axis after the panels).
        spec: the keypoint set (panel titles, skeleton).

    Returns:
        The figure: the panels first (1 axis, or len(joints) axes), then the colorbar's axis.
    """
    hm = _numpy(heatmaps)
    spec = get_spec(spec)
    panels = [(hm.max(axis=0), "max over joints")] if joints is None else [
        (hm[k], spec.names[k] if hm.shape[0] == spec.num_joints else f"joint {k}") for k in joints]
    if vmax is None:
        vmax = max(1e-6, max(float(p.max()) for p, _ in panels))
    fig, axes = _figure(len(panels), ncols, size=2.4, height=2.4 * image.shape[0] / image.shape[1])
    for ax, (panel, name) in zip(axes, panels):
        im = show_heatmap(ax, panel, image, stride=stride, vmax=vmax)
        if keypoints is not None:
            draw_pose(ax, keypoints, radius=1.5, linewidth=1.0, spec=spec)
        ax.set_title(name, fontsize=9)
    if colorbar:
        fig.colorbar(im, ax=axes, shrink=0.8, label="heatmap value")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def feature_grid(fmap, name: str = "", *, input_size=None, channels=None, k: int = 16, ncols: int = 8,
                 cmap: str = "viridis", image=None) -> Figure:
    """One panel per channel of a (C, H, W) map, each at its native resolution, all on one colour
    scale (the shown channels' min to max) read off one colour bar.

    Args:
        fmap: (C, H, W) one sample's feature map (e.g. ``feats["stage3.module0.branch1"][0]``).
        name: the capture name, turned into the title (stage / module / branch, width, resolution).
        input_size: (H_in, W_in) of the network input, to show the stride (1/4, 1/8, ...).
        channels: which channels; default the k most active ones (``features.top_channels``).
        image: optional (H_in, W_in, 3) input crop the map comes from, drawn first, to the left of
            the channels (spanning their rows).

    Returns:
        The figure: the crop's axis first when given (titled "input crop H×W"), then one axis per
        channel titled "c<index>", then the colour bar's axis; the suptitle describes the map.
    """
    if channels is None:
        channels = features.top_channels(fmap, k)[0].tolist()
    size, height = 1.5, 1.5 * fmap.shape[-2] / fmap.shape[-1]
    if image is None:
        fig, axes = _figure(len(channels), ncols, size=size, height=height)
    else:
        ncols = max(1, min(len(channels), ncols))
        rows = int(np.ceil(len(channels) / ncols))
        lead = min(rows, 2) * size  # the crop's column: as wide as two channel panels at most
        fig = Figure(figsize=(size * ncols + lead, height * rows + 0.4), layout="constrained")
        grid = fig.add_gridspec(rows, ncols + 1, width_ratios=[lead / size] + [1] * ncols)
        _input_panel(fig.add_subplot(grid[:, 0]), image)
        axes = [fig.add_subplot(grid[i // ncols, i % ncols + 1], xticks=[], yticks=[])
                for i in range(len(channels))]
    # One scale for every panel: channels of one map share their units, so equal colours mean equal
    # activations and a dim panel is a weakly active channel (not a rescaled one).
    shown = _numpy(fmap[torch.as_tensor(channels, dtype=torch.long)])  # (n, H, W)
    for ax, c, values in zip(axes, channels, shown):
        im = ax.imshow(values, cmap=cmap, interpolation="nearest", vmin=shown.min(), vmax=shown.max())
        ax.set_title(f"c{c}", fontsize=8)
    _colorbar(fig, im, axes, "activation (one scale, all channels)", shrink=0.9)
    fig.suptitle(features.describe(name, fmap, input_size), fontsize=10)
    return fig


def _colorbar(fig, mappable, ax, label: str, **kwargs):
    """A labelled colour bar for ``mappable`` beside ``ax`` (one axis or a list of axes) — what a
    reader needs to read values off the colours; the text kept small for narrow panels."""
    bar = fig.colorbar(mappable, ax=ax, **kwargs)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def _map_panel(fig, ax, fmap, view="mean", **bar):
    """Draw one sample's (C, h, w) map on ``ax`` at its native resolution, as ``view``: "mean" |
    "max" | "rms" (a reduction over channels) or an int channel, with the panel's own colour bar
    (its min to max, in the map's units); or "pca": the top three principal components as RGB,
    each stretched to [0, 1] over this panel (``features.pca_rgb``; no bar, see ``_pca_key``).
    ``bar``: keyword arguments of ``fig.colorbar`` (e.g. ``shrink``).

    Returns the ``AxesImage``.
    """
    if view == "pca":
        return ax.imshow(_numpy(features.pca_rgb(fmap)), interpolation="nearest")
    if isinstance(view, str):
        values, label = features.activation_map(fmap, view), f"{view} over channels"
    else:
        values, label = fmap[int(view)], f"channel {int(view)}"
    im = ax.imshow(_numpy(values), cmap="magma", interpolation="nearest")  # clim: this map's range
    _colorbar(fig, im, ax, label, **{"fraction": 0.08, "pad": 0.02, **bar})
    return im


def _pca_key(fig, axes, location: str = "right"):
    """The key of the PCA pictures: one black-to-colour bar per component (PC1 red, PC2 green, PC3
    blue). A pixel's colour is the sum of the three; each component is stretched to [0, 1] within
    its own panel, so the bars run from "panel min" to "panel max", not over shared values."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    bars = []
    # drawn blue first: constrained layout puts each new bar nearer the panels, so PC1 comes first
    for k, (color, rgb) in reversed(list(enumerate(zip(("red", "green", "blue"), np.eye(3))))):
        cmap = LinearSegmentedColormap.from_list(f"pc{k + 1}", [(0.0, 0.0, 0.0), tuple(rgb)])
        bar = _colorbar(fig, ScalarMappable(Normalize(0.0, 1.0), cmap), axes, f"PC{k + 1} → {color}",
                        location=location, shrink=0.35, aspect=12, pad=0.01)
        bar.set_ticks([0.0, 1.0], labels=["panel\nmin", "panel\nmax"])
        bars.append(bar)
    return bars[::-1]  # PC1, PC2, PC3


def _input_panel(ax, image, keypoints=None, spec=None):
    """Draw the (H, W, 3) input crop on ``ax``, titled with its size: the picture a map comes from;
    ``keypoints`` (K, 2|3) with the skeleton of ``spec``."""
    crop = _numpy(image)
    ax.imshow(crop)
    if keypoints is not None:
        draw_pose(ax, _numpy(keypoints), radius=1.5, linewidth=1.0, spec=spec)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"input crop {crop.shape[0]}×{crop.shape[1]}", fontsize=8)
    return ax


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


def stage_overview(store: dict, index: int = 0, reduce: str = "mean", input_size=None, image=None) -> Figure:
    """Every branch at every stage, side by side: rows = stages 1..4, columns = branches r.

    ``store`` holds captured features (see ``features.capture``): "stage1" (N, 4P, H/4, W/4), and for
    s ≥ 2 the branch outputs "stage{s}.module{m}.branch{r}" of the stage's last module (all s
    branches, also in stage 4 whose last exchange unit keeps branch 0 only), or else "stage{s}".
    Each panel is ``activation_map(...)[index]`` at the branch's native resolution with its own
    colour bar (branches differ in scale, so each is shown over its own min to max — read the
    values off the bar, not by comparing brightness), or with reduce="pca" the top three principal
    components of its channels as RGB (``features.pca_rgb``), explained by one key (``_pca_key``).
    ``image``: optional (H, W, 3) input crop of sample ``index``, drawn in the first row's last
    column (free when the first row has fewer branches than the widest; else in a column of its own).
    Returns a figure with one axis per (stage, branch) present (empty grid cells removed), titled
    with ``features.describe`` on two lines, then the crop's axis when given; colour-bar axes
    (label "<colorbar>") follow each panel (mean, max, rms) or come last (the three of the PCA key).
    """
    rows = _stage_rows(store)
    if not rows:
        raise ValueError("store holds no 'stage1'..'stage4' entries; capture them first")
    ncols = max(len(outs) for _, outs in rows)
    extra = image is not None and len(rows[0][1]) == ncols  # no free cell in the first row
    ncols += extra
    fig = Figure(figsize=(2.5 * ncols + (reduce == "pca"), 2.5 * len(rows)), layout="constrained")
    panels = []
    for i, (name, outs) in enumerate(rows):
        for r, out in enumerate(outs):
            ax = fig.add_subplot(len(rows), ncols, i * ncols + r + 1, xticks=[], yticks=[])
            _map_panel(fig, ax, out[index], reduce)  # (C, h, w) of sample ``index``
            title = features.describe(f"{name}.branch{r}", out, input_size)
            ax.set_title(title.replace(" (", "\n("), fontsize=8)
            panels.append(ax)
    if image is not None:
        _input_panel(fig.add_subplot(len(rows), ncols, ncols), image)
    if reduce == "pca":
        _pca_key(fig, panels)
        what = ("PCA of the channels of every branch at every stage (one PCA per panel)\n"
                "PC1, PC2, PC3 → red, green, blue, each stretched over its own panel (the key)")
    else:
        what = f"{reduce} activation over the channels of every branch at every stage"
        what += "\neach panel on its own colour scale: its bar runs from its min to its max"
    fig.suptitle(what, fontsize=10)
    return fig


def contribution_figure(contributions, name: str = "", index: int = 0, image=None) -> Figure:
    """The exchange unit's terms a(X_i, k) as pictures: rows = outputs k, columns = inputs i.

    contributions[k][i]: (N, C_k, H_k, W_k); each panel is the per-pixel RMS over channels of
    sample ``index``, titled with its share of output k (``features.contribution_shares``). The
    terms of one output are summed, so they share units: each row has one colour scale, [0, the
    row's largest RMS], and one colour bar (labelled "RMS → out k"); rows are not comparable.
    ``image``: optional (H, W, 3) input crop of that sample, drawn in a first column (top row).
    Returns the figure: the n_out × n_in panels row by row, then the crop's axis when given, then
    one colour bar axis per row (label "<colorbar>").
    """
    shares = features.contribution_shares(contributions)
    n_out, n_in = shares.shape
    lead = image is not None  # one column more, on the left, for the crop
    ncols = n_in + lead
    fig = Figure(figsize=(2.0 * ncols + 0.6, 2.2 * n_out + 0.3), layout="constrained")
    rows = []
    for i, row in enumerate(contributions):
        maps = [_numpy(features.activation_map(c[index], "rms")) for c in row]  # n_in × (H_i, W_i)
        top = max(1e-12, max(float(m.max()) for m in maps))
        axes = [fig.add_subplot(n_out, ncols, i * ncols + j + 1 + lead, xticks=[], yticks=[])
                for j in range(len(row))]
        for j, (ax, m) in enumerate(zip(axes, maps)):
            im = ax.imshow(m, cmap="magma", interpolation="nearest", vmin=0.0, vmax=top)
            ax.set_title(f"out {i} ← in {j}: {shares[i, j]:.2f}", fontsize=8)
        rows.append((im, axes, i))
    if lead:
        _input_panel(fig.add_subplot(n_out, ncols, 1), image)
    for im, axes, i in rows:  # after the crop, so that the axes order above holds
        _colorbar(fig, im, axes, f"RMS → out {i}", shrink=0.9)
    fig.suptitle(f"{name} exchange unit: RMS of each contribution (share of the output), "
                 "one colour scale per row", fontsize=10)
    return fig


def shares_figure(shares_by_unit: dict) -> Figure:
    """Share matrices of several exchange units, one panel each (rows = output i, columns = input j),
    each cell written out and coloured on one scale [0, 1] for all panels (one colour bar).

    shares_by_unit: name → (outputs, inputs) array from ``features.contribution_shares``.
    Returns the figure: one axis per unit, then the colour bar's axis.
    """
    fig, axes = _figure(len(shares_by_unit), 4, size=2.5)
    for ax, (name, shares) in zip(axes, shares_by_unit.items()):
        s = _numpy(shares)
        im = ax.imshow(s, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(s):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="k" if v < 0.6 else "w")
        ax.set_xticks(range(s.shape[1]), [f"in {j}" for j in range(s.shape[1])], fontsize=8)
        ax.set_yticks(range(s.shape[0]), [f"out {i}" for i in range(s.shape[0])], fontsize=8)
        ax.set_title(name, fontsize=9)
    _colorbar(fig, im, axes, "share of the output (row sums to 1)", shrink=0.8)
    return fig


def browser_figure(store: dict, crops, index: int, name: str, view="mean", keypoints=None,
                   spec=None) -> Figure:
    """Three panels: the input crop, one captured map at its native resolution, the heatmaps.

    Args:
        store: captured features (needs ``name`` and "heatmaps").
        crops: (N, H, W, 3) input crops for display (uint8 or [0, 1] floats).
        index: which sample.
        name: a tensor-valued capture name, e.g. "stage3.module1.branch2".
        view: "mean" | "max" | "rms" | "pca" (a reduction over channels) or an int channel index.
        keypoints: optional (N, K, 2|3) crop coordinates drawn on the crop with the skeleton of
            ``spec`` (the keypoint set; needed with ``keypoints``).

    Returns:
        The figure: axes crop, map, heatmaps, then colour bars (label "<colorbar>"): the map's own
        (its min to max; for "pca" the three bars of ``_pca_key``), then the heatmaps' (0 to the
        largest value over the joints of this sample).
    """
    fmap = store[name][index]  # (C, h, w)
    crop = _numpy(crops[index])
    fig, (ax_in, ax_map, ax_hm) = _figure(3, 3, size=2.8, height=2.8 * crop.shape[0] / crop.shape[1])
    _input_panel(ax_in, crop, None if keypoints is None else keypoints[index], spec)
    _map_panel(fig, ax_map, fmap, view, shrink=0.75)  # an image axis is shorter than its cell
    if view == "pca":
        _pca_key(fig, ax_map, location="bottom")
    what = view if isinstance(view, str) else f"channel {int(view)}"
    ax_map.set_title(features.describe(name, fmap, crop.shape[:2]) + f"\n{what}", fontsize=8)
    im = show_heatmap(ax_hm, _numpy(store["heatmaps"][index]).max(axis=0), crop, vmax=None)
    _colorbar(fig, im, ax_hm, "heatmap value", fraction=0.08, pad=0.02, shrink=0.75)
    ax_hm.set_title("heatmaps (max over joints)", fontsize=8)
    return fig


def feature_browser(model, images, crops, keypoints=None, spec=None):
    """An ipywidgets explorer: pick image, stage, module, branch, channel or reduction.

    Args:
        model: an HRNet (run once in eval mode under no_grad; its train/eval flag is restored).
        images: (N, 3, H, W) normalized network input.
        crops: (N, H, W, 3) the same crops for display; keypoints: optional (N, K, 2|3), drawn
            with the skeleton of ``spec`` (the keypoint set).

    Returns:
        An ``ipywidgets.VBox``; its ``.figure`` attribute holds the figure currently shown.
    """
    import ipywidgets as widgets
    from IPython.display import display

    store = _capture_everything(model, images)
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

    def refresh(_=None) -> None:
        if busy:
            return
        busy.append(1)
        try:
            nested = w_stage.value not in ("stem", "stage1")
            for w in (w_module, w_kind, w_branch):
                w.disabled = not nested
            if nested:
                w_module.options = modules = _modules_of(names, w_stage.value)
                if w_module.value not in modules:
                    w_module.value = modules[-1]
                w_branch.options = branches = _outputs_of(names, w_stage.value, w_module.value, w_kind.value)
                if w_branch.value not in branches:
                    w_branch.value = branches[0]
            name = _browser_name(w_stage.value, w_module.value, w_kind.value, w_branch.value)
            w_channel.max = store[name].shape[1] - 1
            w_channel.disabled = w_view.value != "channel"
            view = w_channel.value if w_view.value == "channel" else w_view.value
            box.figure = browser_figure(store, crops, w_image.value, name, view, keypoints, spec)
            out.clear_output(wait=True)
            with out:
                display(box.figure)
        finally:
            busy.clear()

    for w in (w_image, w_stage, w_module, w_kind, w_branch, w_view, w_channel):
        w.observe(refresh, names="value")
    refresh()
    return box


def _capture_everything(model, images) -> dict:
    """Every name ``features.capture`` knows, for one pass in eval mode (the model's mode restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), features.capture(model, device="cpu") as store:
            model(images)
    finally:
        model.train(was_training)
    return store


def _modules_of(names: list[str], stage: str) -> list[int]:
    """The module numbers m of "stage{s}.module{m}…" among ``names``."""
    return sorted({int(n.split(".")[1][len("module"):]) for n in names if n.startswith(stage + ".")})


def _outputs_of(names: list[str], stage: str, module: int, kind: str) -> list[int]:
    """The branches r (``kind`` "branch") or the exchange outputs k of one module among ``names``."""
    prefix = f"{stage}.module{module}" + (".branch" if kind == "branch" else ".exchange.out")
    # (not the contributions "….exchange.out{k}.from{i}", which share the prefix)
    return sorted({int(n[len(prefix):]) for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()})


def _browser_name(stage: str, module, kind: str, output) -> str:
    """The captured name the browser's controls point at."""
    if stage in ("stem", "stage1"):
        return stage
    if kind == "branch":
        return f"{stage}.module{module}.branch{output}"
    return f"{stage}.module{module}.exchange.out{output}"


def _box(ax, x0, x1, y, height, color, text, fontsize, gid):
    """A labelled rectangle centred on row y, spanning x0..x1 (one unit of the HRNet drawing)."""
    from matplotlib.colors import to_rgb

    # white text on dark boxes, black on light ones (relative luminance of the fill)
    text_color = "white" if np.dot(to_rgb(color), (0.2126, 0.7152, 0.0722)) < 0.45 else "black"
    ax.add_patch(Rectangle((x0, y - height / 2), x1 - x0, height, facecolor=color, edgecolor="k",
                           linewidth=0.6, zorder=3, gid=gid))
    ax.text((x0 + x1) / 2, y, text, ha="center", va="center", fontsize=fontsize, color=text_color, zorder=4)


def draw_hrnet(cfg: HRNetConfig, ax=None, input_size: tuple[int, int] | None = (256, 192),
               title: str | None = None, unit: float = 0.5) -> Figure:
    """Draw an HRNet as in the paper's Fig. 1, read from its config: parallel streams, stages, exchanges.

    Rows are the branches r = 0 … num_stages − 1 (top: r = 0 at 1/4 of the input, width C; row r at
    1/2^(r+2) with width C·2^r, from ``cfg.widths``). Left to right: the stem and stage 1 on row 0,
    then for every stage s ≥ 2 a transition (the arrow that opens branch s − 1 from the lowest
    one with a stride-2 3×3 conv) and ``cfg.num_modules[s − 2]`` HR modules, each drawn as one box
    per branch (its ``num_units`` residual units) followed by an exchange unit: lines from every
    input branch j to every output branch i ≠ j (red: down, strided 3×3 convs; green: up, 1×1 conv
    + nearest). The network's very last exchange unit keeps output 0 only, as in the model (outputs
    0..``head_branch``, and the head on that row, when the head reads a lower branch); modules
    without an exchange unit (``cfg.exchange_units``) are drawn without one.

    Artists carry gids so the drawing can be checked: one ``LineCollection`` with gid "exchange" per
    exchange unit, one line with gid "stream{r}" per branch, one arrow with gid "transition" per
    transition.

    Args:
        cfg: any ``HRNetConfig`` (e.g. ``model.W32``: modules 1-4-3; ``model.W16_1UNIT``: 1-1-1).
        ax: draw into this axis (its figure is returned); default a new figure sized to the net.
        input_size: (H, W) of the input, for the branch sizes in the row labels; None: strides only.
        title: axis title; default "HRNet-W{C}: modules …, … residual units (basic blocks, BB) per branch".
        unit: inches per drawing unit when the figure is created here.

    Returns:
        The figure.
    """
    lay = _hrnet_layout(cfg)
    if ax is None:
        label_w = 2.9
        size = (unit * (lay["x_end"] + label_w + 0.3), 0.9 + unit * 1.6 * cfg.num_stages)
        ax = Figure(figsize=size, layout="constrained").add_subplot()
    _draw_streams(ax, cfg, lay, input_size)
    for box in lay["boxes"]:
        _box(ax, *box)
    for start, end in lay["transitions"]:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color="k", linewidth=1.2,
                                     zorder=2, gid="transition"))
    _draw_exchanges(ax, lay)
    top = 0.55
    for s, start, end, n_modules in lay["stage_spans"]:
        ax.plot([start, end - 0.1], [top, top], color="k", linewidth=0.8)
        ax.text((start + end) / 2, top + 0.08, f"stage {s}: {n_modules} module{'s' if n_modules > 1 else ''}",
                ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-2.9, lay["x_end"] + 0.2)
    ax.set_ylim(lay["y"][-1] - 0.95, top + 0.5)
    ax.axis("off")
    ax.set_title(_hrnet_title(cfg) if title is None else title, fontsize=9)
    return ax.figure


_ROW_H, _BLOCK_W, _FUSE_W = 0.56, 1.0, 0.7  # draw_hrnet's drawing units


def _hrnet_layout(cfg: HRNetConfig) -> dict:
    """Where ``draw_hrnet`` puts everything, left to right: boxes (``_box`` arguments), the x where each
    stream opens, transitions (arrow ends), exchange units (x, stage, outputs) and stage spans."""
    n_stages = cfg.num_stages
    colors = [_branch_color(r) for r in range(4)]
    y = [-r for r in range(n_stages)]  # row of branch r
    stage1 = f"stage 1\n{cfg.stage1_units} × bottleneck\n{cfg.widths(1)[0]} ch"
    boxes = [(0.0, 1.1, 0, _ROW_H, "0.45", "stem\n2 × 3×3 /2", 7, "stem"),
             (1.4, 3.2, 0, _ROW_H, "0.3", stage1, 7, "stage1")]
    x = 3.2
    opened = [0.0] + [None] * (n_stages - 1)  # x where each stream starts
    stage_spans, exchanges, transitions = [], [], []
    for s in range(2, n_stages + 1):
        # transition: the new branch s−1 comes from the lowest-resolution branch s−2
        transitions.append(((x + 0.1, y[s - 2]), (x + 0.7, y[s - 1])))
        opened[s - 1] = x + 0.7
        x += 0.9
        start = x
        n_modules, n_units = cfg.num_modules[s - 2], cfg.num_units[s - 2]
        for m in range(n_modules):
            boxes += [(x, x + _BLOCK_W, y[r], _ROW_H, colors[r], f"{n_units}×BB", 7, f"block{s}.{m}.{r}")
                      for r in range(s)]
            x += _BLOCK_W
            last = s == n_stages and m == n_modules - 1
            outputs = list(range(cfg.head_branch + 1)) if last else list(range(s))
            if cfg.has_exchange_unit(s, m):  # the fusion ablation leaves some modules unfused
                exchanges.append((x, s, outputs))
            x += _FUSE_W
        stage_spans.append((s, start, x, n_modules))
    last_exchange = exchanges[-1][0] if exchanges else x
    x += 0.2
    boxes.append((x, x + 1.3, y[cfg.head_branch], _ROW_H, "0.2", f"head\n1×1 → {cfg.num_joints}", 7, "head"))
    return {"y": y, "colors": colors, "boxes": boxes, "opened": opened, "transitions": transitions,
            "exchanges": exchanges, "stage_spans": stage_spans, "last_exchange": last_exchange,
            "x_end": x + 1.3}


def _draw_streams(ax, cfg: HRNetConfig, lay: dict, input_size) -> None:
    """One line per branch r from where it opens, labelled with C·2^r and its resolution."""
    widths = cfg.widths(cfg.num_stages)  # (4P,) for a stage-1-only network, else (C, 2C, …)
    for r in range(cfg.num_stages):
        end = lay["x_end"] - 1.3 if r == cfg.head_branch else lay["last_exchange"] + 0.05
        ax.plot([lay["opened"][r], end], [lay["y"][r]] * 2, color=lay["colors"][r], linewidth=3, zorder=1,
                gid=f"stream{r}", solid_capstyle="butt")
        stride = 2 ** (r + 2)
        size = f", {input_size[0] // stride}×{input_size[1] // stride}" if input_size else ""
        ax.text(-0.25, lay["y"][r], f"branch {r}: C={widths[r]}\n1/{stride}{size}", ha="right", va="center",
                fontsize=8)


def _draw_exchanges(ax, lay: dict) -> None:
    """Each exchange unit: a line from every input branch j to every output branch i ≠ j."""
    y = lay["y"]
    for x0, s, outputs in lay["exchanges"]:
        pairs = [(i, j) for i in outputs for j in range(s) if i != j]  # output i ← input j
        segments = [[(x0 + 0.08, y[j]), (x0 + _FUSE_W - 0.08, y[i])] for i, j in pairs]
        seg_colors = ["tab:red" if j < i else "tab:green" for i, j in pairs]
        ax.add_collection(LineCollection(segments, colors=seg_colors, linewidths=0.9, zorder=2,
                                         gid="exchange"))
    if lay["exchanges"]:
        ax.text(lay["x_end"], y[-1] - 0.55, "exchange: red = down (strided 3×3), green = up (1×1 + nearest)",
                ha="right", va="top", fontsize=7)


def _hrnet_title(cfg: HRNetConfig) -> str:
    n_stages = cfg.num_stages
    if n_stages == 1:
        return f"HRNet-W{cfg.width}, stage 1 only"
    modules = "-".join(map(str, cfg.num_modules[: n_stages - 1]))
    units = "-".join(map(str, cfg.num_units[: n_stages - 1]))
    return (f"HRNet-W{cfg.width}: {modules} modules in stages 2–{n_stages}, {units} basic blocks (BB) "
            "per branch")


def _branch_color(r: int):
    """A fixed colour per branch (viridis, dark to light), the same in every drawing."""
    from matplotlib import colormaps

    return colormaps["viridis"](0.12 + 0.22 * r)

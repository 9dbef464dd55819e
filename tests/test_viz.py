"""Reductions (features.py) against numpy references, and headless figures (viz.py)."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from hrnet_edu import features, model, viz
from hrnet_edu.keypoints import COCO17, CROWDPOSE14

KEYPOINT_NAMES, SKELETON = COCO17.names, COCO17.skeleton


def _panels(fig):
    """The figure's axes less its colour bars (which matplotlib labels "<colorbar>")."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _bars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


@pytest.fixture
def fmap():
    return torch.randn(2, 12, 8, 6)  # (N, C, H, W)


def test_activation_map_matches_numpy(fmap):
    x = fmap.numpy()
    amap = features.activation_map
    np.testing.assert_allclose(amap(fmap, "mean").numpy(), x.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(amap(fmap, "max").numpy(), x.max(axis=1))
    np.testing.assert_allclose(amap(fmap[0], "rms").numpy(), np.sqrt((x[0] ** 2).mean(axis=0)), rtol=1e-5)
    with pytest.raises(ValueError, match="reduce"):
        features.activation_map(fmap, "median")


def test_top_channels_are_the_most_active(fmap):
    fmap[:, 7] *= 10  # channel 7 dominates, then 3
    fmap[:, 3] *= 5
    idx, score = features.top_channels(fmap, k=4)
    expected = np.argsort(-np.abs(fmap.numpy()).mean(axis=(0, 2, 3)))[:4]
    assert idx.tolist() == expected.tolist() and idx[:2].tolist() == [7, 3]
    assert torch.all(score[:-1] >= score[1:])


def test_channel_grid_tiles_normalised_channels(fmap):
    grid = features.channel_grid(fmap[0], channels=[5, 0, 2], ncols=2, pad=1)
    assert grid.shape == (2 * 9 - 1, 2 * 7 - 1)
    ch = fmap[0, 0].numpy()
    np.testing.assert_allclose(grid[0:8, 7:13], (ch - ch.min()) / (ch.max() - ch.min()), rtol=1e-5, atol=1e-6)
    assert np.isnan(grid[8]).all() and np.isnan(grid[9:, 7:]).all()  # padding row, empty 4th tile
    assert np.nanmin(grid) == 0.0 and np.nanmax(grid) == 1.0


def test_pca_rgb_recovers_the_dominant_direction():
    g = torch.Generator().manual_seed(0)
    pattern = torch.randn(10, 7, generator=g)  # (H, W) spatial pattern
    direction = torch.randn(16, generator=g)  # (C,) channel direction
    fmap = direction[:, None, None] * pattern + 0.01 * torch.randn(16, 10, 7, generator=g)
    rgb = features.pca_rgb(fmap)
    assert rgb.shape == (10, 7, 3) and rgb.min() >= 0 and rgb.max() <= 1
    # Independent reference: the top eigenvector of the channel covariance (numpy eigh).
    pixels = fmap.permute(1, 2, 0).reshape(-1, 16).double().numpy()
    centred = pixels - pixels.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    ref = (centred @ vecs[:, -1]).reshape(10, 7)
    assert abs(np.corrcoef(ref.ravel(), rgb[..., 0].numpy().ravel())[0, 1]) > 0.999
    # The sign convention makes colours reproducible: negating the features inverts the colours.
    np.testing.assert_allclose(features.pca_rgb(-fmap).numpy(), 1 - rgb.numpy(), atol=1e-4)
    assert features.pca_rgb(fmap.expand(3, -1, -1, -1)).shape == (3, 10, 7, 3)  # one basis for a batch


def test_contribution_shares_are_norm_ratios_that_sum_to_one():
    a = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.5, 0.0]])  # per (output, input) constant values
    contributions = [[torch.full((2, 4, 3, 3), float(v)) for v in row] for row in a]
    shares = features.contribution_shares(contributions)
    np.testing.assert_allclose(shares.numpy(), (a / a.sum(1, keepdim=True)).numpy(), rtol=1e-12)
    rand = [[torch.randn(3, 4, 8 >> i, 8 >> i) for _ in range(3)] for i in range(3)]
    per = features.contribution_shares(rand, per_sample=True)
    assert per.shape == (3, 3, 3)
    np.testing.assert_allclose(per.sum(-1).numpy(), 1.0, rtol=1e-12)


def test_describe_names_stage_branch_width_and_stride():
    t = torch.zeros(1, 32, 32, 24)
    title = features.describe("stage3.module0.branch1", t, (256, 192))
    assert title == "stage 3 · module 0 · branch 1 (C=32, 32×24, 1/8)"
    title = features.describe("stage4.module2.exchange.out0.from3")
    assert title == "stage 4 · module 2 · exchange · out 0 ← in 3"


def test_draw_pose_draws_only_visible_limbs():
    fig = plt.figure()
    ax = fig.add_subplot()
    kp = np.random.default_rng(0).uniform(0, 50, (17, 2))
    vis = np.ones(17)
    vis[[9, 10]] = 0  # wrists hidden: limbs (7, 9) and (8, 10) disappear
    viz.draw_pose(ax, kp, vis, spec=COCO17)
    assert len(ax.lines) == sum(1 for a, b in SKELETON if vis[a] and vis[b]) == len(SKELETON) - 2
    # the skeleton is the spec's, always given (no COCO-17 default)
    ax.cla()
    viz.draw_pose(ax, kp[:14], spec=CROWDPOSE14)
    assert len(ax.lines) == len(CROWDPOSE14.skeleton)
    with pytest.raises(TypeError, match="spec"):
        viz.draw_pose(ax, kp, vis)
    plt.close(fig)


def test_figures_are_built_headless_without_pyplot():
    plt.close("all")
    crop = np.zeros((64, 48, 3), np.uint8)
    heatmaps = torch.rand(17, 16, 12)
    fig = viz.overlay_heatmaps(crop, heatmaps, joints=[0, 5, 16], keypoints=np.full((17, 2), 20.0),
                               spec=COCO17)
    assert [ax.get_title() for ax in fig.axes[:3]] == [KEYPOINT_NAMES[k] for k in (0, 5, 16)]
    # Heatmap pixel (i, j) is centred on crop pixel (4j, 4i): extent (−2, 4w−2, 4h−2, −2).
    assert fig.axes[0].images[1].get_extent() == [-2.0, 46.0, 62.0, -2.0]
    # One shared scale [0, 1] for every panel, shown by one colorbar (the 4th axis).
    assert len(fig.axes) == 4 and all(ax.images[1].get_clim() == (0.0, 1.0) for ax in fig.axes[:3])
    assert len(viz.overlay_heatmaps(crop, heatmaps, colorbar=False, spec="coco17").axes) == 1
    grid = viz.feature_grid(torch.randn(20, 8, 6), "stage2.module0.branch1", input_size=(64, 48), k=6)
    assert len(_panels(grid)) == 6 and len(_bars(grid)) == 1
    assert grid.get_suptitle() == "stage 2 · module 0 · branch 1 (C=20, 8×6, 1/8)"
    contributions = [[torch.rand(1, 4, 8 >> i, 8 >> i) for _ in range(2)] for i in range(2)]
    fig = viz.contribution_figure(contributions, "stage2.module0")
    assert len(_panels(fig)) == 4 and fig.axes[1].get_title().startswith("out 0 ← in 1: ")
    fig = viz.shares_figure({"a": features.contribution_shares(contributions), "b": torch.eye(3)})
    assert [ax.get_title() for ax in _panels(fig)] == ["a", "b"]
    assert plt.get_fignums() == []  # nothing registered with pyplot, nothing to show


def test_loss_and_predictions_figures_draw_what_they_are_given(tmp_path):
    # loss_figure draws the records of a log.jsonl (read by runfolder.read_log, not by viz)
    from hrnet_edu.runfolder import read_log

    records = [{"kind": "step", "epoch": e, "step": s, "loss": 1.0 / (e + s)}
               for e in (1, 2) for s in (5, 10)]
    records += [{"kind": "epoch", "epoch": e, "loss": 0.5 / e, "val": {"ap": 0.1 * e, "ap50": 0.2 * e}}
                for e in (1, 2)]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    fig = viz.loss_figure(read_log(str(log)))
    loss_ax, val_ax = fig.axes
    assert len(loss_ax.lines) == 2 and list(val_ax.lines[0].get_ydata()) == [0.1, 0.2]
    # predictions_figure draws the results given (NMS is the caller's) on the images given
    kp = np.concatenate([np.random.default_rng(0).uniform(5, 40, (17, 2)), np.ones((17, 1))], 1)
    results = [{"image_id": 7, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.9}]
    images = {7: np.zeros((48, 48, 3), np.uint8), 9: np.zeros((48, 48, 3), np.uint8)}
    fig = viz.predictions_figure(images, results, COCO17)
    assert [ax.get_title() for ax in fig.axes] == ["image 7", "image 9"]
    assert len(fig.axes[0].lines) == len(SKELETON) and len(fig.axes[1].lines) == 0
    assert plt.get_fignums() == []


def test_feature_figures_show_the_input_crop_beside_the_maps():
    crop = np.zeros((64, 48, 3), np.uint8)
    grid = viz.feature_grid(torch.randn(20, 8, 6), "stage2.module0.branch1", k=6, ncols=3, image=crop)
    assert len(_panels(grid)) == 1 + 6 and grid.axes[0].get_title() == "input crop 64×48"
    assert grid.axes[0].get_subplotspec().rowspan == range(0, 2)  # the crop spans both rows of channels
    assert all(ax.get_title().startswith("c") for ax in _panels(grid)[1:])  # then the channels
    contributions = [[torch.rand(1, 4, 8 >> i, 8 >> i) for _ in range(2)] for i in range(2)]
    fig = viz.contribution_figure(contributions, "stage2.module0", image=crop)
    assert len(_panels(fig)) == 4 + 1 and _panels(fig)[-1].get_title() == "input crop 64×48"
    assert _panels(fig)[-1].get_subplotspec().colspan == range(0, 1)  # the crop is the first column
    assert fig.axes[0].get_subplotspec().colspan == range(1, 2)
    # stage_overview: the crop takes the first row's free last cell, or a column of its own
    store = {"stage1": torch.rand(1, 8, 16, 12), "stage2": [torch.rand(1, 4, 16, 12), torch.rand(1, 8, 8, 6)]}
    fig = viz.stage_overview(store, image=crop)
    assert len(_panels(fig)) == 1 + 2 + 1 and fig.axes[-1].get_title() == "input crop 64×48"
    assert fig.axes[-1].get_subplotspec().get_geometry() == (2, 2, 1, 1)
    only_stage2 = {"stage2": store["stage2"]}
    fig = viz.stage_overview(only_stage2, image=crop)
    assert fig.axes[-1].get_subplotspec().get_geometry() == (1, 3, 2, 2)
    # every title of these figures is at least 8 pt
    sizes = [ax.title.get_fontsize() for f in (grid, fig) for ax in _panels(f)]
    assert min(sizes) >= 8
    assert plt.get_fignums() == []


def test_feature_figures_have_labelled_colour_scales():
    """Every feature-map figure says what its colours mean: a labelled colour bar whose limits are
    the values drawn (a panel's own range, a shared range, or [0, 1] where the data are normalised)."""
    g = torch.Generator().manual_seed(0)
    store = {"stage1": torch.rand(1, 8, 16, 12, generator=g),
             "stage2": [torch.rand(1, 4, 16, 12, generator=g) * 5, torch.rand(1, 8, 8, 6, generator=g)]}
    # stage_overview: each panel its own bar, running from that panel's min to its max
    fig = viz.stage_overview(store, reduce="mean")
    maps = [store["stage1"][0], *(x[0] for x in store["stage2"])]
    for ax, x in zip(_panels(fig), maps, strict=True):
        bar = ax.images[0].colorbar
        values = features.activation_map(x, "mean")
        assert bar is not None and bar.ax.get_ylabel() == "mean over channels"
        assert bar.ax.get_ylim() == pytest.approx((values.min().item(), values.max().item()))
    assert "its own colour scale" in fig.get_suptitle()
    # the PCA pictures: a key of three black-to-primary bars, PC1..3 → R, G, B, each over [0, 1]
    fig = viz.stage_overview(store, reduce="pca")
    key = sorted(_bars(fig), key=lambda ax: ax.get_ylabel())
    assert [ax.get_ylabel() for ax in key] == ["PC1 → red", "PC2 → green", "PC3 → blue"]
    for ax, rgb in zip(key, np.eye(3)):
        assert ax.get_ylim() == (0.0, 1.0)
        assert [t.get_text() for t in ax.get_yticklabels()] == ["panel\nmin", "panel\nmax"]
        (cmap,) = [c.get_cmap() for c in ax.collections if c.get_cmap().name.startswith("pc")]  # the bar
        np.testing.assert_allclose(cmap(0.0)[:3], 0.0)  # black at the panel's min
        np.testing.assert_allclose(cmap(1.0)[:3], rgb)  # the pure primary at its max
    # feature_grid: one scale for all channels shown, from their min to their max
    fmap = torch.randn(6, 8, 6, generator=g)
    fmap[2] *= 4  # one strong channel: the others must look weaker, not be rescaled
    grid = viz.feature_grid(fmap, channels=[0, 2, 5])
    (bar,) = _bars(grid)
    shown = fmap[[0, 2, 5]]
    assert bar.get_ylim() == pytest.approx((shown.min().item(), shown.max().item()))
    assert all(ax.images[0].get_clim() == bar.get_ylim() for ax in _panels(grid))
    assert bar.get_ylabel() == "activation (one scale, all channels)"
    # contribution_figure: a bar per output row, from 0 to the row's largest RMS
    # contributions[k][i]: (1, 4, H_k, W_k); output 1's terms ten times output 0's
    contributions = [[torch.rand(1, 4, 8 >> k, 8 >> k, generator=g) * (i + 1) * 10**k for i in range(2)]
                     for k in range(2)]
    fig = viz.contribution_figure(contributions, "stage2.module0")
    for k, row in enumerate(contributions):
        top = max(features.activation_map(c[0], "rms").max().item() for c in row)
        bar = next(ax for ax in _bars(fig) if ax.get_ylabel() == f"RMS → out {k}")
        assert bar.get_ylim() == pytest.approx((0.0, top))
        for ax in _panels(fig)[k * 2:(k + 1) * 2]:
            assert ax.images[0].get_clim() == pytest.approx((0.0, top))
    # shares_figure: one bar, [0, 1]
    (bar,) = _bars(viz.shares_figure({"a": features.contribution_shares(contributions)}))
    assert bar.get_ylim() == (0.0, 1.0) and bar.get_ylabel().startswith("share")
    assert plt.get_fignums() == []


def test_browser_figure_labels_the_map_and_heatmap_scales():
    g = torch.Generator().manual_seed(1)
    store = {"stage2.module0.branch1": torch.randn(1, 8, 8, 6, generator=g),
             "heatmaps": torch.rand(1, 17, 16, 12, generator=g) * 0.7}
    crops = np.zeros((1, 64, 48, 3), np.uint8)
    fig = viz.browser_figure(store, crops, 0, "stage2.module0.branch1", view=3)
    _, ax_map, ax_hm = _panels(fig)
    channel = store["stage2.module0.branch1"][0, 3]
    bar = ax_map.images[0].colorbar
    assert bar.ax.get_ylabel() == "channel 3"
    assert bar.ax.get_ylim() == pytest.approx((channel.min().item(), channel.max().item()))
    hm_bar = ax_hm.images[-1].colorbar  # 0 to this sample's largest heatmap value
    assert hm_bar.ax.get_ylim() == pytest.approx((0.0, store["heatmaps"][0].max().item()))
    assert hm_bar.ax.get_ylabel() == "heatmap value"
    fig = viz.browser_figure(store, crops, 0, "stage2.module0.branch1", view="pca")
    assert sorted(ax.get_xlabel() for ax in _bars(fig)) == ["", "PC1 → red", "PC2 → green", "PC3 → blue"]


def test_linear_probe_recovers_a_known_1x1_map_and_respects_weights():
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(6, 5, 8, 6, generator=g)  # (N, C, H, W)
    true = torch.nn.Conv2d(5, 3, 1)
    with torch.no_grad():
        true.weight.copy_(torch.randn(3, 5, 1, 1, generator=g))
        true.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
        targets = true(fmap)
    weights = torch.ones(6, 3)
    weights[0, 1] = 0  # joint 1 of sample 0 is unlabelled: its (garbage) target must not matter
    targets[0, 1] = 100.0
    probe = features.fit_linear_probe(fmap, targets, weights, ridge=1e-9)
    torch.testing.assert_close(probe.weight, true.weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(probe.bias, true.bias, atol=1e-4, rtol=1e-4)
    unweighted = features.fit_linear_probe(fmap, targets, None, ridge=1e-9)
    assert (unweighted.bias[1] - true.bias[1]).abs() > 0.1  # without the weight the garbage leaks in


@pytest.mark.parametrize("cfg", [model.W32, model.W16_1UNIT,
                                 model.HRNetConfig(num_stages=3, num_modules=(2, 1, 5)),
                                 model.HRNetConfig(width=8, num_stages=1)])
def test_draw_hrnet_follows_the_config(cfg):
    plt.close("all")
    fig = viz.draw_hrnet(cfg)
    ax = fig.axes[0]
    n_exchange = sum(cfg.num_modules[: cfg.num_stages - 1])  # one exchange unit per HR module of stages 2..S
    exchanges = [c for c in ax.collections if c.get_gid() == "exchange"]
    assert len(exchanges) == n_exchange
    streams = sorted(line.get_gid() for line in ax.lines if (line.get_gid() or "").startswith("stream"))
    assert streams == [f"stream{r}" for r in range(cfg.num_stages)]
    assert sum(p.get_gid() == "transition" for p in ax.patches) == cfg.num_stages - 1
    # A module of stage s with s branches exchanges along s(s − 1) paths; the last one keeps output 0.
    modules = [s for s in range(2, cfg.num_stages + 1) for _ in range(cfg.num_modules[s - 2])]
    expected = [s * (s - 1) for s in modules[:-1]] + [modules[-1] - 1] if modules else []
    assert [len(c.get_segments()) for c in exchanges] == expected
    texts = " ".join(t.get_text() for t in ax.texts)
    for r, width in enumerate(cfg.widths(cfg.num_stages)):
        assert f"branch {r}: C={width}" in texts and f"1/{2 ** (r + 2)}" in texts
    for s in range(2, cfg.num_stages + 1):
        n = cfg.num_modules[s - 2]
        assert f"stage {s}: {n} module" in texts
    assert plt.get_fignums() == []


def test_draw_hrnet_into_given_axes_side_by_side():
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(2, 1)
    assert viz.draw_hrnet(model.W32, ax=axes[0]) is fig
    assert viz.draw_hrnet(model.W16_1UNIT, ax=axes[1], title="CPU preset") is fig
    assert axes[1].get_title() == "CPU preset"
    assert sum(c.get_gid() == "exchange" for c in axes[0].collections) == 8  # 1 + 4 + 3
    assert sum(c.get_gid() == "exchange" for c in axes[1].collections) == 3  # 1 + 1 + 1


def test_notebook_helpers_bound_long_output():
    from hrnet_edu import notebook_utils

    html = notebook_utils.show_source(viz.draw_pose).data
    assert html.startswith("<details>") and "max-height: 360px" in html and "hrnet_edu.viz.draw_pose" in html
    keys = [f"stage{i}.0.fuse_layers.{i}.0.weight" for i in range(7)] + ["x" * 80]
    text = notebook_utils.columns(keys, width=84, max_cell=40)  # cells of 40 + 2 spaces
    lines = text.splitlines()
    assert all(len(line) <= 84 for line in lines) and len(lines) == 4  # 2 columns of 4 rows
    assert lines[0].split() == [keys[0], keys[4]] and lines[-1].split()[-1] == "x" * 39 + "…"


def test_notebook_helpers_quiet_and_jpeg_figures():
    import sys

    from hrnet_edu import notebook_utils

    with notebook_utils.quiet() as captured:
        print("pycocotools says")
        print("a note", file=sys.stderr)
    assert captured.getvalue() == "pycocotools says\na note\n"
    with pytest.raises(ValueError, match="quality must be in 1..95, got 120"):
        notebook_utils.jpeg_figures(120)
    assert notebook_utils.jpeg_figures() is None  # outside IPython: nothing to configure

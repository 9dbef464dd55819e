"""capture(): names, shapes implied by the config, exchange-unit contributions, hook hygiene."""

import numpy as np
import pytest
import torch

from hrnet_edu import features, viz
from hrnet_edu.model import W8, W16, HRNet


def _count_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def w8():
    torch.manual_seed(0)
    return HRNet(W8).eval()


@pytest.mark.parametrize("cfg", [W8, W16], ids=["W8", "W16"])
@pytest.mark.parametrize("size", [(64, 64), (128, 96)])
def test_captured_shapes_follow_the_config(cfg, size):
    torch.manual_seed(0)
    model = HRNet(cfg).eval()
    h, w = size
    x = torch.randn(2, 3, h, w)
    with torch.no_grad(), features.capture(model) as feats:
        out = model(x)
    assert set(feats) == set(features.layer_names(model))
    assert feats["stem"].shape == (2, cfg.stem_width, h // 4, w // 4)
    assert feats["stage1"].shape == (2, 4 * cfg.stage1_planes, h // 4, w // 4)  # bottleneck expansion 4

    def expected(r):  # branch r: width C·2^r at stride 4·2^r
        return (2, cfg.width * 2**r, h // 2 ** (r + 2), w // 2 ** (r + 2))

    for s in (2, 3, 4):
        stage = getattr(model, f"stage{s}")
        assert len(stage) == cfg.num_modules[s - 2]
        for m in range(len(stage)):
            for r in range(s):
                assert feats[f"stage{s}.module{m}.branch{r}"].shape == expected(r)
            n_out = 1 if (s == 4 and m == len(stage) - 1) else s  # the last module keeps branch 0 only
            fused = feats[f"stage{s}.module{m}.exchange"]
            assert [t.shape for t in fused] == [expected(i) for i in range(n_out)]
            for i in range(n_out):
                for j in range(s):
                    assert feats[f"stage{s}.module{m}.exchange.out{i}.from{j}"].shape == expected(i)
        assert [t.shape for t in feats[f"stage{s}"]] == [expected(i) for i in range(1 if s == 4 else s)]
    assert torch.equal(feats["heatmaps"], out)
    assert out.shape == (2, cfg.num_joints, h // 4, w // 4)


def test_exchange_output_is_relu_of_the_sum_of_its_contributions(w8):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), features.capture(w8) as feats:
        w8(x)
    units = sorted({n.rsplit(".exchange", 1)[0] for n in feats if ".exchange" in n})
    assert len(units) == sum(len(getattr(w8, f"stage{s}")) for s in (2, 3, 4))
    for unit in units:
        contributions = features.exchange_contributions(feats, unit)
        for i, row in enumerate(contributions):
            # Y_i = ReLU(Σ_j a(X_j, i)), with a(X_i, i) = X_i (identity)
            fused = feats[f"{unit}.exchange.out{i}"]
            torch.testing.assert_close(fused, torch.relu(sum(row)), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(row[i], feats[f"{unit}.branch{i}"])
        shares = features.contribution_shares(contributions)
        np.testing.assert_allclose(shares.sum(-1).numpy(), 1.0, rtol=1e-12)
        assert torch.all(shares > 0)


def test_hooks_are_removed_on_exit_and_on_exception(w8):
    assert _count_hooks(w8) == 0
    with features.capture(w8) as feats:
        assert _count_hooks(w8) > 0
        w8(torch.randn(1, 3, 64, 64))
    assert _count_hooks(w8) == 0 and len(feats) > 0
    with pytest.raises(RuntimeError, match="boom"), features.capture(w8, "stage3.*"):
        assert _count_hooks(w8) > 0
        raise RuntimeError("boom")
    assert _count_hooks(w8) == 0
    with pytest.raises(ValueError, match="divisible by 32"), features.capture(w8):
        w8(torch.randn(1, 3, 60, 64))  # a failing forward (size not divisible by 32)
    assert _count_hooks(w8) == 0


def test_selected_names_only_and_outputs_unchanged(w8):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = w8(x)
        with features.capture(w8, ["stage3.*.branch0", "heatmaps"], device="cpu") as feats:
            out = w8(x)
    expected = [f"stage3.module{m}.branch0" for m in range(len(w8.stage3))] + ["heatmaps"]
    assert sorted(feats) == sorted(expected)
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
    # Captured tensors are detached copies even when autograd is on.
    with features.capture(w8, "stem") as feats:
        w8(x).sum().backward()
    assert not feats["stem"].requires_grad and feats["stem"].device.type == "cpu"


def test_unknown_name_lists_close_matches_and_how_to_list_all(w8):
    names = features.layer_names(w8)
    assert names[0] == "stem" and names[-1] == "heatmaps" and len(names) == len(set(names))
    with pytest.raises(ValueError) as err, features.capture(w8, ["stem", "stage3.module0.branh1"]):
        pass
    message = str(err.value)
    assert "'stage3.module0.branh1'" in message and "stage3.module0.branch1" in message
    assert "layer_names(model)" in message
    with pytest.raises(ValueError, match="unknown layer name 'stage9.\\*'"):
        features.capture(w8, "stage9.*").__enter__()
    assert _count_hooks(w8) == 0


def test_browser_updates_the_figure_when_widgets_change(w8):
    pytest.importorskip("ipywidgets")
    images = torch.randn(2, 3, 64, 64)
    crops = np.zeros((2, 64, 64, 3), np.uint8)
    box = viz.feature_browser(w8, images, crops)
    assert _count_hooks(w8) == 0 and not w8.training
    controls = {w.description: w for row in box.children[:-1] for w in row.children}
    assert box.figure.axes[1].get_title().startswith("stage 4 · module")
    controls["stage"].value = "stage3"
    controls["branch"].value = 2
    assert box.figure.axes[1].get_title().startswith(f"stage 3 · module {len(w8.stage3) - 1} · branch 2 (C=")
    controls["show"].value = "channel"
    controls["channel"].value = 5
    assert box.figure.axes[1].get_title().endswith("channel 5")
    assert len([ax for ax in box.figure.axes if ax.get_label() != "<colorbar>"]) == 3
    controls["output"].value = "exchange"  # an exchange unit's fused outputs (not its contributions)
    assert controls["branch"].options == (0, 1, 2)
    title = box.figure.axes[1].get_title()
    assert title.startswith(f"stage 3 · module {len(w8.stage3) - 1} · exchange · out 2"), title


def test_stage_overview_shows_every_branch_at_every_stage(w8):
    with torch.no_grad(), features.capture(w8) as feats:
        w8(torch.randn(1, 3, 64, 64))
    fig = viz.stage_overview(feats, input_size=(64, 64))
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]  # each with its own colour bar
    titles = [ax.get_title() for ax in panels]
    assert len(titles) == 1 + 2 + 3 + 4  # stage 4 shows its 4 branches (before the last exchange)
    assert len(fig.axes) == 2 * len(panels)
    assert titles[-1] == "stage 4 · branch 3\n(C=64, 2×2, 1/32)"  # on two lines, legible at 8 pt
    only_outputs = {k: v for k, v in feats.items() if k in ("stage1", "stage2", "stage3", "stage4")}
    assert len(viz.stage_overview(only_outputs, reduce="pca").axes) == 1 + 2 + 3 + 1 + 3  # + the PCA key

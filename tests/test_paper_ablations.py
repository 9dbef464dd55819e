"""The switches behind the paper's ablations at CPU scale (notebooks 01, 04, 05): the head on a
lower-resolution branch (output stride), where the exchange units sit, and SimpleBaseline as a
trainable model config."""

import dataclasses

import numpy as np
import pytest
import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.baseline import SMALL, BaselineConfig, SimpleBaseline
from hrnet_edu.configs import TrainConfig, synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.fusion import ExchangeUnit
from hrnet_edu.heatmaps import HeatmapCodec, decode_heatmaps
from hrnet_edu.keypoints import COCO17
from hrnet_edu.overrides import config_from_dict

pytestmark = pytest.mark.usefixtures("one_thread")
VAL = "data_samples/synthpose"


def exchange_units(net):
    return sum(isinstance(m, ExchangeUnit) for m in net.modules())


@pytest.mark.parametrize("placement, count", [("all", 8), ("across_stages", 3), ("final", 1)])
def test_exchange_unit_placements_give_the_papers_fusion_counts(placement, count):
    # the paper's ablation study: W32 has 8 exchange units (1 + 4 + 3 modules), 3 across stages, 1 at the end
    net = hrnet_model.HRNet(dataclasses.replace(hrnet_model.W32, exchange_units=placement)).to("meta")
    assert exchange_units(net) == count
    last_module = net.stage4[-1]
    assert last_module.fuse_layers is not None and len(last_module.fuse_layers) == 1  # → branch 0 only


def test_default_network_is_unchanged_by_the_switches():
    plain = hrnet_model.HRNet(hrnet_model.W32).to("meta")
    assert sum(p.numel() for p in plain.parameters()) == 28_536_113
    assert hrnet_model.W32.output_stride == 4 and exchange_units(plain) == 8


def test_exchange_units_off_leave_the_branches_unfused():
    cfg = dataclasses.replace(hrnet_model.W8, exchange_units="final")
    net = hrnet_model.HRNet(cfg).eval()
    xs = [torch.randn(1, c, 8 // 2**r, 8 // 2**r) for r, c in enumerate(cfg.widths(2))]
    ys = net.stage2(xs)  # one module without an exchange unit: each branch only through its own units
    for r, branch in enumerate(net.stage2[0].branches):
        torch.testing.assert_close(ys[r], branch(xs[r]))


@pytest.mark.parametrize("branch", [1, 2, 3])
def test_head_on_branch_r_predicts_at_stride_4_times_2_to_the_r(branch):
    cfg = dataclasses.replace(hrnet_model.W16_1UNIT, head_branch=branch)
    net = hrnet_model.HRNet(cfg).eval()
    assert cfg.output_stride == 4 * 2**branch
    assert net.final_layer.in_channels == cfg.width * 2**branch
    with torch.no_grad():
        out = net(torch.randn(2, 3, 128, 96))
    assert out.shape == (2, 17, 128 // cfg.output_stride, 96 // cfg.output_stride)
    train_cfg = dataclasses.replace(synthpose_w16_128x96_cpu(), model=cfg)
    assert train_cfg.heatmap_size == tuple(out.shape[-2:])


def test_head_branch_outside_the_last_stage_is_refused():
    with pytest.raises(ValueError, match="head_branch must be a branch of the last stage"):
        dataclasses.replace(hrnet_model.W8, head_branch=4)
    with pytest.raises(ValueError, match="exchange_units must be"):
        dataclasses.replace(hrnet_model.W8, exchange_units="some")


def test_targets_at_stride_8_peak_at_the_joint_over_8():
    kwargs = dict(spec=COCO17, train=False, augment=None)
    at4 = CocoKeypoints(f"{VAL}/annotations/person_keypoints_val.json", f"{VAL}/images",
                        codec=HeatmapCodec((128, 96)), **kwargs)
    at8 = CocoKeypoints(f"{VAL}/annotations/person_keypoints_val.json", f"{VAL}/images",
                        codec=HeatmapCodec((128, 96), stride=8, sigma=1.0), **kwargs)
    a, b = at4[3], at8[3]
    torch.testing.assert_close(a["image"], b["image"])
    assert b["target"].shape == (17, 16, 12)
    visible = (b["target_weight"] > 0) & (b["joints"][:, 2] > 0)
    xy = b["joints"][:, :2]
    inside = visible & (xy[:, 0] < 95.5) & (xy[:, 1] < 127.5) & (xy >= 0).all(1)
    assert inside.sum() >= 5
    peaks, _ = decode_heatmaps(b["target"][None], method="argmax")
    expected = np.floor(b["joints"][:, :2].numpy() / 8 + 0.5)  # the reference's int(x / s + 0.5)
    np.testing.assert_array_equal(peaks[0][inside].numpy(), expected[inside.numpy()])


def test_simple_baseline_is_a_model_config_that_round_trips_through_checkpoints():
    cfg = dataclasses.replace(TrainConfig(), model=SMALL)
    back = config_from_dict(dataclasses.asdict(cfg))
    assert back == cfg and isinstance(back.model, BaselineConfig)
    assert isinstance(hrnet_model.build_model(back.model), SimpleBaseline)
    assert cfg.heatmap_stride == 4 and SMALL.unit.__name__ == "BasicBlock"
    hr = config_from_dict(dataclasses.asdict(TrainConfig()))
    assert hr.model == hrnet_model.W32  # an HRNet config is not mistaken for the baseline
    with pytest.raises(ValueError, match="block must be one of"):
        BaselineConfig(block="Bottleneck")


def test_each_study_run_changes_one_thing_of_the_recipe():
    from hrnet_edu import evidence
    from hrnet_edu.flops import count_macs

    ref = dataclasses.asdict(evidence.study_config("hrnet"))
    recipe = dataclasses.asdict(synthpose_w16_128x96_cpu())
    # the study pins the machine settings it was measured with; the preset chooses them per machine
    pinned = {"cpu_bf16", "cpu_channels_last", "cpu_threads", "workers"}
    assert {k for k in ref if ref[k] != recipe[k]} == {"name", "epochs", "warmup_epochs"} | pinned
    assert {k: recipe[k] for k in pinned} == dict.fromkeys(pinned, "auto")
    expected = {"hrnet_fp32": {"cpu_bf16", "cpu_channels_last"}, "stride8": {"model", "sigma"},
                "simplebaseline": {"model"}, "sigma1": {"sigma"}, "fusion_all": {"model"},
                "fusion_across": {"model"}, "fusion_final": {"model"}}
    for name, keys in expected.items():
        cfg = dataclasses.asdict(evidence.study_config(name))
        assert {k for k in cfg if cfg[k] != ref[k]} == keys | {"name"}, name
    # equal multiply-adds for the high-to-low baseline; the fusion nets differ only in exchange units
    macs = [count_macs(hrnet_model.build_model(evidence.study_config(n).model), (128, 96))
            for n in ("hrnet", "simplebaseline")]
    assert abs(macs[1] / macs[0] - 1) < 0.01
    counts = [exchange_units(hrnet_model.build_model(evidence.study_config(f"fusion_{p}").model).to("meta"))
              for p in ("all", "across", "final")]
    assert counts == [5, 3, 1]
    with pytest.raises(ValueError, match="unknown study run"):
        evidence.study_config("nope")


def test_summarize_gives_mean_and_spread_over_seeds():
    from hrnet_edu.evidence import summarize

    rows = [{"run": "a", "seed": 1, "ap": 0.5}, {"run": "a", "seed": 0, "ap": 0.3},
            {"run": "b", "seed": 0, "ap": 0.1}]
    out = summarize(rows, ["a", "b", "c"])
    assert out["a"]["values"] == [0.3, 0.5] and out["a"]["mean"] == pytest.approx(0.4)
    assert out["a"]["spread"] == pytest.approx(0.2) and out["b"]["spread"] == 0 and "c" not in out


@pytest.mark.parametrize("placement, count", [("all", 5), ("across_stages", 3), ("final", 1)])
def test_the_drawing_shows_the_exchange_units_the_network_has(placement, count):
    from hrnet_edu import viz

    cfg = dataclasses.replace(hrnet_model.W16_1UNIT, num_modules=(1, 2, 2), exchange_units=placement)
    drawn = [c for c in viz.draw_hrnet(cfg).axes[0].collections if c.get_gid() == "exchange"]
    assert len(drawn) == count == exchange_units(hrnet_model.HRNet(cfg).to("meta"))
    assert len(drawn[-1].get_segments()) == 3  # the last unit: branches 1, 2, 3 → branch 0


def test_the_drawing_puts_the_head_on_the_branch_it_reads():
    from hrnet_edu import viz

    cfg = dataclasses.replace(hrnet_model.W16_1UNIT, head_branch=1)
    ax = viz.draw_hrnet(cfg).axes[0]
    last = [c for c in ax.collections if c.get_gid() == "exchange"][-1]
    assert len(last.get_segments()) == 3 + 3  # outputs 0 and 1, from the 3 other branches each
    head = next(p for p in ax.patches if p.get_gid() == "head")
    assert head.get_y() < -0.5  # row 1 (rows are at y = −r), not row 0


def test_every_committed_study_run_was_trained_with_its_study_config():
    import json
    import os

    from hrnet_edu import evidence
    from hrnet_edu.overrides import config_from_dict

    rows = evidence.load_runs()
    assert {r["run"] for r in rows} == set(evidence.RUNS)
    for r in rows:
        with open(os.path.join(evidence.RESULTS, f"{r['run']}_s{r['seed']}", "config.json")) as f:
            stored = config_from_dict(json.load(f))
        assert stored == evidence.study_config(r["run"], r["seed"]), (r["run"], r["seed"])

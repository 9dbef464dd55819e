"""The whole HRNet: the paper's parameter counts and multiply-adds, the reference's key names, loading."""

import dataclasses

import pytest
import torch
from torch import nn

from hrnet_edu.baseline import RESNET50, SMALL, SimpleBaseline
from hrnet_edu.checkpoints import load_reference_weights
from hrnet_edu.flops import count_macs, count_parameters, macs_by_module, paper_gflops
from hrnet_edu.model import (
    W8,
    W16,
    HRNet,
    HRNetConfig,
    hrnet_w32,
    hrnet_w48,
)


@pytest.fixture(scope="module")
def w32():
    return hrnet_w32()


@pytest.fixture(scope="module")
def w48():
    return hrnet_w48()


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BN statistics far from the init, so a wrong load cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * 0.1)
    return model


def _reference_keys(width: int, num_joints: int = 17) -> set[str]:
    """The reference's state-dict key names, written from its construction rules (REFERENCE.md)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def conv_bn(prefix, conv="0", norm="1"):
        return {f"{prefix}.{conv}.weight"} | {f"{prefix}.{norm}.{b}" for b in bn}

    keys = {"conv1.weight", "conv2.weight", "final_layer.weight", "final_layer.bias"}
    keys |= {f"bn{i}.{b}" for i in (1, 2) for b in bn}
    for u in range(4):
        for i in (1, 2, 3):
            keys |= conv_bn(f"layer1.{u}", f"conv{i}", f"bn{i}")
    keys |= conv_bn("layer1.0.downsample")
    keys |= conv_bn("transition1.0") | conv_bn("transition1.1.0")
    keys |= conv_bn("transition2.2.0") | conv_bn("transition3.3.0")
    for s, modules in ((2, 1), (3, 4), (4, 3)):
        for m in range(modules):
            p = f"stage{s}.{m}"
            for r in range(s):
                for b in range(4):
                    keys |= conv_bn(f"{p}.branches.{r}.{b}", "conv1", "bn1")
                    keys |= conv_bn(f"{p}.branches.{r}.{b}", "conv2", "bn2")
            outputs = 1 if (s, m) == (4, 2) else s
            for i in range(outputs):
                for j in range(s):
                    if j > i:
                        keys |= conv_bn(f"{p}.fuse_layers.{i}.{j}")
                    for k in range(i - j):
                        keys |= conv_bn(f"{p}.fuse_layers.{i}.{j}.{k}")
    return keys


def test_parameter_counts_equal_the_paper(w32, w48):
    assert count_parameters(w32) == 28_536_113
    assert count_parameters(w48) == 63_595_745
    assert count_parameters(hrnet_w32(num_joints=14)) == 28_536_113 - 3 * (32 + 1)


def test_state_dict_keys_are_the_reference_keys(w32):
    keys = set(w32.state_dict())
    assert len(w32.state_dict()) == 1754
    assert keys == _reference_keys(32)
    for key in ("conv1.weight", "layer1.0.conv1.weight", "transition1.0.0.weight", "transition1.1.0.0.weight",
                "stage2.0.branches.0.0.conv1.weight", "stage2.0.fuse_layers.0.1.0.weight",
                "stage4.2.fuse_layers.0.3.1.running_var", "stage3.3.fuse_layers.2.0.1.0.weight",
                "final_layer.weight", "final_layer.bias"):
        assert key in keys
    assert w32.state_dict()["transition3.3.0.0.weight"].shape == (256, 128, 3, 3)
    assert w32.state_dict()["stage3.0.fuse_layers.0.2.0.weight"].shape == (32, 128, 1, 1)


def test_w48_key_count(w48):
    assert len(w48.state_dict()) == 1754
    assert set(w48.state_dict()) == _reference_keys(48)


def test_reference_details(w32):
    assert len(w32.stage4[2].fuse_layers) == 1 and len(w32.stage4[0].fuse_layers) == 4
    assert [len(getattr(w32, f"stage{s}")) for s in (2, 3, 4)] == [1, 4, 3]
    convs = [(n, m) for n, m in w32.named_modules() if isinstance(m, nn.Conv2d)]
    assert [n for n, m in convs if m.bias is not None] == ["final_layer"]
    norms = [m for m in w32.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.momentum == 0.1 for m in norms)
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    weights = torch.cat([m.weight.flatten() for _, m in convs])
    assert abs(weights.std().item() - 0.001) < 0.00002 and abs(weights.mean().item()) < 1e-5
    assert torch.all(w32.final_layer.bias == 0)


@pytest.mark.parametrize(("name", "paper", "macs"), [("w32", 7.1, 7.645e9), ("w48", 14.6, 15.69e9)])
def test_multiply_adds_match_the_paper(name, paper, macs, request):
    model = request.getfixturevalue(name)  # counted on a shape-only ("meta") copy
    measured = count_macs(model, (256, 192))
    assert abs(measured - macs) / macs < 0.005
    assert round(paper_gflops(measured), 1) == paper


@pytest.mark.parametrize("cfg", [W8, W16])
@pytest.mark.parametrize("size", [(32, 32), (64, 32), (96, 64)])
def test_output_shapes(cfg, size):
    model = HRNet(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
        feats = model.forward_features(torch.randn(1, 3, *size))
    assert out.shape == (2, cfg.num_joints, size[0] // 4, size[1] // 4)
    # every branch r of the last stage: width C·2^r at stride 4·2^r
    assert [tuple(f.shape) for f in feats] == [(1, cfg.width * 2**r, size[0] // 2 ** (r + 2),
                                               size[1] // 2 ** (r + 2)) for r in range(4)]


def test_full_preset_shapes(w32, w48):
    with torch.no_grad():
        assert w32.eval()(torch.randn(1, 3, 64, 32)).shape == (1, 17, 16, 8)
        assert [f.shape[:2] for f in w32.forward_features(torch.randn(1, 3, 32, 64))] == [
            (1, 32), (1, 64), (1, 128), (1, 256)]
        assert w48.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 17, 8, 8)


def test_forward_features_returns_what_the_head_reads_and_every_branch():
    """Branch 0 is the head's input; branches 1–3 are the last module's residual-unit outputs (its
    exchange unit fuses output 0 only); with return_stages, every stage's outputs, as captured."""
    from hrnet_edu import features

    model = _randomize(HRNet(W16)).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad(), features.capture(model) as feats:
        heatmaps = model(x)
        last = model.forward_features(x)
        stages = model.forward_features(x, return_stages=True)
    torch.testing.assert_close(model.head(last[0]), heatmaps, rtol=0, atol=0)
    m = W16.num_modules[2] - 1
    for r in range(1, 4):
        torch.testing.assert_close(last[r], feats[f"stage4.module{m}.branch{r}"], rtol=0, atol=0)
    assert [len(outputs) for outputs in stages] == [1, 2, 3, 4] and stages[-1][0].equal(last[0])
    torch.testing.assert_close(stages[0][0], feats["stage1"], rtol=0, atol=0)
    for s in (2, 3):
        for mine, captured in zip(stages[s - 1], feats[f"stage{s}"], strict=True):
            torch.testing.assert_close(mine, captured, rtol=0, atol=0)
    assert model.stage1 is model.layer1 and model.head is model.final_layer  # accessors, same modules
    assert [stage for _, stage in model.stages()] == [model.stage2, model.stage3, model.stage4]


@pytest.mark.parametrize("size", [(250, 192), (256, 200), (16, 16)])
def test_sizes_not_divisible_by_32_are_refused(size):
    with pytest.raises(ValueError, match=f"{size[0]}×{size[1]}"):
        HRNet(W8)(torch.randn(1, 3, *size))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        HRNet(W8)(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_num_stages(stages):
    cfg = dataclasses.replace(W8, num_stages=stages)
    model = HRNet(cfg).eval()
    assert len(model.stages()) == stages - 1 and not hasattr(model, f"stage{stages + 1}")
    assert model.final_layer.in_channels == (cfg.stage1_planes * 4 if stages == 1 else cfg.width)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 32)).shape == (1, 17, 16, 8)
    with pytest.raises(ValueError, match="num_stages"):
        HRNetConfig(num_stages=5)


def test_gradients_reach_every_parameter():
    model = _randomize(HRNet(W8)).train()
    out = model(torch.randn(2, 3, 64, 64))
    (out**2).mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert dead == []


def test_eval_mode_is_deterministic_and_batch_independent():
    model = _randomize(HRNet(W8)).eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        a, b, single = model(x), model(x), model(x[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a[1:2], rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_in_every_accepted_format(tmp_path):
    source = _randomize(HRNet(W8)).eval()
    state = source.state_dict()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = source(x)
    path = tmp_path / "pose_hrnet_w8.pth"
    torch.save(state, path)
    formats = [path, str(path), state, {"state_dict": state}, {"model": state, "epoch": 3},
               {f"module.{k}": v for k, v in state.items()}]
    for fmt in formats:
        fresh = HRNet(W8).eval()
        assert load_reference_weights(fresh, fmt) is fresh
        with torch.no_grad():
            assert torch.equal(fresh(x), expected)


def test_old_checkpoint_without_batch_counters_loads():
    full = _randomize(HRNet(W8)).state_dict()
    state = {k: v for k, v in full.items() if "num_batches_tracked" not in k}
    fresh = load_reference_weights(HRNet(W8), state)
    assert torch.equal(fresh.conv1.weight, state["conv1.weight"])


def test_mismatched_checkpoints_are_refused_with_the_keys(tmp_path):
    state = HRNet(W8).state_dict()
    shapes = r"mis-shaped \(\d+\)[\s\S]*conv2.weight: checkpoint \(16, 16, 3, 3\) vs model \(32, 32, 3, 3\)"
    with pytest.raises(ValueError, match=shapes):
        load_reference_weights(HRNet(W16), state)
    broken = dict(state)
    del broken["final_layer.bias"]
    broken["head.weight"] = torch.zeros(1)
    keys = r"missing \(1\):\s+final_layer.bias[\s\S]*unexpected \(1\):\s+head.weight"
    with pytest.raises(ValueError, match=keys):
        load_reference_weights(HRNet(W8), broken)
    with pytest.raises(ValueError, match="not a state dict"):
        load_reference_weights(HRNet(W8), {"epoch": 3, "note": "hello"})
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_reference_weights(HRNet(W8), tmp_path / "nothing.pth")


def test_simple_baseline_matches_the_paper_and_hrnet_io():
    # The paper's comparison row: SimpleBaseline ResNet-50, 34.0 M parameters.
    assert round(count_parameters(SimpleBaseline(RESNET50)) / 1e6, 1) == 34.0
    model = SimpleBaseline(SMALL).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, SMALL.widths[3], 2, 1)  # 1/32
        assert model(x).shape == HRNet(W8).eval()(x).shape == (2, 17, 16, 8)  # same I/O as HRNet
    with pytest.raises(ValueError, match="100×32"):
        model(torch.randn(1, 3, 100, 32))


def test_config_round_trips_through_a_plain_dict():
    # Training checkpoints store dataclasses.asdict(cfg); JSON turns tuples into lists.
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(W16).items()}
    restored = HRNetConfig(**plain)
    assert restored == W16 and hash(restored) == hash(W16)


def test_macs_by_module_add_up_and_match_the_convolution_formula():
    model = HRNet(W8)
    macs = macs_by_module(model, (64, 32))
    children = [name for name, _ in model.named_children()]
    assert sum(macs.get(name, 0) for name in children) == macs[""]
    # conv1: 3 → 16 channels, 3×3 kernel, output 32×16: C_out·C_in·k²·H_out·W_out multiply-adds
    assert macs["conv1"] == W8.stem_width * 3 * 9 * 32 * 16
    # final_layer: 1×1, C → K on the 16×8 heatmap
    assert macs["final_layer"] == W8.width * 17 * 16 * 8

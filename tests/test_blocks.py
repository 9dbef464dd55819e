"""Residual units and the multi-resolution block, checked against hand-written formulas."""

import pytest
import torch
from torch import nn

from hrnet_edu.blocks import BasicBlock, Bottleneck, MultiResolutionBlock, make_units, projection


def _randomize_bn(module: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters (eval mode uses them)."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def _bn(bn: nn.BatchNorm2d, x):
    """Eval-mode BatchNorm written out: γ (x − μ) / sqrt(σ² + ε) + β."""
    shape = (1, -1, 1, 1)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def test_basic_block_equals_formula():
    block = BasicBlock(8, 8).eval()
    _randomize_bn(block)
    x = torch.randn(2, 8, 12, 10)
    f = torch.conv2d(x, block.conv1.weight, padding=1)
    f = torch.relu(_bn(block.bn1, f))
    f = _bn(block.bn2, torch.conv2d(f, block.conv2.weight, padding=1))
    expected = torch.relu(f + x)  # identity shortcut
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_bottleneck_with_projection_equals_formula():
    unit = Bottleneck(16, 4, stride=2).eval()
    _randomize_bn(unit)
    x = torch.randn(2, 16, 12, 8)
    f = torch.relu(_bn(unit.bn1, torch.conv2d(x, unit.conv1.weight)))
    f = torch.relu(_bn(unit.bn2, torch.conv2d(f, unit.conv2.weight, stride=2, padding=1)))
    f = _bn(unit.bn3, torch.conv2d(f, unit.conv3.weight))
    shortcut = _bn(unit.downsample[1], torch.conv2d(x, unit.downsample[0].weight, stride=2))
    out = unit(x)
    assert out.shape == (2, 16, 6, 4)
    torch.testing.assert_close(out, torch.relu(f + shortcut), rtol=1e-4, atol=1e-5)


def test_projection_only_when_needed_and_no_biases():
    assert projection(32, 32) is None
    assert projection(32, 64) is not None and projection(32, 32, stride=2) is not None
    unit = Bottleneck(64, 64)
    assert unit.downsample is not None  # 64 -> 256
    assert all(not name.endswith("bias") or ".bn" in f".{name}" or "downsample.1" in name
               for name, _ in unit.named_parameters())
    assert sorted(n for n, _ in unit.named_children()) == sorted(
        ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample"])


def test_make_units_shapes_and_keys():
    units = make_units(Bottleneck, 64, 64, 4)
    y = units(torch.randn(1, 64, 8, 8))
    assert y.shape == (1, 256, 8, 8)
    keys = units.state_dict().keys()
    assert "0.downsample.0.weight" in keys and "3.conv3.weight" in keys
    assert not any(k.startswith("1.downsample") for k in keys)


def test_multi_resolution_block_runs_branches_independently():
    widths = (4, 8, 16)
    block = MultiResolutionBlock(widths, num_units=2).eval()
    _randomize_bn(block)
    xs = [torch.randn(2, c, 16 // 2**r, 12 // 2**r) for r, c in enumerate(widths)]
    ys = block(xs)
    assert [tuple(y.shape) for y in ys] == [tuple(x.shape) for x in xs]
    # Branch r sees only input r: it equals running its residual units alone.
    for r in range(3):
        torch.testing.assert_close(ys[r], block[r](xs[r]))
    # Changing input 2 leaves outputs 0 and 1 untouched.
    xs2 = list(xs)
    xs2[2] = torch.randn_like(xs[2])
    ys2 = block(xs2)
    assert torch.equal(ys2[0], ys[0]) and torch.equal(ys2[1], ys[1]) and not torch.equal(ys2[2], ys[2])
    with pytest.raises(ValueError, match="3 branches but got 2"):
        block(xs[:2])

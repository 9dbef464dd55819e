"""The exchange unit: each output is ReLU of the sum of its parts, each part computed by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hrnet_edu.fusion import ExchangeUnit, Transition


def _randomize(module: nn.Module) -> None:
    """Non-trivial conv weights and BN statistics (the reference's N(0, 0.001) init is nearly zero)."""
    g = torch.Generator().manual_seed(2)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * 0.2)
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _bn(bn: nn.BatchNorm2d, x):
    s = (1, -1, 1, 1)
    return (x - bn.running_mean.view(s)) / torch.sqrt(bn.running_var.view(s) + bn.eps) * bn.weight.view(s) \
        + bn.bias.view(s)


def _by_hand(unit: ExchangeUnit, xs, i: int, j: int):
    """a(X_j, i) written from the paper, using only the unit's parameters."""
    x = xs[j]
    if j == i:
        return x
    if j > i:  # 1×1 conv, BN, nearest upsampling ×2^(j−i): pixel (y, x) ← (y // f, x // f)
        conv, bn = unit[i][j][0], unit[i][j][1]
        z = _bn(bn, torch.conv2d(x, conv.weight))
        f = 2 ** (j - i)
        return z.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
    for k in range(i - j):  # i − j stride-2 3×3 convs; ReLU after all but the last
        conv, bn = unit[i][j][k][0], unit[i][j][k][1]
        x = _bn(bn, torch.conv2d(x, conv.weight, stride=2, padding=1))
        if k < i - j - 1:
            x = torch.relu(x)
    return x


@pytest.fixture
def unit_and_inputs():
    widths = (4, 8, 16, 32)
    unit = ExchangeUnit(widths).eval()
    _randomize(unit)
    xs = [torch.randn(2, c, 32 // 2**r, 24 // 2**r) for r, c in enumerate(widths)]
    return unit, xs


def test_output_is_relu_of_sum_of_hand_computed_parts(unit_and_inputs):
    unit, xs = unit_and_inputs
    with torch.no_grad():
        ys = unit(xs)
        parts = unit.contributions(xs)
    for i in range(4):
        expected_parts = [_by_hand(unit, xs, i, j) for j in range(4)]
        for j in range(4):
            torch.testing.assert_close(parts[i][j], expected_parts[j], rtol=1e-4, atol=1e-5)
        # Y_i = ReLU(Σ_j a(X_j, i))
        torch.testing.assert_close(ys[i], torch.relu(sum(expected_parts)), rtol=1e-4, atol=1e-5)
        assert ys[i].shape == xs[i].shape


def test_inputs_not_modified_and_relu_only_after_sum(unit_and_inputs):
    unit, xs = unit_and_inputs
    copies = [x.clone() for x in xs]
    with torch.no_grad():
        parts = unit.contributions(xs)
        unit(xs)
    assert all(torch.equal(a, b) for a, b in zip(xs, copies))
    # The last conv of a downsampling chain and the upsampling path carry no ReLU: parts can be negative.
    assert (parts[3][0] < 0).any() and (parts[0][3] < 0).any()


def test_structure_matches_reference_layout():
    unit = ExchangeUnit((32, 64, 128, 256), num_outputs=1)
    keys = set(unit.state_dict())
    assert len(unit) == 1 and len(unit[0]) == 4
    assert isinstance(unit[0][0], nn.Identity)
    assert {"0.1.0.weight", "0.3.0.weight", "0.3.1.running_var"} <= keys
    assert isinstance(unit[0][3][2], nn.Upsample) and unit[0][3][2].scale_factor == 8
    full = ExchangeUnit((32, 64, 128, 256))
    chain = full[3][0]  # 3 stride-2 convs, widths 32 → 32 → 32 → 256
    assert [c[0].out_channels for c in chain] == [32, 32, 256]
    assert [len(c) for c in chain] == [3, 3, 2]  # conv, BN, ReLU … conv, BN (no ReLU)
    # No convolution has a bias: every bias belongs to a BatchNorm.
    assert all(not n.endswith("bias") or isinstance(full.get_submodule(n.rsplit(".", 1)[0]), nn.BatchNorm2d)
               for n, _ in full.named_parameters())


def test_wrong_number_of_inputs():
    unit = ExchangeUnit((4, 8))
    with pytest.raises(ValueError, match="expects 2 inputs, got 1"):
        unit([torch.randn(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="num_outputs"):
        ExchangeUnit((4, 8), num_outputs=3)
    with pytest.raises(ValueError, match="at least 2 branches"):
        ExchangeUnit((4,))


def test_transition_opens_branch_from_lowest_resolution():
    t = Transition((8, 16), (8, 16, 32)).eval()
    _randomize(t)
    xs = [torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8)]
    ys = t(xs)
    assert ys[0] is xs[0] and ys[1] is xs[1]  # unchanged widths: identity, no parameters
    conv, bn = t[2][0][0], t[2][0][1]
    expected = torch.relu(_bn(bn, F.conv2d(xs[1], conv.weight, stride=2, padding=1)))
    torch.testing.assert_close(ys[2], expected, rtol=1e-4, atol=1e-5)
    assert set(t.state_dict()) == {f"2.0.{k}" for k in ("0.weight", "1.weight", "1.bias", "1.running_mean",
                                                         "1.running_var", "1.num_batches_tracked")}
    first = Transition((256,), (32, 64))
    assert set(k.rsplit(".", 1)[0] for k in first.state_dict()) == {"0.0", "0.1", "1.0.0", "1.0.1"}

"""The CPU training-step switches (``cpu_bf16``, ``cpu_channels_last``): they change how the step
runs, not what it computes (to bf16 precision), and stay off unless asked for."""

import dataclasses

import pytest
import torch

from hrnet_edu import model as hrnet_model
from hrnet_edu.configs import TrainConfig, synthpose_w16_128x96_cpu
from hrnet_edu.train import DistInfo, build_criterion, train_one_epoch

pytestmark = pytest.mark.usefixtures("one_thread")


def one_step(cfg: TrainConfig, batch: dict) -> tuple[float, dict]:
    """The loss of one training step from a seeded W8, and the change it made to every weight (SGD, lr 1:
    minus the gradient)."""
    torch.manual_seed(0)
    net = hrnet_model.HRNet(hrnet_model.W8)
    if cfg.uses_channels_last("cpu"):
        net = net.to(memory_format=torch.channels_last)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    record = train_one_epoch(net, [batch], build_criterion(cfg), optimizer, scaler, cfg,
                             torch.device("cpu"), 0, DistInfo(), False)
    return record["loss"], {k: v.detach() - before[k] for k, v in net.named_parameters()}


def test_channels_last_computes_the_same_step_and_bf16_the_same_step_to_bf16_precision():
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(4, 3, 128, 96, generator=g),
             "target": torch.rand(4, 17, 32, 24, generator=g), "target_weight": torch.ones(4, 17)}
    base = dataclasses.replace(synthpose_w16_128x96_cpu(), cpu_bf16=False, cpu_channels_last=False)
    loss, step = one_step(base, batch)
    flat = torch.cat([d.flatten() for d in step.values()])
    both = {"cpu_bf16": True, "cpu_channels_last": True}
    for switches in ({"cpu_channels_last": True}, {"cpu_bf16": True}, both):
        other_loss, other_step = one_step(dataclasses.replace(base, **switches), batch)
        if "cpu_bf16" not in switches:  # fp32 NHWC: the same numbers up to summation order
            assert other_loss == pytest.approx(loss, rel=1e-5)
            for name, delta in step.items():
                assert (other_step[name] - delta).norm() <= 1e-3 * delta.norm() + 1e-12, name
            continue
        # bf16 keeps 8 mantissa bits: the loss (computed in fp32 from bf16 heatmaps) agrees closely, each
        # tensor's gradient only roughly (up to ~50 % at the init's tiny weights), their whole direction well
        assert other_loss == pytest.approx(loss, rel=1e-3)
        other = torch.cat([other_step[name].flatten() for name in step])
        assert torch.nn.functional.cosine_similarity(flat, other, dim=0) > 0.99
        assert float(other.norm()) == pytest.approx(float(flat.norm()), rel=0.05)


def test_switches_are_off_by_default_and_only_act_on_their_device():
    cfg = TrainConfig()
    assert cfg.autocast_dtype("cpu") is None and not cfg.uses_channels_last("cpu")
    assert cfg.autocast_dtype("cuda") is torch.bfloat16 and cfg.uses_channels_last("cuda")
    fast = dataclasses.replace(cfg, cpu_bf16=True, cpu_channels_last=True, amp="none", channels_last=False)
    assert fast.autocast_dtype("cpu") is torch.bfloat16 and fast.uses_channels_last("cpu")
    assert fast.autocast_dtype("cuda") is None and not fast.uses_channels_last("cuda")

"""The trainer: configs and overrides, learning, bit-for-bit resume, NaN stop, atomic checkpoints, DDP.

Every run here is a tiny HRNet (``model.W8``) on 64×32 crops of a few SynthPose images generated
into a temporary folder, on CPU, so the whole file takes well under a minute on 2 cores.
"""

import dataclasses
import math
import os
import socket

import pytest
import torch

from hrnet_edu import overrides
from hrnet_edu import train as train_mod
from hrnet_edu.checkpoints import load_checkpoint_state, save_checkpoint
from hrnet_edu.cli import main
from hrnet_edu.configs import PRESETS, TrainConfig, get_config, synthpose_w16_128x96_cpu
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.model import W8, HRNet
from hrnet_edu.overrides import apply_overrides, config_from_dict
from hrnet_edu.train import DistInfo, build_criterion, train


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from hrnet_edu.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(str(root), n_train=12, n_val=6, seed=0, image_size=128, workers=1)
    return str(root)


def tiny_config(root: str, **changes) -> TrainConfig:
    cfg = apply_overrides(
        synthpose_w16_128x96_cpu(),
        [f"data_root={root}", "val_root=none", "input_size=64,32", "sigma=1", "batch_size=4", "epochs=2",
         "val_every=0",
         "max_train_images=12", "log_every=1", "device=cpu", "workers=0",
         # the machine settings fixed, so that every run of a test computes alike (no probe)
         "cpu_bf16=true", "cpu_channels_last=true", "cpu_threads=1"],
    )  # fmt: skip
    return dataclasses.replace(cfg, model=W8, **changes)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def deterministic():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def _step_losses(out_dir: str) -> list[tuple[int, int, float]]:
    import json

    with open(os.path.join(out_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [(r["epoch"], r["step"], r["loss"]) for r in records if r["kind"] == "step"]


# ----------------------------------------------------------------------------- configs
def test_presets_follow_the_paper():
    w32 = get_config("coco_w32_256x192")
    assert (w32.lr, w32.lr_steps, w32.lr_factor, w32.epochs) == (1e-3, (170, 200), 0.1, 210)
    assert w32.batch_size == 32
    assert (w32.input_size, w32.heatmap_size, w32.sigma, w32.weight_decay) == ((256, 192), (64, 48), 2.0, 0.0)
    assert w32.model.width == 32 and w32.train_images == "train2017"
    w48 = get_config("coco_w48_384x288")
    assert (w48.model.width, w48.input_size, w48.heatmap_size, w48.sigma) == (48, (384, 288), (96, 72), 3.0)
    cpu = get_config("synthpose_w16_128x96_cpu")
    assert cpu.device == "cpu" and cpu.amp == "none" and cpu.val_root == "data_samples/synthpose"
    assert cpu.model.width == 16  # the name says what it builds: W16, 128×96
    assert cpu.input_size == (128, 96) and cpu.heatmap_size == (32, 24)
    # the codec is built once from the config: input size, the model's output stride, σ, targets, decoding
    assert w32.codec == HeatmapCodec((256, 192), 4, 2.0, "reference", w32.val_decode)
    assert cpu.codec == HeatmapCodec((128, 96), 4, cpu.sigma, "unbiased", "dark")  # the committed run's
    assert cpu.unbiased_targets and cpu.val_decode == "dark"
    coarse = apply_overrides(cpu, ["model.head_branch=1"])
    assert coarse.codec.stride == coarse.heatmap_stride == 8 and coarse.heatmap_size == (16, 12)
    for name in PRESETS:  # every preset survives the checkpoint round trip asdict → config_from_dict
        cfg = get_config(name)
        assert config_from_dict(dataclasses.asdict(cfg)) == cfg
    with pytest.raises(ValueError, match="unknown config 'w99'.*synthpose_w16_128x96_cpu"):
        get_config("w99")


def test_apply_overrides_parses_by_field_type():
    cfg = get_config("synthpose_w16_128x96_cpu")
    new = apply_overrides(cfg, ["epochs=3", "lr=5e-4", "lr_steps=2,3", "model.width=12", "amp=bf16",
                                "compile=true", "max_train_images=none", "augment.flip_prob=0",
                                "input_size=(64, 32)", "model.num_units=1,1,2"])  # fmt: skip
    assert (new.epochs, new.lr, new.lr_steps, new.model.width, new.amp, new.compile) == (
        3, 5e-4, (2, 3), 12, "bf16", True)  # fmt: skip
    assert new.max_train_images is None and new.augment.flip_prob == 0.0 and new.input_size == (64, 32)
    assert new.model.num_units == (1, 1, 2)
    assert cfg.epochs != 3 and cfg.model.width == 16  # the original is untouched
    assert apply_overrides(cfg, ["augment=none"]).augment is None
    # the name of earlier versions (the recorded commands of benchmarks/results) still works
    assert apply_overrides(cfg, ["model.num_blocks=2,2,2"]).model.num_units == (2, 2, 2)
    with pytest.raises(ValueError, match="unknown config key 'max_val_images'"):  # removed: unused
        apply_overrides(cfg, ["max_val_images=3"])


def test_configs_of_earlier_versions_load():
    """Checkpoints store ``asdict(cfg)``; a renamed field is mapped, a removed one ignored, a new one
    takes its default, so that every committed checkpoint keeps loading."""
    old = dataclasses.asdict(get_config("synthpose_w16_128x96_cpu"))
    old["model"]["num_blocks"] = old["model"].pop("num_units")
    old["max_val_images"], old["lr_schedule"] = None, None
    del old["lr_schedule"], old["warmup_epochs"]  # fields an earlier version did not have
    cfg = config_from_dict(old)
    assert cfg.model.num_units == (1, 1, 1) and cfg.warmup_epochs == 0.0 and cfg.lr_schedule == "step"
    assert overrides.config_changes(old, dataclasses.replace(cfg, epochs=cfg.epochs)) == {}
    assert overrides.config_changes(old, dataclasses.replace(cfg, epochs=3)) == {"epochs": (15, 3)}


@pytest.mark.parametrize(
    "item, message",
    [
        ("epoch=3", "unknown config key 'epoch'.*epochs"),
        ("model.depth=3", "unknown config key 'model.depth'"),
        ("epochs=three", "epochs='three': expected int"),
        ("epochs=1.5", "expected int"),
        ("compile=maybe", "expected a boolean"),
        ("lr_steps=a,b", "expected int"),
        ("input_size=64", "expected 2 comma-separated values"),
        ("epochs", "not of the form key=value"),
        ("amp=fp8", "amp must be"),
        ("lr.x=1", "has no sub-fields"),
        # input size, stride, σ and decoding are checked once, where the config builds its codec
        ("sigma=0", "sigma must be a positive number"),
        ("sigma=nan", "sigma must be a positive number"),
        ("val_decode=soft", "decoding must be one of"),
        ("input_size=66,32", r"input_size must be \(H, W\) with H and W positive multiples of the stride 4"),
    ],
)
def test_apply_overrides_errors(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(get_config("synthpose_w16_128x96_cpu"), [item])


def test_cli_rejects_bad_override(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", "synthpose_w16_128x96_cpu", "--out", "/nonexistent", "bogus=1"])
    assert exc.value.code == 2
    assert "unknown config key 'bogus'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- learning
def test_a_few_hundred_steps_lower_the_loss(tiny_root):
    """Over-fitting one fixed batch: the heatmap loss must fall well below its starting value."""
    cfg = tiny_config(tiny_root, lr=2e-3)
    train_set, _ = train_mod.build_datasets(cfg)
    batch = torch.utils.data.default_collate([train_set[i] for i in range(2)])
    torch.manual_seed(0)
    model = HRNet(cfg.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    args = (build_criterion(cfg), optimizer, scaler, cfg, torch.device("cpu"), 0, DistInfo(), False)
    record = train_mod.train_one_epoch(model, [batch] * 200, *args)
    losses = [s["loss"] for s in record["steps"]]  # every step (log_every=1)
    assert len(losses) == 200 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.3 * first, (first, last)


def test_warp_on_device_trains_on_the_same_batches(tiny_root, tmp_path):
    """cfg.warp_on_device: the trainer's batches (order, augmentation, targets) are made on the device
    from raw regions and equal the per-sample path's up to its uint8 rounding (½ grey level); the
    first step's loss (same initial weights) agrees, and a run completes."""
    from hrnet_edu.data.transforms import IMAGENET_STD, GpuBatchTransform

    batches = {}
    for on_device in (False, True):
        cfg = tiny_config(tiny_root, warp_on_device=on_device, epochs=1)
        train_set = train_mod.build_datasets(cfg)[0]
        batch = next(iter(train_mod.make_loader(train_set, cfg, 0, DistInfo(), torch.device("cpu"))))
        assert ("raw_image" in batch) == on_device and ("image" in batch) != on_device
        finish = GpuBatchTransform(cfg.codec, "cpu")
        batches[on_device] = finish(batch) if on_device else batch
    half_grey = 0.5 / 255 / min(IMAGENET_STD)
    assert (batches[True]["image"] - batches[False]["image"]).abs().max() <= half_grey + 1e-6
    for key in ("target", "target_weight", "joints", "center", "scale", "image_id"):
        assert torch.equal(batches[True][key], batches[False][key]), key
    losses = {}
    for on_device in (False, True):
        out = str(tmp_path / f"device{on_device}")
        train(tiny_config(tiny_root, warp_on_device=on_device, epochs=1), out, progress=False)
        losses[on_device] = [loss for _, _, loss in _step_losses(out)]
    assert len(losses[True]) == len(losses[False]) == 3 and all(math.isfinite(v) for v in losses[True])
    # later steps drift apart: Adam's first updates are about ±lr whatever the gradient's size
    assert losses[True][0] == pytest.approx(losses[False][0], rel=1e-4) and losses[True] != losses[False]


# ----------------------------------------------------------------------------- checkpoints and resume
class Killed(Exception):
    """Stands for the process being killed (SIGKILL, a node failure) in the middle of an epoch."""


def test_step_schedule_equals_multisteplr_and_cosine_ends_at_zero():
    cfg = TrainConfig(epochs=10, lr=1.0, lr_steps=(4, 7), lr_factor=0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = torch.optim.lr_scheduler.MultiStepLR(opt, [4, 7], gamma=0.1)  # stepped once per epoch
    for epoch in range(10):
        for step in range(3):
            ours = train_mod.learning_rate_factor(cfg, 3 * epoch + step, steps_per_epoch=3)
            assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        reference.step()
    cos = dataclasses.replace(cfg, lr_schedule="cosine", warmup_epochs=2)
    factors = [train_mod.learning_rate_factor(cos, t, steps_per_epoch=5) for t in range(50)]
    # linear warm-up over 10 steps, times ½(1 + cos(πt/T)); then falling monotonically towards 0
    half_cos = [0.5 * (1 + math.cos(math.pi * t / 50)) for t in range(50)]
    assert factors[:10] == pytest.approx([(t + 1) / 10 * half_cos[t] for t in range(10)], rel=1e-12)
    assert factors[10:] == pytest.approx(half_cos[10:], rel=1e-12)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:])) and factors[-1] < 0.01


@pytest.mark.parametrize("schedule", [["lr_schedule=step", "lr_steps=1", "warmup_epochs=0"],
                                      ["lr_schedule=cosine", "warmup_epochs=1", "unbiased_targets=true"]])
def test_resume_after_a_kill_is_bit_for_bit(tiny_root, tmp_path, monkeypatch, deterministic, schedule):
    cfg = apply_overrides(tiny_config(tiny_root), schedule)
    full = train(cfg, str(tmp_path / "full"), progress=False)

    # Same run, killed during epoch 2 (step 2), then resumed from last.pt (end of epoch 1).
    calls = {"n": 0}
    real = train_mod.build_criterion

    def killed_at_step_5(cfg):
        loss = real(cfg)

        def forward(*args):
            calls["n"] += 1
            if calls["n"] == 5:
                raise Killed("killed")
            return loss(*args)

        return forward

    monkeypatch.setattr(train_mod, "build_criterion", killed_at_step_5)
    with pytest.raises(Killed):
        train(cfg, str(tmp_path / "killed"), progress=False)
    monkeypatch.setattr(train_mod, "build_criterion", real)
    assert load_checkpoint_state(str(tmp_path / "killed" / "last.pt"))["epoch"] == 1
    resumed = train(cfg, str(tmp_path / "killed"), resume=True, progress=False)

    # every step's loss, exactly
    assert _step_losses(str(tmp_path / "killed")) == _step_losses(str(tmp_path / "full"))
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in full["history"]]
    a, b = full["model"].state_dict(), resumed["model"].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = load_checkpoint_state(str(tmp_path / "killed" / "last.pt"))
    assert state["epoch"] == 2 and state["config"] == dataclasses.asdict(cfg)
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "epoch", "best_ap", "metrics", "rng"}


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_root, tmp_path, monkeypatch):
    cfg = tiny_config(tiny_root)
    real = train_mod.build_criterion
    calls = {"n": 0}

    def nan_in_epoch_2(cfg):
        loss = real(cfg)

        def forward(*args):
            calls["n"] += 1
            value = loss(*args)
            return value * float("nan") if calls["n"] == 6 else value  # epoch 2, step 3

        return forward

    monkeypatch.setattr(train_mod, "build_criterion", nan_in_epoch_2)
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 2, step 3"):
        train(cfg, str(tmp_path), progress=False)
    state = load_checkpoint_state(str(tmp_path / "last.pt"))
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert sorted(os.listdir(tmp_path)) == ["config.json", "last.pt", "log.jsonl"]  # no stray .tmp


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pt")
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def crash_half_way(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")  # the start of a file, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert os.listdir(tmp_path) == ["last.pt"]
    assert load_checkpoint_state(path)["epoch"] == 1  # the old complete file, never a partial one


# ----------------------------------------------------------------------------- two processes (gloo)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    summary = train(tiny_config(root, epochs=1, val_every=1), os.path.join(out, "run"), progress=False)
    torch.save(summary["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))


def test_two_process_gloo_run_ends_with_identical_parameters(tiny_root, tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), tiny_root, str(tmp_path)), nprocs=2)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)  # train() seeds with cfg.seed = 0 before building the model
    init = HRNet(W8).state_dict()
    assert any(not torch.equal(a[k], init[k]) for k in a if a[k].is_floating_point())  # it did train
    state = load_checkpoint_state(str(tmp_path / "run" / "last.pt"))  # written by rank 0
    assert state["epoch"] == 1
    # Validation was sharded over the 2 ranks and gathered: it equals a single-process pass.
    cfg = tiny_config(tiny_root, epochs=1, val_every=1)
    model = HRNet(W8)
    model.load_state_dict(a)
    single = train_mod.validate(model, train_mod.build_datasets(cfg)[1], cfg, torch.device("cpu"), DistInfo())
    assert state["metrics"][0]["val"] == pytest.approx(single, abs=1e-12)


def test_init_from_starts_from_the_checkpoints_weights(tiny_root, tmp_path, monkeypatch):
    cfg = tiny_config(tiny_root, epochs=1)
    train(cfg, str(tmp_path / "first"), progress=False)
    seen = {}
    real = train_mod.train_one_epoch

    def spy(model, *args, **kwargs):  # the weights the fine-tuning run starts its first epoch with
        seen.setdefault("state", {k: v.clone() for k, v in train_mod.unwrap(model).state_dict().items()})
        return real(model, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_one_epoch", spy)
    start = str(tmp_path / "first" / "last.pt")
    train(dataclasses.replace(cfg, init_from=start), str(tmp_path / "tuned"), progress=False)
    reference = load_checkpoint_state(start)["model"]
    assert seen["state"].keys() == reference.keys()
    assert all(torch.equal(seen["state"][k], reference[k]) for k in reference)
    fresh = HRNet(W8).state_dict()  # and not the seeded initial weights
    assert not all(torch.equal(fresh[k], reference[k]) for k in reference)


def test_demo_reports_the_numbers_of_train_validate_and_exports_the_weights(tiny_root, tmp_path):
    """The demo evaluates with ``train.validate``: its "trained" row is the run's own last validation."""
    import json

    from hrnet_edu.checkpoints import load_checkpoint
    from hrnet_edu.coco_eval import STAT_KEYS, STAT_NAMES
    from hrnet_edu.demo import run_demo

    overrides = [f"data_root={tiny_root}", "val_root=none", "input_size=64,32", "epochs=1", "val_every=1",
                 "batch_size=4", "workers=0", "log_every=1", "val_batch_size=8"]
    out = tmp_path / "demo"
    result = run_demo(str(out), overrides, export=str(tmp_path / "w.pt"), progress=False, command="test")
    with open(out / "run" / "log.jsonl") as f:
        last_val = [json.loads(line) for line in f if '"val"' in line][-1]["val"]
    assert list(result["trained"]) == list(STAT_KEYS) and list(result["untrained"]) == list(STAT_KEYS)
    assert result["trained"] == pytest.approx(last_val, abs=1e-12)
    report = (out / "report.md").read_text()
    assert "| network | " + " | ".join(STAT_NAMES) + " |" in report and "Command: `test`" in report
    # the report names what training chose for this machine (the run's log and config.json hold it too)
    chosen = result["cpu_settings"]
    switches = [name for name, on in (("bf16 autocast", chosen["cpu_bf16"]),
                                      ("channels-last", chosen["cpu_channels_last"])) if on]
    assert "cosine decay after" in report and f"on a CPU: {', '.join(switches) or 'fp32'}." in report
    assert all(f"- {key}: {why}" in report for key, why in chosen["reasons"].items())
    stored = json.loads((out / "run" / "config.json").read_text())
    assert all(stored[k] == chosen[k] for k in ("cpu_bf16", "cpu_channels_last", "cpu_threads", "workers"))
    assert (out / "loss.png").stat().st_size > 0 and (out / "predictions.png").stat().st_size > 0
    exported, exported_cfg = load_checkpoint(tmp_path / "w.pt")
    # the exported weights keep the run's codec, the one its config builds
    stored = load_checkpoint_state(str(tmp_path / "w.pt"))["codec"]
    assert HeatmapCodec.from_dict(stored) == exported_cfg.codec
    best = load_checkpoint_state(str(out / "run" / "best.pt"))["model"]
    assert all(torch.equal(v, best[k]) for k, v in exported.state_dict().items())
    assert json.loads((tmp_path / "w.json").read_text())["trained"] == result["trained"]

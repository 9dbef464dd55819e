"""The CPU recipe's machine settings (``cpu_settings``): chosen from what the machine is and how fast
each candidate step runs on it, explicit values kept, and the choice said in the run's log and files."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from hrnet_edu import cpu_settings
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.model import W8
from hrnet_edu.overrides import apply_overrides, config_from_dict

pytestmark = pytest.mark.usefixtures("one_thread")
KEYS = ("cpu_bf16", "cpu_channels_last", "cpu_threads", "workers")
# the preset's choice in a fresh process, printed as JSON (the subprocess tests' probe)
CHOOSE = ("import json, os, sys; {setup}\n"
          "from hrnet_edu import cpu_settings; from hrnet_edu.configs import synthpose_w16_128x96_cpu\n"
          "m = cpu_settings.choose(synthpose_w16_128x96_cpu(), probe={probe})\n"
          "print(json.dumps(m.as_record()))")


def _choose_in_subprocess(setup: str = "", probe: bool = True, **env) -> dict:
    code = CHOOSE.format(setup=setup, probe=probe)
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fake_probe(times_ms: dict, calls: list):
    """A stand-in for ``probe_step_times`` returning ``times_ms`` for the candidates it is asked about."""
    def probe(cfg, candidates, threads, batch_size=cpu_settings.PROBE_BATCH):
        calls.append(list(candidates))
        return {c: times_ms[c] / 1e3 for c in candidates}, set()
    return probe


def test_emulated_bf16_trains_in_fp32_after_a_real_probe():
    """Under ``ONEDNN_MAX_CPU_ISA=AVX2`` (a CPU without native bf16, emulated) PyTorch still reports the
    hardware's bf16, so the preset's real probe decides: fp32, its bf16 step measured slower."""
    chosen = _choose_in_subprocess(ONEDNN_MAX_CPU_ISA="AVX2")
    assert chosen["cpu_bf16"] is False
    probe = chosen["probe_ms"]
    fp32 = min(t for name, t in probe.items() if name.startswith("fp32"))
    bf16 = [t for name, t in probe.items() if name.startswith("bf16")]
    if cpu_settings.native_bf16()[0]:  # the probe ran bf16 (a CPU without bf16 never tries it)
        assert bf16 and min(bf16) > fp32 and "slower in the probe" in chosen["reasons"]["precision"]
        assert "ONEDNN_MAX_CPU_ISA=AVX2" in chosen["reasons"]["precision"]
    else:
        assert not bf16 and "no native bf16" in chosen["reasons"]["precision"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux CPU affinity and 2 usable cores")
@pytest.mark.parametrize("cores, threads, workers", [(1, 1, 0), (2, 1, 1)])
def test_threads_and_workers_fit_the_cores_this_process_may_use(cores, threads, workers):
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    chosen = _choose_in_subprocess(setup=f"os.sched_setaffinity(0, {allowed})", probe=False)
    assert (chosen["cpu_threads"], chosen["workers"]) == (threads, workers)
    assert f"{cores} usable core" in chosen["reasons"]["threads"]


@pytest.mark.parametrize("cores", [1, 2, 4, 8, 16])
def test_core_split_uses_every_core_once_with_one_loader_per_few_threads(cores):
    threads, workers = cpu_settings.split_cores(cores)
    assert threads + workers == cores and threads >= 1
    assert workers == (0 if cores == 1 else max(1, round(cores / (cpu_settings.THREADS_PER_WORKER + 1))))
    if workers > 1:  # each loader feeds about THREADS_PER_WORKER compute threads
        assert cpu_settings.THREADS_PER_WORKER - 1 <= threads / workers <= cpu_settings.THREADS_PER_WORKER + 1


def test_without_sched_getaffinity_the_cores_come_from_cpu_count(monkeypatch):
    """macOS and Windows have no ``os.sched_getaffinity``: all the machine's cores count."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert cpu_settings.usable_cores() == 8
    chosen = cpu_settings.choose(synthpose_w16_128x96_cpu(), probe=False)
    assert (chosen.threads, chosen.workers) == cpu_settings.split_cores(8)
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable"
    assert cpu_settings.usable_cores() == 1


def test_explicit_settings_win_and_run_no_probe(monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("the probe ran although nothing was left to choose")

    monkeypatch.setattr(cpu_settings, "probe_step_times", no_probe)
    for text, want in ((["cpu_bf16=false", "cpu_channels_last=false", "cpu_threads=3", "workers=2"],
                        (False, False, 3, 2)),
                       (["cpu_bf16=true", "cpu_channels_last=true", "cpu_threads=0", "workers=0"],
                        (True, True, 0, 0))):
        cfg = apply_overrides(synthpose_w16_128x96_cpu(), text)
        chosen = cpu_settings.choose(cfg, cores=2)
        assert (chosen.bf16, chosen.channels_last, chosen.threads, chosen.workers) == want
        assert all("(set in the config)" in why for why in chosen.reasons.values())
        assert chosen.probe_ms == {}
    # one of the pair set: the other takes what the cores leave
    fp32 = ["cpu_bf16=false", "cpu_channels_last=false"]
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), [*fp32, "workers=0"])
    assert cpu_settings.choose(cfg, cores=4).threads == 4
    cfg = apply_overrides(cfg, ["workers=auto", "cpu_threads=4"])
    assert cpu_settings.choose(cfg, cores=4).workers == 0


def test_the_probe_decides_where_the_cpu_reports_bf16(monkeypatch):
    """fp32 (NCHW) against bf16 + channels-last: the faster wins, fp32 unless bf16 beats it by the margin."""
    monkeypatch.setattr(cpu_settings, "native_bf16", lambda: (True, "x86_64 with AVX512-BF16"))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    cfg = synthpose_w16_128x96_cpu()
    fp32, bf16 = (False, False), (True, True)
    cases = [({fp32: 230, bf16: 108}, bf16, "the fp32 step 2.13× slower"),
             ({fp32: 440, bf16: 3600}, fp32, "the bf16+channels-last step 8.18× slower"),
             ({fp32: 100, bf16: 97}, fp32, "only 1.03× faster")]
    for times, want, said in cases:
        calls = []
        monkeypatch.setattr(cpu_settings, "probe_step_times", _fake_probe(times, calls))
        chosen = cpu_settings.choose(cfg, cores=2)
        assert calls == [[fp32, bf16]]
        assert (chosen.bf16, chosen.channels_last) == want and said in chosen.reasons["precision"]
        assert chosen.probe_ms == {cpu_settings._label(*c): t for c, t in times.items()}
    # a memory format set in the config is kept, and only the precision is probed
    calls = []
    monkeypatch.setattr(cpu_settings, "probe_step_times", _fake_probe({(False, True): 90, bf16: 50}, calls))
    chosen = cpu_settings.choose(apply_overrides(cfg, ["cpu_channels_last=true"]), cores=2)
    assert calls == [[(False, True), bf16]] and chosen.bf16 and chosen.channels_last


def test_no_native_bf16_is_conclusive_fp32_without_a_probe(monkeypatch):
    monkeypatch.setattr(cpu_settings, "native_bf16", lambda: (False, "arm64 without native bf16"))
    calls = []
    monkeypatch.setattr(cpu_settings, "probe_step_times", _fake_probe({}, calls))
    chosen = cpu_settings.choose(synthpose_w16_128x96_cpu(), cores=2)
    assert calls == [] and not chosen.bf16 and not chosen.channels_last and chosen.probe_ms == {}
    assert chosen.reasons["precision"] == "fp32: this CPU has no native bf16 (arm64 without native bf16)"


def test_a_torch_that_reports_no_cpu_features_is_probed(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert cpu_settings.native_bf16()[0] is None
    calls = []
    monkeypatch.setattr(cpu_settings, "probe_step_times",
                        _fake_probe({(False, False): 100, (True, True): 50}, calls))
    assert cpu_settings.choose(synthpose_w16_128x96_cpu(), cores=2).bf16 and len(calls) == 1


def test_probe_times_real_steps_and_leaves_threads_and_random_state_alone():
    cfg = dataclasses.replace(synthpose_w16_128x96_cpu(), model=W8, input_size=(64, 32))
    threads, state = torch.get_num_threads(), torch.get_rng_state()
    times, warmup_only = cpu_settings.probe_step_times(cfg, [(False, False), (True, True)], threads=2,
                                                       batch_size=2)
    assert set(times) == {(False, False), (True, True)} and warmup_only <= set(times)
    assert all(0 < t < 60 for t in times.values())
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), state)


def test_auto_in_configs_round_trips_and_old_plain_values_still_load():
    preset = synthpose_w16_128x96_cpu()
    assert {k: getattr(preset, k) for k in KEYS} == dict.fromkeys(KEYS, "auto")
    assert config_from_dict(dataclasses.asdict(preset)) == preset
    old = {**dataclasses.asdict(preset), "cpu_bf16": True, "cpu_channels_last": True, "cpu_threads": 1,
           "workers": 1}  # a checkpoint of the earlier, hard-coded preset
    assert {k: getattr(config_from_dict(old), k) for k in KEYS} == {k: old[k] for k in KEYS}
    assert apply_overrides(config_from_dict(old), ["cpu_bf16=auto", "workers=auto"]).cpu_bf16 == "auto"
    with pytest.raises(ValueError, match="cpu_bf16 must be true, false or auto"):
        apply_overrides(preset, ["cpu_bf16=maybe"])
    with pytest.raises(ValueError, match="workers must be an integer >= 0 or auto"):
        apply_overrides(preset, ["workers=-1"])
    with pytest.raises(ValueError, match="decided when training starts"):
        preset.autocast_dtype("cpu")


def test_training_says_and_logs_its_choice(tmp_path, capsys):
    from hrnet_edu.data.synthpose import generate
    from hrnet_edu.train import train

    generate(str(tmp_path / "data"), n_train=4, n_val=0, seed=0, image_size=128, workers=1)
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), [
        f"data_root={tmp_path / 'data'}", "input_size=64,32", "batch_size=4", "epochs=1", "val_every=0",
        "max_train_images=4", "workers=0"])  # fmt: skip
    summary = train(dataclasses.replace(cfg, model=W8), str(tmp_path / "run"), progress=None)
    first = capsys.readouterr().err.splitlines()[:4]
    chosen = summary["cpu_settings"]
    assert first == [f"hrnet-edu train: {k}: {why}" for k, why in chosen["reasons"].items()]
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[0] == {**chosen, "epoch": 0}
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: stored[k] for k in KEYS} == {k: chosen[k] for k in KEYS} and chosen["workers"] == 0
    assert isinstance(chosen["cpu_bf16"], bool) and chosen["cpu_threads"] >= 1


def test_a_resumed_run_keeps_the_choice_it_made(tmp_path, monkeypatch):
    """A resume reads the four settings its run chose (config.json): no new probe, no "change"."""
    from hrnet_edu.data.synthpose import generate
    from hrnet_edu.train import train

    generate(str(tmp_path / "data"), n_train=4, n_val=0, seed=0, image_size=128, workers=1)
    cfg = dataclasses.replace(apply_overrides(synthpose_w16_128x96_cpu(), [
        f"data_root={tmp_path / 'data'}", "input_size=64,32", "batch_size=4", "epochs=2", "val_every=0",
        "max_train_images=4"]), model=W8)  # fmt: skip
    first = train(dataclasses.replace(cfg, epochs=1), str(tmp_path / "run"), progress=False)

    def no_probe(*args, **kwargs):
        raise AssertionError("a resumed run probed again")

    monkeypatch.setattr(cpu_settings, "probe_step_times", no_probe)
    resumed = train(cfg, str(tmp_path / "run"), resume=True, progress=False)
    keys = ("cpu_bf16", "cpu_channels_last", "cpu_threads", "workers")
    assert [resumed["cpu_settings"][k] for k in keys] == [first["cpu_settings"][k] for k in keys]
    assert resumed["config_changes"] == {"epochs": [1, 2]}

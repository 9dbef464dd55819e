"""ONNX export and ONNX Runtime against eager PyTorch: BN folding, the round trip, the commands."""

import os

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLES

from hrnet_edu import coco_eval, evaluate
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.export import fold_batchnorm
from hrnet_edu.model import W8, HRNet

CHECKPOINT = os.path.join(REPO, "data_samples", "checkpoints", "synthpose_w16_128x96_cpu.pt")
VAL_ANN = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
pytestmark = pytest.mark.usefixtures("one_thread")


def trained_like_w8(seed=0):
    """A W8 net with non-trivial BN statistics and affine parameters (fresh ones are identities)."""
    torch.manual_seed(seed)
    model = HRNet(W8)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_fold_batchnorm_removes_every_bn_and_keeps_the_output():
    model = trained_like_w8()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is intact
    x = torch.randn(3, 3, 128, 96)
    with torch.no_grad():
        reference, out = model(x), folded(x)
    assert reference.abs().max() > 1e-2  # a real signal, not near-zero heatmaps
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-4)


def test_export_round_trip_agrees_with_eager_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from hrnet_edu.export import OnnxRunner, export_onnx

    model = trained_like_w8(1)
    crops = torch.randn(4, 3, 128, 96)
    diff = export_onnx(model, tmp_path / "w8.onnx", crops)
    graph = onnx.load(tmp_path / "w8.onnx").graph
    assert "BatchNormalization" not in {n.op_type for n in graph.node}
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the batch axis is symbolic
    runner = OnnxRunner(tmp_path / "w8.onnx", threads=1)
    for n in (1, 5):  # other batch sizes than the traced one
        x = torch.randn(n, 3, 128, 96)
        with torch.no_grad():
            reference = model(x)
        out = runner(x)
        assert out.shape == reference.shape == (n, 17, 32, 24) and out.dtype == torch.float32
        assert float((out - reference).abs().max()) <= 1e-4
    assert diff <= 1e-4
    assert runner.eval() is runner and list(runner.parameters()) == []
    with pytest.raises(ValueError, match="CPU only"):
        runner.to("cuda")


def test_export_refuses_to_write_a_disagreeing_graph(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from hrnet_edu import export

    monkeypatch.setattr(export, "max_difference", lambda *a: 1.0)  # as if ONNX Runtime computed garbage
    with pytest.raises(ValueError, match="disagree.*nothing written"):
        export.export_onnx(trained_like_w8(), tmp_path / "bad.onnx", torch.randn(2, 3, 128, 96))
    assert not os.path.exists(tmp_path / "bad.onnx")


@pytest.mark.skipif(not (os.path.isfile(CHECKPOINT) and os.path.isfile(VAL_ANN)),
                    reason="the committed checkpoint or data_samples/synthpose is not present")
def test_cli_export_and_onnx_evaluation_give_the_eager_ap(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from hrnet_edu.cli import main
    from hrnet_edu.data.coco import CocoKeypoints
    from hrnet_edu.export import OnnxRunner

    assert main(["export", "--checkpoint", CHECKPOINT, "--out", str(tmp_path / "m.onnx")]) == 0
    assert "max |ONNX Runtime − PyTorch|" in capsys.readouterr().out
    model, cfg = load_checkpoint(CHECKPOINT)
    dataset = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec,
                            spec=cfg.spec, train=False, augment=None)
    eager = evaluate.predict_dataset(model, dataset, cfg.codec, cfg.spec, batch_size=64)
    ours = evaluate.predict_dataset(OnnxRunner(tmp_path / "m.onnx", cfg=cfg.model), dataset, cfg.codec,
                                    cfg.spec, batch_size=64)
    # heatmaps agree to ~1e-6, so decoded keypoints agree far below a pixel (argmax ties aside)
    close = np.abs(ours["keypoints"] - eager["keypoints"]).max(axis=-1) < 1e-3
    assert close.mean() > 0.999
    np.testing.assert_allclose(ours["confidences"], eager["confidences"], rtol=0, atol=1e-4)
    stats = [evaluate.predictions_ap(p, dataset.ground_truth) for p in (eager, ours)]
    assert abs(stats[0].ap - stats[1].ap) < 1e-3 and isinstance(stats[0], coco_eval.CocoKeypointStats)
    # the command line, with the exported file
    rc = main(["evaluate", "--checkpoint", CHECKPOINT, "--runtime", "onnx", "--onnx",
               str(tmp_path / "m.onnx"), "--workers", "0", "--no-progress"])
    assert rc == 0 and f"{stats[0].ap:5.3f}" in capsys.readouterr().out


def test_clear_errors(tmp_path, capsys):
    from hrnet_edu.cli import main

    out = str(tmp_path / "x.onnx")
    assert main(["export", "--checkpoint", str(tmp_path / "absent.pt"), "--out", out]) == 2
    assert "error: checkpoint not found" in capsys.readouterr().err
    if os.path.isfile(CHECKPOINT):
        assert main(["evaluate", "--checkpoint", CHECKPOINT, "--onnx", "x.onnx", "--workers", "0"]) == 2
        assert "--onnx needs --runtime onnx" in capsys.readouterr().err

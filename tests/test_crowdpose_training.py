"""CrowdPose's 14 joints through the upper layers: config and checkpoint record the spec, training,
the flip test with the spec's flip index, fine-tuning from a COCO-17 checkpoint (head rows by joint
name), and the command line (synth --layout, train, evaluate, predict) on a CrowdPose-layout file."""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from conftest import SAMPLES

from hrnet_edu import evaluate
from hrnet_edu.checkpoints import load_checkpoint, load_checkpoint_state, transfer_weights
from hrnet_edu.cli import main
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.heatmaps import HeatmapCodec, flip_back
from hrnet_edu.keypoints import COCO17, CROWDPOSE14
from hrnet_edu.model import W8, HRNet
from hrnet_edu.overrides import apply_overrides, config_from_dict
from hrnet_edu.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKPOINT = os.path.join(os.path.dirname(SAMPLES), "checkpoints", "synthpose_w16_128x96_cpu.pt")


@pytest.fixture(scope="module")
def crowdpose_root(tmp_path_factory):
    """A tiny SynthPose set in CrowdPose's layout, made by the command line."""
    root = tmp_path_factory.mktemp("crowdpose")
    assert main(["synth", "--out", str(root), "--train", "12", "--val", "6", "--size", "128",
                 "--workers", "1", "--layout", "crowdpose14"]) == 0  # fmt: skip
    return str(root)


def tiny_config(root: str, **changes):
    cfg = apply_overrides(
        synthpose_w16_128x96_cpu(),
        [f"data_root={root}", "val_root=none", "keypoints=crowdpose14", "input_size=64,32", "sigma=1",
         "batch_size=4", "epochs=1", "val_every=1", "max_train_images=12", "log_every=1", "device=cpu",
         "workers=0", "cpu_bf16=false", "cpu_channels_last=false"],
    )  # fmt: skip
    return dataclasses.replace(cfg, model=W8, **changes)


def test_synth_layout_file(crowdpose_root):
    with open(os.path.join(crowdpose_root, "annotations", "person_keypoints_val.json")) as f:
        data = json.load(f)
    assert data["categories"] == [CROWDPOSE14.coco_category()]
    assert all(len(a["keypoints"]) == 42 and "area" not in a for a in data["annotations"])
    meta = json.load(open(os.path.join(crowdpose_root, "synthpose.json")))
    assert meta["layout"] == "crowdpose14"


def test_config_names_its_spec_and_the_model_follows():
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), ["keypoints=crowdpose14"])
    assert cfg.spec is CROWDPOSE14 and cfg.model.num_joints == 14
    assert dataclasses.replace(cfg, model=W8).model.num_joints == 14  # a 17-joint preset model follows K
    # a config holding its own spec survives the checkpoint round trip
    own = dataclasses.replace(CROWDPOSE14, name="mine", sigmas=(0.05,) * 14)
    custom = dataclasses.replace(cfg, keypoints=own)
    assert config_from_dict(dataclasses.asdict(custom)) == custom and custom.spec == own
    # a config stored before keypoints existed is COCO-17
    stored = dataclasses.asdict(synthpose_w16_128x96_cpu())
    del stored["keypoints"]
    assert config_from_dict(stored).spec is COCO17
    with pytest.raises(ValueError, match="unknown keypoint spec 'mpii16'"):
        apply_overrides(cfg, ["keypoints=mpii16"])


def test_train_evaluate_and_the_checkpoint_gives_the_spec_back(crowdpose_root, tmp_path):
    cfg = tiny_config(crowdpose_root)
    summary = train(cfg, str(tmp_path / "run"), progress=False)
    assert summary["keypoints"] == "crowdpose14" and summary["init_from"] is None
    assert summary["model"].final_layer.out_channels == 14
    model, loaded = load_checkpoint(str(tmp_path / "run" / "last.pt"))
    assert loaded.spec is CROWDPOSE14 and loaded.model.num_joints == 14
    state = load_checkpoint_state(str(tmp_path / "run" / "last.pt"))
    assert state["config"]["keypoints"] == "crowdpose14"
    # the checkpoint stores the run's codec: the one its config builds
    assert HeatmapCodec.from_dict(state["codec"]) == loaded.codec == cfg.codec
    val = CocoKeypoints(loaded.val_path(loaded.val_ann), loaded.val_path(loaded.val_images),
                        codec=loaded.codec, train=False, augment=None, spec=loaded.spec)
    stats, results = evaluate.model_ap(model, val, flip=loaded.val_flip)
    # the trainer's validation is this evaluation: same predictions, same numbers
    assert stats.as_record() == summary["last_val"]
    assert all(len(r["keypoints"]) == 42 for r in results)


def test_flip_test_uses_the_specs_flip_index():
    """HRNet's heatmaps for CrowdPose's body joints after transfer are the COCO-17 network's channels
    5-16, with and without the flip test: the flip test must swap CrowdPose's own pairs."""
    state = load_checkpoint_state(CHECKPOINT)
    coco_cfg = config_from_dict(state["config"])
    coco_net = HRNet(coco_cfg.model).eval()
    coco_net.load_state_dict(state["model"])
    cp_net = HRNet(dataclasses.replace(coco_cfg, keypoints="crowdpose14").model).eval()
    transfer_weights(cp_net, state, COCO17, CROWDPOSE14)
    crops = torch.randn(3, 3, 128, 96)
    body = list(range(5, 17))
    for flip in (False, True):
        h17 = evaluate.predict_heatmaps(coco_net, crops, COCO17.flip_index, flip=flip)
        h14 = evaluate.predict_heatmaps(cp_net, crops, CROWDPOSE14.flip_index, flip=flip)
        torch.testing.assert_close(h14[:, :12], h17[:, body], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="flip_index has 17 entries but the heatmaps have K = 14"):
        evaluate.predict_heatmaps(cp_net, crops, COCO17.flip_index, flip=True)  # COCO-17's on 14 channels
    # predict_dataset flips with the spec it is given: the heatmaps' flip test with its flip index
    codec = HeatmapCodec((128, 96))
    val = CocoKeypoints(os.path.join(SAMPLES, "annotations", "crowdpose14_val.json"),
                        os.path.join(SAMPLES, "images"), codec=codec, train=False, augment=None,
                        spec=CROWDPOSE14)
    subset = torch.utils.data.Subset(val, range(8))
    a = evaluate.predict_dataset(cp_net, subset, codec, val.spec, batch_size=8)
    batch = torch.utils.data.default_collate([val[i] for i in range(8)])
    heatmaps = evaluate.predict_heatmaps(cp_net, batch["image"], CROWDPOSE14.flip_index)
    b, _ = codec.to_image(heatmaps, batch["center"], batch["scale"], batch["rotation"])
    np.testing.assert_array_equal(a["keypoints"], b)
    with pytest.raises(ValueError, match="flip_index has 17 entries but the heatmaps have K = 14"):
        evaluate.predict_dataset(cp_net, subset, codec, COCO17, batch_size=8)
    heatmaps = torch.rand(2, 14, 8, 6)
    twice = flip_back(flip_back(heatmaps, CROWDPOSE14.flip_index, False), CROWDPOSE14.flip_index, False)
    torch.testing.assert_close(twice, heatmaps, rtol=0, atol=0)  # a mirror, undone by itself


def test_transfer_weights_copies_rows_by_joint_name():
    state = load_checkpoint_state(CHECKPOINT)
    cfg = config_from_dict(state["config"])
    torch.manual_seed(0)
    net = HRNet(dataclasses.replace(cfg, keypoints="crowdpose14").model)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    report = transfer_weights(net, state, "coco17", "crowdpose14")
    assert report == {"copied": list(CROWDPOSE14.names[:12]), "new": ["head", "neck"]}
    got = net.state_dict()
    for key, value in state["model"].items():
        if key.startswith("final_layer."):
            torch.testing.assert_close(got[key][:12], value[5:17], rtol=0, atol=0)
            torch.testing.assert_close(got[key][12:], init[key][12:], rtol=0, atol=0)  # fresh rows kept
        else:
            torch.testing.assert_close(got[key], value, rtol=0, atol=0)
    # with equal specs: a plain strict load
    same = HRNet(cfg.model)
    assert transfer_weights(same, state, COCO17, COCO17)["new"] == []
    for key, value in state["model"].items():
        torch.testing.assert_close(same.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"final_layer.weight: the weights have 17 rows and the model 14, "
                       r"not the 14 of keypoint spec 'crowdpose14'"):
        transfer_weights(HRNet(dataclasses.replace(cfg, keypoints="crowdpose14").model), state, CROWDPOSE14,
                         CROWDPOSE14)


def test_fine_tuning_from_a_coco17_checkpoint(crowdpose_root, tmp_path):
    cfg = dataclasses.replace(tiny_config(crowdpose_root), model=synthpose_w16_128x96_cpu().model,
                              input_size=(128, 96), sigma=2.0, init_from=CHECKPOINT, val_every=0)
    summary = train(cfg, str(tmp_path / "ft"), progress=False)
    assert summary["init_from"] == {"copied": list(CROWDPOSE14.names[:12]), "new": ["head", "neck"]}
    assert np.isfinite(summary["final_loss"])


def test_command_line_on_a_crowdpose_layout_file(crowdpose_root, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--config", "synthpose_w16_128x96_cpu", "--out", run, "--no-progress",
                 f"data_root={crowdpose_root}", "val_root=none", "keypoints=crowdpose14", "model.width=8",
                 "model.num_modules=1,1,1", "input_size=64,32", "sigma=1", "batch_size=4", "epochs=1",
                 "max_train_images=8", "val_every=1", "workers=0", "cpu_bf16=false",
                 "cpu_channels_last=false"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["keypoints"] == "crowdpose14"
    checkpoint = os.path.join(run, "last.pt")
    assert main(["evaluate", "--checkpoint", checkpoint, "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "(crowdpose14)" in out and "AP" in out
    # the AP printed is the run's own validation AP
    assert f"{summary['last_val']['ap']:5.3f}" in out.splitlines()[-1]
    val_ann = os.path.join(crowdpose_root, "annotations", "person_keypoints_val.json")
    image = os.path.join(crowdpose_root, "images", "val_000001.jpg")
    assert main(["predict", image, "--checkpoint", checkpoint, "--out", str(tmp_path / "pose.png"),
                 "--whole-image"]) == 0
    assert "of 14 keypoints" in capsys.readouterr().out and os.path.isfile(tmp_path / "pose.png")
    # a results file on a CrowdPose-layout ground truth: --keypoints names its set
    with open(val_ann) as f:
        data = json.load(f)
    gt = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
          for a in data["annotations"]]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert main(["evaluate", "--results", str(tmp_path / "gt.json"), "--ann", val_ann,
                 "--keypoints", "crowdpose14"]) == 0
    assert "1.000 | 1.000" in capsys.readouterr().out
    assert main(["evaluate", "--results", str(tmp_path / "gt.json"), "--ann", val_ann]) == 2
    assert "spec='crowdpose14'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", checkpoint, "--keypoints", "coco17"])
    assert "--keypoints goes with --results" in capsys.readouterr().err

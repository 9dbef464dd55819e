"""Real dataset files as they are, and no silently wrong number (issue 24).

Each test is one of the issue's numbered items: a wrong number becomes a clear one-line refusal or a
correct result; a real file that pycocotools evaluates is read. The real-format samples (CrowdPose's
body-only ``num_keypoints``, PoseTrack's keypoint names) are made here, small, from the bundled
SynthPose split.
"""

import copy
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hrnet_edu import coco_eval, commands, evaluate
from hrnet_edu.cli import main, run_command
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.data.ground_truth import read_ground_truth
from hrnet_edu.errors import InputError
from hrnet_edu.keypoints import COCO17
from hrnet_edu.runfolder import RunLock, check_run_folder, read_log

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data_samples", "synthpose")
VAL_ANN = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
IMAGES = os.path.join(SAMPLES, "images")
CHECKPOINT = os.path.join(REPO, "data_samples", "checkpoints", "synthpose_w16_128x96_cpu.pt")
EPOCH1 = os.path.join(REPO, "data_samples", "checkpoints", "synthpose_w16_128x96_cpu_epoch1.pt")

pytestmark = pytest.mark.usefixtures("one_thread")


def _val_data() -> dict:
    with open(VAL_ANN) as f:
        return json.load(f)


def _small_split(tmp_path, n_images: int = 12, edit=None) -> str:
    """The first ``n_images`` images of the bundled val split (and their persons), edited by ``edit``."""
    data = _val_data()
    data["images"] = data["images"][:n_images]
    keep = {image["id"] for image in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    if edit is not None:
        edit(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return str(path)


# ----------------------------------------------------------------------------- 1: id 0
def test_annotation_id_zero_is_refused_on_every_evaluation_path(tmp_path):
    def zero_id(data):
        data["annotations"][0]["id"] = 0

    ann = _small_split(tmp_path, edit=zero_id)
    with pytest.raises(InputError, match="has id 0; COCO evaluation needs ids >= 1"):
        commands.checkpoint_ap(CHECKPOINT, ann=ann, images=IMAGES, device="cpu", workers=0)
    # training's validation: a dataset reads the file for training, its evaluation re-checks it
    from hrnet_edu.checkpoints import load_checkpoint

    model, cfg = load_checkpoint(CHECKPOINT)
    dataset = CocoKeypoints(ann, IMAGES, codec=cfg.codec, spec=cfg.spec, train=False, augment=None)
    with pytest.raises(InputError, match="has id 0"):
        evaluate.model_ap(model, dataset)


# ----------------------------------------------------------------------------- 2: ignored overrides
def test_an_override_that_cannot_reach_the_evaluation_is_refused(tmp_path):
    with pytest.raises(InputError, match="data_root= does not reach the evaluation.*val_root="):
        commands.checkpoint_ap(CHECKPOINT, overrides=["data_root=/nowhere/coco"], device="cpu")
    ann = _small_split(tmp_path)
    with pytest.raises(InputError, match="and --ann/--images both say what to evaluate"):
        commands.checkpoint_ap(CHECKPOINT, overrides=["val_root=/nowhere"], ann=ann, images=IMAGES)


# ----------------------------------------------------------------------------- 3: ONNX identity
def test_an_onnx_file_of_other_weights_or_no_onnx_at_all_is_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    from hrnet_edu.checkpoints import load_checkpoint
    from hrnet_edu.export import export_onnx, onnx_runner_for, sample_crops

    other, other_cfg = load_checkpoint(EPOCH1)
    path = str(tmp_path / "epoch1.onnx")
    export_onnx(other, path, sample_crops(other_cfg, 2))
    model, cfg = load_checkpoint(CHECKPOINT)
    assert onnx_runner_for(other, other_cfg, path).cfg == other_cfg.model  # its own weights: accepted
    with pytest.raises(InputError, match="exported from other weights than this checkpoint's"):
        onnx_runner_for(model, cfg, path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf")
    with pytest.raises(InputError, match="not an ONNX model: .*junk.onnx"):
        onnx_runner_for(model, cfg, str(junk))


# ----------------------------------------------------------------------------- 4: PoseTrack's names
def test_keypoint_names_other_than_the_specs_are_refused(tmp_path):
    def posetrack_names(data):
        names = list(COCO17.names)
        names[1], names[2] = "head_bottom", "head_top"  # PoseTrack18 where COCO has the eyes
        data["categories"][0]["keypoints"] = names

    ann = _small_split(tmp_path, edit=posetrack_names)
    with pytest.raises(InputError, match=r"not those of keypoint spec 'coco17' \(joint 1: 'head_bottom' vs "
                                         r"'left_eye'; 2: 'head_top' vs 'right_eye'\)"):
        read_ground_truth(ann, "coco17")
    with pytest.raises(InputError, match="head_bottom"):
        commands.checkpoint_ap(CHECKPOINT, ann=ann, images=IMAGES, device="cpu", workers=0)


# ----------------------------------------------------------------------------- 5: NMS threshold
@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan"), 1.5])
def test_the_nms_threshold_must_be_in_0_1(threshold):
    preds = {"image_ids": np.array([1, 1]), "keypoints": np.zeros((2, 17, 2)),
             "confidences": np.ones((2, 17), np.float32), "box_scores": np.ones(2, np.float32),
             "areas": np.ones(2)}
    with pytest.raises(ValueError, match=r"OKS-NMS threshold must be in \(0, 1\]"):
        evaluate.predictions_to_results(preds, COCO17.sigmas, nms_threshold=threshold)


def test_the_evaluate_header_names_files_decoding_nms_and_skips(tmp_path, capsys):
    ann = _small_split(tmp_path, n_images=6)
    with open(ann) as f:
        small = json.load(f)
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in small["annotations"]]
    dets[0]["bbox"] = [float("nan"), 1.0, 10.0, 10.0]  # 6: counted, not dropped unseen
    dets[1]["bbox"] = [1.0, 1.0, -5.0, 10.0]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(dets))
    rc = main(["evaluate", "--checkpoint", CHECKPOINT, "--ann", ann, "--images", IMAGES, "--boxes",
               str(boxes), "--device", "cpu", "--workers", "0", "--nms-threshold", "0.8"])
    out = capsys.readouterr().out
    assert rc == 0
    header = out.splitlines()[0]
    for part in (ann, IMAGES, "dark decoding", "(the checkpoint's)", "NMS threshold 0.8", "non_finite_box 1",
                 "degenerate_box 1"):
        assert part in header, (part, header)
    assert main(["evaluate", "--checkpoint", CHECKPOINT, "--nms-threshold", "nan"]) == 2


# ----------------------------------------------------------------------------- 8: CrowdPose's counts
def test_crowdpose_body_only_num_keypoints_is_read_and_a_contradiction_is_not(tmp_path):
    def body_only(data):
        for a in data["annotations"]:
            labelled = sum(v > 0 for v in a["keypoints"][2::3])
            head = sum(v > 0 for v in a["keypoints"][2:15:3])  # as if head joints were not counted
            if labelled > head:
                a["num_keypoints"] = labelled - head

    ann = _small_split(tmp_path, edit=body_only)
    gt = read_ground_truth(ann, "coco17", for_eval=True)
    assert gt.counts["no_keypoints"] == 0
    # pycocotools reads num_keypoints only as "= 0": the same AP as with the true counts
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt.coco.dataset["annotations"]]
    true_counts = copy.deepcopy(gt.coco.dataset)
    for a in true_counts["annotations"]:
        a["num_keypoints"] = sum(v > 0 for v in a["keypoints"][2::3])
    path = tmp_path / "true.json"
    path.write_text(json.dumps(true_counts))
    assert coco_eval.results_ap(gt, results).ap == coco_eval.results_ap(str(path), results, spec="coco17").ap

    def contradiction(data):
        data["annotations"][0]["num_keypoints"] = 0

    with pytest.raises(InputError, match="num_keypoints is 0 but .* labelled.*ignore a labelled person"):
        read_ground_truth(_small_split(tmp_path, edit=contradiction), "coco17")


# ----------------------------------------------------------------------------- 9: truncated JPEG
def test_a_truncated_jpeg_is_found_before_the_run_and_skipped_when_asked(tmp_path):
    import shutil

    images = tmp_path / "images"
    shutil.copytree(IMAGES, images)
    first = _val_data()["images"][0]
    victim = images / first["file_name"]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    ann = _small_split(tmp_path, n_images=4)
    from hrnet_edu.configs import get_config

    cfg = get_config("synthpose_w16_128x96_cpu")
    dataset = CocoKeypoints(ann, str(images), codec=cfg.codec, spec=cfg.spec, train=False, augment=None)
    with pytest.raises(InputError, match="truncated"):
        dataset.check_images()
    dataset.check_images(skip_unreadable=True)
    assert dataset.num_skipped.get("unreadable_image", 0) >= 1
    assert first["id"] in dataset.unreadable_image_ids


# ----------------------------------------------------------------------------- 10: rescoring in float32
def test_rescoring_compares_in_float32_as_the_reference():
    conf = np.array([[np.float32(0.2), 0.3, 0.5]], dtype=np.float32)
    # the reference: float32 maxima against 0.2 read as float32 → float32(0.2) is not above it
    expected = (np.float32(0.3) + np.float32(0.5)) / 2
    assert coco_eval.rescore([1.0], conf)[0] == pytest.approx(float(expected), rel=1e-7)


# ----------------------------------------------------------------------------- 11: raw tracebacks
@pytest.mark.parametrize("field, value, message", [
    ("score", "0.9", "score must be a number"),
    ("score", True, "score must be a number"),
    ("image_id", [1], "image_id must be an integer"),
])
def test_results_fields_of_the_wrong_type_are_one_line(field, value, message):
    gt = read_ground_truth(VAL_ANN, "coco17", for_eval=True)
    ann = gt.coco.dataset["annotations"][0]
    entry = {"image_id": ann["image_id"], "category_id": 1, "keypoints": ann["keypoints"], "score": 0.5}
    entry[field] = value
    with pytest.raises(ValueError, match=message):
        coco_eval.results_ap(gt, [entry])


def test_export_needs_a_check_crop():
    assert main(["export", "--checkpoint", CHECKPOINT, "--out", "/tmp/never.onnx", "--check-crops", "0"]) == 2


def test_ctrl_c_is_one_line_and_status_130(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert run_command("hrnet-edu train", interrupted) == 130
    assert capsys.readouterr().err.strip() == "hrnet-edu train: interrupted"


def test_a_damaged_log_line_names_the_file_and_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"kind": "step", "epoch": 1}\n{"kind": "ep\n')
    with pytest.raises(InputError, match=r"log.jsonl line 2: not a JSON record"):
        read_log(str(log))


# ----------------------------------------------------------------------------- 12: run folders
def test_a_lock_left_by_the_workers_of_a_killed_run_is_waited_for(tmp_path):
    """A killed trainer's forked data-loader workers hold its lock for a moment: a resume waits for
    them instead of refusing (the lock file names the dead parent)."""
    script = textwrap.dedent(f"""
        import os, time
        from hrnet_edu.runfolder import RunLock
        lock = RunLock({str(tmp_path)!r}).acquire()
        if os.fork() == 0:      # the "worker": inherits the locked file, outlives its parent briefly
            time.sleep(1.5)
            os._exit(0)
        os._exit(0)             # the "trainer" dies without releasing (as under SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO)
    lock = RunLock(str(tmp_path)).acquire()  # waits for the orphan, then takes the lock
    assert lock.taken_over is not None
    lock.release()


def test_a_run_that_ended_before_its_first_checkpoint_is_not_advised_to_resume(tmp_path):
    (tmp_path / "log.jsonl").write_text("")
    with pytest.raises(InputError) as err:
        check_run_folder(str(tmp_path), resume=False, overwrite=False)
    assert "--overwrite" in str(err.value) and "--resume" not in str(err.value)


# ----------------------------------------------------------------------------- 13: synth
def test_synth_into_an_existing_dataset_asks_for_overwrite(tmp_path, capsys):
    out = str(tmp_path / "ds")
    assert main(["synth", "--out", out, "--train", "2", "--val", "1", "--size", "96", "--workers", "1"]) == 0
    before = sorted(os.listdir(os.path.join(out, "images")))
    assert main(["synth", "--out", out, "--train", "1", "--val", "0", "--size", "96", "--workers", "1"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(out, "images"))) == before  # nothing deleted
    assert main(["synth", "--out", out, "--train", "1", "--val", "0", "--size", "96", "--workers", "1",
                 "--overwrite"]) == 0


def test_skipped_images_are_a_note_not_a_python_warning(tmp_path, capsys, recwarn):
    import shutil

    images = tmp_path / "images"
    shutil.copytree(IMAGES, images)
    first = _val_data()["images"][0]
    (images / first["file_name"]).unlink()
    from hrnet_edu.configs import get_config

    cfg = get_config("synthpose_w16_128x96_cpu")
    dataset = CocoKeypoints(_small_split(tmp_path, n_images=3), str(images), codec=cfg.codec, spec=cfg.spec)
    dataset.check_images(skip_unreadable=True)
    err = capsys.readouterr().err
    assert err.startswith("note: left out") and len(err.strip().splitlines()) == 1
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


# ----------------------------------------------------------------------------- 15: records
def test_committed_records_hold_no_absolute_path_of_a_machine():
    folder = os.path.join(REPO, "data_samples", "checkpoints")
    for name in os.listdir(folder):
        if name.endswith(".json"):
            text = open(os.path.join(folder, name)).read()
            for prefix in ("/work/", "/root/", "/home/", "/Users/", "C:\\\\"):
                assert prefix not in text, (name, prefix)


class _Payload:
    """A pickle that would run a command when loaded unsafely (it is never loaded here)."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("write", ["torch.save", "pickle"])
def test_a_checkpoint_carrying_a_pickle_payload_is_named_for_what_it_is(tmp_path, write, capsys):
    import pickle

    import torch

    path = tmp_path / "evil.pt"
    if write == "torch.save":
        torch.save({"model": _Payload()}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"model": _Payload()}, f)
    assert main(["evaluate", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a plain-tensor checkpoint" in err and "truncated" not in err and err.count("\n") == 1
    assert "this must never run" not in err


# ----------------------------------------------------------------------------- 14: progress off a terminal
def test_progress_lines_off_a_terminal_and_step_records_on_disk_as_they_come(tmp_path, capsys, monkeypatch):
    import dataclasses

    from hrnet_edu import train as train_mod
    from hrnet_edu.configs import synthpose_w16_128x96_cpu
    from hrnet_edu.data.synthpose import generate
    from hrnet_edu.model import W8
    from hrnet_edu.overrides import apply_overrides

    root = tmp_path / "data"
    generate(str(root), n_train=8, n_val=0, seed=0, image_size=128, workers=1)
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), [
        f"data_root={root}", "val_root=none", "input_size=64,32", "sigma=1", "batch_size=4", "epochs=1",
        "val_every=0", "log_every=1", "device=cpu", "workers=0", "cpu_bf16=false", "cpu_channels_last=false",
        "cpu_threads=1"])
    cfg = dataclasses.replace(cfg, model=W8)
    out = tmp_path / "run"
    on_disk = []  # the step records in log.jsonl each time one is appended, during the epoch
    append = train_mod.append_log_record

    def append_and_look(path, record):
        append(path, record)
        on_disk.append(sum(r["kind"] == "step" for r in read_log(path)))

    monkeypatch.setattr(train_mod, "append_log_record", append_and_look)
    summary = train_mod.train(cfg, str(out))  # progress=None, and pytest's stderr is not a terminal
    err = capsys.readouterr().err
    steps = [line for line in err.splitlines() if line.startswith("epoch 1/1 step")]
    n = len(steps)  # log_every=1: a line for every step
    assert n >= 2 and steps[-1].startswith(f"epoch 1/1 step {n}/{n}: loss") and "img/s" in steps[0]
    assert any(line.startswith("epoch 1/1: loss") for line in err.splitlines())
    assert on_disk == list(range(1, n + 1))  # each step record was in the file before the epoch ended
    assert summary["epochs"] == 1

"""Issue 15: every bad input gives a clear one-line error (exit 2) or a counted skip, never a wrong result.

Ground truth (training and evaluation read it through the same check), images, run folders
(lock, overwrite, atomic files, resume with changed overrides), checkpoints and the commands.
Everything runs on tiny hand-written COCO files or a few SynthPose images in temporary folders.
"""

import copy
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from hrnet_edu import coco_eval, runfolder
from hrnet_edu import train as train_mod
from hrnet_edu.checkpoints import load_checkpoint_state
from hrnet_edu.cli import main
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.errors import InputError, one_line
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import COCO17, coco_person_category
from hrnet_edu.model import W8, HRNet
from hrnet_edu.overrides import apply_overrides
from hrnet_edu.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

W, H = 160, 120
CODEC = HeatmapCodec((256, 192))  # the reference's 256×192 input, σ = 2


def dataset(ann, images, codec=CODEC, **kwargs):
    """A COCO-17 ``CocoKeypoints`` (the codec and the spec are always given)."""
    return CocoKeypoints(ann, images, codec=codec, spec=COCO17, **kwargs)


def person(ann_id, image_id=1, labelled=10, box=(30, 10, 80, 100), **extra):
    """A person whose first ``labelled`` joints are labelled (v = 2) inside its box, the rest (0, 0, 0)."""
    x, y, w, h = box
    kps = []
    for j in range(17):
        kps += [x + w * (0.1 + 0.05 * j), y + h * (0.9 - 0.05 * j), 2] if j < labelled else [0, 0, 0]
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(box),
           "area": float(w * h), "keypoints": kps, "num_keypoints": labelled}
    return {**ann, **extra}


def valid_coco(n_images=2):
    images = [{"id": i, "file_name": f"{i:03d}.png", "width": W, "height": H} for i in range(1, n_images + 1)]
    anns = [person(1, 1), person(2, 1, labelled=17, box=(60, 20, 50, 90)), person(3, 2, labelled=5)]
    return {"images": images, "annotations": anns, "categories": [coco_person_category()]}


def write(root, data, images=True, sizes=None):
    """``data`` as root/ann.json and (optionally) its images as PNGs; returns (ann_file, image_dir)."""
    os.makedirs(root / "images", exist_ok=True)
    if images:
        for n, image in enumerate(data["images"]):
            w, h = (sizes or {}).get(image["id"], (W, H))
            pixels = np.full((h, w, 3), 40 * n % 256, np.uint8)
            Image.fromarray(pixels).save(root / "images" / image["file_name"])
    path = root / "ann.json"
    path.write_text(json.dumps(data))
    return str(path), str(root / "images")


def gt_as_results(data):
    return [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
             "keypoints": [float(v) if i % 3 < 2 else 1.0 for i, v in enumerate(a["keypoints"])]}
            for a in data["annotations"]
            if a.get("category_id") == 1 and not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]


# ----------------------------------------------------------------------------- ground truth
def mutate(data, where, value):
    out = copy.deepcopy(data)
    kind, index, key = where
    out[kind][index][key] = value
    return out


def _kps(change):
    kps = person(1)["keypoints"]
    return change(list(kps))


BAD_GROUND_TRUTH = [
    # (mutation, message) — each message names the annotation (or image) id; the file is checked below
    (("annotations", 0, "keypoints", _kps(lambda k: [math.nan] + k[1:])), r"annotation id 1 .*not finite"),
    (("annotations", 0, "keypoints", [0, 0, -1] * 17), r"annotation id 1 .*visibility of joint 0 is -1"),
    (("annotations", 0, "image_id", 99), r"annotation id 1 .*image_id 99 is not in 'images'"),
    (("annotations", 0, "keypoints", _kps(lambda k: [-50, 10] + k[2:])),
     r"annotation id 1 .*joint 0 .*far outside"),
    (("annotations", 0, "keypoints", _kps(lambda k: ["x"] + k[1:])), r"annotation id 1 .*'x', not a number"),
    (("annotations", 0, "keypoints", _kps(lambda k: k[:-3])), r"annotation id 1 .*expected 51 .*got 48"),
    (("annotations", 0, "num_keypoints", 0), r"annotation id 1 .*num_keypoints is 0 but 10"),
    (("annotations", 0, "bbox", [0, 0, math.inf, 10]), r"annotation id 1 .*bbox must be"),
    (("annotations", 1, "id", 1), r"annotation id 1 .*appears twice"),
    (("annotations", 0, "image_id", [1]), r"annotation id 1 .*image_id \[1\] is not in 'images'"),
    (("images", 0, "width", None), r"image id 1 .*'width' must be a positive number"),
    (("images", 1, "height", 0), r"image id 2 .*'height' must be a positive number"),
]


@pytest.mark.parametrize("mutation, message", BAD_GROUND_TRUTH,
                         ids=[f"{m[2]}-{n}" for n, (m, _) in enumerate(BAD_GROUND_TRUTH)])
def test_malformed_ground_truth_is_refused_for_training_and_evaluation(tmp_path, mutation, message):
    kind, index, key, value = mutation
    data = mutate(valid_coco(), (kind, index, key), value)
    ann, images = write(tmp_path, data, images=False)
    for load in (lambda: dataset(ann, images), lambda: coco_eval.results_ap(ann, [], spec=COCO17)):
        with pytest.raises(InputError, match=message) as err:
            load()
        assert ann in str(err.value) and "\n" not in str(err.value)


def test_missing_width_and_the_issue_cases_name_file_and_id(tmp_path):
    data = valid_coco()
    del data["images"][0]["width"]
    ann, images = write(tmp_path, data, images=False)
    with pytest.raises(InputError, match=r"image id 1 in .*ann\.json: no 'width'"):
        dataset(ann, images)
    # NaN keypoints used to evaluate to AP 1.000: now the evaluation never runs on them
    data = valid_coco()
    results = gt_as_results(data)
    data["annotations"][0]["keypoints"][0] = math.nan
    ann, _ = write(tmp_path, data, images=False)
    with pytest.raises(InputError, match="not finite"):
        coco_eval.results_ap(ann, results, spec=COCO17)


def test_annotation_id_zero_is_refused_for_evaluation_where_pycocotools_scores_it_wrongly(tmp_path):
    # found by the property test below: pycocotools' matching tables use 0 for "unmatched", so an
    # annotation with id 0 scored the ground truth itself at AP 0.44; training does not use the id
    data = valid_coco()
    data["annotations"][0]["id"] = 0
    ann, images = write(tmp_path, data, images=False)
    assert len(dataset(ann, images)) == 3
    with pytest.raises(InputError, match=r"annotations\[0\] has id 0; COCO evaluation needs ids >= 1") as err:
        coco_eval.results_ap(ann, gt_as_results(data), spec=COCO17)
    assert ann in str(err.value)


def test_reference_skips_are_counted_not_errors(tmp_path):
    data = valid_coco()
    data["annotations"] += [person(4, 2, iscrowd=1), person(5, 2, labelled=0),
                            person(6, 2, box=(40, 40, 0, 30)), {**person(7, 2), "category_id": 2}]
    ann, images = write(tmp_path, data, images=False)
    ds = dataset(ann, images)
    assert len(ds) == 3 and ds.num_skipped == {"crowd": 1, "no_keypoints": 1, "degenerate_box": 1,
                                               "not_person": 1}
    gt = coco_eval.load_ground_truth(ann, COCO17)
    assert gt.counts == {"crowd": 1, "no_keypoints": 1, "not_person": 1} and gt.for_eval
    assert ds.ground_truth.counts == gt.counts  # training reads the file through the same check
    stats = coco_eval.results_ap(gt, gt_as_results(data))
    assert stats.ap == pytest.approx(1.0)


def test_empty_ground_truth_is_an_error_not_ten_zeros(tmp_path, capsys):
    data = valid_coco()
    data["annotations"] = [person(1, 1, labelled=0), person(2, 1, iscrowd=1)]
    ann, _ = write(tmp_path, data, images=False)
    with pytest.raises(InputError, match=r"ann\.json: no person with a labelled keypoint.*1 crowd, 1 witho"):
        coco_eval.results_ap(ann, [], spec=COCO17)
    (tmp_path / "res.json").write_text("[]")
    assert main(["evaluate", "--results", str(tmp_path / "res.json"), "--ann", ann]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no person with a labelled keypoint" in err


def test_evaluate_results_prints_the_ignored_counts(tmp_path, capsys):
    data = valid_coco()
    data["annotations"] += [person(4, 2, iscrowd=1), person(5, 2, labelled=0)]
    ann, _ = write(tmp_path, data, images=False)
    (tmp_path / "res.json").write_text(json.dumps(gt_as_results(data)))
    assert main(["evaluate", "--results", str(tmp_path / "res.json"), "--ann", ann]) == 0
    out = capsys.readouterr().out
    assert "crowd 1" in out and "no_keypoints 1" in out and "1.000" in out


# ----------------------------------------------------------------------------- property-based
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(-5, 300), max_size=4),
    st.sampled_from([0, 1, 2, -1, 3, 0.5, W, H, W * 2, -W, "1", [], {}]),
)


@st.composite
def mutations(draw):
    """A list of random changes to the valid file: a field set to an odd value or deleted, one
    keypoint number changed, or an entry removed."""
    data = valid_coco()
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["images", "annotations", "keypoint", "top"]))
        if kind == "keypoint":
            a = draw(st.integers(0, len(data["annotations"]) - 1))
            changes.append(("keypoint", a, draw(st.integers(0, 50)), draw(ODD_VALUES)))
        elif kind == "top":
            changes.append(("top", draw(st.sampled_from(["images", "annotations", "categories"])), None,
                            draw(ODD_VALUES)))
        else:
            i = draw(st.integers(0, len(data[kind]) - 1))
            keys = ["id", "file_name", "width", "height"] if kind == "images" else \
                ["id", "image_id", "category_id", "iscrowd", "bbox", "area", "keypoints", "num_keypoints"]
            key = draw(st.sampled_from(keys))
            changes.append((kind, i, key, "<delete>" if draw(st.booleans()) else draw(ODD_VALUES)))
    return changes


def apply(changes):
    data = valid_coco()
    for kind, i, key, value in changes:
        entries = data.get("annotations" if kind == "keypoint" else kind)
        usable = isinstance(entries, list) and i < len(entries) and isinstance(entries[i], dict)
        if kind != "top" and not usable:
            continue  # an earlier change replaced the container
        if kind == "keypoint":
            if not isinstance(data["annotations"][i].get("keypoints"), list) or \
                    len(data["annotations"][i]["keypoints"]) <= key:
                continue
            data["annotations"][i]["keypoints"][key] = value
        elif kind == "top":
            data[i] = value
        elif value == "<delete>":
            data[kind][i].pop(key, None)
        else:
            data[kind][i][key] = value
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutations())
def test_random_mutations_load_correctly_or_raise_the_clear_error(tmp_path, changes):
    data = apply(changes)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))  # NaN/inf as JSON's NaN/Infinity, which Python reads back
    try:
        ds = dataset(str(path), str(tmp_path))
    except InputError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return
    # loaded: every sample's joints are the file's numbers (v → min(v, 1)), finite, inside the margin
    anns = {a["id"]: a for a in data["annotations"]}
    for n in range(len(ds)):
        record = ds.record(n)
        kps = np.asarray(anns[record["ann_id"]]["keypoints"], dtype=np.float64).reshape(17, 3)
        labelled = kps[:, 2:] > 0  # an unlabelled joint is (0, 0, 0), whatever the file holds
        expected = (kps[:, :2] * labelled).astype(np.float32)  # the dataset holds float32 (denormals → 0)
        np.testing.assert_allclose(record["joints"][:, :2], expected, rtol=1e-6)
        np.testing.assert_array_equal(record["joints"][:, 2], np.minimum(kps[:, 2], 1))
        assert np.isfinite(record["joints"]).all() and set(kps[:, 2]) <= {0, 1, 2}
    try:
        stats = coco_eval.results_ap(str(path), gt_as_results(data), spec=COCO17)
    except InputError as err:
        assert str(path) in str(err) or "results[" in str(err)
        return
    # the ground truth as predictions: never a wrong AP. Plain pycocotools is the reference; where an
    # image holds one person it must give 1. (Two near-identical persons in one image — a mutation
    # can move one beside another — may be matched crosswise with equal scores: pycocotools too.)
    reference = coco_eval.results_ap(str(path), gt_as_results(data), spec=COCO17, backend="pycocotools")
    assert stats.as_dict() == pytest.approx(reference.as_dict(), abs=1e-12)
    persons = [a["image_id"] for a in data["annotations"]]
    if len(persons) == len(set(persons)):
        assert stats.ap == pytest.approx(1.0)


# ----------------------------------------------------------------------------- images
def test_16_bit_png_is_scaled_to_8_bit(tmp_path):
    import cv2

    levels = np.arange(0, 65536, 4369, dtype=np.uint16)  # 0 … 65535 in 16 steps
    rgb = np.stack([levels, levels // 2, 65535 - levels], axis=-1)[None].repeat(2, axis=0)  # (2, 16, 3)
    assert cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    grey = levels[None].repeat(2, axis=0)
    assert cv2.imwrite(str(tmp_path / "g16.png"), grey)
    image = load_image(str(tmp_path / "c16.png"))
    assert image.dtype == np.uint8 and image.shape == (2, 16, 3)
    np.testing.assert_array_equal(image, (rgb >> 8).astype(np.uint8))  # R, G, B in order, 65535 → 255
    expected_grey = np.repeat((grey >> 8)[..., None], 3, -1)
    np.testing.assert_array_equal(load_image(str(tmp_path / "g16.png")), expected_grey)


def test_image_size_disagreeing_with_the_json_is_warned_and_counted(tmp_path, capsys):
    ann, images = write(tmp_path, valid_coco(), sizes={2: (100, 80)})
    ds = dataset(ann, images, train=False, augment=None)
    mismatch = r"^note: 1 of 2 images .* differ in size.*002\.png is 100x80, the JSON says 160x120\n$"
    report = ds.check_images()
    assert re.match(mismatch, capsys.readouterr().err)  # one line, no Python warning's source line
    assert report == {"images": 2, "missing": 0, "unreadable": 0, "size_mismatch": 1}


def test_unreadable_images_stop_before_the_run_or_are_skipped_and_counted(tmp_path, capsys):
    data = valid_coco(n_images=3)
    data["annotations"].append(person(4, 3))
    ann, images = write(tmp_path, data)
    os.remove(os.path.join(images, "001.png"))
    (tmp_path / "images" / "003.png").write_bytes(b"\x89PNG garbage")
    ds = dataset(ann, images, train=False, augment=None)
    with pytest.raises(InputError, match=r"2 of 3 images of .*ann\.json cannot be read.*001\.png.*missing"):
        ds.check_images()
    report = ds.check_images(skip_unreadable=True)
    assert "note: left out 3 samples of 2 unreadable images" in capsys.readouterr().err
    assert report["missing"] == 1 and report["unreadable"] == 1
    assert len(ds) == 1 and ds.num_skipped == {"missing_image": 2, "unreadable_image": 1}
    assert ds[0]["image"].shape == (3, 256, 192)  # what is left is usable


def test_dataloader_worker_error_becomes_its_one_line(tmp_path):
    ann, images = write(tmp_path, valid_coco())
    os.remove(os.path.join(images, "002.png"))
    ds = dataset(ann, images, codec=HeatmapCodec((64, 48)), train=False, augment=None)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    with pytest.raises(FileNotFoundError) as err:
        list(loader)
    assert "DataLoader worker" in str(err.value)  # torch's wrapper, with the worker's traceback
    line = one_line(err.value)
    assert line.startswith("image file not found: ") and "002.png" in line and "\n" not in line


# ----------------------------------------------------------------------------- configuration values
@pytest.mark.parametrize("item, message", [("lr=-1", "lr must be a positive"), ("lr=nan", "lr must be"),
                                           ("log_every=0", "log_every must be >= 1"),
                                           ("device=gpu", "device must be auto, cpu")])
def test_config_values_are_validated_when_built(item, message, capsys):
    with pytest.raises(ValueError, match=message):
        apply_overrides(synthpose_w16_128x96_cpu(), [item])
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", "synthpose_w16_128x96_cpu", "--out", "/nonexistent/run", item])
    assert exc.value.code == 2 and message.split(" must")[0] in capsys.readouterr().err


# ----------------------------------------------------------------------------- run folders
@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from hrnet_edu.data.synthpose import generate

    root = tmp_path_factory.mktemp("synthpose")
    generate(str(root), n_train=8, n_val=4, seed=0, image_size=128, workers=1)
    return str(root)


def tiny_overrides(root):
    return [f"data_root={root}", "val_root=none", "input_size=64,32", "sigma=1", "batch_size=4", "epochs=2",
            "val_every=1", "val_batch_size=8", "log_every=1", "device=cpu", "workers=0", "model.width=8"]


def tiny_config(root, **changes):
    cfg = apply_overrides(synthpose_w16_128x96_cpu(), tiny_overrides(root))
    return dataclasses.replace(cfg, model=W8, **changes)


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_empty_training_set_is_a_clear_error(tmp_path, tiny_root):
    data = valid_coco()
    data["annotations"] = [person(1, 1, iscrowd=1)]
    ann, images = write(tmp_path, data, images=False)
    cfg = dataclasses.replace(tiny_config(tiny_root), data_root=str(tmp_path), val_root=tiny_root,
                              train_ann="ann.json", train_images="images", val_every=0)
    with pytest.raises(InputError, match=r"no training samples in .*ann\.json .*skipped: \{'crowd': 1\}"):
        train(cfg, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run" / "log.jsonl")


def test_a_folder_holding_a_run_is_refused_untouched_unless_overwrite(tmp_path, tiny_root, capsys):
    out = tmp_path / "run"
    first = train(tiny_config(tiny_root, epochs=1), str(out), progress=False)
    before = snapshot(out)
    assert set(before) == {"best.pt", "config.json", "last.pt", "log.jsonl"}  # no lock, no .tmp left
    holds = r"holds a run \(last\.pt, best\.pt, log\.jsonl, config\.json\).*--overwrite"
    with pytest.raises(InputError, match=holds):
        train(tiny_config(tiny_root, epochs=1, lr=5e-3), str(out), overwrite=False, progress=False)
    assert snapshot(out) == before  # nothing truncated or rewritten
    # the command: a typo in data_root with --overwrite fails on the data before replacing anything
    argv = ["train", "--config", "synthpose_w16_128x96_cpu", "--out", str(out), "--no-progress",
            *tiny_overrides(tiny_root)]
    assert main(argv) == 2 and "holds a run" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "data_root=/no/such/folder"]) == 2
    assert "annotation file not found" in capsys.readouterr().err and snapshot(out) == before
    second = train(tiny_config(tiny_root, epochs=1, val_every=0), str(out), overwrite=True, progress=False)
    assert second["epochs"] == 1 and first["best_ap"] is not None
    assert sorted(os.listdir(out)) == ["config.json", "last.pt", "log.jsonl"]  # the old best.pt went with it
    assert json.loads((out / "config.json").read_text())["val_every"] == 0


def test_the_lock_refuses_a_second_run_and_a_dead_pids_lock_is_taken_over(tmp_path, tiny_root):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from hrnet_edu.runfolder import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"run folder .* is in use by process {holder.pid}"):
            train(tiny_config(tiny_root, epochs=1), str(out), progress=False)
        assert os.listdir(out) == [runfolder.LOCK_NAME]  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file (a dead PID) is taken over
    assert int((out / runfolder.LOCK_NAME).read_text()) == holder.pid
    lock = runfolder.RunLock(str(out)).acquire()
    assert lock.taken_over == holder.pid and int((out / runfolder.LOCK_NAME).read_text()) == os.getpid()
    with pytest.raises(InputError, match=f"in use by process {os.getpid()}"):  # one more run, same folder
        runfolder.RunLock(str(out)).acquire()
    lock.release()
    assert not (out / runfolder.LOCK_NAME).exists()


def test_runfolder_without_fcntl_checks_the_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "fcntl", None)
    (tmp_path / runfolder.LOCK_NAME).write_text("999999999\n")  # no such process
    lock = runfolder.RunLock(str(tmp_path)).acquire()
    assert lock.taken_over == 999999999
    with pytest.raises(InputError, match=f"in use by process {os.getpid()}"):
        runfolder.RunLock(str(tmp_path)).acquire()
    lock.release()


def holder_pid():
    return 999999999  # a process that does not exist


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even ``except Exception``)."""


def test_a_kill_at_any_write_leaves_loadable_checkpoints_and_resume_ends_with_best(tmp_path, tiny_root,
                                                                                monkeypatch):
    cfg = tiny_config(tiny_root)
    real_replace = os.replace
    writes = []

    def counting(src, dst):
        writes.append(os.path.basename(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(runfolder.os, "replace", counting)
    train(cfg, str(tmp_path / "full"), progress=False)
    monkeypatch.setattr(runfolder.os, "replace", real_replace)
    assert "best.pt" in writes and writes[-1] == "last.pt"
    for k, name in enumerate(writes):
        out = tmp_path / f"killed{k}"
        calls = {"n": 0}

        def killed_at_write_k(src, dst, k=k, calls=calls):
            if calls["n"] == k:  # the temporary file is complete but not yet moved: "kill -9"
                raise Killed(dst)
            calls["n"] += 1
            return real_replace(src, dst)

        monkeypatch.setattr(runfolder.os, "replace", killed_at_write_k)
        with pytest.raises(Killed):
            train(cfg, str(out), progress=False)
        monkeypatch.setattr(runfolder.os, "replace", real_replace)
        # what a real kill leaves besides (here the raised Killed still ran atomic_write's clean-up)
        (out / f"{name}.{holder_pid()}.tmp").write_bytes(b"")
        for ckpt in ("last.pt", "best.pt"):
            if (out / ckpt).exists():
                load_checkpoint_state(str(out / ckpt))  # every file present is complete
        (out / runfolder.LOCK_NAME).unlink(missing_ok=True)  # (a dead process's lock; see the lock test)
        has_last = (out / "last.pt").exists()
        resumed = train(cfg, str(out), resume=has_last, overwrite=not has_last, progress=False)
        files = sorted(os.listdir(out))
        assert files == ["best.pt", "config.json", "last.pt", "log.jsonl"], (name, files)  # .tmp cleaned
        best, last = load_checkpoint_state(str(out / "best.pt")), load_checkpoint_state(str(out / "last.pt"))
        assert last["epoch"] == 2 and best["best_ap"] == last["best_ap"] == resumed["best_ap"]
        epochs = [json.loads(line).get("epoch") for line in (out / "log.jsonl").read_text().splitlines()
                  if json.loads(line)["kind"] == "epoch"]
        assert epochs == [1, 2], (name, epochs)


def test_resume_refuses_changed_overrides_or_applies_and_logs_them(tmp_path, tiny_root, capsys):
    out = tmp_path / "run"
    argv = ["train", "--config", "synthpose_w16_128x96_cpu", "--out", str(out), "--no-progress",
            *tiny_overrides(tiny_root), "epochs=1", "val_every=0"]
    assert main(argv) == 0
    capsys.readouterr()
    before = snapshot(out)
    resume = ["train", "--config", "synthpose_w16_128x96_cpu", "--out", str(out), "--no-progress", "--resume"]
    assert main([*resume, "lr=1e9", "epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "differs from the run's" in err and "epochs: 1 -> 2" in err and "lr: 0.002 -> 1000000000.0" in err
    assert snapshot(out) == before
    with pytest.raises(SystemExit) as exc:
        main([*resume, "--overwrite"])
    assert exc.value.code == 2 and "exclude each other" in capsys.readouterr().err
    # the stored config is the default on resume: no overrides, nothing to refuse (and nothing to do)
    assert main([*resume]) == 0
    capsys.readouterr()
    assert main([*resume, "lr=1e-3", "epochs=2", "--apply-changes"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config_changes"] == {"epochs": [1, 2], "lr": [0.002, 0.001]}
    state = load_checkpoint_state(str(out / "last.pt"))
    assert state["config"]["lr"] == 1e-3 and state["optimizer"]["param_groups"][0]["initial_lr"] == 1e-3
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    change = [r for r in records if r["kind"] == "config_change"]
    expected = {"epochs": [1, 2], "lr": [0.002, 0.001]}
    assert change == [{"kind": "config_change", "epoch": 1, "changes": expected}]
    # the lr of epoch 2's steps follows the new base lr (cosine schedule of the recipe)
    steps = [r for r in records if r["kind"] == "step" and r["epoch"] == 2]
    cfg = train_mod.config_from_dict(state["config"])
    per_epoch = len(steps)
    for r in steps:
        t = per_epoch + r["step"]  # the lr logged after optimizer step t
        assert r["lr"] == pytest.approx(1e-3 * train_mod.learning_rate_factor(cfg, t, per_epoch), rel=1e-9)


def test_run_folder_command_errors(tmp_path, tiny_root, capsys):
    base = ["train", "--config", "synthpose_w16_128x96_cpu", "--no-progress", *tiny_overrides(tiny_root)]
    assert main([*base, "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert f"cannot resume: no last.pt in {tmp_path / 'none'}" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main([*base, "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err == f"hrnet-edu train: error: --out {tmp_path / 'afile'} exists and is not a folder\n"


# ----------------------------------------------------------------------------- checkpoints and commands
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from hrnet_edu.configs import synthpose_w16_128x96_cpu as cpu

    cfg = dataclasses.replace(cpu(), model=W8)
    path = tmp_path_factory.mktemp("ckpt") / "w8.pt"
    torch.manual_seed(0)
    torch.save({"model": HRNet(W8).state_dict(), "config": dataclasses.asdict(cfg), "epoch": 0}, path)
    return str(path)


@pytest.mark.parametrize("content, reason", [(b"", "empty file"),
                                             (np.random.default_rng(0).bytes(4096),
                                              "not a PyTorch checkpoint file"),
                                             ("truncate", "truncated or corrupted")])
def test_bad_checkpoint_files_are_one_line_without_torch_advice(tmp_path, checkpoint, content, reason,
                                                                capsys):
    path = tmp_path / "bad.pt"
    path.write_bytes(open(checkpoint, "rb").read()[:5000] if content == "truncate" else content)
    for argv in (["evaluate", "--checkpoint", str(path)], ["predict", "x.png", "--checkpoint", str(path),
                                                          "--out", str(tmp_path / "o.png")],
                 ["export", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"not a checkpoint: {path} ({reason}" in err
        assert "weights_only" not in err
    with pytest.raises(InputError, match=reason):
        load_checkpoint_state(str(path))


def test_pickled_objects_are_refused_as_not_a_checkpoint(tmp_path, capsys):
    import collections

    torch.save({"model": collections.OrderedDict(), "config": object.__new__(collections.UserDict)},
               tmp_path / "obj.pt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "obj.pt")]) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint" in err and "refused" in err and "weights_only" not in err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    (tmp_path / "bad.pt").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        main(["--debug", "evaluate", "--checkpoint", str(tmp_path / "bad.pt")])
    with pytest.raises(InputError, match="empty file"):
        main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt"), "--debug"])
    monkeypatch.setenv("HRNET_EDU_DEBUG", "1")
    with pytest.raises(InputError, match="empty file"):
        main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt")])


def test_wrong_architecture_is_one_line(checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", checkpoint, "--config", "synthpose_w32_256x192"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an HRNet of config 'synthpose_w32_256x192'" in err
    assert "mis-shaped (" in err and "more lines with --debug" in err


def test_evaluate_takes_ann_and_images_directly_and_checks_out_first(tmp_path, checkpoint, capsys):
    data = valid_coco()
    ann, images = write(tmp_path, data)
    common = ["evaluate", "--checkpoint", checkpoint, "--device", "cpu", "--workers", "0", "--no-progress"]
    # the checkpoint's own config points at other files: --ann/--images are all a user needs, and a
    # data folder override beside them cannot apply: refused, not dropped
    assert main([*common, "--ann", ann, "--images", images, "data_root=/no/such/coco"]) == 2
    assert "data_root= and --ann/--images both say what to evaluate" in capsys.readouterr().err
    assert main([*common, "--ann", ann, "--images", images]) == 0
    out = capsys.readouterr().out
    assert f"3 instances (gt boxes) of {ann}" in out and "AP50" in out
    assert main([*common, "--ann", ann]) == 2
    assert "--ann and --images go together" in capsys.readouterr().err
    (tmp_path / "outdir").mkdir()
    start = time.perf_counter()
    assert main([*common, "--ann", ann, "--images", images, "--out", str(tmp_path / "outdir")]) == 2
    assert time.perf_counter() - start < 5  # refused before the evaluation, not after it
    assert "is a folder" in capsys.readouterr().err
    # a missing image: refused by the pre-flight check, or left out and counted with --skip-bad-images
    os.remove(os.path.join(images, "002.png"))
    assert main([*common, "--ann", ann, "--images", images]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 2 images" in err and "002.png" in err
    assert main([*common, "--ann", ann, "--images", images, "--skip-bad-images"]) == 0
    captured = capsys.readouterr()
    assert "skipped: missing_image 1" in captured.out and "note: left out 1 samples" in captured.err
    for device, message in (("gpu", "unknown device 'gpu'"), ("cuda:0", "CUDA is not available")):
        if device.startswith("cuda") and torch.cuda.is_available():
            continue
        assert main([*common, "--ann", ann, "--images", images, "--device", device]) == 2
        assert message in capsys.readouterr().err


def test_predict_refuses_impossible_boxes_and_folder_outputs(tmp_path, checkpoint, capsys):
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(tmp_path / "in.png")
    base = ["predict", str(tmp_path / "in.png"), "--checkpoint", checkpoint, "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "p.png"), "--box", "200,10,30,30"]) == 2
    assert "lies entirely outside the image (128x96 pixels)" in capsys.readouterr().err
    (tmp_path / "d").mkdir()
    for out in (str(tmp_path / "d"), str(tmp_path / "d") + "/", str(tmp_path / "d" / ".png")):
        assert main([*base, "--out", out]) == 2
        assert "--out" in capsys.readouterr().err
    assert os.listdir(tmp_path / "d") == []


def test_synth_into_an_impossible_folder_is_one_line(capsys):
    assert main(["synth", "--out", "/proc/x", "--train", "1", "--val", "0", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create the output folder '/proc/x'" in err


def test_the_python_api_applies_and_logs_changes_as_a_notebook_extends_a_run(tmp_path, tiny_root):
    """``train(cfg, out, resume=True)`` with more epochs (notebook 07's chunked run): applied, logged."""
    cfg = tiny_config(tiny_root, val_every=0)
    train(dataclasses.replace(cfg, epochs=1), str(tmp_path), progress=False)
    summary = train(cfg, str(tmp_path), resume=True, progress=False)
    assert summary["epochs"] == 2 and summary["config_changes"] == {"epochs": [1, 2]}
    with pytest.raises(InputError, match=r"differs from the run's .*epochs: 2 -> 3"):
        train(dataclasses.replace(cfg, epochs=3), str(tmp_path), resume=True, apply_changes=False,
              progress=False)

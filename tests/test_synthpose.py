"""SynthPose: exact COCO format (pycocotools loads it, GT scores AP 1), label invariants,
left/right convention, determinism, argument errors, and the committed sample reproduces."""

import contextlib
import copy
import io
import json
import math
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu.cli import main
from hrnet_edu.data import synthpose
from hrnet_edu.keypoints import COCO17, coco_person_category

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data_samples", "synthpose")
SIZE = 256
NUM_KEYPOINTS = COCO17.num_joints


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    summary = synthpose.generate(out, n_train=24, n_val=8, seed=3, image_size=SIZE, workers=1)
    return out, summary


def _quiet_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _keypoint_ap(coco_gt: COCO, results: list[dict]) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def _gt_as_results(coco_gt: COCO) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": list(a["keypoints"]), "score": 1.0}
            for a in coco_gt.dataset["annotations"]]  # fmt: skip


def test_layout_and_pycocotools_load(dataset):
    out, summary = dataset
    assert summary["n_train"] == 24 and summary["n_val"] == 8
    meta = json.loads((out / "synthpose.json").read_text())
    assert (meta["seed"], meta["n_train"], meta["n_val"], meta["image_size"]) == (3, 24, 8, SIZE)
    assert meta["version"] == synthpose.VERSION
    for split, n in (("train", 24), ("val", 8)):
        coco = _quiet_coco(out / "annotations" / f"person_keypoints_{split}.json")
        assert coco.dataset["categories"] == [coco_person_category()]
        assert len(coco.getImgIds()) == n and len(coco.getAnnIds()) == summary[f"n_persons_{split}"]
        assert len(coco.getAnnIds()) >= n  # every image holds at least one person on average
        for img in coco.dataset["images"]:
            assert img["file_name"].startswith(f"{split}_") and img["file_name"].endswith(".jpg")
            with Image.open(out / "images" / img["file_name"]) as im:
                assert im.size == (img["width"], img["height"]) == (SIZE, SIZE) and im.mode == "RGB"
    ids = [a["id"] for s in ("train", "val") for a in json.loads(
        (out / "annotations" / f"person_keypoints_{s}.json").read_text())["annotations"]]  # fmt: skip
    assert len(ids) == len(set(ids))


def test_label_invariants(dataset):
    out, _ = dataset
    for split in ("train", "val"):
        data = json.loads((out / "annotations" / f"person_keypoints_{split}.json").read_text())
        sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
        for a in data["annotations"]:
            k = np.asarray(a["keypoints"], dtype=float).reshape(NUM_KEYPOINTS, 3)
            v, (w_img, h_img) = k[:, 2], sizes[a["image_id"]]
            x, y, w, h = a["bbox"]
            assert set(np.unique(v)) <= {0, 1, 2}, a["id"]
            assert a["num_keypoints"] == int((v > 0).sum()) >= 3, a["id"]
            assert np.all(k[v == 0, :2] == 0), a["id"]
            labelled = k[v > 0, :2]
            assert np.all((labelled >= 0) & (labelled <= [w_img - 1, h_img - 1])), a["id"]
            assert np.all((labelled >= [x, y]) & (labelled <= [x + w, y + h])), a["id"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= w_img and y + h <= h_img, a["id"]
            assert 0 < a["area"] <= w * h, a["id"]
            assert a["iscrowd"] == 0 and a["category_id"] == 1


def test_visibility_mix(dataset):
    """Truncation, occlusion and unlabelled back-of-head points all occur, but most joints are seen."""
    out, _ = dataset
    data = json.loads((out / "annotations" / "person_keypoints_train.json").read_text())
    v = np.array([a["keypoints"][2::3] for a in data["annotations"]])
    fractions = [(v == i).mean() for i in range(3)]
    assert fractions[0] > 0.02 and fractions[1] > 0.02 and fractions[2] > 0.5, fractions


def test_ground_truth_scores_ap_one_and_noise_lowers_it(dataset):
    out, _ = dataset
    for split in ("train", "val"):
        coco_gt = _quiet_coco(out / "annotations" / f"person_keypoints_{split}.json")
        results = _gt_as_results(coco_gt)
        assert _keypoint_ap(coco_gt, results) == pytest.approx(1.0)
    # the same noise directions, scaled: OKS falls for every person, so AP must fall
    coco_gt = _quiet_coco(out / "annotations" / "person_keypoints_train.json")
    results = _gt_as_results(coco_gt)
    directions = np.random.default_rng(0).normal(size=(len(results), NUM_KEYPOINTS, 2))
    aps = []
    for sigma in (0.0, 1.0, 3.0, 6.0, 12.0):
        noisy = copy.deepcopy(results)
        for r, d in zip(noisy, directions):
            k = np.asarray(r["keypoints"], dtype=float).reshape(NUM_KEYPOINTS, 3)
            k[:, :2] += sigma * d * (k[:, 2:] > 0)
            r["keypoints"] = k.ravel().tolist()
        aps.append(_keypoint_ap(coco_gt, noisy))
    assert aps[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(aps, aps[1:])), aps


def test_left_appears_on_image_right_when_facing_camera():
    """The person's left shoulder is on the image right iff the face is toward the camera, and
    the nose is labelled only then (a head seen from behind hides its face)."""
    rng = np.random.default_rng(1)
    facing, heights = 0, []
    for _ in range(200):
        fig = synthpose.sample_figure(rng, np.array([128.0, 128.0]), 150.0, "stand", tilt=0.0)
        front = math.cos(fig.yaw) > 0
        facing += front
        assert (fig.joints[5, 0] > fig.joints[6, 0]) == front  # left_shoulder vs right_shoulder
        assert (fig.joints[11, 0] > fig.joints[12, 0]) == front  # hips
        if fig.face_state[0] > 0:
            assert math.cos(fig.yaw) > -0.3
        top = fig.head_center[1] - fig.head_axes[1]
        heights.append(max(fig.joints[15, 1], fig.joints[16, 1]) - top)
    assert 80 < facing < 190  # both views occur
    # human proportions: an upright standing figure is as tall as asked, unless its legs point
    # toward the camera (foreshortened), which only shortens it
    assert 0.9 * 150 < np.median(heights) < 1.02 * 150
    assert 0.55 * 150 < min(heights) <= max(heights) < 1.03 * 150


def test_determinism_independent_of_workers(tmp_path):
    a = synthpose.generate(tmp_path / "a", 5, 3, seed=11, image_size=128, workers=1)
    b = synthpose.generate(tmp_path / "b", 5, 3, seed=11, image_size=128, workers=2)
    c = synthpose.generate(tmp_path / "c", 5, 3, seed=12, image_size=128, workers=1)
    for key in ("train_json", "val_json"):
        assert open(a[key], "rb").read() == open(b[key], "rb").read()
        assert open(a[key], "rb").read() != open(c[key], "rb").read()
    names = sorted(os.listdir(a["images_dir"]))
    assert names == sorted(os.listdir(b["images_dir"])) and len(names) == 8
    for name in names:
        assert open(os.path.join(a["images_dir"], name), "rb").read() == open(
            os.path.join(b["images_dir"], name), "rb").read()  # fmt: skip


def test_rerun_into_same_folder_removes_stale_images(tmp_path):
    synthpose.generate(tmp_path, 4, 2, seed=0, image_size=96, workers=1)
    synthpose.generate(tmp_path, 2, 1, seed=0, image_size=96, workers=1)
    expected = ["train_000001.jpg", "train_000002.jpg", "val_000001.jpg"]
    assert sorted(os.listdir(tmp_path / "images")) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_train=-1, n_val=2), "n_train must be a non-negative integer"),
        (dict(n_train=2, n_val=-3), "n_val must be a non-negative integer"),
        (dict(n_train=0, n_val=0), "nothing to generate"),
        (dict(n_train=2.5, n_val=1), "n_train must be a non-negative integer"),
        (dict(n_train=1, n_val=1, seed=-4), "seed must be a non-negative integer"),
        (dict(n_train=1, n_val=1, image_size=16), "image_size must be in"),
        (dict(n_train=1, n_val=1, workers=0), "workers must be at least 1"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthpose.generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()  # nothing written before the arguments are checked


def test_output_folder_that_is_a_file(tmp_path):
    path = tmp_path / "taken"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match="exists and is a file"):
        synthpose.generate(path, 1, 1)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "images").write_text("")
    with pytest.raises(ValueError, match="images.*exists and is a file"):
        synthpose.generate(tmp_path / "d", 1, 1)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--train", "2", "--val", "1", "--seed", "5", "--size", "96"]
    assert main(["synth", *argv]) == 0
    assert "2 train images" in capsys.readouterr().out
    meta = json.loads((out / "synthpose.json").read_text())
    assert (meta["seed"], meta["image_size"]) == (5, 96)
    (tmp_path / "file").write_text("")
    for argv, message in (
        (["--out", str(tmp_path / "x"), "--train", "-2", "--val", "1"], "n_train must be a non-negative"),
        (["--out", str(tmp_path / "file"), "--train", "2", "--val", "1"], "exists and is a file"),
        (["--out", str(tmp_path / "x"), "--train", "two", "--val", "1"], "invalid int value"),
        (["--train", "2", "--val", "1"], "--out"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["synth", *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_committed_sample_regenerates_exactly(tmp_path):
    """Regenerating data_samples/synthpose with the arguments in its synthpose.json gives
    byte-identical annotation files and the same images (up to the JPEG codec)."""
    meta = json.loads(open(os.path.join(SAMPLES, "synthpose.json")).read())
    assert meta["version"] == synthpose.VERSION, "the generator changed: regenerate data_samples/synthpose"
    summary = synthpose.generate(tmp_path, meta["n_train"], meta["n_val"], meta["seed"], meta["image_size"],
                                 workers=min(2, os.cpu_count() or 1))  # fmt: skip
    for split in ("train", "val"):
        committed = os.path.join(SAMPLES, "annotations", f"person_keypoints_{split}.json")
        assert open(summary[f"{split}_json"], "rb").read() == open(committed, "rb").read(), split
    names = sorted(os.listdir(os.path.join(SAMPLES, "images")))
    assert names == sorted(os.listdir(summary["images_dir"]))
    for name in names[:: max(1, len(names) // 40)]:  # decoded pixels of a spread of images
        new = np.asarray(Image.open(os.path.join(summary["images_dir"], name)), dtype=float)
        old = np.asarray(Image.open(os.path.join(SAMPLES, "images", name)), dtype=float)
        assert np.abs(new - old).mean() < 1.0, name


def test_label_rules_on_a_hand_made_scene():
    """v = 0 outside the image or on the back of the head, v = 1 under an occluder, under a person
    drawn later, or hidden by the own head; area = mask pixels; bbox = mask extent (pixel j → [j, j+1))."""
    from types import SimpleNamespace

    size = 32
    joints = np.tile([10.0, 10.0], (NUM_KEYPOINTS, 1))
    joints[3] = [40.0, 5.0]  # outside the image
    joints[5] = [20.0, 20.0]  # under the occluder
    joints[6] = [5.0, 25.0]  # under the person drawn in front
    face_state = np.full(NUM_KEYPOINTS, 2)
    face_state[0], face_state[1] = 0, 1  # nose on the back of the head, left eye behind the head
    back = SimpleNamespace(joints=joints, face_state=face_state)
    front = SimpleNamespace(joints=np.tile([28.0, 28.0], (NUM_KEYPOINTS, 1)),
                            face_state=np.full(NUM_KEYPOINTS, 2))  # fmt: skip
    mask_back = np.zeros((size, size), bool)
    mask_back[8:27, 4:22] = True
    mask_front = np.zeros((size, size), bool)
    mask_front[24:32, 2:32] = True
    cover = np.zeros((size, size), bool)
    cover[19:22, 19:22] = True
    labels = synthpose._label([back, front], [mask_back, mask_front], cover, size)
    k = labels[0]["keypoints"]
    assert k[3].tolist() == [0, 0, 0] and k[0].tolist() == [0, 0, 0]
    assert k[5, 2] == 1 and k[6, 2] == 1 and k[1, 2] == 1 and k[2].tolist() == [10, 10, 2]
    assert labels[0]["area"] == mask_back.sum() and labels[0]["bbox"] == [4.0, 8.0, 18.0, 19.0]
    assert np.all(labels[1]["keypoints"][:, 2] == 2)  # nothing is in front of the front person

"""Results files, the COCOeval wrapper and the reference's PCK accuracy."""

import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu.coco_eval import (
    CocoKeypointStats,
    make_results,
    rescore,
    results_ap,
    validate_results,
    write_results,
)
from hrnet_edu.data.ground_truth import GroundTruth, read_ground_truth
from hrnet_edu.keypoints import COCO17, coco_person_category
from hrnet_edu.losses import pck_accuracy

K = COCO17.num_joints


def small_dataset(seed=0, n_images=6):
    """An in-memory COCO keypoint set: 1–4 persons per image, medium and large, a few
    partly labelled, one unlabelled person and one crowd region."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for img_id in range(1, n_images + 1):
        images.append({"id": img_id, "width": 640, "height": 480, "file_name": f"{img_id:06d}.jpg"})
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.uniform(40, 200), rng.uniform(60, 300)
            x0, y0 = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            xy = np.stack([rng.uniform(x0, x0 + w, K), rng.uniform(y0, y0 + h, K)], axis=1)
            v = np.where(rng.random(K) < 0.8, 2, 0)
            xy[v == 0] = 0
            anns.append({"image_id": img_id, "bbox": [x0, y0, w, h], "area": w * h * 0.6,
                         "keypoints": np.concatenate([xy, v[:, None]], 1).reshape(-1).tolist(),
                         "num_keypoints": int((v > 0).sum()), "iscrowd": 0, "category_id": 1})  # fmt: skip
    anns[0]["keypoints"] = [0.0] * (3 * K)  # a person with no labelled keypoint
    anns[0]["num_keypoints"] = 0
    anns.append({"image_id": 2, "bbox": [10.0, 10.0, 300.0, 200.0], "area": 40000.0, "iscrowd": 1,
                 "keypoints": [0.0] * (3 * K), "num_keypoints": 0, "category_id": 1})  # fmt: skip
    for i, a in enumerate(anns):
        a["id"] = i + 1
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns, "categories": [coco_person_category()]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def gt_as_results(coco):
    """Every labelled, non-crowd person predicted exactly, score 1."""
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": list(a["keypoints"]), "score": 1.0}
        for a in coco.dataset["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]


def perturbed_results(coco, seed=0, noise=6.0):
    rng = np.random.default_rng(seed)
    out = []
    for r in gt_as_results(coco):
        kp = np.asarray(r["keypoints"]).reshape(K, 3)
        kp[:, :2] += rng.normal(size=(K, 2)) * noise * rng.uniform(0.2, 2)
        out.append({**r, "keypoints": kp.reshape(-1).tolist(), "score": float(rng.uniform(0.1, 1))})
        if rng.random() < 0.3:  # a false positive elsewhere in the image
            fp = kp.copy()
            fp[:, :2] = fp[:, :2] * 0.3 + 200
            out.append({**r, "keypoints": fp.reshape(-1).tolist(), "score": float(rng.uniform(0, 1))})
    return out


def pycocotools_stats(coco, results):
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_ground_truth_as_prediction_gives_ap_one(capsys):
    coco = small_dataset()
    results = gt_as_results(coco)
    before = copy.deepcopy(results)
    stats = results_ap(coco, results, spec=COCO17)
    assert capsys.readouterr().out == ""  # quiet unless verbose
    assert results == before  # pycocotools writes into entries: we must have passed a copy
    assert isinstance(stats, CocoKeypointStats) and stats.num_results == len(results) and not stats.empty
    for name in ("ap", "ap50", "ap75", "ar", "ar50", "ar75"):
        assert getattr(stats, name) == pytest.approx(1.0)
    with pytest.raises(AttributeError):
        stats.ap = 0.5  # frozen


def test_wrapper_equals_pycocotools_on_perturbed_predictions():
    coco = small_dataset(seed=1)
    results = perturbed_results(coco, seed=2)
    stats = results_ap(coco, results, spec=COCO17)
    np.testing.assert_allclose(list(stats.as_dict().values()), pycocotools_stats(coco, results), atol=1e-12)
    assert 0 < stats.ap < 1
    assert list(stats.as_dict()) == ["AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"]
    assert "AP50" in str(stats) and f"{stats.ap:5.3f}" in str(stats)


def test_a_coco_object_or_a_path_needs_its_spec(tmp_path):
    # no silent COCO-17: a pycocotools COCO or a file says nothing of its keypoint set
    coco = small_dataset()
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(coco.dataset))
    for ground_truth in (coco, str(gt_path)):
        with pytest.raises(ValueError, match="needs its keypoint spec"):
            results_ap(ground_truth, gt_as_results(coco))
        with pytest.raises(ValueError, match="needs its keypoint spec"):
            validate_results(gt_as_results(coco), ground_truth)
    # a GroundTruth record carries its spec: the same numbers as the COCO object with spec=
    gt = read_ground_truth(gt_path, COCO17, for_eval=True)
    assert isinstance(gt, GroundTruth) and gt.spec is COCO17 and gt.for_eval
    results = perturbed_results(coco, seed=5)
    assert results_ap(gt, results) == results_ap(coco, results, spec=COCO17)
    assert results_ap(GroundTruth(coco, COCO17), results) == results_ap(coco, results, spec="coco17")


def test_verbose_shows_pycocotools_printout(capsys):
    coco = small_dataset()
    results_ap(coco, gt_as_results(coco), verbose=True, spec=COCO17)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ]" in capsys.readouterr().out


def test_paths_round_trip_and_img_ids(tmp_path):
    coco = small_dataset(seed=3)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(coco.dataset))
    results = perturbed_results(coco, seed=4)
    res_path = write_results(results, tmp_path / "out" / "results.json")
    assert json.loads(open(res_path).read()) == results
    assert results_ap(str(gt_path), res_path, spec=COCO17) == results_ap(coco, results, spec=COCO17)
    subset = results_ap(coco, results, img_ids=[1, 2], spec=COCO17)
    kept = [r for r in results if r["image_id"] in (1, 2)]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(kept)), "keypoints")
        ev.params.imgIds = [1, 2]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    np.testing.assert_allclose(list(subset.as_dict().values()), ev.stats, atol=1e-12)
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        results_ap(coco, str(tmp_path / "nowhere.json"), spec=COCO17)


def test_empty_results_give_zeros_and_a_flag():
    coco = small_dataset()
    stats = results_ap(coco, [], spec=COCO17)
    assert stats.empty and stats.num_results == 0 and "no results" in stats.note
    assert set(stats.as_dict().values()) == {0.0}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.update(keypoints=r["keypoints"][:-3]),
            r"results\[1\] \(image_id \d+\): keypoints must be 51"),
        (lambda r: r.update(image_id=999), r"results\[1\] \(image_id 999\): unknown image id"),
        (lambda r: r["keypoints"].__setitem__(7, float("nan")), r"results\[1\].*NaN/inf .*joint 2"),
        (lambda r: r.update(score=float("inf")), r"results\[1\].*score is inf"),
        (lambda r: r.pop("score"), r"results\[1\] is missing field\(s\) \['score'\]"),
        (lambda r: r.update(category_id=3), r"results\[1\].*unknown category_id 3"),
        (lambda r: r.update(keypoints="abc"), r"results\[1\].*must be numbers"),
    ],
)
def test_malformed_entries_give_clear_errors(change, message):
    coco = small_dataset()
    results = gt_as_results(coco)
    change(results[1])
    with pytest.raises(ValueError, match=message):
        validate_results(results, coco, spec=COCO17)
    with pytest.raises(ValueError, match=message):
        results_ap(coco, results, spec=COCO17)


def test_validate_rejects_non_lists():
    with pytest.raises(ValueError, match="list of dicts"):
        validate_results({"image_id": 1}, small_dataset(), spec=COCO17)
    with pytest.raises(ValueError, match=r"results\[0\] must be a dict"):
        validate_results([[1, 2]], small_dataset(), spec=COCO17)


def reference_rescore(box_scores, conf, thr):
    out = []
    for box, c in zip(box_scores, conf):
        valid = [x for x in c if x > thr]
        out.append(box * (sum(valid) / len(valid) if valid else 0))
    return np.array(out)


def test_rescore_equals_reference_loop():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 0.6, size=(30, K))
    conf[3] = 0.1  # no keypoint above the threshold → 0
    box = rng.uniform(0.5, 1, size=30)
    ours = rescore(box, conf, threshold=0.2)
    np.testing.assert_allclose(ours, reference_rescore(box, conf, 0.2), rtol=1e-12)
    assert ours[3] == 0.0
    np.testing.assert_allclose(rescore(torch.from_numpy(box), torch.from_numpy(conf)), ours)


def test_make_results_layout():
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 100, size=(3, K, 2))
    conf = rng.uniform(0, 1, size=(3, K))
    res = make_results(np.array([5, 5, 9]), torch.from_numpy(kp), conf, [0.3, 0.2, 0.1])
    assert [r["image_id"] for r in res] == [5, 5, 9] and all(r["category_id"] == 1 for r in res)
    flat = np.asarray(res[1]["keypoints"]).reshape(K, 3)
    np.testing.assert_allclose(flat[:, :2], kp[1])
    np.testing.assert_allclose(flat[:, 2], conf[1])
    assert json.loads(json.dumps(res)) == res  # plain JSON types
    with pytest.raises(ValueError, match="keypoints"):
        make_results([1], kp[:1, :, :1], conf[:1], [1.0])


def reference_accuracy(output, target, thr=0.5):
    """Transcription of the reference's get_max_preds + calc_dists + dist_acc + accuracy loops."""

    def get_max_preds(hm):
        n, k, _, w = hm.shape
        flat = hm.reshape(n, k, -1)
        idx, maxv = flat.argmax(2)[..., None], flat.max(2)[..., None]
        preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
        preds[:, :, 0] = preds[:, :, 0] % w
        preds[:, :, 1] = np.floor(preds[:, :, 1] / w)
        return preds * np.tile(maxv > 0, (1, 1, 2)).astype(np.float32)

    pred, targ = get_max_preds(output), get_max_preds(target)
    h, w = output.shape[2], output.shape[3]
    norm = np.ones((pred.shape[0], 2)) * np.array([h, w]) / 10
    dists = np.zeros((pred.shape[1], pred.shape[0]))
    for n in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            if targ[n, c, 0] > 1 and targ[n, c, 1] > 1:
                dists[c, n] = np.linalg.norm(pred[n, c] / norm[n] - targ[n, c] / norm[n])
            else:
                dists[c, n] = -1
    acc, avg, cnt = [], 0.0, 0
    for c in range(pred.shape[1]):
        valid = dists[c] != -1
        a = (dists[c][valid] < thr).sum() / valid.sum() if valid.sum() > 0 else -1
        acc.append(a)
        if a >= 0:
            avg, cnt = avg + a, cnt + 1
    return np.array(acc), (avg / cnt if cnt else 0), cnt


def test_pck_accuracy_equals_reference():
    rng = np.random.default_rng(2)
    n, h, w = 6, 64, 48
    target = np.zeros((n, K, h, w), np.float32)
    ys, xs = rng.integers(0, h, size=(n, K)), rng.integers(0, w, size=(n, K))
    target[np.arange(n)[:, None], np.arange(K), ys, xs] = 1.0
    target[:, 4] = 0  # joint 4 never labelled → −1
    target[0, 2] = 0
    noise = rng.uniform(0, 0.9, size=target.shape).astype(np.float32)
    pred = target + noise * (rng.random((n, K, 1, 1)) < 0.4)
    per_joint, mean, count = pck_accuracy(torch.from_numpy(pred), torch.from_numpy(target))
    ref_acc, ref_mean, ref_cnt = reference_accuracy(pred, target)
    np.testing.assert_allclose(per_joint, ref_acc, atol=1e-12)
    assert mean == pytest.approx(ref_mean) and count == ref_cnt == K - 1
    assert per_joint[4] == -1
    perfect = pck_accuracy(target, target)
    assert perfect[1] == 1.0


HAVE_SAMPLES = os.path.isdir(os.path.join(SAMPLES, "annotations"))


@pytest.mark.skipif(not HAVE_SAMPLES, reason="SynthPose sample not there")
def test_synthpose_val_ground_truth_gives_ap_one():
    coco = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(coco)
    stats = results_ap(gt, gt_as_results(gt), spec=COCO17)
    assert stats.ap == pytest.approx(1.0) and stats.ar == pytest.approx(1.0)

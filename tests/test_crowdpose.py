"""Another keypoint set through the data and evaluation layers: SynthPose in CrowdPose's layout
(14 joints, no ``area``), a HumanArt-like category with more names than its annotations carry,
and PoseTrack-like annotations without ``area`` — each checked against plain pycocotools."""

import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest
from conftest import SAMPLES
from matplotlib.figure import Figure
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hrnet_edu import analysis, coco_eval
from hrnet_edu.data import synthpose
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.data.ground_truth import BOX_AREA_FACTOR, read_ground_truth
from hrnet_edu.data.transforms import AugmentConfig
from hrnet_edu.errors import InputError
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import COCO17, CROWDPOSE14
from hrnet_edu.viz import draw_pose

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGES = os.path.join(SAMPLES, "images")
CROWDPOSE_VAL = os.path.join(SAMPLES, "annotations", "crowdpose14_val.json")
CODEC = HeatmapCodec((128, 96))
COCO_VAL = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")


def plain_cocoeval(data: dict, results: list[dict], sigmas) -> np.ndarray:
    """The ten stats of plain pycocotools on ``data`` (which must hold every ``area``) with ``sigmas``."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(data)
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def gt_as_results(data: dict, noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in data["annotations"]:
        kps = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kps[:, :2] += rng.normal(0, noise, kps[:, :2].shape) if noise else 0.0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kps.ravel().tolist(),
                    "score": float(rng.random()) if noise else 1.0})
    return out


def with_box_areas(data: dict) -> dict:
    data = copy.deepcopy(data)
    for a in data["annotations"]:
        a.setdefault("area", 0.53 * a["bbox"][2] * a["bbox"][3])  # crowdposetools' tmparea
    return data


@pytest.fixture(scope="module")
def crowdpose_val() -> dict:
    with open(CROWDPOSE_VAL) as f:
        return json.load(f)


def test_crowdpose_layout_file_is_crowdposes_format(crowdpose_val):
    assert crowdpose_val["categories"] == [CROWDPOSE14.coco_category()]
    anns = crowdpose_val["annotations"]
    assert anns and all(len(a["keypoints"]) == 42 and "area" not in a for a in anns)


def test_crowdpose_layout_regenerates_and_agrees_with_the_coco_layout(crowdpose_val):
    """The committed CrowdPose-layout labels are SynthPose's own (re-derived for a spread of images),
    of the same persons as the COCO-17 file: body joints identical, neck = the shoulders' midpoint,
    the head's top above the face."""
    meta = json.loads(open(os.path.join(SAMPLES, "synthpose.json")).read())
    with open(COCO_VAL) as f:
        coco17 = {a["id"]: a for a in json.load(f)["annotations"]}
    by_image: dict[int, list] = {}
    for a in crowdpose_val["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for index in range(0, meta["n_val"], 15):
        _, entry, anns = synthpose.make_image(meta["seed"], "val", index, meta["image_size"], "crowdpose14")
        assert anns == by_image.get(entry["id"], []), index
    checked = 0
    for a in crowdpose_val["annotations"]:
        cp, c17 = np.reshape(a["keypoints"], (14, 3)), np.reshape(coco17[a["id"]]["keypoints"], (17, 3))
        np.testing.assert_array_equal(cp[:12], c17[5:])
        if cp[13, 2] and c17[5, 2] and c17[6, 2]:
            midpoint = (c17[5, :2] + c17[6, :2]) / 2
            np.testing.assert_allclose(cp[13, :2], midpoint, atol=0.011)  # the JSON has 2 decimals
        face = c17[:5][c17[:5, 2] > 0]
        if cp[12, 2] and len(face) and cp[13, 2]:
            # the head's top is farther from the neck than every face point
            reach = np.linalg.norm(face[:, :2] - cp[13, :2], axis=1).max()
            assert np.linalg.norm(cp[12, :2] - cp[13, :2]) > reach
            checked += 1
    assert checked > 200


def test_dataset_reads_the_crowdpose_layout_with_its_spec(crowdpose_val):
    ds = CocoKeypoints(CROWDPOSE_VAL, IMAGES, codec=CODEC, train=True, augment=AugmentConfig(),
                       spec="crowdpose14")
    assert ds.spec is CROWDPOSE14 and len(ds) == len(crowdpose_val["annotations"])
    sample = ds[0]
    assert sample["target"].shape == (14, 32, 24) and sample["joints"].shape == (14, 3)
    # missing areas became 0.53 · w · h where the file was read
    coco = ds.coco
    assert ds.ground_truth.area_from_box == len(crowdpose_val["annotations"])
    assert ds.ground_truth.spec is CROWDPOSE14
    for ann in coco.dataset["annotations"]:
        assert ann["area"] == pytest.approx(BOX_AREA_FACTOR * ann["bbox"][2] * ann["bbox"][3])
    # the COCO-17 spec refuses it, naming the spec to pass
    with pytest.raises(InputError, match=r"lists 14 keypoints .* has K = 17.*spec='crowdpose14'"):
        CocoKeypoints(CROWDPOSE_VAL, IMAGES, codec=CODEC, spec=COCO17)


def test_flip_augmentation_swaps_crowdpose_pairs():
    """A mirrored training crop holds the mirror image of the unflipped crop's joints, with left and
    right exchanged by the spec's flip index (head top and neck stay in place)."""
    plain = AugmentConfig(scale_factor=0, rotation_factor=0, rotation_prob=0, flip_prob=0, half_body_prob=0)
    flip = AugmentConfig(scale_factor=0, rotation_factor=0, rotation_prob=0, flip_prob=1, half_body_prob=0)
    a = CocoKeypoints(CROWDPOSE_VAL, IMAGES, codec=CODEC, augment=plain, spec=CROWDPOSE14)
    b = CocoKeypoints(CROWDPOSE_VAL, IMAGES, codec=CODEC, augment=flip, spec=CROWDPOSE14)
    for i in range(0, len(a), 37):
        ja, jb = a[i]["joints"].numpy(), b[i]["joints"].numpy()
        mirrored = jb[list(CROWDPOSE14.flip_index)]
        both = (ja[:, 2] > 0) & (mirrored[:, 2] > 0)
        # the mirror about the crop centre, which lies at x = W_in / 2 (the reference's crop): x_a + x_b = 96
        np.testing.assert_allclose(ja[both, 0] + mirrored[both, 0], 96.0, atol=1e-3)
        np.testing.assert_allclose(ja[both, 1], mirrored[both, 1], atol=1e-3)


def test_crowdpose_gt_as_prediction_is_ap_1_and_equals_pycocotools(crowdpose_val):
    results = gt_as_results(crowdpose_val)
    stats = coco_eval.results_ap(CROWDPOSE_VAL, results, spec=CROWDPOSE14)
    assert stats.ap == 1.0 and stats.ar == 1.0
    reference = plain_cocoeval(with_box_areas(crowdpose_val), results, CROWDPOSE14.sigmas)
    np.testing.assert_array_equal([*stats.as_dict().values()], reference[:10])
    # noisy, randomly scored poses: all ten numbers of both backends equal plain pycocotools with
    # CrowdPose's sigmas (and differ from what COCO-17-like sigmas would give)
    noisy = gt_as_results(crowdpose_val, noise=3.0)
    reference = plain_cocoeval(with_box_areas(crowdpose_val), noisy, CROWDPOSE14.sigmas)
    for backend in coco_eval.BACKENDS:
        stats = coco_eval.results_ap(CROWDPOSE_VAL, noisy, spec="crowdpose14", backend=backend)
        np.testing.assert_allclose([*stats.as_dict().values()], reference, rtol=0, atol=1e-12)
    assert 0.3 < reference[0] < 0.9
    other = plain_cocoeval(with_box_areas(crowdpose_val), noisy, np.full(14, 0.05))
    assert abs(other[0] - reference[0]) > 0.01
    # the ground truth remembers its spec: the file read once with it evaluates without repeating it
    gt = read_ground_truth(CROWDPOSE_VAL, CROWDPOSE14, for_eval=True)
    assert coco_eval.results_ap(gt, noisy).ap == reference[0]
    # 17-joint results on it name the problem, and so does a COCO-17 spec for its 14-joint persons
    with pytest.raises(ValueError, match=r"keypoints must be 42 numbers .* got shape \(51,\)"):
        coco_eval.results_ap(gt, [{**noisy[0], "keypoints": [1.0] * 51}])
    with pytest.raises(ValueError, match=r"persons carry 14 joints .* spec 'coco17' has 17"):
        coco_eval.results_ap(gt, noisy, spec="coco17")
    with pytest.raises(ValueError, match=r"persons carry 14 joints .* spec 'coco17' has 17"):
        coco_eval.results_ap(gt.coco, noisy, spec="coco17")


def test_a_category_with_more_names_than_the_annotations_carry():
    """HumanArt's category lists 21 keypoints, its annotations carry COCO's 17: the spec decides K."""
    with open(COCO_VAL) as f:
        data = json.load(f)
    data["categories"][0]["keypoints"] = list(COCO17.names) + ["left_finger", "right_finger", "left_toe",
                                                               "right_toe"]  # fmt: skip
    results = gt_as_results(data, noise=2.0)
    reference = plain_cocoeval(data, results, COCO17.sigmas)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    stats = coco_eval.results_ap(coco, results, spec=COCO17)  # COCO-17: 51 numbers per result
    np.testing.assert_allclose([*stats.as_dict().values()], reference, rtol=0, atol=1e-12)
    assert coco_eval.results_ap(coco, gt_as_results(data), spec=COCO17).ap == 1.0


def test_category_and_spec_disagree(tmp_path):
    with open(COCO_VAL) as f:
        data = json.load(f)
    path = tmp_path / "ann.json"
    # 21 names whose first 17 are not COCO's: which joints do the annotations carry? an error
    data["categories"][0]["keypoints"] = [f"joint_{k}" for k in range(21)]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"lists 21 keypoints .* K = 17 whose names are not the category's"):
        read_ground_truth(path, COCO17)
    # 17 names of someone else's (PoseTrack's head_bottom, head_top ...): scored with COCO's sigmas and
    # flip pairs they would be silently wrong, so refused, naming the first joints that differ
    data["categories"][0]["keypoints"] = [f"joint_{k}" for k in range(17)]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"not those of keypoint spec 'coco17' \(joint 0: 'joint_0' vs"):
        read_ground_truth(path, COCO17)
    data["categories"][0]["keypoints"] = list(COCO17.names)  # the spec's own names: accepted
    path.write_text(json.dumps(data))
    assert read_ground_truth(path, COCO17).spec is COCO17
    # annotations of another joint count than the spec: the error names a spec that fits
    data["categories"][0]["keypoints"] = list(CROWDPOSE14.names)
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"expected 42 keypoint numbers .* spec 'crowdpose14'\), got 51"):
        read_ground_truth(path, CROWDPOSE14)


def test_annotations_without_area_get_the_box_rule(tmp_path):
    """PoseTrack-like: COCO-17 annotations without ``area`` load and evaluate (no KeyError)."""
    with open(COCO_VAL) as f:
        data = json.load(f)
    for a in data["annotations"][::2]:
        del a["area"]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    results = gt_as_results(data, noise=2.0)
    stats = coco_eval.results_ap(str(path), results, spec=COCO17)
    np.testing.assert_allclose([*stats.as_dict().values()], plain_cocoeval(with_box_areas(data), results,
                                                                           COCO17.sigmas), rtol=0, atol=1e-12)
    assert read_ground_truth(path, COCO17, for_eval=True).area_from_box == len(data["annotations"][::2])


def test_error_taxonomy_uses_the_specs_mirror_joints(crowdpose_val):
    gt = read_ground_truth(CROWDPOSE_VAL, CROWDPOSE14, for_eval=True)
    exact = analysis.error_taxonomy(gt, gt_as_results(crowdpose_val))
    assert exact.names == CROWDPOSE14.names and exact.overall()["good"] == 1.0
    mirrored = []
    for r in gt_as_results(crowdpose_val):
        kps = np.reshape(r["keypoints"], (14, 3))[list(CROWDPOSE14.flip_index)]
        mirrored.append({**r, "keypoints": kps.ravel().tolist()})
    tax = analysis.error_taxonomy(gt, mirrored)
    assert tax.labels.shape[1] == 14
    # pairs matched to the person the mirrored pose came from: head top and neck have no partner
    # and stay good; the left/right joints are inversions, except where a pair nearly coincides
    source = np.array([a["id"] for a in crowdpose_val["annotations"]])[tax.result_index]
    own = tax.labels[source == tax.ann_ids]
    assert len(own) > 0.9 * len(crowdpose_val["annotations"])
    centre = own[:, 12:]
    assert np.all((centre == analysis.GOOD) | (centre == analysis.UNLABELLED))
    paired = own[:, :12][own[:, :12] != analysis.UNLABELLED]
    assert np.mean(paired == analysis.INVERSION) > 0.6


def test_draw_pose_draws_the_specs_skeleton(crowdpose_val):
    kps = np.reshape(crowdpose_val["annotations"][0]["keypoints"], (14, 3))
    assert (kps[:, 2] > 0).all()
    for spec, limbs in ((CROWDPOSE14, 15), ("crowdpose14", 15)):
        ax = Figure().add_subplot()
        draw_pose(ax, kps[:, :2], spec=spec)
        assert len(ax.lines) == limbs
        colors = ax.collections[0].get_facecolors()[:, :3]
        np.testing.assert_allclose(colors, np.array(CROWDPOSE14.colors), atol=1e-6)

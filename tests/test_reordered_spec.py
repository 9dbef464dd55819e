"""COCO's 17 joints in another order, end to end: a ``KeypointSpec`` whose names, flip pairs, skeleton,
sigmas and upper body are COCO-17's permuted, on the bundled SynthPose val annotations rewritten in that
order, gives the same dataset samples, flip test, OKS-NMS, COCOeval AP and error taxonomy as COCO17 on
the original file (issue 23: no function may assume COCO's joint order)."""

import json
import os

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLES

from hrnet_edu import analysis, evaluate
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.data.transforms import PAPER_AUGMENT
from hrnet_edu.keypoints import COCO17, KeypointSpec

VAL_ANN = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
IMAGES = os.path.join(SAMPLES, "images")
CHECKPOINT = os.path.join(REPO, "data_samples", "checkpoints", "synthpose_w16_128x96_cpu.pt")
N_IMAGES = 40  # the first images of the val split

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (os.path.isfile(VAL_ANN) and os.path.isfile(CHECKPOINT)),
                                 reason="data_samples/synthpose or the committed checkpoint not present")]

# joint i of the new order is COCO joint PERM[i]; COCO joint j is joint INV[j] of the new order
PERM = tuple(int(j) for j in np.random.default_rng(23).permutation(17))
INV = tuple(int(i) for i in np.argsort(PERM))

REORDERED = KeypointSpec(
    name="coco17_reordered",
    names=tuple(COCO17.names[j] for j in PERM),
    skeleton=tuple((INV[a], INV[b]) for a, b in COCO17.skeleton),
    flip_pairs=tuple((INV[a], INV[b]) for a, b in COCO17.flip_pairs),
    sigmas=tuple(COCO17.sigmas[j] for j in PERM),
    upper_body=tuple(INV[j] for j in COCO17.upper_body),
)


def test_the_reordered_spec_is_coco17_permuted():
    assert PERM != tuple(range(17)) and PERM[0] != 0  # not COCO's order, not even its first joint
    assert [REORDERED.flip_index[i] for i in range(17)] == [INV[COCO17.flip_index[j]] for j in PERM]
    assert REORDERED.flip_index != COCO17.flip_index
    np.testing.assert_array_equal(REORDERED.sigma_array, COCO17.sigma_array[list(PERM)])
    assert {REORDERED.names[i] for i in REORDERED.upper_body} == {COCO17.names[j] for j in COCO17.upper_body}
    # its COCO category, read back, infers the same flip pairs (as a set) and knows the same sigmas by name
    inferred = KeypointSpec.from_coco_category(REORDERED.coco_category(), name=REORDERED.name)
    assert inferred.flip_index == REORDERED.flip_index and inferred.sigmas == REORDERED.sigmas
    assert inferred.skeleton == REORDERED.skeleton and inferred.upper_body == REORDERED.upper_body


def reordered_file(data: dict) -> dict:
    """The COCO file with every person's keypoint triplets (and the category's names and skeleton) in
    the new order."""
    out = json.loads(json.dumps(data))
    person = next(c for c in out["categories"] if c["id"] == 1)
    person["keypoints"] = list(REORDERED.names)
    person["skeleton"] = [[a + 1, b + 1] for a, b in REORDERED.skeleton]
    for ann in out["annotations"]:
        if ann["category_id"] == 1:
            ann["keypoints"] = np.reshape(ann["keypoints"], (17, 3))[list(PERM)].ravel().tolist()
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(the first N_IMAGES images of the val split in COCO's order, the same in the new order)."""
    with open(VAL_ANN) as f:
        data = json.load(f)
    keep = {im["id"] for im in sorted(data["images"], key=lambda im: im["id"])[:N_IMAGES]}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    root = tmp_path_factory.mktemp("reordered")
    paths = root / "coco17.json", root / "reordered.json"
    paths[0].write_text(json.dumps(data))
    paths[1].write_text(json.dumps(reordered_file(data)))
    return tuple(str(p) for p in paths)


@pytest.fixture(scope="module")
def checkpoint():
    """(model, TrainConfig) of the committed CPU checkpoint: COCO-17, DARK decoding."""
    return load_checkpoint(CHECKPOINT)


class Reordered(torch.nn.Module):
    """The COCO-17 network with its heatmap channels in the new order: channel i is COCO channel PERM[i]."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("index", torch.tensor(PERM))

    def forward(self, x):
        return self.net(x)[:, self.index]


def test_training_samples_are_the_same_in_either_order(files, checkpoint):
    """Paper augmentation (scale, rotation, flip with the spec's pairs, half body with its upper body):
    the same seed draws the same crops, and every joint and target lands in its own channel."""
    codec = checkpoint[1].codec
    coco, reordered = (CocoKeypoints(path, IMAGES, codec=codec, spec=spec, train=True, augment=PAPER_AUGMENT,
                                     seed=4)
                       for path, spec in zip(files, (COCO17, REORDERED)))
    assert len(coco) == len(reordered) > 40
    half, flipped = 0, 0
    for i in range(len(coco)):
        params = coco.crop_params(i, 256)
        half, flipped = half + params.half_body, flipped + params.flip
        a, b = coco[i], reordered[i]
        np.testing.assert_allclose(b["joints"], a["joints"][list(PERM)], rtol=0, atol=1e-3)
        assert torch.equal(b["target_weight"], a["target_weight"][list(PERM)])
        np.testing.assert_allclose(b["target"], a["target"][list(PERM)], rtol=0, atol=1e-3)
    assert half > 0 and flipped > 0  # both augmentations that depend on the spec occurred


def test_the_same_ap_and_taxonomy_as_coco17_on_the_same_data_reordered(files, checkpoint):
    model, cfg = checkpoint
    assert cfg.spec is COCO17 and cfg.codec.decoding == "dark"
    coco = CocoKeypoints(files[0], IMAGES, codec=cfg.codec, spec=COCO17, train=False, augment=None)
    reordered = CocoKeypoints(files[1], IMAGES, codec=cfg.codec, spec=REORDERED, train=False, augment=None)
    assert reordered.ground_truth.spec is REORDERED and len(coco) == len(reordered) > 40
    # the flip test: mirrored heatmaps swapped with each spec's own flip index
    preds = evaluate.predict_dataset(model, coco, cfg.codec, COCO17, flip=True, batch_size=32)
    preds_r = evaluate.predict_dataset(Reordered(model), reordered, cfg.codec, REORDERED, flip=True,
                                       batch_size=32)
    np.testing.assert_array_equal(preds_r["keypoints"], preds["keypoints"][:, list(PERM)])
    np.testing.assert_array_equal(preds_r["confidences"], preds["confidences"][:, list(PERM)])
    # OKS-NMS and COCOeval with each spec's sigmas
    stats, results = evaluate.predictions_ap(preds, coco.ground_truth, return_results=True)
    stats_r, results_r = evaluate.predictions_ap(preds_r, reordered.ground_truth, return_results=True)
    assert len(results_r) == len(results) and 0.3 < stats.ap < 1
    for key, value in stats.as_dict().items():
        assert abs(stats_r.as_dict()[key] - value) < 1e-9, key
    # the taxonomy: the same joints in the same classes, each in its own row
    taxonomy = analysis.error_taxonomy(coco.ground_truth, results)
    taxonomy_r = analysis.error_taxonomy(reordered.ground_truth, results_r)
    assert taxonomy_r.names == REORDERED.names
    np.testing.assert_array_equal(taxonomy_r.counts(), taxonomy.counts()[list(PERM)])
    np.testing.assert_array_equal(taxonomy_r.counts().sum(0), taxonomy.counts().sum(0))
    assert taxonomy.overall()["inversion"] > 0 and taxonomy_r.overall() == pytest.approx(taxonomy.overall())
    assert (taxonomy_r.num_unmatched_results, taxonomy_r.num_unmatched_gt) == (
        taxonomy.num_unmatched_results, taxonomy.num_unmatched_gt)
    # the reordered data with COCO's flip pairs (what a COCO-17 fallback would flip with) does worse
    wrong = KeypointSpec(name="wrong_pairs", names=REORDERED.names, skeleton=REORDERED.skeleton,
                         flip_pairs=COCO17.flip_pairs, sigmas=REORDERED.sigmas)
    preds_w = evaluate.predict_dataset(Reordered(model), reordered, cfg.codec, wrong, flip=True,
                                       batch_size=32)
    assert evaluate.predictions_ap(preds_w, reordered.ground_truth).ap < stats.ap - 0.05

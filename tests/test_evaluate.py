"""evaluate: ground-truth heatmaps → AP 1 through the real pipeline, flip-test symmetry, sharding,
OKS-NMS of duplicates, checkpoints (ours, the committed one, wrong architecture) and clear errors."""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLES

from hrnet_edu import coco_eval, evaluate
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.cli import main
from hrnet_edu.configs import synthpose_w16_128x96_cpu
from hrnet_edu.data.coco import CocoKeypoints
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import COCO17
from hrnet_edu.model import W8, HRNet
from hrnet_edu.predict import predict_image

VAL_ANN = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
IMAGES = os.path.join(SAMPLES, "images")
CHECKPOINT = os.path.join(REPO, "data_samples", "checkpoints", "synthpose_w16_128x96_cpu.pt")
N_IMAGES = 12  # the first images of the val split: enough persons for a stable AP, fast on 2 cores
needs_samples = pytest.mark.skipif(not os.path.isfile(VAL_ANN), reason="data_samples/synthpose not present")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def val_ann(tmp_path_factory):
    """The SynthPose val annotations cut to the first N_IMAGES images (every person of each)."""
    if not os.path.isfile(VAL_ANN):
        pytest.skip("data_samples/synthpose not present")
    with open(VAL_ANN) as f:
        data = json.load(f)
    keep = {im["id"] for im in sorted(data["images"], key=lambda im: im["id"])[:N_IMAGES]}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    path = tmp_path_factory.mktemp("val") / "val.json"
    path.write_text(json.dumps(data))
    return str(path)


def make_dataset(ann, input_size=(256, 192), **kw):
    codec = HeatmapCodec(input_size, sigma=2.0 * input_size[0] / 256)
    return CocoKeypoints(ann, IMAGES, codec=codec, spec=COCO17, train=False, augment=None, **kw)


class Oracle(torch.nn.Module):
    """A stand-in "network" that returns the ground-truth target heatmaps of the crop it is shown.

    It recognises a crop (or its mirror image) by a random projection of its pixels, and answers a
    mirrored crop with the targets of the mirrored joints (x → W − 1 − x, left ↔ right), encoded
    exactly as the dataset encodes targets: what a perfect network would predict.
    """

    def __init__(self, samples):
        super().__init__()
        images = torch.stack([s["image"] for s in samples])  # (N, 3, H, W)
        joints = torch.stack([s["joints"] for s in samples])  # (N, K, 3) crop px
        self.targets = torch.stack([s["target"] for s in samples])
        mirrored = joints[:, samples.spec.flip_index].clone()
        mirrored[..., 0] = images.shape[-1] - 1 - mirrored[..., 0]
        self.targets_mirrored = samples.codec.encode(mirrored[..., :2], mirrored[..., 2])[0]
        g = torch.Generator().manual_seed(0)
        self.r = torch.randn(images[0].numel(), generator=g, dtype=torch.float64)
        self.keys = images.flatten(1).double() @ self.r
        self.keys_mirrored = images.flip(-1).flatten(1).double() @ self.r

    def forward(self, x):
        key = x.flatten(1).double() @ self.r
        d, d_m = (key[:, None] - self.keys).abs(), (key[:, None] - self.keys_mirrored).abs()
        assert torch.minimum(d.min(1).values, d_m.min(1).values).max() < 1e-6, "unknown crop"
        mirrored = (d_m.min(1).values < d.min(1).values)[:, None, None, None]
        return torch.where(mirrored, self.targets_mirrored[d_m.argmin(1)], self.targets[d.argmin(1)])


class CachedSamples(list):
    """The dataset's samples held in memory (decoded once for the whole module)."""

    def __init__(self, dataset):
        super().__init__(dataset[i] for i in range(len(dataset)))
        self.codec, self.spec, self.ground_truth = dataset.codec, dataset.spec, dataset.ground_truth
        self.coco = dataset.coco


@pytest.fixture(scope="module")
def samples(val_ann):
    return CachedSamples(make_dataset(val_ann))


@pytest.mark.parametrize("flip", [False, True])
def test_ground_truth_heatmaps_give_ap_1(samples, flip):
    """Targets → decode → inverse crop → rescore → NMS → COCOeval: a perfect network scores AP ≥ 0.99."""
    oracle = Oracle(samples)
    codec = dataclasses.replace(samples.codec, decoding="shift")
    stats, results = evaluate.model_ap(oracle, samples, flip=flip, batch_size=16, codec=codec)
    assert len(results) == len(samples)
    assert stats.ap >= 0.99 and stats.ar >= 0.99, stats
    # Back-mapping itself: every labelled keypoint within one heatmap pixel (4 crop px) of the annotation.
    preds = evaluate.predict_dataset(oracle, samples, codec, COCO17, flip=flip, batch_size=16)
    for i, aid in enumerate(preds["ann_ids"]):
        gt = np.asarray(samples.coco.anns[int(aid)]["keypoints"], np.float64).reshape(-1, 3)
        err = np.linalg.norm(preds["keypoints"][i] - gt[:, :2], axis=1)[gt[:, 2] > 0]
        hm_px = samples[i]["scale"][0].item() * 200 / 48  # image px per heatmap px
        assert err.max() <= hm_px + 1e-6


def test_sharded_predictions_merge_to_the_single_pass(samples):
    """Under DDP each rank predicts a shard; the merged shards equal one pass over everything."""
    oracle = Oracle(samples)
    codec, spec = samples.codec, samples.spec
    whole = evaluate.predict_dataset(oracle, samples, codec, spec, batch_size=7)
    data = torch.utils.data
    shards = [evaluate.predict_dataset(oracle, data.Subset(samples, range(r, len(samples), 3)), codec, spec,
                                       batch_size=5)
              for r in range(3)]
    samplers = [data.DistributedSampler(samples, 4, rank=r, shuffle=True, seed=1) for r in range(4)]
    padded = [evaluate.predict_dataset(oracle, data.Subset(samples, list(s)), codec, spec, batch_size=4)
              for s in samplers]
    for parts in (shards, padded):
        merged = evaluate.merge_predictions(parts)
        assert merged.keys() == whole.keys()
        for key in whole:
            np.testing.assert_allclose(merged[key], whole[key], rtol=0, atol=1e-9, err_msg=key)
    stats = evaluate.predictions_ap(evaluate.merge_predictions(padded), samples.ground_truth)
    assert stats == evaluate.predictions_ap(whole, samples.ground_truth)


def symmetric_samples(n=3, size=(128, 96)):
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        r = torch.randn(3, *size, generator=g)
        out.append({"image": (r + r.flip(-1)) / 2,  # left-right symmetric: flip(x) == x exactly
                    "center": torch.tensor([40.0 + 9 * i, 70.0]), "scale": torch.tensor([0.45, 0.6]),
                    "rotation": torch.tensor(0.0), "score": torch.tensor(1.0), "image_id": torch.tensor(i),
                    "ann_id": torch.tensor(i), "area": torch.tensor(0.45 * 0.6 * 200**2)})
    return out


class RandomHeatmaps(torch.nn.Module):
    """A random convolution (not mirror-equivariant) → positive maps, zero in the two border columns
    on each side, so that peaks never touch the columns the flip test's shift treats specially."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 17, 7, padding=3)

    def forward(self, x):
        h = torch.nn.functional.avg_pool2d(self.conv(x), 4).exp()  # (N, K, H/4, W/4), > 0
        w = h.shape[-1]
        inside = (torch.arange(w) >= 2) & (torch.arange(w) <= w - 2)
        return h * inside


@pytest.mark.parametrize("decode", ["argmax", "shift"])
def test_flip_test_on_a_symmetric_input(decode):
    """Flip test on a left-right symmetric crop: left and right joints come out as mirror images.

    With flip(x) = x, the flip test averages A_l(j) = ½ (H_l(j) + H_r(W − j)) (mirror back, swap
    sides, shift one column right), so A_l(j) = A_r(W − j): the pair is mirrored about x_hm = W/2,
    which the inverse crop transform maps to the box centre c_x. Hence x_l + x_r = 2 c_x and y_l = y_r
    for any network. Without the shift the mirror axis is x_hm = (W − 1)/2: x_l + x_r = 2 c_x − one
    heatmap pixel. Without the flip test a network that is not mirror-equivariant breaks the symmetry.
    """
    torch.manual_seed(0)
    model, data = RandomHeatmaps(), symmetric_samples()
    left, right = np.array(COCO17.flip_pairs).T
    cx = np.stack([s["center"][0].item() for s in data])[:, None]
    hm_px = 0.45 * 200 / 24  # image px per heatmap px (heatmap width 24)
    for shift, offset in ((True, 0.0), (False, hm_px)):
        codec = HeatmapCodec((128, 96), decoding=decode, flip_shift=shift)
        kp = evaluate.predict_dataset(model, data, codec, COCO17, flip=True)["keypoints"]
        sums = kp[:, left, 0] + kp[:, right, 0]  # (N, 8) pairs
        np.testing.assert_allclose(sums, np.broadcast_to(2 * cx - offset, sums.shape), atol=1e-9)
        np.testing.assert_allclose(kp[:, left, 1], kp[:, right, 1], atol=1e-9)
    kp = evaluate.predict_dataset(model, data, HeatmapCodec((128, 96), decoding=decode), COCO17,
                                  flip=False)["keypoints"]
    assert np.abs(kp[:, left, 0] + kp[:, right, 0] - 2 * cx).max() > hm_px


def test_oks_nms_removes_planted_duplicates(samples):
    """Every pose duplicated with a lower score and sub-pixel noise: NMS keeps exactly the originals."""
    preds = evaluate.predict_dataset(Oracle(samples), samples, samples.codec, samples.spec, flip=False)
    n = len(preds["image_ids"])
    rng = np.random.default_rng(0)
    dup = {k: np.concatenate([v, v]) for k, v in preds.items()}
    dup["keypoints"][n:] += rng.normal(0, 0.3, dup["keypoints"][n:].shape)
    dup["box_scores"] = np.concatenate([preds["box_scores"], preds["box_scores"] * 0.5])
    results, keep = evaluate.predictions_to_results(dup, COCO17.sigmas, nms_threshold=0.9, return_keep=True)
    assert sorted(keep.tolist()) == list(range(n))
    gt = samples.ground_truth
    assert evaluate.predictions_ap(dup, gt).ap == evaluate.predictions_ap(preds, gt).ap
    assert len(evaluate.predictions_to_results(dup, COCO17.sigmas, nms_threshold=None)) == 2 * n


def save_w8_checkpoint(path, data_root=SAMPLES):
    cfg = dataclasses.replace(synthpose_w16_128x96_cpu(), name="test_w8", model=W8, data_root=data_root)
    torch.manual_seed(0)
    model = HRNet(W8).eval()
    torch.save({"model": model.state_dict(), "config": dataclasses.asdict(cfg), "epoch": 0}, path)
    return model, cfg


def test_load_checkpoint_round_trip_and_wrong_architecture(tmp_path):
    model, cfg = save_w8_checkpoint(tmp_path / "w8.pt")
    loaded, loaded_cfg = load_checkpoint(tmp_path / "w8.pt")
    assert loaded_cfg == cfg and not loaded.training
    assert loaded_cfg.codec == cfg.codec  # a checkpoint without "codec": the one its config builds
    x = torch.randn(2, 3, 128, 96)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    wrong = r"(?s)not an HRNet of config 'synthpose_w32_256x192'.*mis-shaped.*conv1"
    with pytest.raises(ValueError, match=wrong):
        load_checkpoint(tmp_path / "w8.pt", config="synthpose_w32_256x192")
    torch.save(model.state_dict(), tmp_path / "plain.pth")  # like the reference's published weights
    with pytest.raises(ValueError, match="without a config"):
        load_checkpoint(tmp_path / "plain.pth")
    plain, _ = load_checkpoint(tmp_path / "plain.pth", config=cfg)
    torch.testing.assert_close(plain(x), model(x), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.skipif(not os.path.isfile(CHECKPOINT), reason="the trained checkpoint "
                    "data_samples/checkpoints/synthpose_w16_128x96_cpu.pt is not committed yet")
def test_committed_checkpoint_reproduces_its_record_and_meets_the_bars():
    """The committed CPU network works: its recorded AP, AP ≥ 0.5, AP75 ≥ 0.4 on the bundled val split
    (flip test, ground-truth boxes), ≤ 10 % left/right inversions, and every joint closer to the
    truth than the mean pose of the bundled training split (a predictor that ignores the image)."""
    from hrnet_edu import analysis

    with open(CHECKPOINT.replace(".pt", ".json")) as f:
        record = json.load(f)
    model, cfg = load_checkpoint(CHECKPOINT)
    assert cfg.codec.decoding == cfg.val_decode == record["eval"]["decode"]
    ds = CocoKeypoints(cfg.val_path(cfg.val_ann), cfg.val_path(cfg.val_images), codec=cfg.codec,
                       spec=cfg.spec, train=False, augment=None)
    preds = evaluate.predict_dataset(model, ds, cfg.codec, cfg.spec, batch_size=64, flip=cfg.val_flip)
    stats = evaluate.predictions_ap(preds, ds.ground_truth)
    for key in ("ap", "ap50", "ap75", "ar"):
        assert abs(getattr(stats, key) - record["val"][key]) <= 0.005, (key, stats, record["val"])
    assert stats.ap >= 0.50 and stats.ap75 >= 0.40, stats
    results = evaluate.predictions_to_results(preds, ds.spec.sigmas)
    taxonomy = analysis.error_taxonomy(ds.ground_truth, results)
    inversions = taxonomy.overall()["inversion"]
    assert inversions <= 0.10, inversions
    train = CocoKeypoints(os.path.join(SAMPLES, "annotations", "person_keypoints_train.json"),
                          os.path.join(SAMPLES, "images"), codec=cfg.codec, spec=cfg.spec, train=False,
                          augment=None)
    gt = analysis.crop_ground_truth(ds)
    network = analysis.joint_errors(analysis.predictions_in_crop(preds, ds), gt[preds["indices"]])
    baseline = analysis.joint_errors(analysis.mean_pose(analysis.crop_ground_truth(train)), gt)
    assert np.all(network < baseline), (network.round(1), baseline.round(1))


@pytest.mark.skipif(not os.path.isfile(CHECKPOINT), reason="the trained checkpoint "
                    "data_samples/checkpoints/synthpose_w16_128x96_cpu.pt is not committed yet")
def test_readme_evaluate_command_prints_the_checkpoint_record_and_its_decoding(capsys):
    """``hrnet-edu evaluate --checkpoint data_samples/checkpoints/synthpose_w16_128x96_cpu.pt`` (the
    README's command) decodes as the checkpoint says (its codec: DARK), prints which, and gives the AP
    of the checkpoint's JSON record."""
    with open(CHECKPOINT.replace(".pt", ".json")) as f:
        record = json.load(f)
    assert record["eval"]["decode"] == "dark"
    rc = main(["evaluate", "--checkpoint", CHECKPOINT, "--workers", "0", "--device", "cpu", "--no-progress"])
    settings, table = capsys.readouterr().out.strip().split("\n", 1)
    assert rc == 0
    assert "dark decoding" in settings and "(the checkpoint's)" in settings
    assert "NMS threshold 0.9" in settings
    assert "300 instances" in settings and "flip=True" in settings
    names, values = table.splitlines()[:2]  # CocoKeypointStats' table: AP first
    assert names.split("|")[0].strip() == "AP"
    ap = float(values.split("|")[0])
    assert abs(ap - record["val"]["ap"]) <= 0.002, (ap, record["val"]["ap"])


@needs_samples
def test_cli_evaluates_a_checkpoint_on_detections_and_writes_results(tmp_path, val_ann, capsys):
    save_w8_checkpoint(tmp_path / "w8.pt")
    with open(val_ann) as f:
        gt = json.load(f)
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"][:6]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "results.json"
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "w8.pt"), "--boxes", str(tmp_path / "dets.json"),
               "--out", str(out), "--workers", "0", "--device", "cpu", "--no-flip",
               f"val_ann={val_ann}"])
    text = capsys.readouterr().out
    assert rc == 0 and "6 instances" in text and "AP50" in text
    results = json.loads(out.read_text())
    assert 1 <= len(results) <= 6 and {r["image_id"] for r in results} <= {d["image_id"] for d in dets}
    assert all(r["score"] <= 0.9 for r in results)  # box score × mean keypoint confidence
    # The printed numbers are those of the written file.
    stats = coco_eval.results_ap(val_ann, str(out), spec=COCO17)
    assert f"{stats.ap:5.3f}" in text


@needs_samples
def test_clear_errors_for_bad_results_and_detection_files(tmp_path, val_ann, capsys):
    with open(val_ann) as f:
        image_ids = [im["id"] for im in json.load(f)["images"]]
    bad = [{"image_id": max(image_ids) + 1000, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown image id"):
        coco_eval.results_ap(val_ann, str(tmp_path / "bad.json"), spec=COCO17)
    assert main(["evaluate", "--results", str(tmp_path / "bad.json"), "--ann", val_ann]) == 2
    assert "unknown image id" in capsys.readouterr().err
    # --results says which ground truth: --ann, or --config (its val_ann); never a preset by default
    assert main(["evaluate", "--results", str(tmp_path / "bad.json")]) == 2
    assert "--results needs its ground truth: --ann FILE, or --config NAME" in capsys.readouterr().err
    assert main(["evaluate", "--results", str(tmp_path / "bad.json"), f"val_ann={val_ann}"]) == 2
    assert "need --config" in capsys.readouterr().err
    assert main(["evaluate", "--results", str(tmp_path / "bad.json"), "--config", "synthpose_w16_128x96_cpu",
                 f"val_ann={val_ann}", f"val_root={SAMPLES}"]) == 2
    assert "unknown image id" in capsys.readouterr().err
    save_w8_checkpoint(tmp_path / "w8.pt")
    (tmp_path / "empty.json").write_text("[]")
    unknown = [{"image_id": max(image_ids) + 1000, "category_id": 1, "bbox": [0, 0, 10, 20], "score": 1.0}]
    (tmp_path / "unknown.json").write_text(json.dumps(unknown))
    for dets, message in (("empty.json", "non-empty"), ("unknown.json", "not an image")):
        assert main(["evaluate", "--checkpoint", str(tmp_path / "w8.pt"), "--boxes", str(tmp_path / dets),
                                  "--device", "cpu", f"val_ann={val_ann}"]) == 2
        err = capsys.readouterr().err
        assert message in err and dets in err
    # A checkpoint that does not fit the named config: rc 2 and the key listing.
    w32 = ["--config", "synthpose_w32_256x192"]
    assert main(["evaluate", "--checkpoint", str(tmp_path / "w8.pt"), *w32]) == 2
    assert "mis-shaped" in capsys.readouterr().err


class BrightSpot(torch.nn.Module):
    """A "network" whose every heatmap is the crop's brightness pooled to a quarter resolution:
    it points all K joints at the brightest spot of the crop."""

    def forward(self, x):
        h = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)  # (N, 1, H/4, W/4)
        return (h - h.amin(dim=(-2, -1), keepdim=True)).expand(-1, 17, -1, -1)


def test_predict_image_finds_a_planted_spot_with_and_without_box():
    image = np.zeros((120, 160, 3), np.uint8)
    image[70:73, 101:104] = 255  # a bright 3×3 spot centred on (102, 71)
    for box, width in ((None, 160), ([80, 40, 50, 60], 50)):
        kp, conf = predict_image(BrightSpot(), image, box, HeatmapCodec((128, 96), decoding="argmax"), COCO17,
                                 flip=False)
        scale_x = max(width, 0.75 * (120 if box is None else 60)) * 1.25  # crop width in image px
        hm_px = scale_x / 24  # image px per heatmap px
        assert kp.shape == (17, 2) and conf.shape == (17,)
        assert np.abs(kp - [102, 71]).max() <= hm_px, (box, kp[0], hm_px)
    with pytest.raises(ValueError, match="w, h > 0"):
        predict_image(BrightSpot(), image, [0, 0, 0, 10], HeatmapCodec((128, 96)), COCO17)


def test_predict_cli_draws_on_an_image_of_the_same_size(tmp_path, capsys):
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    save_w8_checkpoint(tmp_path / "w8.pt")
    out = tmp_path / "out.png"
    args = [str(tmp_path / "in.png"), "--checkpoint", str(tmp_path / "w8.pt"), "--out", str(out),
            "--device", "cpu"]
    assert main(["predict", *args, "--box", "10,5,60,80", "--box", "70,10,40,70"]) == 0
    assert "person 1:" in capsys.readouterr().out
    with Image.open(out) as drawn:
        assert drawn.size == (128, 96)
    assert main(["predict", *args, "--whole-image"]) == 0  # the whole image as the box
    assert main(["predict", str(tmp_path / "absent.png"), *args[1:], "--whole-image"]) == 2
    assert "absent.png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", *args, "--box", "1,2,3"])


def test_no_instances_give_zero_stats_not_a_crash(samples):
    """E.g. a detection file whose boxes all fall below the score threshold."""
    empty = torch.utils.data.Subset(samples, [])
    preds = evaluate.predict_dataset(Oracle(samples), empty, samples.codec, samples.spec)
    assert preds["keypoints"].shape == (0, 17, 2) and preds["confidences"].shape == (0, 17)
    stats = evaluate.predictions_ap(preds, samples.ground_truth)
    assert stats.empty and stats.ap == 0.0

"""CocoKeypoints: filtering as the reference, sample shapes, targets on the joints, clear errors."""

import json
import os
import pickle

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from PIL import Image

from hrnet_edu.data.coco import CocoKeypoints, load_image
from hrnet_edu.data.ground_truth import GroundTruth
from hrnet_edu.data.transforms import IMAGENET_STD, NO_AUGMENT, GpuBatchTransform, gpu_collate
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import COCO17, coco_person_category

IMG_W, IMG_H = 160, 120
CODEC = HeatmapCodec((256, 192))  # the reference's 256×192 input, 64×48 heatmaps, σ = 2


def dataset(*args, codec=CODEC, **kwargs):
    """A COCO-17 ``CocoKeypoints`` (the codec and the spec are always given)."""
    return CocoKeypoints(*args, codec=codec, spec=COCO17, **kwargs)


pytestmark = pytest.mark.usefixtures("one_thread")


def person(ann_id, image_id, rng, box=(30, 10, 80, 100), **extra):
    x, y, w, h = box
    kp = np.zeros((17, 3))
    kp[:, 0] = x + w * rng.uniform(0.1, 0.9, 17)
    kp[:, 1] = y + h * rng.uniform(0.1, 0.9, 17)
    kp[:, 2] = rng.choice([0, 1, 2], size=17, p=[0.1, 0.3, 0.6])
    kp[kp[:, 2] == 0, :2] = 0
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(box),
           "area": float(w * h), "keypoints": kp.ravel().tolist(), "num_keypoints": int((kp[:, 2] > 0).sum())}
    return {**ann, **extra}


def write_coco(root, annotations, n_images=3, seed=0):
    """A tiny COCO keypoint file with Pillow-written JPEGs under ``root``; returns (ann_file, image_dir)."""
    rng = np.random.default_rng(seed)
    os.makedirs(root / "images", exist_ok=True)
    images = []
    for i in range(1, n_images + 1):
        pixels = rng.integers(0, 256, size=(IMG_H, IMG_W, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{i:03d}.jpg")
        images.append({"id": i, "file_name": f"{i:03d}.jpg", "width": IMG_W, "height": IMG_H})
    ann_file = root / "ann.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                    "categories": [coco_person_category()]}))
    return str(ann_file), str(root / "images")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(0)
    anns = [person(1, 1, rng), person(2, 1, rng, box=(100, 40, 80, 100)),  # runs off the right edge
            person(3, 2, rng, box=(0, 0, 60, 120)), person(4, 3, rng),
            person(5, 3, rng, iscrowd=1), person(6, 2, rng, keypoints=[0] * 51, num_keypoints=0),
            person(7, 3, rng, box=(40, 40, 0, 30)),
            # a box entirely right of the image; its joints unlabelled, as labelled ones that far
            # outside the image are an error (test_bad_input)
            person(8, 2, rng, box=(200, 10, 30, 30), keypoints=[0] * 51, num_keypoints=0)]
    return write_coco(tmp_path_factory.mktemp("tiny"), anns)


def test_filtering_follows_the_reference_and_counts_skips(tiny):
    ds = dataset(*tiny, train=True)
    assert len(ds) == 4 and sorted(ds._ann_id.tolist()) == [1, 2, 3, 4]
    # crowd 5; no keypoints 6; zero width 7; box entirely right of the image (x2 < x1) 8
    assert ds.num_skipped == {"crowd": 1, "no_keypoints": 1, "degenerate_box": 2}
    assert ds.image_ids == [1, 2, 3]
    # what it was built with, and the checked file as a GroundTruth record
    assert ds.codec is CODEC and ds.input_size == (256, 192) and ds.spec is COCO17
    assert isinstance(ds.ground_truth, GroundTruth) and ds.ground_truth.spec is COCO17
    assert ds.coco is ds.ground_truth.coco and ds.ground_truth.path == tiny[0]
    assert ds.ground_truth.counts == {"crowd": 1, "no_keypoints": 2, "not_person": 0}
    # clipped box of annotation 2: x2 = min(159, 100 + 79) = 159 → w = 59; y2 = min(119, 40 + 99) → h = 79
    i = ds._ann_id.tolist().index(2)
    np.testing.assert_allclose(ds._box[i], [100, 40, 59, 79])
    assert set(np.unique(ds._joints[:, :, 2])) <= {0.0, 1.0}  # v = min(v, 1)


def test_sample_shapes_dtypes_and_default_collate_with_workers(tiny):
    ds = dataset(*tiny, codec=HeatmapCodec((64, 48)))
    expect = {"image": ((3, 64, 48), torch.float32), "target": ((17, 16, 12), torch.float32),
              "target_weight": ((17,), torch.float32), "joints": ((17, 3), torch.float32),
              "image_id": ((), torch.int64), "center": ((2,), torch.float32), "scale": ((2,), torch.float32),
              "rotation": ((), torch.float32), "score": ((), torch.float32), "ann_id": ((), torch.int64),
              "area": ((), torch.float32)}
    sample = ds[0]
    assert {k: (tuple(v.shape), v.dtype) for k, v in sample.items()} == expect
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, persistent_workers=True)
    for epoch in range(2):
        ds.set_epoch(epoch)
        batches = list(loader)
        # workers reproduce exactly what the main process computes for (seed, epoch, index)
        for b, batch in enumerate(batches):
            for j in range(len(batch["image"])):
                ref = ds[2 * b + j]
                for key in expect:
                    torch.testing.assert_close(batch[key][j], ref[key])
    assert batches[0]["image"].shape == (2, 3, 64, 48)


def test_loaders_fetch_whole_batches_through_getitems(tiny):
    # the trainer's DataLoader (over a Subset when max_train_images is set) must take the batched
    # path, and a batch must equal its samples computed one at a time
    calls = []

    class Counting(CocoKeypoints):
        def __getitems__(self, indices):
            calls.append(list(indices))
            return super().__getitems__(indices)

    ds = Counting(*tiny, codec=HeatmapCodec((64, 48)), spec=COCO17, seed=2)
    order = [3, 1, 2]
    batch = next(iter(torch.utils.data.DataLoader(torch.utils.data.Subset(ds, order), batch_size=3)))
    assert calls == [order]
    for j, i in enumerate(order):
        for key, value in ds[i].items():
            assert torch.equal(batch[key][j], value), key


def test_augmentation_is_seeded_per_epoch_and_index(tiny):
    ds = dataset(*tiny, seed=3)
    a = ds[1]
    torch.testing.assert_close(ds[1]["image"], a["image"])
    # picklable (spawned DataLoader workers): the copy draws the same sample
    torch.testing.assert_close(pickle.loads(pickle.dumps(ds))[1]["image"], a["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], a["image"])
    assert ds.epoch == 1


@pytest.mark.parametrize("augment", [None, "paper"])
def test_every_visible_keypoint_lands_on_its_target_peak(tiny, augment):
    kwargs = {"augment": NO_AUGMENT} if augment is None else {}
    ds = dataset(*tiny, **kwargs)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            target, weight, joints = s["target"].numpy(), s["target_weight"].numpy(), s["joints"].numpy()
            on = weight > 0
            assert on.sum() > 0 and np.all(joints[~on, 2] == 0) or np.all(joints[on, 2] == 1)
            # the reference's target centre: μ = int(x_in / 4 + 0.5) on the 64×48 grid; a joint in
            # the crop's last 2 pixels has μ one past the map: its peak is then on the border
            mu = np.floor(joints[on, :2] / 4 + 0.5).astype(int)
            size = np.array([target.shape[2], target.shape[1]])
            peak = np.stack(np.unravel_index(target[on].reshape(on.sum(), -1).argmax(1), target.shape[1:]), 1)
            np.testing.assert_array_equal(peak[:, ::-1], np.minimum(mu, size - 1))
            inside = np.all(mu < size, axis=1)
            np.testing.assert_allclose(target[on][inside].max(axis=(1, 2)), 1.0)
            assert np.all(target[~on] == 0)


def test_without_augmentation_joints_follow_the_box_crop(tiny):
    ds = dataset(*tiny, train=False)
    s = ds[0]
    from hrnet_edu.geometry import crop_transform, transform_points
    img_joints = ds._joints[0]
    m = crop_transform(ds._center[0], ds._scale[0], (192, 256))
    lab = img_joints[:, 2] > 0
    expected = transform_points(img_joints[lab, :2], m)
    np.testing.assert_allclose(s["joints"].numpy()[lab, :2], expected, atol=1e-3)
    assert float(s["rotation"]) == 0 and float(s["score"]) == 1
    # the crop area recorded for OKS-NMS is (200 s_x)(200 s_y)
    assert float(s["area"]) == pytest.approx(float(np.prod(ds._scale[0] * 200)), rel=1e-6)


def test_gpu_path_on_cpu_equals_the_cpu_samples(tiny):
    cpu = dataset(*tiny, seed=5)
    raw = dataset(*tiny, seed=5, raw=True)
    batch = gpu_collate([raw[i] for i in range(len(raw))])
    out = GpuBatchTransform(CODEC, device="cpu")(batch)
    # the CPU samples warp with OpenCV to uint8: ≤ ½ level of rounding plus ≤ 1/64 px of sample
    # position per axis, which on these random-noise JPEGs (gradients up to 255 levels/px) is
    # ≤ ½ + 2·255/64 levels; on average well under one level (we measure ~0.6)
    levels = 255.0 * torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for i in range(len(cpu)):
        ref = cpu[i]
        diff = (out["image"][i] - ref["image"]).abs() * levels
        assert float(diff.max()) <= 0.5 + 2 * 255 / 64 and float(diff.mean()) < 1.0
        for key, value in ref.items():
            if key != "image":
                torch.testing.assert_close(out[key][i], value, atol=2e-4, rtol=0)


def test_detection_boxes_threshold_and_errors(tiny, tmp_path):
    dets = [{"image_id": 1, "category_id": 1, "bbox": [20, 10, 60, 90], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [20, 10, 60, 90], "score": 0.1},
            {"image_id": 3, "category_id": 2, "bbox": [20, 10, 60, 90], "score": 0.9},
            {"image_id": 3, "category_id": 1, "bbox": [20, 10, 0, 90], "score": 0.9}]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    ds = dataset(*tiny, train=False, boxes=str(path), box_score_threshold=0.5)
    assert len(ds) == 1 and ds.num_skipped == {"low_score": 1, "not_person": 1, "degenerate_box": 1}
    s = ds[0]
    assert int(s["ann_id"]) == -1 and float(s["score"]) == pytest.approx(0.9) and int(s["image_id"]) == 1
    assert float(s["target_weight"].sum()) == 0
    for bad, message in [([], "non-empty"), ([{**dets[0], "image_id": 99}], "image_id 99"),
                         ([{"image_id": 1, "bbox": [1, 2, 3]}], "detection #0 is malformed")]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            dataset(*tiny, train=False, boxes=str(path))


def test_bad_inputs_give_clear_errors(tmp_path):
    rng = np.random.default_rng(1)
    ann_file, image_dir = write_coco(tmp_path, [person(11, 1, rng), person(12, 2, rng), person(13, 3, rng)])
    os.remove(os.path.join(image_dir, "002.jpg"))
    with open(os.path.join(image_dir, "003.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not really a jpeg")
    ds = dataset(ann_file, image_dir)
    order = ds._ann_id.tolist()
    with pytest.raises(FileNotFoundError, match=r"002\.jpg.*annotation id 12"):
        ds[order.index(12)]
    with pytest.raises(ValueError, match=r"cannot decode image .*003\.jpg.*annotation id 13"):
        ds[order.index(13)]
    with pytest.raises(IndexError):
        ds[len(ds)]
    short = person(21, 1, rng)
    short["keypoints"] = short["keypoints"][:50]
    bad_file, _ = write_coco(tmp_path / "bad", [short])
    with pytest.raises(ValueError, match=r"annotation id 21 .*expected 51 keypoint numbers.*got 50"):
        dataset(bad_file, image_dir)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        dataset(str(tmp_path / "nope.json"), image_dir)
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(ValueError, match=r"cannot read COCO annotations from .*broken\.json"):
        dataset(str(tmp_path / "broken.json"), image_dir)
    with pytest.raises(ValueError, match="input_size must be .* positive multiples of the stride 4"):
        CocoKeypoints(ann_file, image_dir, codec=HeatmapCodec((255, 192)), spec=COCO17)
    # the codec and the keypoint spec are required: no 256×192 or COCO-17 default
    with pytest.raises(TypeError, match="spec"):
        CocoKeypoints(ann_file, image_dir, codec=CODEC)
    with pytest.raises(TypeError, match="codec"):
        CocoKeypoints(ann_file, image_dir, spec=COCO17)
    with pytest.raises(TypeError, match="codec must be a heatmaps.HeatmapCodec"):
        CocoKeypoints(ann_file, image_dir, codec=(256, 192), spec=COCO17)
    with pytest.raises(ValueError, match="no keypoint spec given"):
        CocoKeypoints(ann_file, image_dir, codec=CODEC, spec=None)


def test_grayscale_images_decode_to_rgb(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(path)
    img = load_image(str(path))
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and np.all(img == 200)


def test_decoding_gives_pillows_pixels(tmp_path):
    # OpenCV decodes; Pillow, an independent decoder, must give the same RGB pixels: JPEG at each
    # chroma subsampling, and PNGs whose alpha channel or palette become plain RGB
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    files = []
    for sub in (0, 1, 2):
        files.append(tmp_path / f"s{sub}.jpg")
        Image.fromarray(pixels).save(files[-1], quality=90, subsampling=sub)
    files.append(tmp_path / "rgba.png")
    Image.fromarray(np.concatenate([pixels, pixels[..., :1]], 2), "RGBA").save(files[-1])
    files.append(tmp_path / "palette.png")
    Image.fromarray(pixels).convert("P").save(files[-1])
    for path in files:
        with Image.open(path) as im:
            expected = np.array(im.convert("RGB"))
        got = load_image(str(path))
        assert got.flags.c_contiguous and got.flags.writeable
        np.testing.assert_array_equal(got, expected, err_msg=str(path))


@pytest.mark.skipif(not os.path.isdir(os.path.join(SAMPLES, "annotations")), reason="no SynthPose sample yet")
def test_synthpose_sample_yields_consistent_samples():
    ann = os.path.join(SAMPLES, "annotations", "person_keypoints_val.json")
    ds = dataset(ann, os.path.join(SAMPLES, "images"), train=False)
    assert len(ds) > 0
    batch = torch.utils.data.default_collate([ds[i] for i in range(min(4, len(ds)))])
    assert batch["image"].shape[1:] == (3, 256, 192) and batch["target"].shape[1:] == (17, 64, 48)
    assert torch.isfinite(batch["image"]).all() and (batch["target_weight"] > 0).any()
    train = dataset(ann.replace("_val", "_train"), os.path.join(SAMPLES, "images"), train=True)
    for i in range(8):  # augmented: every weighted joint's target peaks at μ = ⌊x_in/4 + ½⌋
        s = train[i]
        on = (s["target_weight"] > 0).numpy()
        mu = np.minimum(np.floor(s["joints"].numpy()[on, :2] / 4 + 0.5), [47, 63])
        flat = s["target"].numpy()[on].reshape(on.sum(), -1).argmax(1)
        np.testing.assert_array_equal(np.stack([flat % 48, flat // 48], 1), mu)

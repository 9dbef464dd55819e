"""``hrnet-edu predict`` on a photo: persons found by a detector (or refused in one line without
one), EXIF orientation applied, and the detector wrapper's box logic, all without torchvision or
the network (fake detectors stand in for torchvision's)."""

import sys
import types
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image, ImageOps

from hrnet_edu import detect
from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.cli import main
from hrnet_edu.data.coco import load_image
from hrnet_edu.detect import NO_DETECTOR, PERSON, detect_persons, person_boxes_from_detections
from hrnet_edu.predict import predict_file, predict_image

CHECKPOINT = str(Path(__file__).resolve().parents[1] / "data_samples/checkpoints/synthpose_w16_128x96_cpu.pt")
EXIF_ORIENTATION = 0x0112
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _fresh_detector():
    detect.person_detector.cache_clear()  # each test decides what torchvision looks like
    yield
    detect.person_detector.cache_clear()


@pytest.fixture
def photo():
    """matplotlib's sample photograph of Grace Hopper, (600, 512, 3) uint8: a real, upright person."""
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


class FakeDetector:
    """torchvision's detection interface, answering fixed detections and recording its input."""

    def __init__(self, boxes_xyxy, labels, scores):
        self.answer = {"boxes": torch.tensor(boxes_xyxy, dtype=torch.float32),
                       "labels": torch.tensor(labels), "scores": torch.tensor(scores)}
        self.inputs = []

    def __call__(self, images):
        self.inputs.append(images)
        return [self.answer]


def _predict_argv(tmp_path, image):
    return ["predict", str(image), "--checkpoint", CHECKPOINT, "--out", str(tmp_path / "pose.png"),
            "--device", "cpu", "--no-flip"]


def test_person_boxes_are_persons_above_the_score_as_xywh_best_first():
    detections = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 100.0],  # person 0.7 → [10, 20, 40, 80]
                                         [0.0, 0.0, 30.0, 30.0],  # a car (3), score 0.99
                                         [5.5, 6.0, 25.5, 66.0],  # person 0.9 → [5.5, 6, 20, 60]
                                         [1.0, 1.0, 2.0, 2.0],  # person below the score
                                         [7.0, 7.0, 7.0, 40.0]]),  # person, zero width
                  "labels": torch.tensor([PERSON, 3, PERSON, PERSON, PERSON]),
                  "scores": torch.tensor([0.7, 0.99, 0.9, 0.3, 0.95])}
    boxes, scores = person_boxes_from_detections(detections, min_score=0.5)
    np.testing.assert_allclose(boxes, [[5.5, 6, 20, 60], [10, 20, 40, 80]])
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-6)
    boxes, scores = person_boxes_from_detections(detections, min_score=0.2)
    assert len(boxes) == 3 and scores[-1] == pytest.approx(0.3)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "scores": torch.zeros(0)}
    boxes, scores = person_boxes_from_detections(empty)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_the_detector_sees_the_image_as_torchvision_expects():
    """One (3, H, W) float tensor in [0, 1], channel c at (y, x) = image[y, x, c] / 255."""
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    fake = FakeDetector([[1.0, 2.0, 11.0, 22.0]], [PERSON], [0.8])
    boxes, _ = detect_persons(image, fake)
    (pixels,) = fake.inputs[0]
    assert pixels.shape == (3, 30, 40) and pixels.dtype == torch.float32
    np.testing.assert_allclose(pixels.permute(1, 2, 0).numpy() * 255, image, atol=1e-4)
    np.testing.assert_allclose(boxes, [[1, 2, 10, 20]])


def test_predict_without_a_box_draws_every_detected_person_as_if_their_boxes_were_given(
        tmp_path, photo, monkeypatch, capsys):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    fake = FakeDetector([[60.0, 40.0, 460.0, 600.0], [0.0, 300.0, 200.0, 600.0], [10.0, 10.0, 50.0, 50.0]],
                        [PERSON, PERSON, 3], [0.98, 0.6, 0.99])
    monkeypatch.setattr(detect, "person_detector", lambda: fake)
    assert main(_predict_argv(tmp_path, tmp_path / "photo.png")) == 0
    detected = capsys.readouterr().out
    assert "(box 0,300,200,300," in detected and "person 2" not in detected  # the car is no person
    assert main([*_predict_argv(tmp_path, tmp_path / "photo.png"), "--box", "60,40,400,560",
                 "--box", "0,300,200,300"]) == 0
    given = capsys.readouterr().out
    assert detected == given  # same boxes → the same keypoints, printed alike
    assert main([*_predict_argv(tmp_path, tmp_path / "photo.png"), "--detect-score", "0.99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no person found in" in err and "--box" in err


def test_without_torchvision_predict_refuses_in_one_line(tmp_path, photo, monkeypatch, capsys):
    Image.fromarray(photo).save(tmp_path / "photo.png")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails
    assert main(_predict_argv(tmp_path, tmp_path / "photo.png")) == 2
    assert capsys.readouterr().err == f"hrnet-edu predict: error: {NO_DETECTOR}\n"
    assert not (tmp_path / "pose.png").exists()
    # --box and --whole-image need no detector
    assert main([*_predict_argv(tmp_path, tmp_path / "photo.png"), "--whole-image"]) == 0
    out = capsys.readouterr().out
    assert "person 0: " in out and "(box 0,0,512,600," in out


def _fake_torchvision(monkeypatch, detection_module):
    torchvision, models = types.ModuleType("torchvision"), types.ModuleType("torchvision.models")
    torchvision.models, models.detection = models, detection_module
    for name, module in (("torchvision", torchvision), ("torchvision.models", models),
                         ("torchvision.models.detection", detection_module)):
        monkeypatch.setitem(sys.modules, name, module)


def test_torchvision_without_its_weights_says_to_give_a_box(tmp_path, photo, monkeypatch, capsys):
    """torchvision present, its download failing (offline): one line, --box advice."""
    offline = types.ModuleType("torchvision.models.detection")
    offline.FasterRCNN_ResNet50_FPN_V2_Weights = types.SimpleNamespace(COCO_V1="COCO_V1")

    def no_network(weights, progress):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    offline.fasterrcnn_resnet50_fpn_v2 = no_network
    _fake_torchvision(monkeypatch, offline)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(_predict_argv(tmp_path, tmp_path / "photo.png")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not fetch the weights" in err and "name resolution" in err
    assert err.rstrip().endswith("give --box x,y,w,h")


def test_a_torchvision_built_for_another_torch_is_one_line(monkeypatch):
    broken = types.ModuleType("torchvision.models.detection")

    def unregistered(name):
        raise RuntimeError("operator torchvision::nms does not exist\nmore lines")

    _fake_torchvision(monkeypatch, broken)
    monkeypatch.delitem(sys.modules, "torchvision.models.detection")
    sys.modules["torchvision.models"].__getattr__ = unregistered
    del sys.modules["torchvision.models"].detection
    with pytest.raises(ImportError) as err:
        detect.person_detector()
    reason = "operator torchvision::nms does not exist"
    assert str(err.value) == f"{NO_DETECTOR} (torchvision did not import: {reason})"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_decoding_applies_exif_orientation_as_pillow_does(tmp_path, orientation):
    image = np.random.default_rng(orientation).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(image).save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(load_image(str(tmp_path / "o.png"), upright=True), expected)
    np.testing.assert_array_equal(load_image(str(tmp_path / "o.png")), image)  # datasets: as stored


@pytest.mark.parametrize("orientation, turn", [(6, 1), (8, -1)])
def test_an_exif_rotated_jpeg_is_predicted_upright(tmp_path, photo, orientation, turn):
    """A camera's JPEG stored sideways with its EXIF orientation gives the poses of the upright photo."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation  # 6: show turned 90° clockwise; 8: counter-clockwise
    stored = np.ascontiguousarray(np.rot90(photo, turn))  # (512, 600, 3): the sensor's frame
    Image.fromarray(stored).save(tmp_path / "camera.jpg", quality=95, exif=exif)
    # the same decoded pixels turned by hand, saved losslessly without EXIF
    sideways = load_image(str(tmp_path / "camera.jpg"))
    upright = np.rot90(sideways, -turn)
    assert upright.shape == photo.shape
    Image.fromarray(upright).save(tmp_path / "upright.png")
    box = [[60.0, 40.0, 400.0, 560.0]]  # Grace Hopper, in the upright photo
    [camera], _ = predict_file(str(tmp_path / "camera.jpg"), CHECKPOINT, str(tmp_path / "a.png"), box,
                              flip=False, device="cpu")
    [reference], _ = predict_file(str(tmp_path / "upright.png"), CHECKPOINT, str(tmp_path / "b.png"), box,
                                 flip=False, device="cpu")
    np.testing.assert_array_equal(camera[0], reference[0])
    np.testing.assert_array_equal(camera[1], reference[1])
    # the stored frame, as predict read it before, would have given other keypoints
    model, cfg = load_checkpoint(CHECKPOINT)
    as_stored, _ = predict_image(model, sideways, box[0], cfg.codec, cfg.spec, flip=False)
    assert np.abs(as_stored - reference[0]).max() > 20

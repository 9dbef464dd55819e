"""One image in, keypoints drawn on it out (``hrnet-edu predict IMAGE --checkpoint PATH --out FILE.png``).

The same top-down chain as ``evaluate`` for a single picture, turned upright as a viewer shows it
(its EXIF orientation applied): each person box (``--box x,y,w,h``, repeatable; without one, the
persons a detector finds, ``detect.detect_persons``; ``--whole-image`` for a picture of one person
cropped to them) is grown to the input's aspect ratio, padded by 1.25, warped to the input size, run
through the network with the flip test, decoded and mapped back to the image with the inverse crop
transform. Keypoints whose confidence (heatmap maximum) exceeds a threshold are drawn with the
checkpoint's skeleton (``viz.draw_pose``).
The checkpoint's codec decodes, unless ``--decode`` says otherwise.

Shapes: K joints; images (H, W, 3) uint8 RGB; crops (1, 3, H_in, W_in).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hrnet_edu.checkpoints import load_checkpoint
from hrnet_edu.commands import check_output_file, runtime_device, runtime_model
from hrnet_edu.data.coco import load_image
from hrnet_edu.data.transforms import normalize, warp_image
from hrnet_edu.detect import detect_persons
from hrnet_edu.errors import InputError
from hrnet_edu.evaluate import model_device, predict_heatmaps
from hrnet_edu.geometry import box_to_center_scale, crop_transform
from hrnet_edu.heatmaps import HeatmapCodec
from hrnet_edu.keypoints import get_spec
from hrnet_edu.viz import draw_pose


def predict_image(model, image: np.ndarray, box, codec: HeatmapCodec, spec, flip: bool = True, device=None):
    """Keypoints of the person in ``box`` of one image.

    Args:
        model: (N, 3, H_in, W_in) → (N, K, H_in/4, W_in/4); evaluated in eval mode, mode restored.
        image: (H, W, 3) uint8 RGB. box: [x, y, w, h] in image pixels (None: the whole image).
        codec: the network's ``HeatmapCodec`` (its input size, decoding, flip shift).
        spec: the keypoint set (its flip pairs in the flip test). flip: the flip test.
        device: where to run (default: the model's device).

    Returns:
        keypoints (K, 2) float64 image pixels (x, y), confidences (K,) float32.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    box = np.asarray([0, 0, image.shape[1], image.shape[0]] if box is None else box, dtype=np.float64)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"box must be [x, y, w, h] with w, h > 0, got {box.tolist()}")
    height, width = image.shape[:2]
    if box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
        # the crop would be all padding: a pose "predicted" from nothing
        raise InputError(f"box {box.tolist()} lies entirely outside the image ({width}x{height} pixels)")
    h_in, w_in = codec.input_size
    center, scale = box_to_center_scale(box, w_in / h_in)
    # image → crop: the box centre to the crop's middle, 200·s_x image px to W_in crop px
    crop = normalize(warp_image(image, crop_transform(center, scale, (w_in, h_in)), (w_in, h_in)))
    device = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    try:
        heatmaps = predict_heatmaps(model, crop[None].to(device), get_spec(spec).flip_index, flip,
                                    codec.flip_shift)  # (1, K, H_in/4, W_in/4)
    finally:
        model.train(was_training)
    keypoints, conf = codec.to_image(heatmaps, center[None], scale[None], 0.0)
    return keypoints[0], conf[0]


def draw_predictions(image: np.ndarray, poses, spec, boxes=None, threshold: float = 0.2) -> Figure:
    """The image at its own pixel size with each pose's confident keypoints and skeleton.

    Args:
        image: (H, W, 3) uint8. poses: list of (keypoints (K, 2), confidences (K,)).
        spec: the keypoint set whose skeleton is drawn.
        boxes: optional list of [x, y, w, h] drawn as dashed rectangles.
        threshold: keypoints with confidence ≤ threshold are not drawn (the reference's 0.2).

    Returns:
        a matplotlib Figure of W×H pixels at dpi 100 (no pyplot).
    """
    h, w = image.shape[:2]
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.set_axis_off()
    for keypoints, conf in poses:
        draw_pose(ax, keypoints, np.asarray(conf) > threshold, radius=max(2.0, w / 160),
                  linewidth=max(1.5, w / 200), spec=spec)
    for x, y, bw, bh in boxes or []:
        ax.add_patch(Rectangle((x, y), bw, bh, fill=False, edgecolor="white", linestyle="--", linewidth=1))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return fig


def whole_image(image: np.ndarray) -> list[list[float]]:
    """The one box [0, 0, W, H] of an (H, W, 3) image: a picture cropped to one person."""
    return [[0.0, 0.0, float(image.shape[1]), float(image.shape[0])]]


def predict_file(image_path, checkpoint, out, boxes=None, config=None, flip: bool = True,
                 decode: str | None = None, threshold: float = 0.2, device="auto", runtime: str = "torch",
                 onnx_path=None) -> tuple[list[tuple[np.ndarray, np.ndarray]], list]:
    """``hrnet-edu predict``: the poses of an image file, drawn into the image file ``out``.

    Args:
        image_path: an image file (JPEG, PNG, ...). checkpoint, config: see ``checkpoints.load_checkpoint``.
        out: the image to write (e.g. pose.png), checked before any work.
        boxes: person boxes [x, y, w, h] in image pixels (of the upright image), or a function
            image (H, W, 3) → such boxes (``whole_image``); None: the persons torchvision's detector
            finds (``detect.detect_persons``; one line asking for boxes without it).
        flip: the flip test. decode: the decoding (None: the checkpoint's codec's).
        threshold: draw keypoints above this confidence.
        device, runtime, onnx_path: see ``commands.checkpoint_ap``.

    Returns:
        (one (keypoints (K, 2), confidences (K,)) per box, the boxes).
    """
    check_output_file(out)
    root, ext = os.path.splitext(os.path.basename(out))
    if not root or not ext:  # "dir/" or "dir/.png" would write a hidden file
        raise InputError(f"--out {out}: give an image file name such as pose.png")
    device = runtime_device(device, runtime)
    model, cfg = load_checkpoint(checkpoint, config, device=device)
    model, device = runtime_model(model, cfg, runtime, onnx_path, device)
    image = load_image(image_path, upright=True)
    if boxes is None or callable(boxes):  # a box finder: run it on the upright image
        boxes = (boxes or (lambda im: detect_persons(im)[0]))(image)
        if len(boxes) == 0:
            raise InputError(f"no person found in {image_path}: give --box x,y,w,h")
    boxes = [[float(v) for v in box] for box in boxes]
    codec = cfg.codec if decode is None else dataclasses.replace(cfg.codec, decoding=decode)
    # the checkpoint's keypoint set: its flip pairs in the flip test, its skeleton in the drawing
    poses = [predict_image(model, image, box, codec, cfg.spec, flip, device) for box in boxes]
    draw_predictions(image, poses, cfg.spec, boxes, threshold).savefig(out, dpi=100)
    return poses, boxes

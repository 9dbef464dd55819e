"""Person boxes for a photo: the first step of top-down pose estimation, done by a detector.

HRNet is a *top-down* method (the paper's Section 4.1): a person detector proposes boxes and the
pose network sees one box at a time. On COCO val the paper uses the boxes of a detector that is not
part of HRNet; for a photo of your own, ``hrnet-edu predict IMAGE`` finds them with torchvision's
COCO-trained Faster R-CNN (ResNet-50-FPN v2, box AP 46.7 on COCO val2017 as torchvision publishes
it), whose weights torchvision downloads once and caches itself (``$TORCH_HOME``).

torchvision is an optional extra (``pip install -e '.[detect]'``), imported only here and only when
a detector is asked for; without it, or without its weights (offline), ``person_detector`` raises
one line that says to give ``--box``. Everything else (the box conversion, the person and score
filter) is plain tensor code that works on any callable with the interface of torchvision's
detection models, so it is tested without torchvision.

Shapes: images (H, W, 3) uint8 RGB; boxes (N, 4) as COCO's [x, y, w, h] in image pixels (the same
continuous coordinates as COCO's and torchvision's boxes: the image spans [0, W] × [0, H]).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

# torchvision's detection models keep COCO's category ids (91 slots, background 0): person is 1
PERSON = 1
MIN_SCORE = 0.5  # the detector's confidence a box needs to count as a person
NO_DETECTOR = "no person detector: pip install -e '.[detect]' or give --box x,y,w,h"


@functools.lru_cache(maxsize=1)
def person_detector() -> torch.nn.Module:
    """torchvision's Faster R-CNN ResNet-50-FPN v2 with its COCO weights, in eval mode (built once).

    Raises:
        ImportError: torchvision is not installed or does not import beside this torch.
        OSError: its weights are neither cached nor downloadable (offline, no permission, corrupt).
        Both messages are one line that ends with the ``--box`` advice.
    """
    try:
        from torchvision.models import detection
    except Exception as err:  # not installed, or built for another torch (an operator fails to register)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        reason = "" if isinstance(err, ModuleNotFoundError) else f" (torchvision did not import: {first})"
        raise ImportError(NO_DETECTOR + reason) from err
    weights = detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    try:
        model = detection.fasterrcnn_resnet50_fpn_v2(weights=weights, progress=False)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash or file a RuntimeError
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OSError(f"no person detector: torchvision could not fetch the weights of "
                      f"fasterrcnn_resnet50_fpn_v2 ({first}); give --box x,y,w,h") from err
    return model.eval()


def person_boxes_from_detections(detection: dict, min_score: float = MIN_SCORE):
    """The persons among one image's detections, as COCO boxes.

    Args:
        detection: one element of a torchvision detection model's output: "boxes" (M, 4) as
            [x1, y1, x2, y2], "labels" (M,) COCO category ids, "scores" (M,).
        min_score: keep boxes whose score is at least this.

    Returns:
        boxes (N, 4) float64 [x, y, w, h], scores (N,) float64, highest score first; boxes of zero
        width or height are dropped (no crop can be centred on them).
    """
    boxes = torch.as_tensor(detection["boxes"], dtype=torch.float64).reshape(-1, 4)
    labels = torch.as_tensor(detection["labels"]).reshape(-1)
    scores = torch.as_tensor(detection["scores"], dtype=torch.float64).reshape(-1)
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1)  # [x1, y1, x2 − x1, y2 − y1]
    keep = (labels == PERSON) & (scores >= min_score) & (xywh[:, 2:] > 0).all(dim=1)
    order = torch.argsort(scores[keep], descending=True, stable=True)
    return xywh[keep][order].numpy(), scores[keep][order].numpy()


def detect_persons(image: np.ndarray, detector=None, min_score: float = MIN_SCORE):
    """Person boxes in one photo.

    Args:
        image: (H, W, 3) uint8 RGB.
        detector: a callable with torchvision's detection interface (a list of (3, H, W) float
            tensors in [0, 1] → a list of dicts); default ``person_detector()``.
        min_score: see ``person_boxes_from_detections``.

    Returns:
        boxes (N, 4) float64 [x, y, w, h] in image pixels, scores (N,), highest score first.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
    detector = person_detector() if detector is None else detector
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255  # (3, H, W)
    with torch.inference_mode():
        (detection,) = detector([pixels])
    return person_boxes_from_detections(detection, min_score)

"""The COCO keypoint conventions: the only place in hrnet-edu where they are written.

COCO annotates K = 17 keypoints per person, in this order (index: name)::

    0 nose        5 left_shoulder   9 left_wrist    13 left_knee
    1 left_eye    6 right_shoulder 10 right_wrist   14 right_knee
    2 right_eye   7 left_elbow     11 left_hip      15 left_ankle
    3 left_ear    8 right_elbow    12 right_hip     16 right_ankle
    4 right_ear

"Left" is the person's left, which appears on the *right* of the image when the person faces
the camera: this is why a horizontal flip must swap the left/right channels (``FLIP_INDEX``).

Every index here is 0-based; COCO's own ``skeleton`` field in the annotation files is 1-based
(``COCO_SKELETON``). The OKS constants ``SIGMAS`` are exactly the array pycocotools uses in
``COCOeval`` (``kpt_oks_sigmas``); the paper's per-keypoint constant is k_i = 2 σ_i.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 17

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

# Limbs as (from, to) joint indices, 0-based. Same 19 limbs as the COCO category's skeleton.
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),  # legs and hips
    (5, 11), (6, 12), (5, 6),                          # torso
    (5, 7), (6, 8), (7, 9), (8, 10),                   # arms
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),  # head
)  # fmt: skip

# The same limbs 1-based, exactly as written in COCO's person category.
COCO_SKELETON: tuple[tuple[int, int], ...] = tuple((a + 1, b + 1) for a, b in SKELETON)

# Left/right pairs swapped by a horizontal flip (nose, index 0, has no partner).
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip


def _flip_index(pairs: tuple[tuple[int, int], ...], k: int) -> tuple[int, ...]:
    index = list(range(k))
    for a, b in pairs:
        index[a], index[b] = b, a
    return tuple(index)


# A permutation: after a horizontal flip, channel k holds what was channel FLIP_INDEX[k],
# so ``flipped[..., FLIP_INDEX, :]`` swaps every left joint with its right partner.
FLIP_INDEX: tuple[int, ...] = _flip_index(FLIP_PAIRS, NUM_KEYPOINTS)

# Per-keypoint OKS constants σ_i, as in pycocotools' COCOeval (kpt_oks_sigmas).
# They were measured as the spread of human annotators per keypoint: eyes are placed
# consistently (σ = .025), hips much less so (σ = .107).
SIGMAS: np.ndarray = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
              0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0
)  # fmt: skip
SIGMAS.setflags(write=False)

# Drawing palette, RGB in [0, 1]: the person's left in blue, right in orange, centre in green,
# so a left/right swap is visible at a glance.
_LEFT, _RIGHT, _CENTRE = (0.12, 0.47, 0.71), (1.0, 0.50, 0.05), (0.17, 0.63, 0.17)


def _side(name: str) -> tuple[float, float, float]:
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _CENTRE


KEYPOINT_COLORS: tuple[tuple[float, float, float], ...] = tuple(_side(n) for n in KEYPOINT_NAMES)


def _limb_color(a: int, b: int) -> tuple[float, float, float]:
    sides = {_side(KEYPOINT_NAMES[a]), _side(KEYPOINT_NAMES[b])}
    return sides.pop() if len(sides) == 1 else _CENTRE


LIMB_COLORS: tuple[tuple[float, float, float], ...] = tuple(_limb_color(a, b) for a, b in SKELETON)


def coco_person_category() -> dict:
    """The ``categories`` entry of a COCO person-keypoints annotation file (id 1, 1-based skeleton)."""
    return {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(KEYPOINT_NAMES),
        "skeleton": [list(limb) for limb in COCO_SKELETON],
    }

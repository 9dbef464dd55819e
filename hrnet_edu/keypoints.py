"""Keypoint sets: the one place where a set's names, skeleton, flip pairs, OKS sigmas and colours live.

A :class:`KeypointSpec` describes one keypoint set; every layer that depends on the set (the
dataset, the targets, the network's number of heatmaps K, the flip test, OKS, OKS-NMS, COCO
evaluation, the error taxonomy, drawing, configs and checkpoints) takes a spec, COCO-17 by default.
Two are built in (``SPECS``):

``COCO17`` — COCO's K = 17 person keypoints, in this order (index: name)::

    0 nose        5 left_shoulder   9 left_wrist    13 left_knee
    1 left_eye    6 right_shoulder 10 right_wrist   14 right_knee
    2 right_eye   7 left_elbow     11 left_hip      15 left_ankle
    3 left_ear    8 right_elbow    12 right_hip     16 right_ankle
    4 right_ear

``CROWDPOSE14`` — CrowdPose's K = 14 (Li et al., CVPR 2019): COCO's 12 body joints, then the top
of the head and the neck; no face::

    0 left_shoulder   3 right_elbow   6 left_hip     9 right_knee   12 head (top of the head)
    1 right_shoulder  4 left_wrist    7 right_hip   10 left_ankle   13 neck
    2 left_elbow      5 right_wrist   8 left_knee   11 right_ankle

"Left" is the person's left, which appears on the *right* of the image when the person faces
the camera: this is why a horizontal flip must swap the left/right channels (``flip_index``).

Every index here is 0-based; the ``skeleton`` field of a COCO category is 1-based
(``KeypointSpec.coco_category``). The OKS constants ``sigmas`` are exactly the arrays the
datasets' own evaluation code uses (pycocotools' ``kpt_oks_sigmas`` for COCO, crowdposetools'
for CrowdPose); the paper's per-keypoint constant is k_i = 2 σ_i.

Your own keypoints: ``KeypointSpec.from_coco_category(category, sigmas=...)`` reads the names and
skeleton of a COCO category and infers the flip pairs from ``left_``/``right_`` names.

Below the configuration layer every function that depends on which joints exist takes the spec
(or its ``flip_index`` / ``sigmas``) as an argument: nothing falls back to COCO-17, so a 17-joint
set in another order can never be flipped or scored as COCO's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]

# Drawing palette, RGB in [0, 1]: the person's left in blue, right in orange, centre in green,
# so a left/right swap is visible at a glance.
LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR = (0.12, 0.47, 0.71), (1.0, 0.50, 0.05), (0.17, 0.63, 0.17)

# Names whose joints belong to the lower body in the half-body augmentation (any "_"-separated word).
LOWER_BODY_WORDS = ("hip", "knee", "ankle", "foot", "heel", "toe", "leg", "thigh", "shin")


def _words(name: str) -> list[str]:
    return re.split(r"[_\-\s]+", name.lower())


# "left" or "right" as a word of a name ("left_shoulder", "hand-left", "Left Eye"), any case
_SIDE_WORD = re.compile(r"(?<![a-z])(left|right)(?![a-z])", re.IGNORECASE)


def _side(name: str) -> int:
    """+1 for a left joint, −1 for a right one, 0 for a centre joint (by the words of its name)."""
    match = _SIDE_WORD.search(name)
    return 0 if match is None else 1 if match.group(1).lower() == "left" else -1


def _side_color(name: str) -> RGB:
    return {1: LEFT_COLOR, -1: RIGHT_COLOR, 0: CENTRE_COLOR}[_side(name)]


def _mirror_name(name: str) -> str:
    """The name with "left" and "right" exchanged, keeping their case (left_eye → right_eye)."""

    def swap(match: re.Match) -> str:
        word = match.group(1)
        other = "right" if word.lower() == "left" else "left"
        return other.upper() if word.isupper() else other.capitalize() if word[0].isupper() else other

    return _SIDE_WORD.sub(swap, name)


def infer_flip_pairs(names) -> tuple[tuple[int, int], ...]:
    """Left/right pairs from the names: each name with the word "left" pairs with the same name
    with "right" (``left_shoulder`` ↔ ``right_shoulder``, ``hand_left`` ↔ ``hand_right``).

    Raises ValueError when a left or right joint has no partner (a flip would have nowhere to put it).
    """
    index = {name: k for k, name in enumerate(names)}
    pairs, lonely = [], []
    for k, name in enumerate(names):
        if _side(name) == 0:
            continue
        other = index.get(_mirror_name(name))
        if other is None:
            lonely.append(name)
        elif _side(name) == 1:
            pairs.append((k, other))
    if lonely:
        raise ValueError(f"cannot infer the flip pairs: {', '.join(map(repr, lonely))} ha"
                         f"{'s' if len(lonely) == 1 else 've'} no left/right partner among the names; "
                         "pass flip_pairs=[(left, right), ...] (0-based indices)")
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class KeypointSpec:
    """One keypoint set: K names and everything that depends on which joint is which.

    Attributes:
        name: a short identifier ("coco17"), stored in configs and checkpoints.
        names: (K,) joint names, in the order of the annotations' keypoint triplets.
        skeleton: limbs as (from, to) joint indices, 0-based (drawing only).
        flip_pairs: (left, right) index pairs that a horizontal flip swaps; joints in no pair
            (nose, neck, head) map to themselves. Each joint is in at most one pair.
        sigmas: (K,) OKS constants σ_i (k_i = 2σ_i): the spread of human annotators per joint.
        upper_body: joints of the upper body for the half-body augmentation; default: every joint
            whose name has no lower-body word (``LOWER_BODY_WORDS``: hip, knee, ankle, …).
        colors: (K,) RGB in [0, 1] per joint; default: left blue, right orange, centre green.
        limb_colors: one RGB per limb; default: the joints' colour where both ends share it, else
            the centre green.

    Derived: ``num_joints`` K, ``flip_index`` (the permutation of a flip), ``sigma_array``.
    Raises ValueError for a malformed spec (wrong counts, indices out of range, a joint in two
    flip pairs, a joint paired with itself, non-positive sigmas), naming the problem.
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    upper_body: tuple[int, ...] | None = None
    colors: tuple[RGB, ...] | None = None
    limb_colors: tuple[RGB, ...] | None = None

    def __post_init__(self):
        where = f"keypoint spec {self.name!r}"
        names = tuple(str(n) for n in self.names)
        k = len(names)
        if k == 0:
            raise ValueError(f"{where}: no keypoint names")
        if len(set(names)) != k:
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{where}: keypoint names must be unique, {twice} appear more than once")

        def index_pairs(pairs, what: str) -> tuple[tuple[int, int], ...]:
            out = []
            for pair in pairs:
                pair = tuple(pair)
                if len(pair) != 2 or not all(isinstance(i, int | np.integer) and not isinstance(i, bool)
                                             for i in pair):
                    raise ValueError(f"{where}: each of the {what} must be two joint indices, got {pair!r}")
                a, b = int(pair[0]), int(pair[1])
                if not (0 <= a < k and 0 <= b < k):
                    raise ValueError(f"{where}: {what} ({a}, {b}) is out of range for K = {k} joints "
                                     f"(0-based indices 0..{k - 1})")
                if a == b:
                    raise ValueError(f"{where}: {what} ({a}, {b}) joins joint {a} ({names[a]}) to itself")
                out.append((a, b))
            return tuple(out)

        skeleton = index_pairs(self.skeleton, "skeleton limbs")
        flip_pairs = index_pairs(self.flip_pairs, "flip pairs")
        seen: dict[int, tuple[int, int]] = {}
        for pair in flip_pairs:
            for j in pair:
                if j in seen:
                    raise ValueError(f"{where}: joint {j} ({names[j]}) is in two flip pairs, {seen[j]} and "
                                     f"{pair}: a flip swaps each joint with exactly one partner")
                seen[j] = pair
        sigmas = self._checked_sigmas(where, k)
        upper, colors, limb_colors = self._checked_drawing(where, names, skeleton)
        for key, value in (("names", names), ("skeleton", skeleton), ("flip_pairs", flip_pairs),
                           ("sigmas", sigmas), ("upper_body", upper), ("colors", colors),
                           ("limb_colors", limb_colors)):
            object.__setattr__(self, key, value)

    def _checked_sigmas(self, where: str, k: int) -> tuple[float, ...]:
        """The K OKS constants as positive floats."""
        try:
            sigmas = tuple(float(s) for s in self.sigmas)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: sigmas must be {k} numbers, got {self.sigmas!r}") from None
        if len(sigmas) != k:
            raise ValueError(f"{where}: {len(sigmas)} sigmas for K = {k} joints (one OKS constant per joint)")
        bad = [s for s in sigmas if not (math.isfinite(s) and s > 0)]
        if bad:
            raise ValueError(f"{where}: sigmas must be positive numbers, got {bad[0]!r}")
        return sigmas

    def _checked_drawing(self, where: str, names: tuple[str, ...], skeleton) -> tuple:
        """(upper_body, colors, limb_colors), each given or derived from the joint names."""
        k = len(names)
        if self.upper_body is None:
            upper = tuple(j for j, n in enumerate(names) if not set(_words(n)) & set(LOWER_BODY_WORDS))
        else:
            upper = tuple(sorted({int(j) for j in self.upper_body}))
            if any(not 0 <= j < k for j in upper):
                raise ValueError(f"{where}: upper_body indices must be in 0..{k - 1}, "
                                 f"got {self.upper_body!r}")
        colors = (tuple(_side_color(n) for n in names) if self.colors is None
                  else tuple(tuple(float(c) for c in rgb) for rgb in self.colors))
        if len(colors) != k or any(len(c) != 3 for c in colors):
            raise ValueError(f"{where}: colors must be {k} RGB triplets, got {len(colors)}")
        if self.limb_colors is None:
            limb_colors = tuple(colors[a] if colors[a] == colors[b] else CENTRE_COLOR for a, b in skeleton)
        else:
            limb_colors = tuple(tuple(float(c) for c in rgb) for rgb in self.limb_colors)
        if len(limb_colors) != len(skeleton):
            raise ValueError(f"{where}: {len(limb_colors)} limb colors for {len(skeleton)} skeleton limbs")
        return upper, colors, limb_colors

    # ---- derived ------------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        """K, the number of keypoints (and of the network's heatmaps)."""
        return len(self.names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """A permutation: after a horizontal flip, channel k holds what was channel flip_index[k],
        so ``flipped[..., flip_index, :]`` swaps every left joint with its right partner."""
        index = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return tuple(index)

    @property
    def sigma_array(self) -> np.ndarray:
        """(K,) float64 read-only array of the sigmas (what pycocotools' ``kpt_oks_sigmas`` holds)."""
        array = np.array(self.sigmas, dtype=np.float64)
        array.setflags(write=False)
        return array

    def coco_category(self, category_id: int = 1, name: str = "person") -> dict:
        """The ``categories`` entry of a COCO keypoint file of this set (1-based skeleton)."""
        return {
            "supercategory": "person",
            "id": int(category_id),
            "name": name,
            "keypoints": list(self.names),
            "skeleton": [[a + 1, b + 1] for a, b in self.skeleton],
        }

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_coco_category(cls, category: dict, sigmas=None, flip_pairs=None, name: str = "custom",
                           skeleton=None, upper_body=None) -> KeypointSpec:
        """A spec from a COCO category (``{"keypoints": [names], "skeleton": [[a, b], ...] 1-based}``).

        Args:
            category: one entry of a COCO file's ``categories``.
            sigmas: (K,) OKS constants. Default: each joint's σ in a built-in spec with a joint of
                the same name (COCO-17, CrowdPose-14); ValueError when a name is in none of them —
                σ is a property of the annotations (measure it: the spread of repeated labels of
                the same joint, relative to the person's size), no number fits every joint.
            flip_pairs: (left, right) 0-based index pairs; default: inferred from "left"/"right"
                in the names (``infer_flip_pairs``).
            name: the spec's identifier. skeleton: 0-based limbs instead of the category's.
            upper_body: see the class; default from the names.
        """
        if not isinstance(category, dict) or not isinstance(category.get("keypoints"), list | tuple):
            raise ValueError("a COCO keypoint category needs a 'keypoints' list of names, got "
                             f"{category!r:.200}")
        names = tuple(str(n) for n in category["keypoints"])
        if skeleton is None:
            limbs = category.get("skeleton") or []
            try:
                skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in limbs)
            except (TypeError, ValueError):
                raise ValueError(f"the category's skeleton must be 1-based index pairs, got {limbs!r:.200}") \
                    from None
            out = [(a + 1, b + 1) for a, b in skeleton if not (0 <= a < len(names) and 0 <= b < len(names))]
            if out:
                raise ValueError(f"the category's skeleton has limbs {out[:3]} (1-based) outside its "
                                 f"{len(names)} keypoints; pass skeleton=[(a, b), ...] (0-based) instead")
        if flip_pairs is None:
            flip_pairs = infer_flip_pairs(names)
        if sigmas is None:
            unknown = [n for n in names if n not in KNOWN_SIGMAS]
            if unknown:
                raise ValueError(f"no OKS sigma known for {', '.join(map(repr, unknown[:5]))}"
                                 f"{' …' if len(unknown) > 5 else ''}: pass sigmas=[...] ({len(names)} "
                                 "numbers, e.g. COCO's range from 0.025 for eyes to 0.107 for hips)")
            sigmas = tuple(KNOWN_SIGMAS[n] for n in names)
        return cls(name=name, names=names, skeleton=skeleton, flip_pairs=flip_pairs, sigmas=sigmas,
                   upper_body=upper_body)

    def index_in(self, other: KeypointSpec) -> tuple[int, ...]:
        """For each of this spec's joints, the index of the joint of the same name in ``other``, or −1.

        CROWDPOSE14.index_in(COCO17) = (5, 6, …, 16, −1, −1): its 12 body joints are COCO's 5–16,
        its head top and neck are not COCO joints. Fine-tuning uses it to start each heatmap
        channel from the channel of the same joint of a network trained on ``other``.
        """
        where = {name: k for k, name in enumerate(other.names)}
        return tuple(where.get(name, -1) for name in self.names)

    def describe(self) -> str:
        """One line: name, K, flip pairs by name."""
        pairs = ", ".join(f"{self.names[a]}↔{self.names[b]}" for a, b in self.flip_pairs)
        return (f"{self.name}: K = {self.num_joints} joints, {len(self.flip_pairs)} flip pairs "
                f"({pairs or 'none'})")


# ----------------------------------------------------------------------------- COCO-17
COCO17 = KeypointSpec(
    name="coco17",
    names=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
           "right_knee", "left_ankle", "right_ankle"),
    # the same 19 limbs as the COCO person category's skeleton
    skeleton=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12),  # legs and hips
              (5, 11), (6, 12), (5, 6),                          # torso
              (5, 7), (6, 8), (7, 9), (8, 10),                   # arms
              (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),  # head
    # nose (0) has no partner
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # pycocotools' kpt_oks_sigmas, written as it writes them (k/10): eyes are placed consistently
    # (σ = .025), hips much less so (σ = .107)
    sigmas=tuple((np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
                            0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0).tolist()),
    upper_body=tuple(range(11)),  # nose … wrists; hips … ankles are the lower body
)  # fmt: skip

# ----------------------------------------------------------------------------- CrowdPose-14
CROWDPOSE14 = KeypointSpec(
    name="crowdpose14",
    names=("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
           "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"),
    skeleton=((10, 8), (8, 6), (11, 9), (9, 7), (6, 7),  # legs and hips
              (0, 6), (1, 7), (0, 1),                   # torso
              (0, 2), (1, 3), (2, 4), (3, 5),           # arms
              (12, 13), (0, 13), (1, 13)),              # head top – neck – shoulders
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    # crowdposetools' sigmas (COCO's for the body joints; the head top and neck get the shoulders')
    sigmas=tuple((np.array([0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
                            0.89, 0.89, 0.79, 0.79]) / 10.0).tolist()),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
)  # fmt: skip

# The built-in specs by name: what a config's ``keypoints`` and a checkpoint's record name.
SPECS: dict[str, KeypointSpec] = {spec.name: spec for spec in (COCO17, CROWDPOSE14)}

# σ of every joint name of the built-in specs (the default of ``from_coco_category``).
KNOWN_SIGMAS: dict[str, float] = {n: s for spec in SPECS.values() for n, s in zip(spec.names, spec.sigmas)}


def get_spec(spec) -> KeypointSpec:
    """A KeypointSpec from itself, the name of a built-in one (``SPECS``) or its ``asdict`` (checkpoints).

    ValueError for an unknown name (listing the known ones) and for None: no function guesses the
    keypoint set.
    """
    if spec is None:
        raise ValueError(f"no keypoint spec given: pass a KeypointSpec or a built-in name "
                         f"({', '.join(SPECS)})")
    if isinstance(spec, KeypointSpec):
        return spec
    if isinstance(spec, str):
        if spec.lower() not in SPECS:
            raise ValueError(f"unknown keypoint spec {spec!r}; built in: {', '.join(SPECS)} (or pass a "
                             "KeypointSpec)")
        return SPECS[spec.lower()]
    if isinstance(spec, dict):
        known = {"name", "names", "skeleton", "flip_pairs", "sigmas", "upper_body", "colors", "limb_colors"}
        extra = set(spec) - known
        if extra:
            raise ValueError(f"not a keypoint spec: unknown fields {sorted(extra)}")
        return KeypointSpec(**spec)
    raise ValueError(f"expected a KeypointSpec, the name of a built-in one ({', '.join(SPECS)}) or a dict, "
                     f"got {type(spec).__name__}")


def coco_person_category() -> dict:
    """The ``categories`` entry of a COCO person-keypoints annotation file (id 1, 1-based skeleton)."""
    return COCO17.coco_category()

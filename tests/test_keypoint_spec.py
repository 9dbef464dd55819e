"""KeypointSpec: the built-in sets against their datasets' own tools, round trips through a COCO
category and a dict, flip pairs inferred from names, and malformed specs refused clearly."""

import dataclasses

import numpy as np
import pytest
from pycocotools.cocoeval import Params

from hrnet_edu import keypoints as kp
from hrnet_edu.keypoints import COCO17, CROWDPOSE14, KeypointSpec, get_spec, infer_flip_pairs

# crowdposetools' cocoeval.computeOks (Jeff-sjtu/CrowdPose), written as it writes them
CROWDPOSE_SIGMAS = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0
CROWDPOSE_NAMES = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                   "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                   "right_ankle", "head", "neck"]  # fmt: skip


def test_coco17_is_the_one_source_and_pycocotools():
    # the old COCO-17 module constants are gone: the spec COCO17 is the one source
    for alias in ("KEYPOINT_NAMES", "NUM_KEYPOINTS", "FLIP_INDEX", "FLIP_PAIRS", "SKELETON", "SIGMAS",
                  "KEYPOINT_COLORS", "LIMB_COLORS", "COCO_SKELETON"):
        assert not hasattr(kp, alias), alias
    assert COCO17.num_joints == len(COCO17.names) == 17
    assert COCO17.flip_index == (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    assert len(COCO17.colors) == 17 and len(COCO17.limb_colors) == len(COCO17.skeleton)
    # bit for bit pycocotools' default kpt_oks_sigmas, so COCO AP is unchanged by passing the spec
    assert COCO17.sigma_array.tobytes() == Params(iouType="keypoints").kpt_oks_sigmas.tobytes()
    assert np.array(COCO17.sigmas).tobytes() == COCO17.sigma_array.tobytes()
    assert not COCO17.sigma_array.flags.writeable
    assert kp.coco_person_category() == COCO17.coco_category()
    assert COCO17.upper_body == tuple(range(11))  # the reference's upper_body_ids


def test_crowdpose14_is_crowdposes():
    assert list(CROWDPOSE14.names) == CROWDPOSE_NAMES and CROWDPOSE14.num_joints == 14
    assert CROWDPOSE14.sigma_array.tobytes() == CROWDPOSE_SIGMAS.tobytes()
    # body joints: COCO's joints 5..16 in COCO's order, with COCO's sigmas
    assert CROWDPOSE14.names[:12] == COCO17.names[5:]
    assert CROWDPOSE14.sigmas[:12] == COCO17.sigmas[5:]
    assert set(CROWDPOSE14.upper_body) == {0, 1, 2, 3, 4, 5, 12, 13}


@pytest.mark.parametrize("spec", [COCO17, CROWDPOSE14], ids=lambda s: s.name)
def test_flip_index_is_an_involution_onto_mirror_names(spec):
    idx = np.array(spec.flip_index)
    np.testing.assert_array_equal(idx[idx], np.arange(spec.num_joints))
    for k, j in enumerate(spec.flip_index):
        name = spec.names[k]
        mirrored = name.replace("left", "L").replace("right", "left").replace("L", "right")
        assert spec.names[j] == mirrored
    assert infer_flip_pairs(spec.names) == spec.flip_pairs


@pytest.mark.parametrize("spec", [COCO17, CROWDPOSE14], ids=lambda s: s.name)
def test_round_trips_through_a_coco_category_and_a_dict(spec):
    # a COCO file's category (1-based skeleton) → the same spec: names, skeleton, inferred flip
    # pairs, the known sigmas by name, the upper body inferred from the names, the palette
    assert KeypointSpec.from_coco_category(spec.coco_category(), name=spec.name) == spec
    assert get_spec(dataclasses.asdict(spec)) == spec  # as a checkpoint stores it
    assert get_spec(spec.name) is spec and get_spec(spec.name.upper()) is spec and get_spec(spec) is spec
    # no silent COCO-17: a missing spec is an error that names the built-in ones
    with pytest.raises(ValueError, match=r"no keypoint spec given.*coco17, crowdpose14"):
        get_spec(None)


def test_your_own_keypoints_from_a_category():
    category = {"id": 1, "name": "hand", "keypoints": ["wrist", "thumb_left", "thumb_right", "index_tip"],
                "skeleton": [[1, 2], [1, 3], [1, 4]]}
    spec = KeypointSpec.from_coco_category(category, sigmas=[0.05, 0.03, 0.03, 0.02], name="hand4")
    assert spec.num_joints == 4 and spec.flip_pairs == ((1, 2),) and spec.flip_index == (0, 2, 1, 3)
    assert spec.skeleton == ((0, 1), (0, 2), (0, 3))
    assert spec.colors[:3] == (kp.CENTRE_COLOR, kp.LEFT_COLOR, kp.RIGHT_COLOR)
    # sigmas are required for names no built-in spec knows
    with pytest.raises(ValueError, match=r"no OKS sigma known for 'wrist'.*pass sigmas="):
        KeypointSpec.from_coco_category(category)
    # a category whose skeleton points past its keypoints (as a copy of COCO's 17-joint skeleton)
    with pytest.raises(ValueError, match=r"skeleton has limbs .* outside its 4 keypoints"):
        KeypointSpec.from_coco_category({**category, "skeleton": [[16, 14]]}, sigmas=[0.05] * 4)
    assert KeypointSpec.from_coco_category({**category, "skeleton": [[16, 14]]}, sigmas=[0.05] * 4,
                                           skeleton=[(0, 1)]).skeleton == ((0, 1),)


def test_inferred_flip_pairs_need_a_partner():
    assert infer_flip_pairs(["Left Eye", "Right Eye", "nose", "hand-left", "hand-right"]) == ((0, 1), (3, 4))
    with pytest.raises(ValueError, match=r"'left_paw' has no left/right partner"):
        infer_flip_pairs(["left_paw", "tail"])


def spec(**changes) -> KeypointSpec:
    fields = dict(name="odd", names=("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
                  skeleton=((0, 1), (0, 2)), flip_pairs=((1, 2), (3, 4)),
                  sigmas=(0.026, 0.025, 0.025, 0.035, 0.035))
    return KeypointSpec(**{**fields, **changes})


@pytest.mark.parametrize("changes, message", [
    (dict(flip_pairs=((1, 2), (2, 3))), r"joint 2 \(right_eye\) is in two flip pairs, \(1, 2\) and \(2, 3\)"),
    (dict(flip_pairs=((1, 2), (2, 1))), r"joint 2 \(right_eye\) is in two flip pairs"),
    (dict(flip_pairs=((1, 5),)), r"flip pairs \(1, 5\) is out of range for K = 5 joints"),
    (dict(flip_pairs=((1, 1),)), r"flip pairs \(1, 1\) joins joint 1 \(left_eye\) to itself"),
    (dict(flip_pairs=((1, 2, 3),)), r"each of the flip pairs must be two joint indices"),
    (dict(sigmas=(0.026, 0.025, 0.025, 0.035)), r"4 sigmas for K = 5 joints"),
    (dict(sigmas=(0.026, 0.025, 0.025, 0.035, 0.0)), r"sigmas must be positive"),
    (dict(sigmas=(0.026, 0.025, 0.025, 0.035, float("nan"))), r"sigmas must be positive"),
    (dict(skeleton=((0, 7),)), r"skeleton limbs \(0, 7\) is out of range"),
    (dict(names=("nose", "nose", "a", "b", "c")), r"names must be unique"),
    (dict(names=()), r"no keypoint names"),
    (dict(upper_body=(0, 9)), r"upper_body indices must be in 0..4"),
    (dict(colors=((0, 0, 0),)), r"colors must be 5 RGB triplets"),
])  # fmt: skip
def test_malformed_specs_are_refused_clearly(changes, message):
    with pytest.raises(ValueError, match=message):
        spec(**changes)


def test_get_spec_errors():
    with pytest.raises(ValueError, match=r"unknown keypoint spec 'mpii16'; built in: coco17, crowdpose14"):
        get_spec("mpii16")
    with pytest.raises(ValueError, match=r"unknown fields \['kind'\]"):
        get_spec({"kind": "x"})
    # a stored spec whose sigmas were edited to the wrong count is refused as any other
    with pytest.raises(ValueError, match=r"16 sigmas for K = 17 joints"):
        get_spec({**dataclasses.asdict(COCO17), "sigmas": COCO17.sigmas[:16]})

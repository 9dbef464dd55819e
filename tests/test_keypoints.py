import numpy as np
from pycocotools.cocoeval import COCOeval, Params

from hrnet_edu import keypoints as kp


def test_sigmas_equal_pycocotools():
    params = Params(iouType="keypoints")
    np.testing.assert_array_equal(kp.SIGMAS, params.kpt_oks_sigmas)


def test_names_and_flip_pairs_are_mirror_images():
    assert len(kp.KEYPOINT_NAMES) == kp.NUM_KEYPOINTS == 17
    for a, b in kp.FLIP_PAIRS:
        assert kp.KEYPOINT_NAMES[a].replace("left", "right") == kp.KEYPOINT_NAMES[b]
    # FLIP_INDEX is an involution that maps every name to its mirror name.
    idx = np.array(kp.FLIP_INDEX)
    np.testing.assert_array_equal(idx[idx], np.arange(17))
    for k, j in enumerate(kp.FLIP_INDEX):
        mirrored = kp.KEYPOINT_NAMES[k].replace("left", "L").replace("right", "left").replace("L", "right")
        assert kp.KEYPOINT_NAMES[j] == mirrored


def test_skeleton_is_cocos():
    # The 1-based skeleton of COCO's person category (person_keypoints_*.json).
    coco = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
    assert kp.coco_person_category()["skeleton"] == coco
    assert len(kp.LIMB_COLORS) == len(kp.SKELETON)
    assert COCOeval  # the import above is the reference


def test_sigmas_read_only():
    assert not kp.SIGMAS.flags.writeable

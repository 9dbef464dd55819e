import numpy as np
from pycocotools.cocoeval import COCOeval, Params

from hrnet_edu import keypoints as kp
from hrnet_edu.keypoints import COCO17


def test_sigmas_equal_pycocotools():
    params = Params(iouType="keypoints")
    np.testing.assert_array_equal(COCO17.sigma_array, params.kpt_oks_sigmas)


def test_names_and_flip_pairs_are_mirror_images():
    assert len(COCO17.names) == COCO17.num_joints == 17
    for a, b in COCO17.flip_pairs:
        assert COCO17.names[a].replace("left", "right") == COCO17.names[b]
    # flip_index is an involution that maps every name to its mirror name.
    idx = np.array(COCO17.flip_index)
    np.testing.assert_array_equal(idx[idx], np.arange(17))
    for k, j in enumerate(COCO17.flip_index):
        mirrored = COCO17.names[k].replace("left", "L").replace("right", "left").replace("L", "right")
        assert COCO17.names[j] == mirrored


def test_skeleton_is_cocos():
    # The 1-based skeleton of COCO's person category (person_keypoints_*.json).
    coco = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
    assert kp.coco_person_category()["skeleton"] == coco
    assert COCO17.coco_category()["skeleton"] == coco
    assert len(COCO17.limb_colors) == len(COCO17.skeleton)
    assert COCOeval  # the import above is the reference


def test_sigmas_read_only():
    assert not COCO17.sigma_array.flags.writeable

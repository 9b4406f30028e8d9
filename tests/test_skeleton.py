"""Joint tables of mdm.core.skeleton against the lists written out in docs/faithfulness.md §1 and §4."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core import skeleton

# docs/faithfulness.md §1 "Joints": the H36M 32-joint indices that move, with their names.
REF_MOVING_32 = {
    0: "Hip", 1: "RHip", 2: "RKnee", 3: "RFoot", 6: "LHip", 7: "LKnee", 8: "LFoot",
    12: "Spine", 13: "Thorax", 14: "Neck/Nose", 15: "Head", 17: "LShoulder", 18: "LElbow",
    19: "LWrist", 25: "RShoulder", 26: "RElbow", 27: "RWrist",
}
# docs/faithfulness.md §1: stacked-hourglass (MPII) order of the 16 detected joints.
REF_SH_ORDER = [
    "RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax", "Head",
    "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist",
]
REF_EDGES_32 = [
    (0, 1), (1, 2), (2, 3), (0, 6), (6, 7), (7, 8), (0, 12), (12, 13), (13, 14), (14, 15),
    (13, 17), (17, 18), (18, 19), (13, 25), (25, 26), (26, 27),
]
# docs/faithfulness.md §4: the 8 limb joints that --miss_num may hide, by name.
REF_LIMB_NAMES = {"RKnee", "RFoot", "LKnee", "LFoot", "LElbow", "LWrist", "RElbow", "RWrist"}

REF_17_FROM_32 = sorted(REF_MOVING_32)
REF_INPUT_32 = [i for i in REF_17_FROM_32 if REF_MOVING_32[i] != "Neck/Nose"]
REF_OUTPUT_32 = [i for i in REF_17_FROM_32 if REF_MOVING_32[i] != "Hip"]
REF_OUTPUT14_32 = [i for i in REF_17_FROM_32
                   if REF_MOVING_32[i] not in ("Hip", "Spine", "Neck/Nose")]


def _as_32(indices_17):
    return [int(skeleton.H36M17_FROM_32[j]) for j in indices_17]


def test_seventeen_joints_and_names():
    assert_array_equal(skeleton.H36M17_FROM_32, REF_17_FROM_32)
    assert [REF_MOVING_32[i] for i in skeleton.H36M17_FROM_32] == list(skeleton.H36M17_NAMES)
    assert skeleton.NUM_JOINTS == 17 and skeleton.NUM_JOINTS_32 == 32
    assert skeleton.H36M17_FROM_32[skeleton.ROOT] == 0


def test_input_output_and_predict14_joint_sets():
    assert _as_32(skeleton.INPUT_JOINTS) == REF_INPUT_32
    assert len(REF_INPUT_32) * 2 == 32
    assert _as_32(skeleton.OUTPUT_JOINTS) == REF_OUTPUT_32
    assert len(REF_OUTPUT_32) * 3 == 48
    assert _as_32(skeleton.output_joints(False)) == REF_OUTPUT_32
    assert _as_32(skeleton.output_joints(True)) == REF_OUTPUT14_32
    assert len(REF_OUTPUT14_32) * 3 == 42


def test_eval_joints_are_the_ones_the_release_scored():
    """17 joints (root included) for the 16-joint model; the 14 predicted joints alone,
    without the root, with predict_14."""
    assert _as_32(skeleton.eval_joints(False)) == [0] + REF_OUTPUT_32
    assert sorted(_as_32(skeleton.eval_joints(False))) == REF_17_FROM_32
    assert _as_32(skeleton.eval_joints(True)) == REF_OUTPUT14_32


def test_sh_to_input_permutation_by_names():
    expected = [REF_SH_ORDER.index(REF_MOVING_32[i]) for i in REF_INPUT_32]
    assert sorted(expected) == list(range(16))
    assert_array_equal(skeleton.SH_TO_INPUT, expected)

    rng = np.random.default_rng(0)
    detections = rng.normal(size=(5, 16, 2))
    reordered = skeleton.sh_to_input(detections)
    for position, i32 in enumerate(REF_INPUT_32):
        sh_row = REF_SH_ORDER.index(REF_MOVING_32[i32])
        assert_array_equal(reordered[:, position], detections[:, sh_row])


def test_limb_input_positions_are_the_eight_limb_joints():
    names = [REF_MOVING_32[REF_INPUT_32[p]] for p in skeleton.LIMB_INPUT_POSITIONS]
    assert len(names) == 8 and set(names) == REF_LIMB_NAMES
    assert_array_equal(skeleton.LIMB_INPUT_POSITIONS, [2, 3, 5, 6, 11, 12, 14, 15])


def test_edges_match_reference():
    assert [(int(skeleton.H36M17_FROM_32[a]), int(skeleton.H36M17_FROM_32[b]))
            for a, b in skeleton.EDGES] == REF_EDGES_32
    assert [tuple(e) for e in skeleton.EDGES_32] == REF_EDGES_32


def test_left_right_joint_sets():
    left = sorted(i for i, n in REF_MOVING_32.items() if n.startswith("L"))
    right = sorted(i for i, n in REF_MOVING_32.items() if n.startswith("R"))
    assert _as_32(skeleton.LEFT_JOINTS) == left and len(left) == 6
    assert _as_32(skeleton.RIGHT_JOINTS) == right and len(right) == 6


def test_from_32_and_bone_lengths():
    rng = np.random.default_rng(1)
    poses_32 = rng.normal(size=(4, 32, 3))
    poses = skeleton.from_32(poses_32)
    assert_array_equal(poses, poses_32[:, REF_17_FROM_32])
    expected = np.array([[np.sqrt(np.sum((p[b] - p[a]) ** 2)) for a, b in REF_EDGES_32]
                         for p in poses_32])
    assert_allclose(skeleton.bone_lengths(poses), expected, rtol=1e-12)


def test_actions_and_cameras():
    assert len(skeleton.ACTIONS) == 15 and len(set(skeleton.ACTIONS)) == 15
    assert {"Sitting", "SittingDown", "WalkDog", "Walking", "WalkTogether"} <= set(skeleton.ACTIONS)
    assert skeleton.CAMERA_NAMES == ("54138969", "55011271", "58860488", "60457274")

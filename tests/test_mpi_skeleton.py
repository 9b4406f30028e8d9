"""MPI-INF-3DHP joint tables of mdm.core.skeleton: by name against the published joint lists, and
by geometry (bone lengths, left/right) on a hand-built pose and on the generator."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core import skeleton
from mdm.data import mpi_inf_3dhp_preprocess
from mdm.data.synthetic import generator, mpi_writer

# The issue's joint lists, transcribed.
REF_MPI28 = (
    "spine3 spine4 spine2 spine pelvis neck head head_top left_clavicle left_shoulder "
    "left_elbow left_wrist left_hand right_clavicle right_shoulder right_elbow right_wrist "
    "right_hand left_hip left_knee left_ankle left_foot left_toe right_hip right_knee "
    "right_ankle right_foot right_toe").split()
REF_MPI17 = (
    "head_top neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist "
    "right_hip right_knee right_ankle left_hip left_knee left_ankle pelvis spine head").split()
REF_J24 = {0: "right_ankle", 1: "right_knee", 2: "right_hip", 3: "left_hip", 4: "left_knee",
           5: "left_ankle", 6: "right_wrist", 7: "right_elbow", 8: "right_shoulder",
           9: "left_shoulder", 10: "left_elbow", 11: "left_wrist", 12: "neck", 13: "head_top",
           14: "pelvis", 15: "thorax", 16: "spine", 17: "jaw", 18: "head"}
REF_J24_INDEX = {name: index for index, name in REF_J24.items()}
# What each H36M joint is, anatomically, in MPI-INF-3DHP's names.
REF_H36M = {"Hip": "pelvis", "RHip": "right_hip", "RKnee": "right_knee", "RFoot": "right_ankle",
            "LHip": "left_hip", "LKnee": "left_knee", "LFoot": "left_ankle", "Spine": "spine",
            "Thorax": "neck", "Head": "head_top", "LShoulder": "left_shoulder",
            "LElbow": "left_elbow", "LWrist": "left_wrist", "RShoulder": "right_shoulder",
            "RElbow": "right_elbow", "RWrist": "right_wrist"}

# A hand-built standing pose in mm, camera-like axes: x = the subject's left, y = down,
# z = away from the viewer: the subject faces the camera, so its left is image right.
HAND_POSE = {
    "pelvis": (0, 0, 0), "spine": (0, -230, 0), "spine2": (0, -300, 0), "spine3": (0, -380, 0),
    "spine4": (0, -440, 0), "neck": (0, -490, 0), "head": (0, -610, -40),
    "head_top": (0, -720, 0), "left_clavicle": (70, -480, 0), "left_shoulder": (150, -470, 0),
    "left_elbow": (160, -190, 0), "left_wrist": (170, 60, 0), "left_hand": (172, 140, 0),
    "right_clavicle": (-70, -480, 0), "right_shoulder": (-150, -470, 0),
    "right_elbow": (-160, -190, 0), "right_wrist": (-170, 60, 0), "right_hand": (-172, 140, 0),
    "left_hip": (130, 0, 0), "left_knee": (135, 440, 0), "left_ankle": (140, 890, 0),
    "left_foot": (140, 960, -120), "left_toe": (140, 970, -200), "right_hip": (-130, 0, 0),
    "right_knee": (-135, 440, 0), "right_ankle": (-140, 890, 0),
    "right_foot": (-140, 960, -120), "right_toe": (-140, 970, -200),
}


def test_raw_joint_orders_match_the_issue():
    assert list(skeleton.MPI28_NAMES) == REF_MPI28
    assert list(skeleton.MPI17_NAMES) == REF_MPI17
    assert {i: skeleton.J24_NAMES[i] for i in REF_J24} == REF_J24
    assert len(skeleton.J24_NAMES) == 24


def test_raw_joints_go_to_the_npz_slot_of_the_same_name():
    for names in (skeleton.MPI28_NAMES, skeleton.MPI17_NAMES):
        rows, slots = skeleton.mpi_to_j24_indices(names)
        assert [names[r] for r in rows] == [skeleton.J24_NAMES[s] for s in slots]
    # The 17 test joints are what both raw sets carry; thorax and jaw stay empty.
    assert set(skeleton.J24_FROM_MPI) == set(REF_MPI17)


def test_h36m_joints_come_from_the_named_npz_joints():
    # Coordinates = slot index, so each output reveals where it was read from.
    poses_24 = np.repeat(np.arange(24.0)[None, :, None], 3, axis=2)
    mapped = skeleton.j24_to_h36m(poses_24)[0, :, 0]
    for name, mpi_name in REF_H36M.items():
        assert mapped[skeleton.H36M17_NAMES.index(name)] == REF_J24_INDEX[mpi_name], name
    # Neck/Nose, absent from MPI-INF-3DHP, is the mean of its neighbours (docs/faithfulness.md §8).
    expected = (REF_J24_INDEX["neck"] + REF_J24_INDEX["head_top"]) / 2
    assert mapped[skeleton.H36M17_NAMES.index("Neck/Nose")] == expected



def _mapped_hand_pose():
    raw = np.array([[HAND_POSE[name] for name in skeleton.MPI28_NAMES]], np.float64)
    arrays = mpi_inf_3dhp_preprocess.to_npz_arrays(raw[..., :2] + 1000.0, raw, skeleton.MPI28_NAMES)
    return skeleton.j24_to_h36m(1000.0 * arrays["S"][..., :3])[0]


def test_bone_lengths_survive_the_mapping():
    mapped = _mapped_hand_pose()
    for parent, child in skeleton.EDGES:
        names = (skeleton.H36M17_NAMES[parent], skeleton.H36M17_NAMES[child])
        if "Neck/Nose" in names:
            continue
        expected = np.linalg.norm(np.subtract(HAND_POSE[REF_H36M[names[0]]],
                                              HAND_POSE[REF_H36M[names[1]]]))
        assert_allclose(np.linalg.norm(mapped[child] - mapped[parent]), expected, rtol=1e-9,
                        err_msg=f"{names}")


def test_left_joints_stay_on_the_subjects_left():
    mapped = _mapped_hand_pose()
    for index in skeleton.LEFT_JOINTS:
        assert mapped[index, 0] > 0, skeleton.H36M17_NAMES[index]  # +x is the left here
    for index in skeleton.RIGHT_JOINTS:
        assert mapped[index, 0] < 0, skeleton.H36M17_NAMES[index]
    # The root is at 0 and the head above it (y points down).
    assert_allclose(mapped[skeleton.ROOT], 0.0)
    assert mapped[skeleton.H36M17_NAMES.index("Head"), 1] < -700


def test_generator_poses_round_trip_through_the_npz_layout():
    rng = np.random.default_rng(4)
    body = generator.make_body(rng, 1)
    world = generator.generate_sequence(rng, body, "Walking", 30)
    raw = mpi_writer.mpi28_from_h36m17(world)
    arrays = mpi_inf_3dhp_preprocess.to_npz_arrays(raw[..., :2], raw, skeleton.MPI28_NAMES)
    mapped = skeleton.j24_to_h36m(1000.0 * arrays["S"][..., :3])
    expected = world - world[:, :1]
    others = [j for j, name in enumerate(skeleton.H36M17_NAMES) if name != "Neck/Nose"]
    assert_allclose(mapped[:, others], expected[:, others], atol=1e-6)
    # Thigh, shin, upper arm and forearm keep the body's lengths.
    lengths = skeleton.bone_lengths(mapped)
    edge_names = [(skeleton.H36M17_NAMES[a], skeleton.H36M17_NAMES[b]) for a, b in skeleton.EDGES]
    for pair, length in ((("RHip", "RKnee"), body.thigh), (("LKnee", "LFoot"), body.shin),
                         (("LShoulder", "LElbow"), body.upper_arm),
                         (("RElbow", "RWrist"), body.forearm)):
        assert_allclose(lengths[:, edge_names.index(pair)], length, rtol=1e-6)
    # Left/right by geometry: (left hip - right hip) x up points where the toes point.
    joint = {name: mapped[:, i] for i, name in enumerate(skeleton.H36M17_NAMES)}
    toes = raw[:, skeleton.MPI28_NAMES.index("left_toe")] - raw[:, skeleton.MPI28_NAMES.index(
        "left_ankle")]
    facing = np.cross(joint["LHip"] - joint["RHip"], joint["Thorax"] - joint["Hip"])
    assert np.mean(np.sum(facing * toes, axis=1) > 0) > 0.9


def test_used_npz_slots_are_the_ones_the_table_reads():
    used = {skeleton.J24_NAMES[i] for i in skeleton.j24_joints_used()}
    assert used == set(REF_H36M.values())
    assert_array_equal(skeleton.j24_averaging_matrix().sum(axis=1), np.ones(17))

"""Joint tables: Human3.6M's 32-joint layout, the 17 joints that move, and the model's
input and output joint sets (docs/faithfulness.md §1 "Joints").

Inside the project a pose is an array `(N, 17, 3)` (or `(N, 17, 2)` / `(N, 16, 2)` in
pixels) in the order of `H36M17_NAMES`. The original 32-joint index of each is kept in
`H36M17_FROM_32` so that raw files can be read and edges cited as in the release.
"""

import numpy as np

# The 17 Human3.6M joints that move, in their 32-joint index order (docs/faithfulness.md §1).
H36M17_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)
H36M17_FROM_32 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
NUM_JOINTS_32 = 32
NUM_JOINTS = len(H36M17_NAMES)
ROOT = H36M17_NAMES.index("Hip")

# 2D input: the 17 without Neck/Nose (16 joints, 32 numbers).
INPUT_JOINTS = np.array([j for j, name in enumerate(H36M17_NAMES) if name != "Neck/Nose"])
# 3D output: the 17 without the root, which is 0 after root-centring (16 joints, 48 numbers).
OUTPUT_JOINTS = np.array([j for j in range(NUM_JOINTS) if j != ROOT])
# --predict_14 also drops Spine and Neck/Nose (14 joints, 42 numbers).
OUTPUT_JOINTS_14 = np.array(
    [j for j, name in enumerate(H36M17_NAMES) if name not in ("Hip", "Spine", "Neck/Nose")]
)

# Stacked-hourglass / MPII detection order of the 16 joints in SH files (docs/faithfulness.md §1).
SH_NAMES = (
    "RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax", "Head",
    "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist",
)
# For each model input joint (INPUT_JOINTS order), its row in an SH detection array.
SH_TO_INPUT = np.array([SH_NAMES.index(H36M17_NAMES[j]) for j in INPUT_JOINTS])

# --miss_num corrupts only limb joints: positions within the 16-joint input
# (docs/faithfulness.md §4: RKnee, RFoot, LKnee, LFoot, LElbow, LWrist, RElbow, RWrist).
LIMB_INPUT_POSITIONS = np.array([2, 3, 5, 6, 11, 12, 14, 15])

# Bones for drawing, as 32-joint index pairs in the release and as 17-joint pairs here.
EDGES_32 = (
    (0, 1), (1, 2), (2, 3), (0, 6), (6, 7), (7, 8), (0, 12), (12, 13), (13, 14),
    (14, 15), (13, 17), (17, 18), (18, 19), (13, 25), (25, 26), (26, 27),
)
EDGES = tuple(
    (int(np.flatnonzero(H36M17_FROM_32 == a)[0]), int(np.flatnonzero(H36M17_FROM_32 == b)[0]))
    for a, b in EDGES_32
)
LEFT_JOINTS = tuple(j for j, name in enumerate(H36M17_NAMES) if name.startswith("L"))
RIGHT_JOINTS = tuple(j for j, name in enumerate(H36M17_NAMES) if name.startswith("R"))

# Human3.6M actions (docs/faithfulness.md §1) and the camera order of cameras.h5 (camera1..4).
ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)
CAMERA_NAMES = ("54138969", "55011271", "58860488", "60457274")


def output_joints(predict_14):
    """Indices into the 17 joints that the model predicts (16, or 14 with predict_14)."""
    return OUTPUT_JOINTS_14 if predict_14 else OUTPUT_JOINTS


def output_dim(predict_14):
    """Width of the network's flat 3D output: 3 coordinates per predicted joint (48 or 42)."""
    return 3 * len(output_joints(predict_14))


def eval_joints(predict_14):
    """Joints scored in evaluation, as the release scored them (docs/faithfulness.md §3,
    §11): all 17 (the root, always 0 after root-centring, plus the 16 predicted) for the
    16-joint model, but only the 14 predicted joints with predict_14 (no root)."""
    if predict_14:
        return OUTPUT_JOINTS_14
    return np.concatenate([[ROOT], OUTPUT_JOINTS])


def from_32(poses_32):
    """Select the 17 moving joints from `(..., 32, D)` Human3.6M poses."""
    return poses_32[..., H36M17_FROM_32, :]


def sh_to_input(detections_sh):
    """Reorder `(..., 16, 2)` stacked-hourglass detections into the model's input order."""
    return detections_sh[..., SH_TO_INPUT, :]


def bone_lengths(poses):
    """Length of every edge of `(..., 17, 3)` poses, shape `(..., len(EDGES))`."""
    parents = np.array([a for a, _ in EDGES])
    children = np.array([b for _, b in EDGES])
    return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


# --- MPI-INF-3DHP (docs/faithfulness.md §8; the format facts are in the MPI-INF-3DHP issue) ---
# The 28 joints of the training set's annot.mat, in file order.
MPI28_NAMES = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe",
)
# The 17 joints of the test set's annot_data.mat, in file order.
MPI17_NAMES = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "pelvis", "spine", "head",
)
# The npz's common 24-joint layout. Its names are spelled as MPI-INF-3DHP's, so a raw
# joint goes to the npz slot of the same name; 19-23 stay empty for this dataset.
J24_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck", "head_top", "pelvis", "thorax", "spine", "jaw", "head",
    "unused_19", "unused_20", "unused_21", "unused_22", "unused_23",
)
# The npz slots MPI-INF-3DHP fills: those whose name both raw sets carry (the 17 test
# joints; thorax and jaw exist in neither, so they stay invisible).
J24_FROM_MPI = tuple(name for name in J24_NAMES if name in MPI17_NAMES and name in MPI28_NAMES)

# THE name table from the npz's 24-joint layout to the model's 17 Human3.6M joints: each
# H36M joint is the mean of the listed npz joints. H36M's "Foot" is the ankle and its
# "Thorax" the base of the neck (MPI's "neck"); its "Head" is the top of the head.
# Neck/Nose has no counterpart, so it is the mean of its two skeleton neighbours, as the
# release filled it (docs/faithfulness.md §8).
H36M_FROM_J24 = (
    ("Hip", ("pelvis",)),
    ("RHip", ("right_hip",)),
    ("RKnee", ("right_knee",)),
    ("RFoot", ("right_ankle",)),
    ("LHip", ("left_hip",)),
    ("LKnee", ("left_knee",)),
    ("LFoot", ("left_ankle",)),
    ("Spine", ("spine",)),
    ("Thorax", ("neck",)),
    ("Neck/Nose", ("neck", "head_top")),
    ("Head", ("head_top",)),
    ("LShoulder", ("left_shoulder",)),
    ("LElbow", ("left_elbow",)),
    ("LWrist", ("left_wrist",)),
    ("RShoulder", ("right_shoulder",)),
    ("RElbow", ("right_elbow",)),
    ("RWrist", ("right_wrist",)),
)


def mpi_to_j24_indices(mpi_names):
    """(source rows in an MPI array with joints `mpi_names`, their npz slots), by name."""
    slots = [J24_NAMES.index(name) for name in J24_FROM_MPI]
    return np.array([mpi_names.index(name) for name in J24_FROM_MPI]), np.array(slots)


def j24_averaging_matrix():
    """(17, 24) weights: H36M joint j = sum_i W[j, i] * npz joint i (H36M_FROM_J24)."""
    weights = np.zeros((NUM_JOINTS, len(J24_NAMES)))
    for name, sources in H36M_FROM_J24:
        for source in sources:
            weights[H36M17_NAMES.index(name), J24_NAMES.index(source)] = 1.0 / len(sources)
    return weights


def j24_to_h36m(poses_24):
    """`(..., 24, D)` poses in the npz layout -> `(..., 17, D)` in H36M17_NAMES order."""
    return np.einsum("ji,...id->...jd", j24_averaging_matrix(), poses_24)


def j24_joints_used():
    """npz slots that the H36M mapping reads (they must be visible in a frame)."""
    return np.flatnonzero(j24_averaging_matrix().any(axis=0))

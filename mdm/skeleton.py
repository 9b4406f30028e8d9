"""Joint tables: Human3.6M's 32-joint layout, the 17 joints that move, and the model's
input and output joint sets (REFERENCE.md §1 "Joints").

Inside the project a pose is an array `(N, 17, 3)` (or `(N, 17, 2)` / `(N, 16, 2)` in
pixels) in the order of `H36M17_NAMES`. The original 32-joint index of each is kept in
`H36M17_FROM_32` so that raw files can be read and edges cited as in the release.
"""

import numpy as np

# The 17 Human3.6M joints that move, in their 32-joint index order (REFERENCE.md §1).
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

# Stacked-hourglass / MPII detection order of the 16 joints in SH files (REFERENCE.md §1).
SH_NAMES = (
    "RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax", "Head",
    "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist",
)
# For each model input joint (INPUT_JOINTS order), its row in an SH detection array.
SH_TO_INPUT = np.array([SH_NAMES.index(H36M17_NAMES[j]) for j in INPUT_JOINTS])

# --miss_num corrupts only limb joints: positions within the 16-joint input
# (REFERENCE.md §4: RKnee, RFoot, LKnee, LFoot, LElbow, LWrist, RElbow, RWrist).
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

# Human3.6M actions (REFERENCE.md §1) and the camera order of cameras.h5 (camera1..4).
ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)
CAMERA_NAMES = ("54138969", "55011271", "58860488", "60457274")
TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)


def output_joints(predict_14):
    """Indices into the 17 joints that the model predicts (16, or 14 with predict_14)."""
    return OUTPUT_JOINTS_14 if predict_14 else OUTPUT_JOINTS


def eval_joints(predict_14):
    """Joints scored in evaluation: the root plus the predicted joints (17, or 15)."""
    return np.concatenate([[ROOT], output_joints(predict_14)])


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

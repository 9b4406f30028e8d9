"""The oracle-free columns of the per-action evaluation: one pose per frame chosen
without the ground truth, from the other cameras (multi_view, multi_view_fused) or from
time (temporal), next to the oracle best-of-K and the most probable hypothesis.

This module turns a test split (a PoseSet) into what the pure functions of
mdm.evaluate.selection need: each row's camera rotation, which rows are views of the
same instant, and each stream's frames in time order. The paper (Li & Lee 2019, §4)
reports multi-view selection on Human3.6M's 4 synchronised cameras; the release had no
code for it. The temporal smoothness is chosen on the training subjects only.
"""

import dataclasses

import numpy as np

from mdm.data import cameras as cams
from mdm.evaluate import selection

# Candidate weights of the smoothness term, per mm of frame-to-frame MPJPE, against
# -log(mixing weight) per frame; 0 is "most probable in every frame".
SMOOTHNESS_CANDIDATES = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
# For a user's own video (Lifter.predict_sequence), where no training split is at hand:
# the value chosen on the real Human3.6M training subjects with ground-truth 2D input
# (0.003 with stacked-hourglass detections; README, Results).
DEFAULT_SMOOTHNESS = 0.01
# Candidate weights, in mm per nat, of -log(mixing weight) against the views' summed
# pairwise MPJPE in the multi-view choice; 0 is agreement alone.
VIEW_PRIOR_CANDIDATES = (0.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
# Frames of the training split on which both are chosen: whole sequences (every camera),
# drawn with a fixed seed until this many frames (a stable choice in seconds).
TRAINING_FRAMES = 60000
TRAINING_SEED = 0


@dataclasses.dataclass(frozen=True)
class Selections:
    """What the oracle-free strategies chose for every row of a split."""

    chosen: dict  # column -> (N,) hypothesis index
    poses: dict  # column -> (N, J, 3) mm, a pose not among the hypotheses
    single_view_rows: int  # rows with no other view (multi_view fell back to most probable)


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The strategies' two weights, chosen on training subjects (`choose_parameters`)."""

    smoothness: float  # temporal: per mm of frame-to-frame MPJPE
    view_prior: float  # multi_view: mm per nat of -log(mixing weight)
    training_frames: int  # frames they were chosen on


def view_groups(pose_set):
    """(N,) id shared by the rows that show the same instant: same subject, sequence and
    frame, any camera."""
    streams = pose_set.streams
    sequence_of_stream = np.unique([f"{s.subject}/{s.sequence}" for s in streams],
                                   return_inverse=True)[1]
    sequence = sequence_of_stream[pose_set.stream_index].astype(np.int64)
    frames = pose_set.frame_index.astype(np.int64)
    return sequence * (int(frames.max(initial=0)) + 1) + frames


def row_rotations(pose_set, camera_table, camera_frame):
    """(N, 3, 3) world-to-camera rotation of each row's camera; the identity when the
    poses are in the world frame (--camera_frame False)."""
    if not camera_frame:
        return np.broadcast_to(np.eye(3), (len(pose_set), 3, 3))
    per_stream = np.stack([camera_table[s.subject][s.camera].R for s in pose_set.streams])
    return per_stream[pose_set.stream_index]


def time_order(pose_set):
    """Row order that puts each stream's frames together and in time order."""
    return np.lexsort((pose_set.frame_index, pose_set.stream_index))


def temporal_path(hypotheses, weights, pose_set, smoothness):
    """(N,) hypothesis per row on each stream's Viterbi path (mdm.evaluate.selection)."""
    order = time_order(pose_set)
    path = selection.viterbi_path(hypotheses[order], weights[order],
                                  pose_set.stream_index[order], smoothness)
    chosen = np.empty_like(path)
    chosen[order] = path
    return chosen


def select(hypotheses, weights, pose_set, rotations, parameters):
    """Every oracle-free choice for a split: hypotheses (N, K, J, 3) mm, weights (N, K)."""
    views = selection.multi_view_select(hypotheses, weights, rotations, view_groups(pose_set),
                                        parameters.view_prior)
    chosen = {"multi_view": views.chosen,
              "temporal": temporal_path(hypotheses, weights, pose_set, parameters.smoothness)}
    return Selections(chosen, {"multi_view_fused": views.fused},
                      int(views.single_view.sum()))


def load_rotations(pose_set, config):
    """`row_rotations` from the cameras file of `config` (Human3.6M)."""
    if not config.camera_frame:
        return row_rotations(pose_set, None, False)
    subjects = sorted({stream.subject for stream in pose_set.streams})
    return row_rotations(pose_set, cams.load_cameras(config.resolved_cameras_path(), subjects),
                         True)


def training_subset(pose_set, max_frames=TRAINING_FRAMES, seed=TRAINING_SEED):
    """Whole sequences of `pose_set` (all their cameras), drawn in a seeded order until
    `max_frames` rows."""
    names = [f"{s.subject}/{s.sequence}" for s in pose_set.streams]
    sequences, sequence_of_stream = np.unique(names, return_inverse=True)
    sequence_of_row = sequence_of_stream[pose_set.stream_index]
    counts = np.bincount(sequence_of_row, minlength=len(sequences))
    order = np.random.default_rng(seed).permutation(len(sequences))
    kept = order[: max(1, int(np.searchsorted(np.cumsum(counts[order]), max_frames, "right")))]
    return pose_set.subset(np.isin(sequence_of_row, kept))


def choose_parameters(hypotheses, weights, pose_set, rotations):
    """Smoothness and view prior with the lowest MPJPE against the ground truth of
    `pose_set`, each by grid search (SMOOTHNESS_CANDIDATES, VIEW_PRIOR_CANDIDATES).
    Run it on training subjects only."""
    order = time_order(pose_set)
    smoothness, _ = selection.choose_smoothness(
        hypotheses[order], weights[order], pose_set.stream_index[order],
        pose_set.poses_3d[order], SMOOTHNESS_CANDIDATES)
    groups = view_groups(pose_set)
    rows = np.arange(len(hypotheses))

    def view_error(prior):
        chosen = selection.multi_view_select(hypotheses, weights, rotations, groups,
                                             prior).chosen
        difference = hypotheses[rows, chosen] - pose_set.poses_3d
        return float(np.linalg.norm(difference, axis=-1).mean())

    view_prior = min(VIEW_PRIOR_CANDIDATES, key=view_error)
    return Parameters(float(smoothness), float(view_prior), len(pose_set))

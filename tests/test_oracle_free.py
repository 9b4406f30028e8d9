"""mdm.evaluate.oracle_free and the oracle-free columns of the evaluation: a PoseSet's
views, rotations and time order, and every column against a numpy brute force."""

import dataclasses
import itertools

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core.config import Config
from mdm.data import splits
from mdm.data.containers import PoseSet, Stream
from mdm.data.normalization import NormStats
from mdm.evaluate import metrics, oracle_free, prediction, selection

K = 3


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def small_pose_set(rng, frames=5, cameras=(0, 1, 2)):
    """Two sequences of one subject, each seen by `cameras`; rows shuffled."""
    streams = [Stream(9, "Walking", sequence, camera)
               for sequence in ("Walking 1", "Walking 2") for camera in cameras]
    stream_index = np.repeat(np.arange(len(streams)), frames)
    frame_index = np.tile(np.arange(frames), len(streams))
    order = rng.permutation(len(stream_index))
    n = len(order)
    return PoseSet(poses_2d=rng.normal(size=(n, 16, 2)).astype(np.float32),
                   poses_3d=rng.normal(0, 200, (n, 17, 3)).astype(np.float32),
                   roots=np.zeros((n, 3), np.float32),
                   stream_index=stream_index[order].astype(np.int32),
                   frame_index=frame_index[order].astype(np.int32), streams=streams)


def test_view_groups_join_the_cameras_of_one_instant_only():
    pose_set = small_pose_set(np.random.default_rng(0))
    groups = oracle_free.view_groups(pose_set)
    sequence = np.array([pose_set.streams[i].sequence for i in pose_set.stream_index])
    for a in range(len(groups)):
        same = (sequence == sequence[a]) & (pose_set.frame_index == pose_set.frame_index[a])
        assert_array_equal(groups == groups[a], same)


def test_rotations_follow_each_rows_camera_or_are_identity_in_the_world_frame():
    rng = np.random.default_rng(1)
    pose_set = small_pose_set(rng)
    table = {9: [dataclasses.make_dataclass("Cam", ["R"])(random_rotation(rng))
                 for _ in range(3)]}
    rotations = oracle_free.row_rotations(pose_set, table, camera_frame=True)
    for row, stream in enumerate(pose_set.stream_index):
        assert_array_equal(rotations[row], table[9][pose_set.streams[stream].camera].R)
    assert_array_equal(oracle_free.row_rotations(pose_set, None, False),
                       np.broadcast_to(np.eye(3), (len(pose_set), 3, 3)))


def test_temporal_path_runs_each_stream_in_time_order():
    rng = np.random.default_rng(2)
    pose_set = small_pose_set(rng, frames=4)
    hypotheses = rng.normal(0, 100, (len(pose_set), K, 17, 3))
    weights = rng.dirichlet(np.ones(K), len(pose_set))
    chosen = oracle_free.temporal_path(hypotheses, weights, pose_set, smoothness=0.05)
    for stream in range(len(pose_set.streams)):
        rows = np.flatnonzero(pose_set.stream_index == stream)
        rows = rows[np.argsort(pose_set.frame_index[rows])]
        best = min(itertools.product(range(K), repeat=len(rows)),
                   key=lambda path: path_cost(hypotheses[rows], weights[rows], path, 0.05))
        assert_array_equal(chosen[rows], best)


def path_cost(hypotheses, weights, path, smoothness):
    cost = -np.log(np.clip([weights[t, k] for t, k in enumerate(path)], 1e-8, None)).sum()
    for t in range(1, len(path)):
        cost += smoothness * metrics.mpjpe(hypotheses[t, path[t]], hypotheses[t - 1, path[t - 1]])
    return cost


def test_training_subset_takes_whole_sequences_with_every_camera_up_to_the_limit():
    pose_set = small_pose_set(np.random.default_rng(3), frames=10)  # 2 sequences x 3 cameras
    subset = oracle_free.training_subset(pose_set, max_frames=25)
    kept = {pose_set.streams[i].sequence for i in np.unique(subset.stream_index)}
    assert len(kept) == 1 and len(subset) == 30
    assert len(np.unique(subset.stream_index)) == 3
    assert len(oracle_free.training_subset(pose_set, max_frames=60)) == 60


def test_oracle_free_columns_equal_numpy_brute_force():
    """frame_errors with selections: each column is the MPJPE of the pose that column
    picks, computed here by explicit loops over combinations and frames."""
    rng = np.random.default_rng(4)
    pose_set = small_pose_set(rng, frames=3, cameras=(0, 1))
    n = len(pose_set)
    hypotheses = rng.normal(0, 100, (n, K, 17, 3))
    hypotheses[:, :, 0] = 0.0
    weights = rng.dirichlet(np.ones(K), n)
    rotations = np.stack([random_rotation(rng) for _ in range(n)])
    prior = 10.0
    chosen = oracle_free.select(hypotheses, weights, pose_set, rotations,
                                oracle_free.Parameters(0.1, prior, 0))
    errors = prediction.frame_errors(hypotheses, weights, pose_set.poses_3d.astype(np.float64),
                                     False, False, chosen)
    groups = oracle_free.view_groups(pose_set)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        world = [hypotheses[r] @ rotations[r] for r in rows]
        combo = min(itertools.product(range(K), repeat=len(rows)), key=lambda c: sum(
            metrics.mpjpe(world[a][c[a]], world[b][c[b]])
            for a, b in itertools.combinations(range(len(rows)), 2)) - prior * sum(
            np.log(weights[r, c[a]]) for a, r in enumerate(rows)))
        fused_world = np.mean([world[a][c] for a, c in enumerate(combo)], axis=0)
        for a, row in enumerate(rows):
            gt = pose_set.poses_3d[row]
            assert_allclose(errors["multi_view"][row],
                            metrics.mpjpe(hypotheses[row, combo[a]], gt), rtol=1e-6)
            assert_allclose(errors["multi_view_fused"][row],
                            metrics.mpjpe(fused_world @ rotations[row].T, gt), rtol=1e-6)
    path = oracle_free.temporal_path(hypotheses, weights, pose_set, 0.1)
    for row in range(n):
        assert_allclose(errors["temporal"][row],
                        metrics.mpjpe(hypotheses[row, path[row]], pose_set.poses_3d[row]),
                        rtol=1e-6)


@pytest.fixture(scope="module")
def synthetic_splits(synthetic_h36m, tmp_path_factory):
    data_dir = synthetic_h36m(6, 0)
    config = Config(data_dir=data_dir, train_dir=str(tmp_path_factory.mktemp("train")),
                    train_subjects=(1, 5), test_subjects=(9,))
    train_set, test_set, _ = splits.load_splits(config)
    return config, train_set, test_set


def test_evaluate_adds_the_oracle_free_columns_with_weights_from_training(synthetic_splits):
    """A fake network whose K hypotheses are the ground truth plus offsets: the table has
    every column, and the weights are the best candidates on the training split."""
    config, train_set, test_set = synthetic_splits
    stats = NormStats.from_training(train_set.poses_2d, train_set.poses_3d)
    by_input = {}
    for pose_set in (train_set, test_set):
        inputs = stats.normalize_inputs(pose_set.poses_2d)
        targets = stats.normalize_targets(pose_set.poses_3d)
        for x, y in zip(inputs, targets):
            by_input[x.astype(np.float32).tobytes()] = y
    offsets = np.random.default_rng(5).normal(0, 0.3, (K, 48)).astype(np.float32)

    def predictor(batch):
        truth = np.stack([by_input[x.tobytes()] for x in batch.numpy()]).astype(np.float32)
        means = truth[:, None] + offsets
        weights = np.tile(np.float32([0.2, 0.5, 0.3]), (len(truth), 1))
        return tuple(tf.constant(a) for a in (means, np.ones((len(truth), K), np.float32),
                                              weights))

    results, details = prediction.evaluate(predictor, stats, test_set, config,
                                           train_set=train_set)
    assert set(results["Average"]) == {"best", "most_probable", "mixture_mean", "multi_view",
                                       "multi_view_fused", "temporal"}
    assert details.single_view_rows == 0
    subset = oracle_free.training_subset(train_set)
    order = oracle_free.time_order(subset)
    truth = subset.poses_3d[order]
    hyps = prediction.hypotheses_mm(
        stats, stats.normalize_targets(truth)[:, None] + offsets, False)
    weights = np.tile([0.2, 0.5, 0.3], (len(truth), 1))
    expected, _ = selection.choose_smoothness(hyps, weights, subset.stream_index[order], truth,
                                              oracle_free.SMOOTHNESS_CANDIDATES)
    assert details.parameters.smoothness == expected
    rotations = oracle_free.load_rotations(subset, config)[order]
    groups = oracle_free.view_groups(subset)[order]
    rows = np.arange(len(truth))
    error_of = {prior: np.linalg.norm(hyps[rows, selection.multi_view_select(
        hyps, weights, rotations, groups, prior).chosen] - truth, axis=-1).mean()
        for prior in oracle_free.VIEW_PRIOR_CANDIDATES}
    assert details.parameters.view_prior == min(error_of, key=error_of.get)
    assert details.parameters.training_frames == len(subset)

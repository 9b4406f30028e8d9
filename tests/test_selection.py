"""Hypothesis selection without ground truth, checked against brute force."""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.transform import Rotation

from mdm.evaluate.selection import choose_smoothness, multi_view_select, viterbi_path


def _world_pose(rng, num_joints, scale=200.0):
    """A root-relative pose (J, 3) mm: joint 0 at the origin."""
    pose = rng.normal(0.0, scale, (num_joints, 3))
    pose[0] = 0.0
    return pose


def _to_camera(pose_world, rotation):
    """Column-vector form X_cam = R X_world, written independently of the module."""
    return np.array([rotation @ joint for joint in pose_world])


def _to_world(pose_cam, rotation):
    return np.array([rotation.T @ joint for joint in pose_cam])


def _mpjpe(a, b):
    return np.mean([np.linalg.norm(a[j] - b[j]) for j in range(len(a))])


def test_multi_view_recovers_planted_consistent_views():
    rng = np.random.default_rng(0)
    num_groups, num_views, num_hyp, num_joints = 6, 4, 5, 17
    hyp, weights, rotations, group_ids, slots, truths = [], [], [], [], [], []
    for group in range(num_groups):
        truth = _world_pose(rng, num_joints)
        for rotation in Rotation.random(num_views, random_state=rng).as_matrix():
            row_hyp = np.array([_world_pose(rng, num_joints) for _ in range(num_hyp)])
            slot = rng.integers(num_hyp)
            row_hyp[slot] = _to_camera(truth, rotation)
            hyp.append(row_hyp)
            weights.append(rng.dirichlet(np.ones(num_hyp)))
            rotations.append(rotation)
            group_ids.append(1000 - 7 * group)  # not contiguous, not sorted
            slots.append(slot)
            truths.append(_to_camera(truth, rotation))
    order = rng.permutation(len(hyp))  # views of a group end up scattered

    def take(values):
        return np.asarray(values)[order]

    result = multi_view_select(take(hyp).astype(np.float32), take(weights),
                               take(rotations), take(group_ids))
    assert_array_equal(result.chosen, take(slots))
    assert not result.single_view.any()
    assert result.fused.dtype == np.float32
    assert_allclose(result.fused, take(truths), atol=1e-2)


def _brute_force_group(hyp, rotations):
    """Best combination by an explicit loop over all K**V choices; first minimum wins."""
    num_views, num_hyp = hyp.shape[:2]
    world = [[_to_world(hyp[v, k], rotations[v]) for k in range(num_hyp)]
             for v in range(num_views)]
    best, best_cost = None, np.inf
    for combo in itertools.product(range(num_hyp), repeat=num_views):
        cost = sum(_mpjpe(world[a][combo[a]], world[b][combo[b]])
                   for a, b in itertools.combinations(range(num_views), 2))
        if cost < best_cost:
            best, best_cost = combo, cost
    mean_world = np.mean([world[v][best[v]] for v in range(num_views)], axis=0)
    fused = [_to_camera(mean_world, rotations[v]) for v in range(num_views)]
    return list(best), fused


def test_multi_view_equals_brute_force_with_mixed_group_sizes():
    rng = np.random.default_rng(1)
    num_hyp, num_joints = 3, 4
    sizes = [2, 2, 2, 3, 3, 1, 1, 1]
    group_ids = np.repeat(rng.permutation(100)[:len(sizes)], sizes)
    num_rows = len(group_ids)
    order = rng.permutation(num_rows)
    group_ids = group_ids[order]
    hyp = rng.normal(0.0, 50.0, (num_rows, num_hyp, num_joints, 3))
    weights = rng.dirichlet(np.ones(num_hyp), num_rows)
    rotations = Rotation.random(num_rows, random_state=2).as_matrix()

    result = multi_view_select(hyp, weights, rotations, group_ids)

    expected_chosen = np.empty(num_rows, dtype=int)
    expected_fused = np.empty((num_rows, num_joints, 3))
    for group in np.unique(group_ids):
        rows = np.flatnonzero(group_ids == group)
        if len(rows) == 1:
            expected_chosen[rows] = np.argmax(weights[rows[0]])
            expected_fused[rows] = hyp[rows[0], expected_chosen[rows[0]]]
            continue
        chosen, fused = _brute_force_group(hyp[rows], rotations[rows])
        expected_chosen[rows] = chosen
        expected_fused[rows] = fused
    assert_array_equal(result.chosen, expected_chosen)
    assert_allclose(result.fused, expected_fused, atol=1e-9)
    views_of = {group: np.sum(group_ids == group) for group in group_ids}
    assert_array_equal(result.single_view, [views_of[group] == 1 for group in group_ids])


def _brute_force_path(hyp, weights, smoothness):
    """Best path over all K**T choices of one sequence, first minimum wins."""
    unary = -np.log(np.clip(weights, 1e-8, None))
    best, best_cost = None, np.inf
    for path in itertools.product(range(hyp.shape[1]), repeat=len(hyp)):
        cost = sum(unary[t, k] for t, k in enumerate(path))
        cost += smoothness * sum(_mpjpe(hyp[t, path[t]], hyp[t - 1, path[t - 1]])
                                 for t in range(1, len(path)))
        if cost < best_cost:
            best, best_cost = path, cost
    return list(best)


def _random_sequences(rng, lengths, num_hyp=3, num_joints=4):
    ids = np.repeat(rng.permutation(50)[:len(lengths)], lengths)  # labels not sorted
    num_rows = len(ids)
    # A slow random walk plus per-hypothesis jitter: both terms of the cost matter.
    walk = np.cumsum(rng.normal(0.0, 5.0, (num_rows, 1, num_joints, 3)), axis=0)
    hyp = walk + rng.normal(0.0, 20.0, (num_rows, num_hyp, num_joints, 3))
    weights = rng.dirichlet(np.ones(num_hyp), num_rows)
    weights[0, 0] = 0.0  # clipped at 1e-8, not -log 0
    return hyp, weights, ids


@pytest.mark.parametrize("smoothness", [0.0, 0.05, 1.0])
def test_viterbi_equals_exhaustive_search(smoothness):
    rng = np.random.default_rng(3)
    lengths = [5, 1, 3, 4, 2, 5]
    hyp, weights, ids = _random_sequences(rng, lengths)
    chosen = viterbi_path(hyp, weights, ids, smoothness)
    expected = []
    for start, length in zip(np.cumsum([0] + lengths[:-1]), lengths):
        rows = slice(start, start + length)
        expected += _brute_force_path(hyp[rows], weights[rows], smoothness)
    assert_array_equal(chosen, expected)


def test_viterbi_rejects_split_sequence():
    rng = np.random.default_rng(4)
    hyp, weights, _ = _random_sequences(rng, [4])
    with pytest.raises(ValueError, match="contiguous"):
        viterbi_path(hyp, weights, np.array([1, 1, 2, 1]), 0.1)


def test_choose_smoothness_picks_lowest_error():
    rng = np.random.default_rng(5)
    lengths = [5, 4, 3]
    hyp, weights, ids = _random_sequences(rng, lengths)
    truth = hyp.mean(axis=1) + rng.normal(0.0, 3.0, hyp[:, 0].shape)
    candidates = [0.0, 0.01, 0.1, 1.0, 10.0]
    best, error_of = choose_smoothness(hyp, weights, ids, truth, candidates)
    expected = {}
    for smoothness in candidates:
        chosen = viterbi_path(hyp, weights, ids, smoothness)
        expected[smoothness] = np.mean([_mpjpe(hyp[n, k], truth[n])
                                        for n, k in enumerate(chosen)])
    assert list(error_of) == candidates
    assert_allclose([error_of[c] for c in candidates], [expected[c] for c in candidates])
    assert best == min(candidates, key=expected.get)


def test_multi_view_probability_weight_adds_the_views_negative_log_weights():
    """With a weight on -log(mixing weight), the choice equals a loop over all
    combinations of agreement + weight * sum_v -log a_v."""
    rng = np.random.default_rng(11)
    k, v = 3, 3
    hypotheses = rng.normal(0, 100, (v, k, 17, 3))
    weights = rng.dirichlet(np.ones(k), v)
    rotations = np.stack([np.eye(3)] * v)
    for prior in (0.0, 5.0, 1e4):
        chosen = multi_view_select(hypotheses, weights, rotations, np.zeros(v, int), prior).chosen
        best = min(itertools.product(range(k), repeat=v), key=lambda c: sum(
            np.linalg.norm(hypotheses[a, c[a]] - hypotheses[b, c[b]], axis=-1).mean()
            for a, b in itertools.combinations(range(v), 2))
            - prior * sum(np.log(weights[a, c[a]]) for a in range(v)))
        np.testing.assert_array_equal(chosen, best)
    assert_equal_most_probable = np.argmax(weights, axis=1)
    np.testing.assert_array_equal(
        multi_view_select(hypotheses, weights, rotations, np.zeros(v, int), 1e9).chosen,
        assert_equal_most_probable)

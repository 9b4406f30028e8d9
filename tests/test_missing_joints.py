"""The --miss_num corruption (docs/faithfulness.md §4): exactly m distinct limb joints of
each row zeroed, uniformly, reproducibly for a seed."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_array_equal
from scipy import stats as scipy_stats

LIMB_POSITIONS = [2, 3, 5, 6, 11, 12, 14, 15]  # docs/faithfulness.md §4, 16-joint input positions
from mdm.model.missing_joints import corrupt_missing_joints


def _corrupted_joints(original, corrupted):
    """Per row, the set of input joints whose two coordinates were zeroed; checks that
    nothing else changed and that joints are zeroed as a whole."""
    original = original.reshape(len(original), 16, 2)
    corrupted = corrupted.reshape(len(corrupted), 16, 2)
    changed = corrupted != original
    assert np.all(corrupted[changed] == 0)
    joint_changed = changed.any(axis=-1)
    assert_array_equal(corrupted[joint_changed], 0.0)  # both coordinates
    return [set(np.flatnonzero(row)) for row in joint_changed]


@pytest.mark.parametrize("num_missing", [1, 2])
def test_corruption_zeroes_exactly_m_distinct_limb_joints(num_missing):
    rng = np.random.default_rng(3)
    inputs = rng.uniform(0.5, 2.0, size=(4000, 32)).astype(np.float32)  # no zeros
    corrupted = corrupt_missing_joints(tf.constant(inputs), num_missing, seed=17)
    corrupted = np.asarray(corrupted)
    assert corrupted.shape == inputs.shape
    rows = _corrupted_joints(inputs, corrupted)
    counts = np.zeros(16)
    for joints in rows:
        assert len(joints) == num_missing
        assert joints <= set(LIMB_POSITIONS)
        for joint in joints:
            counts[joint] += 1
    assert_array_equal(counts[[j for j in range(16) if j not in LIMB_POSITIONS]], 0)
    # Uniform over the 8 limb joints.
    observed = counts[LIMB_POSITIONS]
    assert observed.sum() == 4000 * num_missing
    assert scipy_stats.chisquare(observed).pvalue > 1e-4
    assert np.all(np.abs(observed / observed.sum() - 1 / 8) < 0.02)
    if num_missing == 2:
        pairs = {tuple(sorted(joints)) for joints in rows}
        assert len(pairs) == 28  # every pair of the 8 limb joints occurs


def test_no_corruption_for_m_zero():
    inputs = np.random.default_rng(4).normal(size=(20, 32)).astype(np.float32)
    out = corrupt_missing_joints(tf.constant(inputs), 0, seed=1)
    assert_array_equal(np.asarray(out), inputs)


def test_corruption_is_deterministic_for_an_int_seed():
    inputs = tf.constant(np.random.default_rng(5).uniform(1, 2, size=(200, 32)), tf.float32)
    a = np.asarray(corrupt_missing_joints(inputs, 1, seed=123))
    b = np.asarray(corrupt_missing_joints(inputs, 1, seed=123))
    c = np.asarray(corrupt_missing_joints(inputs, 1, seed=124))
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_corruption_with_seed_generator_varies_between_calls():
    inputs = tf.constant(np.random.default_rng(6).uniform(1, 2, size=(200, 32)), tf.float32)
    generator = keras.random.SeedGenerator(7)
    a = np.asarray(corrupt_missing_joints(inputs, 2, generator))
    b = np.asarray(corrupt_missing_joints(inputs, 2, generator))
    assert not np.array_equal(a, b)
    for out in (a, b):
        assert all(len(j) == 2 for j in _corrupted_joints(inputs.numpy(), out))

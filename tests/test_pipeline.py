"""mdm.data.pipeline: the epoch-wise shuffled training batches (docs/faithfulness.md §2)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mdm.data import pipeline


def _indexed_arrays(num_samples, in_dim=3, out_dim=2):
    """Rows whose first column is the row index, so batches reveal their indices."""
    inputs = np.zeros((num_samples, in_dim), np.float32)
    inputs[:, 0] = np.arange(num_samples)
    inputs[:, 1:] = np.random.default_rng(0).normal(size=(num_samples, in_dim - 1))
    targets = np.zeros((num_samples, out_dim), np.float32)
    targets[:, 0] = np.arange(num_samples) * 10
    targets[:, 1:] = np.random.default_rng(1).normal(size=(num_samples, out_dim - 1))
    return inputs, targets

def _epochs(dataset, steps):
    """List of per-epoch index orders from a training dataset."""
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert len(batches) % steps == 0
    orders = []
    for start in range(0, len(batches), steps):
        orders.append(np.concatenate([x[:, 0] for x, _ in batches[start:start + steps]])
                      .astype(int))
    return batches, orders

def test_training_batches_are_full_and_each_epoch_a_permutation():
    num_samples, batch_size, epochs = 103, 10, 4
    inputs, targets = _indexed_arrays(num_samples)
    dataset, steps = pipeline.training_dataset(inputs, targets, batch_size, seed=3, epochs=epochs)
    assert steps == num_samples // batch_size == 10
    batches, orders = _epochs(dataset, steps)
    assert len(batches) == epochs * steps
    for x, y in batches:
        assert x.shape == (batch_size, 3) and y.shape == (batch_size, 2)
        rows = x[:, 0].astype(int)
        # Inputs and targets stay paired, and the rows are the stored ones.
        assert_array_equal(y[:, 0], rows * 10)
        assert_array_equal(x, inputs[rows])
        assert_array_equal(y, targets[rows])
    dropped = []
    for order in orders:
        assert len(order) == steps * batch_size
        assert len(set(order)) == len(order)  # no repeats
        assert set(order) <= set(range(num_samples))
        dropped.append(frozenset(range(num_samples)) - frozenset(order))
    # Reshuffled every epoch, so the order and the dropped tail change.
    for first in range(epochs):
        for second in range(first + 1, epochs):
            assert not np.array_equal(orders[first], orders[second])
    assert len(set(dropped)) > 1
    # Shuffled, not the identity order.
    assert not np.array_equal(orders[0], np.sort(orders[0]))

def test_training_order_is_deterministic_for_a_seed():
    inputs, targets = _indexed_arrays(64)
    first, steps = pipeline.training_dataset(inputs, targets, 8, seed=11, epochs=2)
    again, _ = pipeline.training_dataset(inputs, targets, 8, seed=11, epochs=2)
    other, _ = pipeline.training_dataset(inputs, targets, 8, seed=12, epochs=2)
    _, orders_first = _epochs(first, steps)
    _, orders_again = _epochs(again, steps)
    _, orders_other = _epochs(other, steps)
    assert_array_equal(np.concatenate(orders_first), np.concatenate(orders_again))
    assert not np.array_equal(orders_first[0], orders_other[0])

def test_resume_at_first_epoch_sees_the_uninterrupted_batches():
    inputs, targets = _indexed_arrays(50)
    full, steps = pipeline.training_dataset(inputs, targets, 7, seed=5, epochs=3)
    resumed, steps_resumed = pipeline.training_dataset(inputs, targets, 7, seed=5, epochs=3,
                                                       first_epoch=1)
    assert steps_resumed == steps == 7
    _, orders_full = _epochs(full, steps)
    batches_resumed, orders_resumed = _epochs(resumed, steps)
    assert len(batches_resumed) == 2 * steps
    assert_array_equal(orders_resumed[0], orders_full[1])
    assert_array_equal(orders_resumed[1], orders_full[2])

def test_too_few_samples_for_one_batch():
    inputs, targets = _indexed_arrays(5)
    with pytest.raises(ValueError):
        pipeline.training_dataset(inputs, targets, 8, seed=0, epochs=1)

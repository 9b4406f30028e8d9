"""mdm.evaluate.prediction.predict_mixture: every row predicted once, in order, in batches."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_array_equal

from mdm.evaluate import prediction


@pytest.mark.parametrize("num_samples,batch_size", [(10, 4), (8, 4), (3, 4096)])
def test_evaluation_keeps_every_row_in_order(num_samples, batch_size):
    inputs = np.random.default_rng(2).normal(size=(num_samples, 32))
    batches = []

    def predictor(batch):  # records what it is given; "means" echo the inputs
        batches.append(batch.numpy())
        return batch, tf.reduce_sum(batch, axis=1), tf.ones([tf.shape(batch)[0]])

    means, scales, weights = prediction.predict_mixture(predictor, inputs, batch_size)
    sizes = [len(b) for b in batches]
    assert sizes[:-1] == [batch_size] * (len(batches) - 1)
    assert sum(sizes) == num_samples
    assert_array_equal(np.concatenate(batches), inputs.astype(np.float32))
    assert batches[0].dtype == np.float32
    assert_array_equal(means, inputs.astype(np.float32))
    np.testing.assert_allclose(scales, inputs.sum(axis=1), rtol=1e-5, atol=1e-5)
    assert weights.shape == (num_samples,)

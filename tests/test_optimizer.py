"""FusedAdam takes the same steps as keras.optimizers.Adam (the release's Adam formula)."""

import keras
import numpy as np
import tensorflow as tf

from mdm.train.optimizer import FusedAdam


def run_steps(optimizer_class, gradients, start):
    variable = keras.Variable(start.copy())
    optimizer = optimizer_class(learning_rate=1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    for gradient in gradients:
        optimizer.apply([tf.constant(gradient)], [variable])
    return variable.numpy(), optimizer


def test_fused_adam_matches_keras_adam_and_numpy():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(7, 5)).astype(np.float32)
    gradients = [rng.normal(size=(7, 5)).astype(np.float32) * scale for scale in (1, 10, 0.1)]
    fused, optimizer = run_steps(FusedAdam, gradients, start)
    reference, _ = run_steps(keras.optimizers.Adam, gradients, start)
    np.testing.assert_allclose(fused, reference, rtol=1e-5, atol=1e-7)
    # and the formula written out in float64
    w, m, v = start.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(gradients, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        w = w - 1e-2 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(fused, w, rtol=1e-4, atol=1e-6)
    assert int(optimizer.iterations.numpy()) == len(gradients)

"""The hand-written linear map: release numbers, release gradients (through the norm)."""

import numpy as np
import pytest
import tensorflow as tf

from mdm.model import linear_map


def _problem(kernel_norm, seed=0, rows=6, fan_in=5, units=4):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(rows, fan_in))
    kernel = rng.normal(size=(fan_in, units))
    kernel *= kernel_norm / np.linalg.norm(kernel)
    upstream = rng.normal(size=(rows, units))
    return inputs, kernel, upstream


def _numpy_objective(inputs, kernel, upstream, max_norm):
    """sum(upstream * x W min(1, 1/||W||_F)) in float64 numpy."""
    scale = min(1.0, 1.0 / np.linalg.norm(kernel)) if max_norm else 1.0
    return np.sum(upstream * (inputs @ (kernel * scale)))


def _numpy_gradients(inputs, kernel, upstream, max_norm, step=1e-6):
    """Central finite differences of the objective, in float64."""
    grads = []
    for index, array in enumerate((inputs, kernel)):
        grad = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            args = [inputs.copy(), kernel.copy()]
            args[index][position] += step
            plus = _numpy_objective(*args, upstream, max_norm)
            args[index][position] -= 2 * step
            minus = _numpy_objective(*args, upstream, max_norm)
            grad[position] = (plus - minus) / (2 * step)
        grads.append(grad)
    return grads


def _tf_gradients(inputs, kernel, upstream, max_norm, dtype=tf.float32):
    x = tf.constant(inputs, dtype)
    w = tf.constant(kernel, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        outputs = linear_map.linear_map(x, w, max_norm)
        objective = tf.reduce_sum(tf.cast(outputs, tf.float32) * upstream)
    grad_x, grad_w = tape.gradient(objective, [x, w])
    return outputs, grad_x, grad_w


@pytest.mark.parametrize("max_norm", [True, False])
@pytest.mark.parametrize("kernel_norm", [3.0, 0.5])  # clip active / inactive
def test_forward_and_gradients_match_numpy(max_norm, kernel_norm):
    inputs, kernel, upstream = _problem(kernel_norm)
    outputs, grad_x, grad_w = _tf_gradients(inputs, kernel, upstream, max_norm)
    scale = min(1.0, 1.0 / np.linalg.norm(kernel)) if max_norm else 1.0
    np.testing.assert_allclose(outputs.numpy(), inputs @ kernel * scale, rtol=1e-5, atol=1e-6)
    expected_x, expected_w = _numpy_gradients(inputs, kernel, upstream, max_norm)
    np.testing.assert_allclose(grad_x.numpy(), expected_x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad_w.numpy(), expected_w, rtol=1e-4, atol=1e-5)


def test_gradients_equal_autodiff_of_the_release_expression():
    """The release wrote tf.matmul(x, tf.clip_by_norm(W, 1)); autodiff of that is the spec."""
    inputs, kernel, upstream = _problem(kernel_norm=45.0, rows=64, fan_in=32, units=48)
    _, grad_x, grad_w = _tf_gradients(inputs, kernel, upstream, max_norm=True)
    x, w = tf.constant(inputs, tf.float32), tf.constant(kernel, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        objective = tf.reduce_sum(tf.matmul(x, tf.clip_by_norm(w, 1.0)) * upstream)
    release_x, release_w = tape.gradient(objective, [x, w])
    np.testing.assert_allclose(grad_x.numpy(), release_x.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_w.numpy(), release_w.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("max_norm", [True, False])
def test_float16_inputs_keep_a_float32_kernel_gradient(max_norm):
    inputs, kernel, upstream = _problem(kernel_norm=3.0)
    outputs, grad_x, grad_w = _tf_gradients(inputs, kernel, upstream, max_norm, tf.float16)
    assert outputs.dtype == tf.float16 and grad_x.dtype == tf.float16
    assert grad_w.dtype == tf.float32
    _, expected_x, expected_w = _tf_gradients(inputs, kernel, upstream, max_norm)
    np.testing.assert_allclose(grad_x.numpy(), expected_x.numpy(), rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(grad_w.numpy(), expected_w.numpy(), rtol=2e-2, atol=2e-2)

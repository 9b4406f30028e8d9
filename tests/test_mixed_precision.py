"""Mixed precision (--use_fp16, --precision): the loss and its gradients stay finite for
extreme but finite float16 inputs, a float16 model trains without non-finite weights, and
bfloat16 trains without loss scaling, close to float32."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
from hypothesis.extra import numpy as hnp
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.model import loss as objective
from mdm.model.network import build_model
from mdm.train.optimizer import make_optimizer

F16_MAX = float(np.finfo(np.float16).max)
K, D, B = 3, 6, 4


def loss_and_gradients(targets, means, scales, weights, dtype):
    tensors = [tf.constant(value, dtype) for value in (targets, means, scales, weights)]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = objective.mixture_loss(*tensors)
    return loss, tape.gradient(loss, tensors[1:])


def finite_f16(shape, low=-F16_MAX, high=F16_MAX):
    return hnp.arrays(np.float16, shape, elements=st.floats(
        low, high, width=16, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None, database=None)
@given(targets=finite_f16((B, D)), means=finite_f16((B, K, D)),
       scales=finite_f16((B, K), 0.0, F16_MAX), weights=finite_f16((B, K), 0.0, 1.0))
def test_float16_inputs_give_finite_loss_and_gradients(targets, means, scales, weights):
    loss, gradients = loss_and_gradients(targets, means, scales, weights, tf.float16)
    assert np.isfinite(loss.numpy())
    for gradient in gradients:
        assert gradient.dtype == tf.float16
        assert np.all(np.isfinite(gradient.numpy()))


def test_float16_loss_matches_float32_on_ordinary_values():
    rng = np.random.default_rng(0)
    values = (rng.normal(size=(B, D)), rng.normal(size=(B, K, D)),
              rng.uniform(0.5, 2.0, (B, K)), rng.dirichlet(np.ones(K), B))
    values = [v.astype(np.float16) for v in values]  # the same numbers in both dtypes
    loss16, _ = loss_and_gradients(*values, tf.float16)
    loss32, _ = loss_and_gradients(*values, tf.float32)
    np.testing.assert_allclose(loss16.numpy(), loss32.numpy(), rtol=1e-6)


def test_mixed_precision_model_trains_with_finite_weights():
    keras.utils.set_random_seed(0)
    config = Config(linear_size=32, num_layers=1, use_fp16=True)
    model = build_model(config, 48)
    optimizer = make_optimizer(config)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model.compile(optimizer=optimizer, jit_compile=False)
    rng = np.random.default_rng(1)
    # Extreme inputs: far outside the normalised range the network is trained on.
    inputs = (rng.normal(size=(256, 32)) * 1e3).astype(np.float32)
    targets = (rng.normal(size=(256, 48)) * 1e2).astype(np.float32)
    history = model.fit(tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(32),
                        epochs=2, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"]))
    assert model.stem.dense.compute_dtype == "float16"
    means, scales, weights = model(inputs[:8], training=False)
    assert means.dtype == tf.float32  # the heads, and so the loss, stay in float32
    for variable in model.trainable_variables:
        assert np.all(np.isfinite(variable.numpy())), variable.path


def test_bfloat16_trains_without_loss_scaling_and_keeps_float32_state():
    keras.utils.set_random_seed(0)
    config = Config(linear_size=32, num_layers=1, precision="mixed_bfloat16")
    model = build_model(config, 48)
    optimizer = make_optimizer(config)
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model.compile(optimizer=optimizer, jit_compile=False)
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(256, 32)).astype(np.float32)
    targets = rng.normal(size=(256, 48)).astype(np.float32)
    history = model.fit(tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(32),
                        epochs=2, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"]))
    assert model.stem.dense.compute_dtype == "bfloat16"
    assert {variable.dtype for variable in model.weights} == {"float32"}
    means, scales, weights = model(inputs[:8], training=False)
    assert means.dtype == scales.dtype == weights.dtype == tf.float32


def test_bfloat16_forward_is_close_to_float32_with_the_same_weights():
    """bfloat16 keeps 8 bits of mantissa: the same weights give means within a few
    per cent of the float32 model's (the scale of the rounding, not a different net)."""
    config = Config(linear_size=64, num_layers=2)
    full = build_model(config, 48)
    half = build_model(dataclasses.replace(config, precision="mixed_bfloat16"), 48)
    for source, target in zip(full.weights, half.weights):
        target.assign(source)
    inputs = np.random.default_rng(3).normal(size=(64, 32)).astype(np.float32)
    want, got = full(inputs, training=False), half(inputs, training=False)
    for expected, actual in zip(want, got):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=0.05, atol=0.05)


def test_use_fp16_and_precision_agree_or_are_refused():
    assert Config(use_fp16=True).compute_policy() == "mixed_float16"
    assert Config(precision="mixed_bfloat16").compute_policy() == "mixed_bfloat16"
    with pytest.raises(UserError, match="--use_fp16 contradicts --precision mixed_bfloat16"):
        Config(use_fp16=True, precision="mixed_bfloat16").validate()

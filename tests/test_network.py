"""mdm.model against a forward pass written out in numpy (docs/faithfulness.md §2)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats as scipy_stats

from mdm.core.config import Config
from mdm.model import network as model_lib


def _blocks(model):
    """The residual blocks, whether `blocks` is a list attribute or a method."""
    return model.blocks() if callable(model.blocks) else list(model.blocks)


def _clip(kernel):
    """docs/faithfulness.md §2 max_norm: W * min(1, 1 / ||W||_F)."""
    return kernel * min(1.0, 1.0 / np.sqrt(np.sum(kernel.astype(np.float64) ** 2)))


def _dense_layer(units, fan_in, max_norm=True):
    layer = model_lib.MaxNormDense(units, max_norm=max_norm)
    layer.build((None, fan_in))
    return layer


def _set_kernel(layer, kernel, bias):
    layer.kernel.assign(kernel.astype(np.float32))
    layer.bias.assign(bias.astype(np.float32))


# ----------------------------------------------------------------------------- max-norm


def test_max_norm_dense_clips_whole_matrix_in_forward_only():
    rng = np.random.default_rng(0)
    layer = _dense_layer(12, 8)
    kernel = rng.normal(size=(8, 12))
    # Make the columns' norms very different, so a per-column MaxNorm would differ.
    kernel[:, 0] *= 0.01
    kernel *= 5.0 / np.linalg.norm(kernel)  # Frobenius norm 5
    bias = rng.normal(size=12) * 3.0  # biases are not clipped
    _set_kernel(layer, kernel, bias)
    stored = layer.kernel.numpy().copy()
    x = rng.normal(size=(6, 8)).astype(np.float32)
    out = layer(x).numpy()
    expected = x.astype(np.float64) @ _clip(stored.astype(np.float64)) + layer.bias.numpy()
    assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert_array_equal(layer.kernel.numpy(), stored)  # the variable is never modified
    assert np.linalg.norm(stored) == pytest.approx(5.0, rel=1e-5)
    # The clipping is active here: without it the output would be far off.
    assert not np.allclose(out, x @ stored + bias, atol=1e-2)


def test_max_norm_dense_leaves_small_kernel_alone():
    rng = np.random.default_rng(1)
    layer = _dense_layer(10, 7)
    kernel = rng.normal(size=(7, 10))
    kernel *= 0.5 / np.linalg.norm(kernel)
    bias = rng.normal(size=10)
    _set_kernel(layer, kernel, bias)
    x = rng.normal(size=(5, 7)).astype(np.float32)
    expected = x.astype(np.float64) @ layer.kernel.numpy() + layer.bias.numpy()
    assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    # Not normalised up to norm 1 either.
    assert not np.allclose(layer(x).numpy(), x @ (kernel * 2.0) + bias, atol=1e-3)


def test_dense_without_max_norm_is_plain_affine():
    rng = np.random.default_rng(2)
    layer = _dense_layer(9, 6, max_norm=False)
    kernel = rng.normal(size=(6, 9)) * 4.0
    bias = rng.normal(size=9)
    _set_kernel(layer, kernel, bias)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    expected = x.astype(np.float64) @ layer.kernel.numpy() + layer.bias.numpy()
    assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- init


def test_init_is_truncated_normal_scaled_by_fan():
    fan_in, units = 64, 2048
    layer = _dense_layer(units, fan_in)
    kernel = layer.kernel.numpy().astype(np.float64)
    bias = layer.bias.numpy().astype(np.float64)
    unit_std = scipy_stats.truncnorm(-2, 2).std()  # std of N(0,1) cut at +-2
    kernel_sigma = math.sqrt(2.0 / fan_in)
    bias_sigma = math.sqrt(2.0 / units)
    # Truncated at 2 sigma: nothing beyond, but the tails reach close to it.
    assert np.max(np.abs(kernel)) <= 2.0 * kernel_sigma * (1 + 1e-6)
    assert np.max(np.abs(kernel)) > 1.9 * kernel_sigma
    assert np.max(np.abs(bias)) <= 2.0 * bias_sigma * (1 + 1e-6)
    assert np.max(np.abs(bias)) > 1.8 * bias_sigma
    assert abs(kernel.mean()) < 0.01 * kernel_sigma
    assert kernel.std() == pytest.approx(unit_std * kernel_sigma, rel=0.02)
    assert bias.std() == pytest.approx(unit_std * bias_sigma, rel=0.08)


def test_every_layer_of_the_model_uses_the_release_init():
    config = Config(linear_size=256, num_layers=1, num_models=5)
    model = model_lib.build_model(config, 48)
    block = _blocks(model)[0]
    dense_layers = [model.stem.dense, block.first.dense, block.second.dense,
                    model.means_head, model.scales_head, model.mixing_head]
    for layer in dense_layers:
        fan_in, units = layer.kernel.shape
        assert np.max(np.abs(layer.kernel.numpy())) <= 2 * math.sqrt(2.0 / fan_in) * (1 + 1e-6)
        assert np.max(np.abs(layer.bias.numpy())) <= 2 * math.sqrt(2.0 / units) * (1 + 1e-6)
    # The 32 -> 256 stem: std close to 0.88 * sqrt(2 / 32).
    assert model.stem.dense.kernel.numpy().std() == pytest.approx(
        scipy_stats.truncnorm(-2, 2).std() * 0.25, rel=0.05)


# ----------------------------------------------------------------------------- numpy forward


def _bn(hidden, layer, eps=1e-3):
    return (layer.gamma.numpy() * (hidden - layer.moving_mean.numpy())
            / np.sqrt(layer.moving_variance.numpy() + eps) + layer.beta.numpy())


def _unit(hidden, unit, max_norm, batch_norm):
    kernel = unit.dense.kernel.numpy().astype(np.float64)
    out = hidden @ (_clip(kernel) if max_norm else kernel) + unit.dense.bias.numpy()
    if batch_norm:
        out = _bn(out, unit.norm)
    return np.maximum(out, 0.0)


def _numpy_forward(model, x, *, max_norm, batch_norm, residual, output_dim, num_models):
    """Inference-mode forward of docs/faithfulness.md §2 in float64."""
    hidden = _unit(x.astype(np.float64), model.stem, max_norm, batch_norm)
    for block in _blocks(model):
        inner = _unit(_unit(hidden, block.first, max_norm, batch_norm), block.second, max_norm,
                      batch_norm)
        hidden = hidden + inner if residual else inner

    def head(layer, clip):
        kernel = layer.kernel.numpy().astype(np.float64)
        return hidden @ (_clip(kernel) if clip else kernel) + layer.bias.numpy()

    flat = head(model.means_head, max_norm)
    means = np.zeros((len(x), num_models, output_dim))
    for j in range(output_dim):
        for k in range(num_models):
            means[:, k, j] = flat[:, j * num_models + k]
    z = head(model.scales_head, max_norm)
    scales = np.where(z > 0, z, np.expm1(z)) + 1.0
    logits = head(model.mixing_head, False)  # the mixing head has no max-norm
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return means, scales, weights


def _randomise(model, rng):
    """Random weights with Frobenius norms well above 1, and random BN statistics."""
    for variable in model.weights:
        name = variable.path
        shape = tuple(variable.shape)
        if "moving_variance" in name:
            value = rng.uniform(0.0005, 2.0, size=shape)
        elif "gamma" in name:
            value = rng.uniform(0.5, 1.5, size=shape)
        elif "kernel" in name:
            value = rng.normal(size=shape) * 0.5
        else:
            value = rng.normal(size=shape) * 0.3
        variable.assign(value.astype(variable.dtype))


def _model(**overrides):
    settings = dict(linear_size=24, num_layers=2, num_models=5)
    settings.update(overrides)
    config = Config(**settings)
    dim = 42 if config.predict_14 else 48
    return model_lib.build_model(config, dim), config, dim


@pytest.mark.parametrize("max_norm,batch_norm,residual", [
    (True, True, True), (True, True, False), (False, True, True), (True, False, True),
])
def test_inference_forward_matches_numpy(max_norm, batch_norm, residual):
    rng = np.random.default_rng(3)
    model, config, dim = _model(max_norm=max_norm, batch_norm=batch_norm, residual=residual)
    _randomise(model, rng)
    x = rng.normal(size=(7, 32)).astype(np.float32)
    means, scales, weights = (t.numpy() for t in model(x, training=False))
    exp_means, exp_scales, exp_weights = _numpy_forward(
        model, x, max_norm=max_norm, batch_norm=batch_norm, residual=residual, output_dim=dim,
        num_models=config.num_models)
    assert means.shape == (7, 5, 48) and scales.shape == (7, 5) and weights.shape == (7, 5)
    assert_allclose(means, exp_means, rtol=1e-4, atol=1e-4)
    assert_allclose(scales, exp_scales, rtol=1e-4, atol=1e-5)
    assert_allclose(weights, exp_weights, rtol=1e-4, atol=1e-6)


def test_mixing_head_is_not_clipped_but_scales_head_is():
    rng = np.random.default_rng(4)
    model, config, dim = _model(linear_size=16, num_layers=0)
    _randomise(model, rng)
    kernel = rng.normal(size=model.mixing_head.kernel.shape) * 3.0  # norm >> 1
    model.mixing_head.kernel.assign(kernel.astype(np.float32))
    x = rng.normal(size=(9, 32)).astype(np.float32)
    _, scales, weights = (t.numpy() for t in model(x, training=False))
    _, exp_scales, exp_weights = _numpy_forward(
        model, x, max_norm=True, batch_norm=True, residual=True, output_dim=dim,
        num_models=config.num_models)
    assert_allclose(weights, exp_weights, rtol=1e-4, atol=1e-6)
    assert_allclose(scales, exp_scales, rtol=1e-4, atol=1e-5)
    # Had the mixing head been clipped, the weights would be much flatter.
    hidden = np.maximum(_bn(x @ _clip(model.stem.dense.kernel.numpy().astype(np.float64))
                            + model.stem.dense.bias.numpy(), model.stem.norm), 0)
    clipped_logits = hidden @ _clip(kernel) + model.mixing_head.bias.numpy()
    clipped = np.exp(clipped_logits) / np.exp(clipped_logits).sum(1, keepdims=True)
    assert not np.allclose(weights, clipped, atol=1e-3)


def test_residual_flag_changes_the_output():
    rng = np.random.default_rng(5)
    with_skip, _, _ = _model(residual=True)
    without_skip, _, _ = _model(residual=False)
    _randomise(with_skip, rng)
    without_skip.set_weights(with_skip.get_weights())
    x = rng.normal(size=(4, 32)).astype(np.float32)
    a = with_skip(x, training=False)[0].numpy()
    b = without_skip(x, training=False)[0].numpy()
    assert not np.allclose(a, b, atol=1e-3)


def test_num_layers_blocks():
    for layers in (0, 3):
        model, _, _ = _model(linear_size=16, num_layers=layers)
        assert len(_blocks(model)) == layers
        dense = [w for w in model.trainable_weights if "kernel" in w.path]
        assert len(dense) == 1 + 2 * layers + 3


# ----------------------------------------------------------------------------- heads


def test_means_layout_is_coordinate_major():
    model, config, dim = _model(linear_size=16, num_layers=1, num_models=3)
    k_total = config.num_models
    model.means_head.kernel.assign(np.zeros(model.means_head.kernel.shape, np.float32))
    bias = np.array([1000.0 * (i // k_total) + (i % k_total) for i in range(dim * k_total)])
    model.means_head.bias.assign(bias.astype(np.float32))
    x = np.random.default_rng(6).normal(size=(2, 32)).astype(np.float32)
    means = model(x, training=False)[0].numpy()
    assert means.shape == (2, 3, 48)
    for b in range(2):
        for k in range(k_total):
            for j in range(dim):
                assert means[b, k, j] == 1000.0 * j + k


def test_scales_are_elu_plus_one_and_weights_softmax():
    rng = np.random.default_rng(7)
    model, _, _ = _model(linear_size=16, num_layers=1, num_models=6)
    model.scales_head.kernel.assign(np.zeros(model.scales_head.kernel.shape, np.float32))
    z = np.array([-10.0, -3.0, -0.5, 0.0, 0.7, 4.0], np.float32)
    model.scales_head.bias.assign(z)
    x = rng.normal(size=(5, 32)).astype(np.float32) * 10
    _, scales, weights = (t.numpy() for t in model(x, training=False))
    expected = np.where(z > 0, z, np.exp(z.astype(np.float64)) - 1.0) + 1.0
    assert_allclose(scales, np.broadcast_to(expected, (5, 6)), rtol=1e-4, atol=1e-7)
    assert np.all(scales > 0)
    assert np.all(weights >= 0)
    assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("predict_14,num_models", [(False, 5), (True, 5), (True, 2), (False, 1)])
def test_output_shapes(predict_14, num_models):
    config = Config(linear_size=16, num_layers=1, num_models=num_models, predict_14=predict_14)
    dim = 42 if predict_14 else 48
    model = model_lib.build_model(config, dim)
    means, scales, weights = model(np.zeros((3, 32), np.float32), training=False)
    assert tuple(means.shape) == (3, num_models, dim)
    assert tuple(scales.shape) == (3, num_models) and tuple(weights.shape) == (3, num_models)
    assert tuple(model.means_head.kernel.shape) == (16, dim * num_models)
    assert tuple(model.stem.dense.kernel.shape) == (32, 16)


# ----------------------------------------------------------------------------- BN, dropout


def test_batch_norm_settings_and_training_statistics():
    rng = np.random.default_rng(8)
    unit = model_lib.LinearUnit(units=20, max_norm=True, batch_norm=True, keep_prob=1.0)
    x = rng.normal(size=(64, 10)).astype(np.float32) * 3 + 1
    unit(x, training=False)
    assert unit.norm.momentum == pytest.approx(0.99)
    assert unit.norm.epsilon == pytest.approx(1e-3)
    unit.norm.moving_mean.assign(rng.normal(size=20).astype(np.float32))
    unit.norm.moving_variance.assign(rng.uniform(0.5, 2, size=20).astype(np.float32))
    old_mean = unit.norm.moving_mean.numpy().astype(np.float64)
    old_var = unit.norm.moving_variance.numpy().astype(np.float64)
    out = unit(x, training=True).numpy()
    hidden = x.astype(np.float64) @ _clip(unit.dense.kernel.numpy().astype(np.float64)) \
        + unit.dense.bias.numpy()
    mean, var = hidden.mean(axis=0), hidden.var(axis=0)
    expected = np.maximum(unit.norm.gamma.numpy() * (hidden - mean) / np.sqrt(var + 1e-3)
                          + unit.norm.beta.numpy(), 0)
    assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # Moving averages: new = 0.99 * old + 0.01 * batch statistic.
    assert_allclose(unit.norm.moving_mean.numpy(), 0.99 * old_mean + 0.01 * mean,
                    rtol=1e-4, atol=1e-5)
    assert_allclose(unit.norm.moving_variance.numpy(), 0.99 * old_var + 0.01 * var,
                    rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("keep_prob", [0.5, 0.75, 1.0])
def test_dropout_rate_is_one_minus_keep_probability(keep_prob):
    unit = model_lib.LinearUnit(units=400, max_norm=True, batch_norm=False, keep_prob=keep_prob)
    x = np.ones((100, 4), np.float32)
    unit(x, training=False)
    assert unit.dropout.rate == pytest.approx(1.0 - keep_prob)
    unit.dense.kernel.assign(np.zeros((4, 400), np.float32))
    unit.dense.bias.assign(np.ones(400, np.float32))  # ReLU output is exactly 1
    assert_array_equal(unit(x, training=False).numpy(), 1.0)
    out = unit(x, training=True).numpy()
    values = np.unique(np.round(out, 5))
    if keep_prob == 1.0:
        assert_array_equal(out, 1.0)
    else:
        assert_allclose(values, [0.0, 1.0 / keep_prob], rtol=1e-5)
        assert np.mean(out == 0) == pytest.approx(1.0 - keep_prob, abs=0.01)


def test_stem_has_dropout_in_training():
    model, _, _ = _model(linear_size=64, num_layers=0, dropout=0.5, batch_norm=False)
    x = np.random.default_rng(9).normal(size=(8, 32)).astype(np.float32)
    a = model(x, training=True)[0].numpy()
    b = model(x, training=True)[0].numpy()
    assert not np.allclose(a, b)
    c = model(x, training=False)[0].numpy()
    assert_array_equal(c, model(x, training=False)[0].numpy())


def test_train_step_gives_finite_loss_and_updates_weights():
    config = Config(linear_size=16, num_layers=1, miss_num=1)
    model = model_lib.build_model(config, 48)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(16, 32)).astype(np.float32)
    y = rng.normal(size=(16, 48)).astype(np.float32)
    before = model.stem.dense.kernel.numpy().copy()
    model.optimizer.build(model.trainable_variables)
    logs = model.train_step((tf.constant(x), tf.constant(y)))  # eager: no tracing
    assert np.isfinite(float(logs["loss"]))
    assert not np.array_equal(before, model.stem.dense.kernel.numpy())
    assert tf.reduce_all(tf.math.is_finite(model.means_head.kernel)).numpy()

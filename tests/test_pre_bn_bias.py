"""--remove_pre_bn_bias (docs/faithfulness.md §11): the linear layers that feed batch norm
lose their bias, and nothing else changes. The model computes the same function (batch
norm cancels a constant added before it), the default keeps the release's biases, and
the authors' TF1 checkpoints load either way: with the option their pre-batch-norm biases
are folded into the moving means."""

import numpy as np
import pytest
import tensorflow as tf
from test_release_format import K, LINEAR_SIZE, NUM_LAYERS, ReleaseReplica

from mdm.checkpoint import release_format
from mdm.core.config import Config
from mdm.model.network import build_model

PRE_BN_BIASES = {"stem/dense/bias", "two_linear_0/unit_a/dense/bias",
                 "two_linear_0/unit_b/dense/bias", "two_linear_1/unit_a/dense/bias",
                 "two_linear_1/unit_b/dense/bias"}
HEAD_BIASES = {"means/bias", "scales/bias", "mixing/bias"}


def weights_of(**overrides):
    """{path: variable} of a small model built with `overrides`."""
    return release_format.model_weights(build_model(Config(linear_size=16, num_layers=2,
                                                           **overrides), 48))


def test_default_keeps_every_bias_of_the_release():
    weights = weights_of()
    assert PRE_BN_BIASES | HEAD_BIASES <= set(weights)


def test_option_removes_exactly_the_biases_followed_by_batch_norm():
    with_biases = weights_of()
    without = weights_of(remove_pre_bn_bias=True)
    assert set(with_biases) - set(without) == PRE_BN_BIASES
    assert HEAD_BIASES <= set(without)
    # Without batch norm those biases are not redundant: they stay.
    no_bn = weights_of(remove_pre_bn_bias=True, batch_norm=False)
    assert PRE_BN_BIASES <= set(no_bn)


def test_same_function_in_training_whatever_the_removed_biases_were():
    """Batch statistics (training mode), no dropout: the model without the biases gives
    the same mixture as the one with them, here set far from 0."""
    config = dict(linear_size=16, num_layers=2, dropout=1.0)
    with_biases = build_model(Config(**config), 48)
    without = build_model(Config(remove_pre_bn_bias=True, **config), 48)
    source = release_format.model_weights(with_biases)
    for path, variable in release_format.model_weights(without).items():
        variable.assign(source[path])
    rng = np.random.default_rng(0)
    for path in PRE_BN_BIASES:
        source[path].assign(rng.normal(0.0, 3.0, source[path].shape))
    inputs = tf.constant(rng.normal(size=(64, 32)), tf.float32)
    expected = with_biases(inputs, training=True)
    got = without(inputs, training=True)
    for name, want, have in zip(("means", "scales", "weights"), expected, got):
        np.testing.assert_allclose(have.numpy(), want.numpy(), atol=2e-5, err_msg=name)


@pytest.mark.parametrize("remove", [False, True])
def test_release_checkpoint_loads_with_the_option_off_and_on(tmp_path, remove):
    replica = ReleaseReplica(str(tmp_path))
    config = Config(linear_size=LINEAR_SIZE, num_layers=NUM_LAYERS, num_models=K,
                    remove_pre_bn_bias=remove)
    model = release_format.load_release_model(replica.path, config)
    inputs = np.random.default_rng(1).normal(0.0, 1.0, (7, 32)).astype(np.float32)
    expected = replica.mixture(inputs)
    replica.session.close()
    got = [t.numpy() for t in model(tf.constant(inputs), training=False)]
    for name, want, have in zip(("means", "scales", "weights"), expected, got):
        np.testing.assert_allclose(have, want, atol=1e-5, rtol=0, err_msg=name)
    assert (set(release_format.model_weights(model)) & PRE_BN_BIASES) == (
        set() if remove else PRE_BN_BIASES)

"""The one place where the predicted mixture becomes a distribution (docs/faithfulness.md §2).

p(y | x) = sum_k a_k N(y; mu_k, s_k^2 I): K isotropic Gaussians in the normalised output
space, with the release's clipping of the scales to [1e-15, 1e15] and of the mixing
coefficients to [1e-8, 1].
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

SCALE_RANGE = (1e-15, 1e15)
WEIGHT_RANGE = (1e-8, 1.0)


def clip_scales(scales):
    return tf.clip_by_value(scales, *SCALE_RANGE)


def clip_weights(weights):
    return tf.clip_by_value(weights, *WEIGHT_RANGE)


def mixture_distribution(means, scales, weights):
    """MixtureSameFamily over (..., D) from means (..., K, D), scales and weights (..., K)."""
    components = tfd.Independent(
        tfd.Normal(loc=means, scale=clip_scales(scales)[..., None]), reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=clip_weights(weights)),
        components_distribution=components)


def sample_mixture(means, scales, weights, num_samples, seed):
    """`num_samples` draws per row from the mixture, shape (N, num_samples, D).

    Stateless sampling from the integer `seed`: the same seed gives the same draws on
    every run, whatever else used TensorFlow's global random state before.
    """
    distribution = mixture_distribution(tf.convert_to_tensor(means), tf.convert_to_tensor(scales),
                                        tf.convert_to_tensor(weights))
    draws = distribution.sample(num_samples, seed=tf.constant([seed, 0], tf.int32))
    return tf.transpose(draws, [1, 0, 2])

"""The one place where the predicted mixture becomes a distribution (docs/faithfulness.md §2).

p(y | x) = sum_k a_k N(y; mu_k, s_k^2 I): K isotropic Gaussians in the normalised output
space, with the release's clipping of the scales to [1e-15, 1e15] and of the mixing
coefficients to [1e-8, 1].

A recalibrated mixture (mdm/checkpoint/recalibration.py, `Adjustment`) changes three
things, each the same for the 3 coordinates of a joint (README, Recalibrated
uncertainty):

* the std of coordinate d in every kernel is multiplied by a width factor c_d:
  N(y; mu'_k, diag(s_k c)^2);
* every kernel mean is pulled toward the most probable kernel's mean m by a shrink a_d:
  mu'_k = m + a (mu_k - m) (a = 1 keeps the network's hypotheses, a = 0 puts every kernel
  on the most probable pose);
* the mixing weights are tempered: a'_k = a_k^t / sum_k a_k^t (t > 1 moves weight to the
  most probable kernel).

The most probable kernel and its mean stay what they were. Without an adjustment (c = 1,
a = 1, t = 1) it is the network's own mixture, the one training fits.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

SCALE_RANGE = (1e-15, 1e15)
WEIGHT_RANGE = (1e-8, 1.0)


def clip_scales(scales):
    return tf.clip_by_value(scales, *SCALE_RANGE)


def clip_weights(weights):
    return tf.clip_by_value(weights, *WEIGHT_RANGE)


class Adjustment(NamedTuple):
    """A recalibration of the mixture, per flat output coordinate (x, y, z per joint)."""

    coordinate_factors: np.ndarray  # (D,) width factor c on every kernel's std
    coordinate_shrink: np.ndarray  # (D,) a: kernel means pulled toward the most probable one
    temperature: float = 1.0  # t: mixing weights a_k^t, renormalised


def adjusted_kernels(means, stds, weights, adjustment=None):
    """(means, stds, weights) of the recalibrated mixture: means (..., K, D), stds
    (..., K, D) or (..., K, 1), weights (..., K), in any units (the adjustment is linear
    per coordinate). Unchanged without an adjustment."""
    if adjustment is None:
        return means, stds, weights
    means = tf.convert_to_tensor(means)
    stds = tf.convert_to_tensor(stds, means.dtype) \
        * tf.cast(adjustment.coordinate_factors, means.dtype)
    weights = tf.convert_to_tensor(weights)
    most_probable = tf.gather(means, tf.argmax(weights, axis=-1), batch_dims=len(
        weights.shape) - 1)[..., None, :]
    shrink = tf.cast(adjustment.coordinate_shrink, means.dtype)
    means = most_probable + shrink * (means - most_probable)
    # Tempered in log space: a_k^t underflows float32 for t of a few and a_k near 1e-8.
    log_weights = tf.math.log(clip_weights(weights)) * tf.cast(adjustment.temperature,
                                                               weights.dtype)
    return means, stds, tf.nn.softmax(log_weights, axis=-1)


def kernel_stds(scales):
    """Per-coordinate std of every kernel (..., K, 1) from the scales (..., K)."""
    return clip_scales(scales)[..., None]


def mixture_distribution(means, scales, weights, adjustment=None):
    """MixtureSameFamily over (..., D) from means (..., K, D), scales and weights (..., K),
    recalibrated by `adjustment` (None: the network's mixture)."""
    means, stds, weights = adjusted_kernels(means, kernel_stds(scales), weights, adjustment)
    components = tfd.Independent(tfd.Normal(loc=means, scale=stds),
                                 reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=clip_weights(weights)),
        components_distribution=components)


def sample_mixture(means, scales, weights, num_samples, seed, adjustment=None):
    """`num_samples` draws per row from the mixture, shape (N, num_samples, D).

    Stateless sampling from the integer `seed`: the same seed gives the same draws on
    every run, whatever else used TensorFlow's global random state before.
    """
    means = tf.convert_to_tensor(means)
    distribution = mixture_distribution(means, tf.convert_to_tensor(scales),
                                        tf.convert_to_tensor(weights), adjustment)
    draws = distribution.sample(num_samples, seed=tf.constant([seed, 0], tf.int32))
    return tf.transpose(draws, [1, 0, 2])


def shared_noise(num_samples, dim, seed, dtype=tf.float32):
    """The random numbers behind `sample_with_noise`: uniforms (S,) that pick the kernel
    and standard normals (S, D), from the integer `seed` (stateless)."""
    seed = tf.cast(seed, tf.int32)
    uniform = tf.random.stateless_uniform([num_samples], seed=tf.stack([seed, 1]), dtype=dtype)
    normal = tf.random.stateless_normal([num_samples, dim], seed=tf.stack([seed, 2]), dtype=dtype)
    return uniform, normal


def sample_with_noise(means, scales, weights, noise, adjustment=None):
    """Draws (N, S, D) from each row's mixture, the same `noise` (`shared_noise`) for
    every row: draw s of row n is kernel k = the number of cumulative weights <= u_s
    (inverse CDF) and mu_k + std_k * eps_s.

    Every row's draws are thus independent of which other rows are in the batch, so the
    radii computed from them are the same in `Lifter.predict`, in any chunk of the
    evaluation and in the SavedModel's graph.
    """
    uniform, normal = noise
    means = tf.convert_to_tensor(means)
    means, stds, weights = adjusted_kernels(
        means, kernel_stds(tf.cast(scales, means.dtype)), tf.convert_to_tensor(weights),
        adjustment)
    weights = tf.cast(clip_weights(weights), uniform.dtype)
    cumulative = tf.math.cumsum(weights, axis=-1)
    cumulative = cumulative / cumulative[:, -1:]
    below = tf.cast(uniform[None, :, None] >= cumulative[:, None, :], tf.int32)
    kernel = tf.minimum(tf.reduce_sum(below, axis=-1), tf.shape(weights)[1] - 1)  # (N, S)
    stds = tf.broadcast_to(stds, tf.shape(means))
    chosen_means = tf.gather(means, kernel, batch_dims=1)
    chosen_stds = tf.gather(stds, kernel, batch_dims=1)
    return chosen_means + chosen_stds * tf.cast(normal, means.dtype)[None]


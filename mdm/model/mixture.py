"""The one place where the predicted mixture becomes a distribution (docs/faithfulness.md §2).

p(y | x) = sum_k a_k N(y; mu_k, s_k^2 I): K isotropic Gaussians in the normalised output
space, with the release's clipping of the scales to [1e-15, 1e15] and of the mixing
coefficients to [1e-8, 1].

A recalibrated mixture (mdm/checkpoint/recalibration.py) multiplies the std of every
output coordinate d by a factor c_d, the same for the 3 coordinates of a joint and for
every kernel: N(y; mu_k, diag(s_k c)^2). Without factors (c = 1) it is the network's own
mixture, the one training fits.
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


def kernel_stds(scales, coordinate_factors=None):
    """Per-coordinate std of every kernel, (..., K, D) (or (..., K, 1) without factors),
    from the scales (..., K) and the recalibration's coordinate factors (D,)."""
    stds = clip_scales(scales)[..., None]
    if coordinate_factors is None:
        return stds
    return stds * tf.cast(coordinate_factors, stds.dtype)


def mixture_distribution(means, scales, weights, coordinate_factors=None):
    """MixtureSameFamily over (..., D) from means (..., K, D), scales and weights (..., K);
    `coordinate_factors` (D,) recalibrates the per-coordinate std."""
    components = tfd.Independent(
        tfd.Normal(loc=means, scale=kernel_stds(scales, coordinate_factors)),
        reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(probs=clip_weights(weights)),
        components_distribution=components)


def sample_mixture(means, scales, weights, num_samples, seed, coordinate_factors=None):
    """`num_samples` draws per row from the mixture, shape (N, num_samples, D).

    Stateless sampling from the integer `seed`: the same seed gives the same draws on
    every run, whatever else used TensorFlow's global random state before.
    """
    means = tf.convert_to_tensor(means)
    distribution = mixture_distribution(means, tf.convert_to_tensor(scales),
                                        tf.convert_to_tensor(weights), coordinate_factors)
    draws = distribution.sample(num_samples, seed=tf.constant([seed, 0], tf.int32))
    return tf.transpose(draws, [1, 0, 2])


def shared_noise(num_samples, dim, seed, dtype=tf.float32):
    """The random numbers behind `sample_with_noise`: uniforms (S,) that pick the kernel
    and standard normals (S, D), from the integer `seed` (stateless)."""
    seed = tf.cast(seed, tf.int32)
    uniform = tf.random.stateless_uniform([num_samples], seed=tf.stack([seed, 1]), dtype=dtype)
    normal = tf.random.stateless_normal([num_samples, dim], seed=tf.stack([seed, 2]), dtype=dtype)
    return uniform, normal


def sample_with_noise(means, scales, weights, noise, coordinate_factors=None):
    """Draws (N, S, D) from each row's mixture, the same `noise` (`shared_noise`) for
    every row: draw s of row n is kernel k = the number of cumulative weights <= u_s
    (inverse CDF) and mu_k + std_k * eps_s.

    Every row's draws are thus independent of which other rows are in the batch, so the
    radii computed from them are the same in `Lifter.predict`, in any chunk of the
    evaluation and in the SavedModel's graph.
    """
    uniform, normal = noise
    means = tf.convert_to_tensor(means)
    weights = tf.cast(clip_weights(tf.convert_to_tensor(weights)), uniform.dtype)
    cumulative = tf.math.cumsum(weights, axis=-1)
    cumulative = cumulative / cumulative[:, -1:]
    below = tf.cast(uniform[None, :, None] >= cumulative[:, None, :], tf.int32)
    kernel = tf.minimum(tf.reduce_sum(below, axis=-1), tf.shape(weights)[1] - 1)  # (N, S)
    stds = kernel_stds(tf.cast(scales, means.dtype), coordinate_factors)
    stds = tf.broadcast_to(stds, tf.shape(means))
    chosen_means = tf.gather(means, kernel, batch_dims=1)
    chosen_stds = tf.gather(stds, kernel, batch_dims=1)
    return chosen_means + chosen_stds * tf.cast(normal, means.dtype)[None]


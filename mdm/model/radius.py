"""Per-joint radius: around a chosen pose, the distance within which the (recalibrated)
mixture puts a given probability, per joint.

For each pose n and joint j, draw S poses from the mixture (mdm/model/mixture.py, the
same random numbers for every pose: `mixture.shared_noise`), measure each draw's joint j
from the chosen pose's joint j in mm, and take the `coverage`-quantile of those S
distances. If the mixture is calibrated, the true joint lies within that radius with
probability `coverage`. Monte Carlo rather than closed form: the distance from a point
to a draw of a Gaussian mixture has no closed-form quantile.

TensorFlow ops only, so the same function runs eagerly (Lifter, evaluation) and inside
the SavedModel's graph.
"""

import numpy as np
import tensorflow as tf

from mdm.model import mixture

# For one Gaussian kernel the p-quantile of 1000 draws varies by about 2 % of the exact
# radius from seed to seed (README, Recalibrated uncertainty).
RADIUS_SAMPLES = 1000
DEFAULT_COVERAGE = 0.9
ROWS_PER_CHUNK = 256  # (256, 1000, 48) float32 draws at once: ~50 MB


def quantile_of_draws(values, level):
    """The `level`-quantile over axis 1 of (N, S, ...) `values`, linear interpolation
    between order statistics (numpy's default `np.quantile` method)."""
    count = tf.shape(values)[1]
    ordered = tf.sort(values, axis=1)
    position = tf.cast(level, values.dtype) * tf.cast(count - 1, values.dtype)
    below = tf.cast(tf.floor(position), tf.int32)
    above = tf.minimum(below + 1, count - 1)
    fraction = position - tf.cast(below, values.dtype)
    return (tf.gather(ordered, below, axis=1) * (1 - fraction)
            + tf.gather(ordered, above, axis=1) * fraction)


def joint_radius(means, scales, weights, chosen, spread, coverages, seed,
                 adjustment=None, num_samples=RADIUS_SAMPLES):
    """Radii (N, J, L) in mm for the L `coverages`.

    means (N, K, D), scales and weights (N, K): the network's (normalised) mixture;
    chosen (N, D): the pose the radius is around, normalised; spread (D,): mm per
    normalised unit of each coordinate (the training std); D = 3 J.
    """
    means = tf.convert_to_tensor(means, tf.float32)
    noise = mixture.shared_noise(num_samples, tf.shape(means)[-1], seed)
    draws = mixture.sample_with_noise(means, scales, weights, noise, adjustment)
    offsets = (draws - tf.convert_to_tensor(chosen, tf.float32)[:, None]) \
        * tf.cast(spread, tf.float32)
    offsets = tf.reshape(offsets, tf.concat([tf.shape(offsets)[:2], [-1, 3]], 0))
    distances = tf.norm(offsets, axis=-1)  # (N, S, J)
    return tf.stack([quantile_of_draws(distances, level) for level in coverages], axis=-1)


def joint_radius_numpy(means, scales, weights, chosen, spread, coverages, seed,
                       adjustment=None, rows_per_chunk=ROWS_PER_CHUNK):
    """`joint_radius` run eagerly over chunks of rows, as numpy (N, J, L). A row's draws
    do not depend on the chunk (mixture.sample_with_noise), so neither do its radii."""
    means = np.asarray(means, np.float32)
    parts = [joint_radius(means[rows], np.asarray(scales)[rows], np.asarray(weights)[rows],
                          np.asarray(chosen)[rows], spread, coverages, seed,
                          adjustment).numpy()
             for rows in (slice(s, s + rows_per_chunk) for s in range(0, len(means),
                                                                     rows_per_chunk))]
    if not parts:
        return np.zeros((0, means.shape[-1] // 3, len(coverages)), np.float32)
    return np.concatenate(parts)

"""The training objective (docs/faithfulness.md §2): mixture negative log-likelihood plus the
Dirichlet conjugate prior on the mixing coefficients.

The loss is evaluated in float64. With scales as small as the release's 1e-15 floor the
Mahalanobis term reaches ~1e107 for float32-representable residuals, which overflows
float32 but not float64, so the loss is finite for every finite input. Gradients flowing
back into the float32 network are saturated at +-GRADIENT_LIMIT so that they stay finite
too; in any regime a real model reaches, nothing is clipped.
"""

import tensorflow as tf

from mdm.model import mixture

DIRICHLET_ALPHA = 2.0
GRADIENT_LIMIT = 1e30
LOSS_LIMIT = 1e30


@tf.custom_gradient
def _to_float64(values):
    """Cast to float64; the gradient is saturated to stay finite in the input dtype."""

    def gradient(upstream):
        # Saturate within what the input dtype can hold (float16: 65504).
        limit = min(GRADIENT_LIMIT, float(values.dtype.max))
        limited = tf.clip_by_value(upstream, -limit, limit)
        return tf.cast(tf.where(tf.math.is_nan(limited), tf.zeros_like(limited), limited),
                       values.dtype)

    return tf.cast(values, tf.float64), gradient


def dirichlet_prior_penalty(weights, alpha=DIRICHLET_ALPHA):
    """- mean_batch sum_k (alpha_k - 1) log a_k, on the clipped coefficients."""
    log_weights = tf.math.log(mixture.clip_weights(weights))
    return -tf.reduce_mean(tf.reduce_sum((alpha - 1.0) * log_weights, axis=-1))


def negative_log_likelihood(targets, means, scales, weights):
    """Per-sample -log p(y | x) in float64, by log-sum-exp inside MixtureSameFamily."""
    distribution = mixture.mixture_distribution(means, scales, weights)
    return -distribution.log_prob(targets)


def mixture_loss(targets, means, scales, weights, dirichlet_prior=True):
    """Batch-mean loss as a float32 scalar, shared by train_step and test_step."""
    targets, means, scales, weights = (
        _to_float64(tf.convert_to_tensor(t)) for t in (targets, means, scales, weights))
    loss = tf.reduce_mean(negative_log_likelihood(targets, means, scales, weights))
    if dirichlet_prior:
        loss += dirichlet_prior_penalty(weights)
    return tf.cast(tf.clip_by_value(loss, -LOSS_LIMIT, LOSS_LIMIT), tf.float32)

"""The linear map of every layer, x W min(1, 1 / ||W||_F), with a hand-written gradient.

The numbers are those of the release's `tf.matmul(x, tf.clip_by_norm(W, 1))`
(docs/faithfulness.md §2), gradient through the norm included. Two things make the
hand-written version faster on a CPU than what autodiff builds (measured with
benchmarks/step_breakdown.py):

- The input gradient g W^T is computed as (W g^T)^T. TensorFlow's CPU MatMul with
  `transpose_b` on a 1024x1024 matrix runs at well under half the speed of the
  untransposed product; the (batch, units) result is cheap to transpose back.
- The norm's gradient is folded into one scalar: with s = min(1, 1/n), n = ||W||_F and
  p = x W, dL/dW = s x^T g - [n > 1] (sum(g * p) / n^3) W. Autodiff instead materialises
  a broadcast of the upstream scalar and several full-size products per matrix.
"""

import tensorflow as tf


def _input_gradient(kernel, upstream):
    """upstream @ kernel^T, computed as (kernel @ upstream^T)^T (see module docstring)."""
    return tf.transpose(tf.matmul(kernel, upstream, transpose_b=True))


def linear_map(inputs, kernel, max_norm):
    """inputs @ (kernel * min(1, 1 / ||kernel||_F)) if max_norm else inputs @ kernel.

    `kernel` is the float32 master copy; under mixed precision `inputs` are float16 and
    the product is taken in float16 while the norm and the kernel's gradient stay float32.
    """
    return _max_norm_matmul(inputs, kernel) if max_norm else _matmul(inputs, kernel)


@tf.custom_gradient
def _matmul(inputs, kernel):
    compute_kernel = tf.cast(kernel, inputs.dtype)

    def gradient(upstream):
        kernel_gradient = tf.matmul(inputs, upstream, transpose_a=True)
        return (_input_gradient(compute_kernel, upstream),
                tf.cast(kernel_gradient, kernel.dtype))

    return tf.matmul(inputs, compute_kernel), gradient


@tf.custom_gradient
def _max_norm_matmul(inputs, kernel):
    kernel32 = tf.cast(kernel, tf.float32)
    # l2_loss is sum(W^2) / 2 in one pass over W; float32 so float16 weights cannot overflow.
    norm = tf.sqrt(2.0 * tf.nn.l2_loss(kernel32))
    scale = tf.minimum(1.0, 1.0 / norm)
    compute_kernel = tf.cast(kernel, inputs.dtype)
    product = tf.matmul(inputs, compute_kernel)

    def gradient(upstream):
        scaled_upstream = upstream * tf.cast(scale, upstream.dtype)
        # d scale / d W = -W / n^3 where the clip is active (n > 1), else 0.
        upstream_dot_product = tf.reduce_sum(tf.cast(upstream, tf.float32)
                                             * tf.cast(product, tf.float32))
        norm_coefficient = tf.where(norm > 1.0, -upstream_dot_product / norm ** 3, 0.0)
        kernel_gradient = tf.cast(tf.matmul(inputs, scaled_upstream, transpose_a=True),
                                  tf.float32) + norm_coefficient * kernel32
        return (_input_gradient(compute_kernel, scaled_upstream),
                tf.cast(kernel_gradient, kernel.dtype))

    return product * tf.cast(scale, product.dtype), gradient

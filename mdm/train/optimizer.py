"""The release's optimiser (docs/faithfulness.md §2): Adam(0.9, 0.999, 1e-8) with a
continuous exponential learning-rate decay, applied with TensorFlow's fused kernel, the
update the release's TF1 AdamOptimizer ran.

Same formula as keras.optimizers.Adam (lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr_t m / (sqrt(v) + eps)) and the
same slot variables, so checkpoints are interchangeable; but one pass over each variable
instead of several, which matters when the update of 4.5 M parameters is a large part of
a batch-64 step on a CPU.
"""

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose per-variable update is ResourceApplyAdam."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        momentum, velocity = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=momentum.handle, v=velocity.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))
        return None


def learning_rate_schedule(config):
    """lr = learning_rate * 0.96 ** (step / 100000), decayed continuously (docs/faithfulness.md §2)."""
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=100000, decay_rate=0.96, staircase=False)


def make_optimizer(config):
    """Adam(0.9, 0.999, 1e-8) on the release's schedule; loss-scaled for float16 (bfloat16
    has float32's exponent range and needs no scaling)."""
    optimizer = FusedAdam(learning_rate_schedule(config), beta_1=0.9, beta_2=0.999,
                          epsilon=1e-8)
    if config.compute_policy() == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer

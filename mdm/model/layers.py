"""The release's layers (docs/faithfulness.md §2): a linear map with whole-matrix max-norm,
the Linear -> BN -> ReLU -> Dropout unit, and the residual block of two units."""

import math

import keras
import tensorflow as tf

from mdm.model.linear_map import linear_map


def kaiming_truncated_normal(fan):
    """The release's init: truncated normal (cut at 2 sigma) times sqrt(2 / shape[0])."""
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=math.sqrt(2.0 / fan))


class MaxNormDense(keras.layers.Layer):
    """A linear layer whose weight matrix is used as W * min(1, 1 / ||W||_F).

    This is the release's max_norm (docs/faithfulness.md §2), not Keras's per-column MaxNorm
    constraint: the stored variable is never modified, only the forward pass clips the
    whole matrix to Frobenius norm 1. Biases are not clipped.
    """

    def __init__(self, units, max_norm=True, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.max_norm = max_norm
        self.use_bias = use_bias

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, self.units),
                                      initializer=kaiming_truncated_normal(fan_in))
        # Biases too are drawn with sqrt(2 / shape[0]) = sqrt(2 / units) (docs/faithfulness.md §2).
        self.bias = (self.add_weight(name="bias", shape=(self.units,),
                                     initializer=kaiming_truncated_normal(self.units))
                     if self.use_bias else None)

    def call(self, inputs):
        kernel = tf.convert_to_tensor(self.kernel.value)  # the float32 master copy
        outputs = linear_map(inputs, kernel, self.max_norm)
        if self.bias is None:
            return outputs
        return outputs + tf.cast(self.bias.value, inputs.dtype)


class LinearUnit(keras.layers.Layer):
    """Linear -> BN -> ReLU -> Dropout, the release's building block.

    The linear layer's bias is redundant in front of batch norm, which subtracts the batch
    mean (beta provides the offset): its gradient is analytically zero, and in floating
    point rounding noise that Adam scales to learning-rate-sized steps, so the bias
    random-walks and batch norm's moving mean trails it (docs/faithfulness.md §11).
    `pre_bn_bias=False` leaves it out; the release had it, and so does the default.
    """

    def __init__(self, units, max_norm, batch_norm, keep_prob, synchronized=False,
                 pre_bn_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.dense = MaxNormDense(units, max_norm, use_bias=pre_bn_bias or not batch_norm,
                                  name="dense", dtype=self.dtype_policy)
        # Under tf.distribute, synchronized BN takes its batch statistics over the global
        # batch, so training on R replicas equals training on one device.
        self.norm = (keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name="bn",
                                                     synchronized=synchronized,
                                                     dtype=self.dtype_policy)
                     if batch_norm else None)
        # The release's --dropout is a keep probability; Keras takes the drop rate.
        self.dropout = keras.layers.Dropout(1.0 - keep_prob, dtype=self.dtype_policy)

    def call(self, inputs, training=False):
        hidden = self.dense(inputs)
        if self.norm is not None:
            hidden = self.norm(hidden, training=training)
        return self.dropout(tf.nn.relu(hidden), training=training)


class ResidualBlock(keras.layers.Layer):
    """Two linear units with a skip connection (the release's `two_linear`)."""

    def __init__(self, units, max_norm, batch_norm, keep_prob, residual, synchronized=False,
                 pre_bn_bias=True, **kwargs):
        super().__init__(**kwargs)
        args = dict(units=units, max_norm=max_norm, batch_norm=batch_norm, keep_prob=keep_prob,
                    synchronized=synchronized, pre_bn_bias=pre_bn_bias, dtype=self.dtype_policy)
        self.first = LinearUnit(name="unit_a", **args)
        self.second = LinearUnit(name="unit_b", **args)
        self.residual = residual

    def call(self, inputs, training=False):
        hidden = self.second(self.first(inputs, training=training), training=training)
        return inputs + hidden if self.residual else hidden

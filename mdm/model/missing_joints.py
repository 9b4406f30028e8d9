"""The --miss_num input corruption (docs/faithfulness.md §4): limb joints of normalised 2D
inputs set to 0, as if a detector had missed them. Used in training (the model's train
step) and, with a fixed seed, on the test inputs (mdm.evaluate.prediction)."""

import keras
import numpy as np
import tensorflow as tf

from mdm.core import skeleton


def _limb_to_input_coordinates():
    # (8, 32): row l marks the x and y coordinates of limb joint l in the flat input.
    matrix = np.zeros((len(skeleton.LIMB_INPUT_POSITIONS), 2 * len(skeleton.INPUT_JOINTS)),
                      np.float32)
    for row, position in enumerate(skeleton.LIMB_INPUT_POSITIONS):
        matrix[row, 2 * position: 2 * position + 2] = 1.0
    return matrix


def corrupt_missing_joints(inputs, num_missing, seed):
    """Set `num_missing` distinct limb joints of every row of normalised (B, 32) inputs
    to 0, chosen uniformly among the 8 limb joints (docs/faithfulness.md §4).

    `seed` is a keras.random.SeedGenerator (training: its state lives in the checkpoint)
    or an int (evaluation: the same corruption on every run).
    """
    if num_missing == 0:
        return inputs
    batch = tf.shape(inputs)[0]
    noise = keras.random.uniform((batch, len(skeleton.LIMB_INPUT_POSITIONS)), seed=seed)
    chosen = tf.math.top_k(noise, k=num_missing).indices
    limb_mask = tf.reduce_sum(tf.one_hot(chosen, len(skeleton.LIMB_INPUT_POSITIONS)), axis=1)
    coordinate_mask = tf.matmul(limb_mask, _limb_to_input_coordinates())
    return inputs * tf.cast(1.0 - coordinate_mask, inputs.dtype)

"""mdm.evaluate.prediction: every row predicted once, in order, in batches; the joints each
model is scored on (docs/faithfulness.md §3, §11), against hand-computed errors."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core import skeleton
from mdm.data.normalization import NormStats
from mdm.evaluate import metrics, prediction


@pytest.mark.parametrize("num_samples,batch_size", [(10, 4), (8, 4), (3, 4096)])
def test_evaluation_keeps_every_row_in_order(num_samples, batch_size):
    inputs = np.random.default_rng(2).normal(size=(num_samples, 32))
    batches = []

    def predictor(batch):  # records what it is given; "means" echo the inputs
        batches.append(batch.numpy())
        return batch, tf.reduce_sum(batch, axis=1), tf.ones([tf.shape(batch)[0]])

    means, scales, weights = prediction.predict_mixture(predictor, inputs, batch_size)
    sizes = [len(b) for b in batches]
    assert sizes[:-1] == [batch_size] * (len(batches) - 1)
    assert sum(sizes) == num_samples
    assert_array_equal(np.concatenate(batches), inputs.astype(np.float32))
    assert batches[0].dtype == np.float32
    assert_array_equal(means, inputs.astype(np.float32))
    np.testing.assert_allclose(scales, inputs.sum(axis=1), rtol=1e-5, atol=1e-5)
    assert weights.shape == (num_samples,)


def _identity_stats():
    """Statistics under which the network's outputs are millimetres: mean 0, std 1."""
    return NormStats(mean_2d=np.zeros((16, 2)), std_2d=np.ones((16, 2)),
                     mean_3d=np.zeros((17, 3)), std_3d=np.ones((17, 3)))


def _frame_errors(stats, means, weights, gt, predict_14, procrustes):
    hypotheses = prediction.hypotheses_mm(stats, means, predict_14)
    return prediction.frame_errors(hypotheses, weights, gt, predict_14, procrustes)


def _predict14_case():
    """One frame, K = 2. The ground truth is 0 at the 14 predicted joints and 100 mm off
    at Spine and Neck/Nose, which a predict_14 model never predicts (they get the
    training mean, 0 here): scoring them would add 2 x 100 mm to the sum.
    Hypothesis 0: every predicted joint off by (3, 4, 0), 5 mm. Hypothesis 1: only
    RKnee off, by (10, 0, 0). Weights 0.7 / 0.3."""
    predicted = skeleton.OUTPUT_JOINTS_14
    gt = np.zeros((1, 17, 3))
    gt[0, skeleton.H36M17_NAMES.index("Spine")] = (100.0, 0.0, 0.0)
    gt[0, skeleton.H36M17_NAMES.index("Neck/Nose")] = (0.0, 100.0, 0.0)
    means = np.zeros((1, 2, 14, 3))
    means[0, 0] = (3.0, 4.0, 0.0)
    means[0, 1, list(predicted).index(skeleton.H36M17_NAMES.index("RKnee"))] = (10.0, 0.0, 0.0)
    return gt, means.reshape(1, 2, 42), np.array([[0.7, 0.3]])


def test_predict_14_scores_the_14_predicted_joints_protocol_1():
    gt, means, weights = _predict14_case()
    errors = _frame_errors(_identity_stats(), means, weights, gt, predict_14=True,
                           procrustes=False)
    # By hand, over the 14 joints (with the root it would be /15, with Spine and
    # Neck/Nose +200 mm in the sum):
    #   best = hypothesis 1: 10 / 14; most probable = hypothesis 0: 14 x 5 / 14 = 5;
    #   mixture mean: RKnee at 0.7 (3, 4, 0) + 0.3 (10, 0, 0) = (5.1, 2.8, 0), the 13
    #   other joints at 0.7 (3, 4, 0), 3.5 mm.
    expected = {"best": 10.0 / 14, "most_probable": 5.0,
                "mixture_mean": (13 * 3.5 + np.hypot(5.1, 2.8)) / 14}
    for column, value in expected.items():
        assert_allclose(errors[column], [value], rtol=1e-12, err_msg=column)


def test_predict_14_aligns_over_the_14_predicted_joints_protocol_2():
    """Both hypotheses are similarity transforms (same rotation, other scale and shift)
    of the ground truth's 14 joints, and so is their weighted mean: aligned over those 14
    joints every column is 0. The root (0 in both poses) does not fit the shifted
    transforms, nor do Spine and Neck/Nose, so scoring any of them would not give 0."""
    rng = np.random.default_rng(5)
    predicted = skeleton.OUTPUT_JOINTS_14
    gt = np.zeros((1, 17, 3))
    gt[0, predicted] = rng.normal(scale=300.0, size=(14, 3))
    gt[0, skeleton.H36M17_NAMES.index("Spine")] = (100.0, 0.0, 0.0)
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    hypotheses = np.stack([scale * gt[0, predicted] @ rotation.T + shift for scale, shift in
                           ((1.2, (40.0, -30.0, 500.0)), (0.8, (-70.0, 10.0, 300.0)))])
    means = hypotheses.reshape(1, 2, 42)
    weights = np.array([[0.4, 0.6]])
    stats = _identity_stats()
    aligned = _frame_errors(stats, means, weights, gt, True, procrustes=True)
    for column in metrics.ERROR_COLUMNS:
        assert_allclose(aligned[column], [0.0], atol=1e-9, err_msg=column)
    unaligned = _frame_errors(stats, means, weights, gt, True, False)
    assert all(unaligned[column][0] > 100.0 for column in metrics.ERROR_COLUMNS)


def test_16_joint_model_scores_all_17_joints_root_included():
    """Without predict_14 the root (error 0 under Protocol #1) counts: one joint 17 mm
    off gives 17 / 17 = 1 mm."""
    gt = np.zeros((1, 17, 3))
    means = np.zeros((1, 1, 16, 3))
    means[0, 0, 3] = (0.0, 0.0, 17.0)
    errors = _frame_errors(_identity_stats(), means.reshape(1, 1, 48), np.ones((1, 1)), gt,
                           False, False)
    for column in metrics.ERROR_COLUMNS:
        assert_allclose(errors[column], [1.0], rtol=1e-12, err_msg=column)

"""Per-action evaluation of the mixture (docs/faithfulness.md §3).

For every test frame and hypothesis: un-normalise the means, root at 0, MPJPE over the
evaluation joints. Columns: `best` (min over K, the paper's number), `most_probable`
(argmax mixing weight) and `mixture_mean` (the mean pose of the mixture). An action's
error is the mean over its frames; the headline is the mean over actions.
"""

import numpy as np
import tensorflow as tf

from mdm.core import skeleton
from mdm.evaluate import metrics, report
from mdm.model.missing_joints import corrupt_missing_joints

COLUMNS = ("best", "most_probable", "mixture_mean")
EVAL_BATCH_SIZE = 4096  # poses per inference call
# Fixed so that every evaluation of a --miss_num model sees the same corrupted inputs.
EVAL_CORRUPTION_SEED = 1234
_ERROR_CHUNK = 65536
ALL_FRAMES = "All frames"


def make_predictor(model, jit_compile=True):
    """A compiled inference function: (B, 32) -> (means, scales, weights)."""
    return tf.function(lambda inputs: model(inputs, training=False), jit_compile=jit_compile)


def predict_mixture(predictor, inputs, batch_size=EVAL_BATCH_SIZE):
    """Mixture parameters of every row of (N, 32) `inputs`, in batches of `batch_size`
    (the last one smaller), as numpy (means (N, K, D), scales (N, K), weights (N, K))."""
    inputs = np.asarray(inputs, np.float32)
    parts = [predictor(tf.constant(inputs[start:start + batch_size]))
             for start in range(0, len(inputs), batch_size)]
    return tuple(np.concatenate([part[i].numpy() for part in parts]) for i in range(3))


def evaluation_inputs(stats, poses_2d, miss_num):
    """Normalised inputs, corrupted with the fixed seed when the model uses --miss_num."""
    inputs = stats.normalize_inputs(poses_2d)
    if miss_num:
        inputs = corrupt_missing_joints(tf.constant(inputs), miss_num,
                                        EVAL_CORRUPTION_SEED).numpy()
    return inputs


def hypotheses_mm(stats, means, predict_14):
    """(N, K, D) normalised means -> (N, K, 17, 3) root-centred millimetres."""
    return stats.unnormalize_targets(means, predict_14)


def frame_errors(stats, mixture_params, ground_truth, predict_14, procrustes):
    """Per-frame error (mm) of every column, computed in chunks to bound memory."""
    means, _, weights = mixture_params
    joints = skeleton.eval_joints(predict_14)
    columns = {name: [] for name in COLUMNS}
    for start in range(0, len(means), _ERROR_CHUNK):
        chunk = slice(start, start + _ERROR_CHUNK)
        hypotheses = hypotheses_mm(stats, means[chunk], predict_14)[:, :, joints]
        errors = metrics.hypothesis_errors(hypotheses, weights[chunk],
                                           ground_truth[chunk][:, joints], procrustes=procrustes)
        for name in COLUMNS:
            columns[name].append(errors[name])
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def evaluate(predictor, stats, pose_set, config, procrustes=None):
    """Per-action results {action: {column: mm}} (with 'Average'), and the raw outputs."""
    procrustes = config.procrustes if procrustes is None else procrustes
    inputs = evaluation_inputs(stats, pose_set.poses_2d, config.miss_num)
    mixture_params = predict_mixture(predictor, inputs)
    errors = frame_errors(stats, mixture_params, pose_set.poses_3d, config.predict_14, procrustes)
    # --evaluateActionWise False pools every frame into one row (docs/faithfulness.md §6).
    groups = (pose_set.actions() if config.evaluate_action_wise
              else np.full(len(pose_set), ALL_FRAMES))
    results = report.aggregate_by_action(errors, groups)
    return results, mixture_params


def protocol_name(procrustes):
    return "Protocol #2 (Procrustes-aligned)" if procrustes else "Protocol #1"

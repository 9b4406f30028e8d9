"""A TensorFlow SavedModel for serving: raw pixel keypoints in, hypotheses in mm out.

The normalisation statistics are baked into the graph, so a server needs nothing but the
directory. Its signature `serving_default` takes `keypoints_2d` (N, 16, 2) float32 pixels
in the joint order chosen at export (NaN = missing joint, normalised to 0 as with
--miss_num, docs/faithfulness.md §4) and returns, most probable first:

    poses_3d (N, K, 17, 3) mm, root-relative, camera frame   weights (N, K)
    scales (N, K) normalised-space std    scales_mm (N, K, 17, 3)    kernel_index (N, K)
    missing (N, 16) bool (model order)    valid (N,) bool
    radius_mm (N, 17): per joint, the radius around the most probable hypothesis that
        holds the truth with the probability chosen at export (--coverage)

The recalibration applied by the exported Lifter (its checkpoint's recalibration.json)
is baked in: scales_mm and radius_mm are of the recalibrated mixture. The radius is the
quantile of the distances of radius.RADIUS_SAMPLES draws computed in the graph from the
seed fixed at export (mdm/model/radius.py), the same draws as Lifter.predict with that
seed, so the same radius.

A graph cannot raise per pose the way `Lifter.predict` refuses an input, so `valid` is False
for every pose the command line would refuse (a missing root or other non-limb joint, more
than MAX_MISSING missing limb joints, an infinite coordinate), and that pose's poses_3d,
weights, scales and scales_mm are NaN: a client that ignores the flag cannot mistake them
for an answer. `EXPORT_CONFIG` next to it describes all this as JSON.
"""

import json
import os

import numpy as np
import tensorflow as tf

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.model import radius
from mdm.serve import keypoint_files
from mdm.serve.derived_joints import MAX_MISSING

EXPORT_CONFIG = "mdm_export.json"
SIGNATURE = "serving_default"


class LiftingModule(tf.Module):
    """The Keras model plus the affine maps from pixels and to millimetres."""

    def __init__(self, lifter, joint_order, coverage=radius.DEFAULT_COVERAGE, seed=0):
        super().__init__(name="mdm_lifter")
        self.model = lifter.model
        self._coverage, self._seed = float(coverage), int(seed)
        self._adjustment = lifter.mixture_adjustment
        names = keypoint_files.joint_names(joint_order)
        # Row of each model input joint in the file's order.
        self._input_rows = np.array([names.index(n) for n in keypoint_files.INPUT_NAMES], np.int32)
        stats, predict_14 = lifter.stats, lifter.config.predict_14
        self._mean_2d = stats.unnormalize_inputs(np.zeros(32))
        self._std_2d = stats.unnormalize_inputs(np.ones(32)) - self._mean_2d
        # poses = base + spread * (z placed at the predicted joints): the same affine map as
        # NormStats.unnormalize_targets (root 0, joints not predicted at their mean).
        joints = skeleton.output_joints(predict_14)
        self._base_3d = stats.unnormalize_targets(np.zeros(3 * len(joints)), predict_14)
        self._spread_3d = stats.unnormalize_targets(np.ones(3 * len(joints)),
                                                    predict_14) - self._base_3d
        self._placement = np.eye(skeleton.NUM_JOINTS)[:, joints]  # (17, J_out)
        self._output_spread = self._spread_3d[joints].ravel()  # (D,) mm per normalised unit
        if lifter.recalibration is not None:
            self._kernel_spread = self._spread_3d * lifter.recalibration.factors_17(
                predict_14)[:, None]
        else:
            self._kernel_spread = self._spread_3d
        self._is_limb = np.isin(np.arange(keypoint_files.NUM_INPUT_JOINTS),
                                skeleton.LIMB_INPUT_POSITIONS)  # (16,) model order

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 2], tf.float32, name="keypoints_2d")])
    def lift(self, keypoints_2d):
        pixels = tf.gather(tf.cast(keypoints_2d, tf.float64), self._input_rows, axis=1)
        missing = tf.reduce_any(tf.math.is_nan(pixels), axis=-1)
        valid = self._valid(pixels, missing)
        normalised = (pixels - self._mean_2d) / self._std_2d
        # Both coordinates of a missing joint are 0 (docs/faithfulness.md §4); an infinite
        # one too, so that even an invalid row computes finite numbers before its NaN.
        usable = ~missing[..., None] & tf.math.is_finite(normalised)
        normalised = tf.where(usable, normalised, tf.zeros_like(normalised))
        inputs = tf.reshape(tf.cast(normalised, tf.float32), [-1, 32])
        means, scales, weights = self.model(inputs, training=False)
        order = tf.argsort(weights, axis=1, direction="DESCENDING", stable=True)
        radii = self._radius(means, scales, weights, order[:, 0])
        means = tf.gather(means, order, batch_dims=1)
        scales = tf.gather(scales, order, batch_dims=1)
        z = tf.reshape(tf.cast(means, tf.float64), [tf.shape(means)[0], tf.shape(means)[1], -1, 3])
        poses = self._base_3d + self._spread_3d * tf.einsum("jo,nkoc->nkjc", self._placement, z)
        spread = tf.cast(self._kernel_spread, tf.float32)
        return {"poses_3d": _nan_unless(valid, tf.cast(poses, tf.float32)),
                "weights": _nan_unless(valid, tf.gather(weights, order, batch_dims=1)),
                "scales": _nan_unless(valid, scales),
                "scales_mm": _nan_unless(valid, scales[:, :, None, None] * spread),
                "kernel_index": order, "missing": missing, "valid": valid,
                "radius_mm": _nan_unless(valid, radii)}

    def _radius(self, means, scales, weights, most_probable):
        """(N, 17) mm around kernel `most_probable` (N,), from the unsorted kernels (the
        order Lifter.predict draws from), 0 where nothing is predicted."""
        chosen = tf.gather(means, most_probable, batch_dims=1)
        radii = radius.joint_radius(means, scales, weights, chosen, self._output_spread,
                                    [self._coverage], self._seed,
                                    self._adjustment)[..., 0]
        return tf.einsum("jo,no->nj", tf.cast(self._placement, tf.float32), radii)

    def _valid(self, pixels, missing):
        """(N,) bool: the pose passes Lifter.check_missing and has no infinite coordinate
        (keypoint_files.to_model_order), i.e. the command line would lift it."""
        infinite = tf.reduce_any(tf.math.is_inf(pixels), axis=[1, 2])
        non_limb_missing = tf.reduce_any(missing & ~self._is_limb, axis=1)
        limbs_missing = tf.reduce_sum(tf.cast(missing & self._is_limb, tf.int32), axis=1)
        return ~infinite & ~non_limb_missing & (limbs_missing <= MAX_MISSING)


def _nan_unless(valid, values):
    """`values` (N, ...) with the rows where `valid` (N,) is False set to NaN."""
    rows = tf.reshape(valid, tf.concat([tf.shape(valid), tf.ones([tf.rank(values) - 1],
                                                                 tf.int32)], 0))
    return tf.where(rows, values, tf.fill(tf.shape(values), tf.constant(np.nan, values.dtype)))


def export_saved_model(lifter, directory, joint_order=keypoint_files.H36M,
                       coverage=radius.DEFAULT_COVERAGE, seed=0):
    """Write the SavedModel and EXPORT_CONFIG into `directory` (new or empty); radius_mm
    holds the truth with probability `coverage`, from draws seeded by `seed`."""
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise UserError(f"export directory {directory} exists and is not empty")
    module = LiftingModule(lifter, joint_order, coverage, seed)
    try:
        tf.saved_model.save(module, directory, signatures={SIGNATURE: module.lift})
        with open(os.path.join(directory, EXPORT_CONFIG), "w", encoding="utf-8") as handle:
            json.dump(export_config(lifter, joint_order, coverage, seed), handle, indent=2)
    except OSError as err:
        raise UserError(f"cannot write the SavedModel to {directory}: {err}") from None
    return directory


def export_config(lifter, joint_order, coverage=radius.DEFAULT_COVERAGE, seed=0):
    """What a client needs to call the SavedModel and read its answer."""
    stats = lifter.stats
    return {
        "signature": SIGNATURE,
        "inputs": {"keypoints_2d": {
            "shape": [None, 16, 2], "dtype": "float32", "units": "pixels",
            "joint_order": joint_order, "joint_names": list(keypoint_files.joint_names(joint_order)),
            "missing_joint": f"NaN (only limb joints, at most {MAX_MISSING}; the root must "
                             "be given; otherwise the pose is not valid)"}},
        "outputs": {
            "poses_3d": "(N, K, 17, 3) float32 mm, root-relative, camera frame, "
                        "most probable hypothesis first",
            "weights": "(N, K) mixing weights, descending",
            "scales": "(N, K) kernel std in the normalised 3D space",
            "scales_mm": "(N, K, 17, 3) that std per coordinate in mm (recalibrated, "
                         "if a recalibration is recorded below)",
            "kernel_index": "(N, K) int32 kernel of the model behind each hypothesis",
            "missing": "(N, 16) bool joints treated as missing, h36m order",
            "valid": "(N,) bool False where the pose cannot be lifted (the root or another "
                     f"non-limb joint missing, more than {MAX_MISSING} limb joints missing, "
                     "an infinite coordinate); poses_3d, weights, scales and scales_mm of "
                     "such a pose are NaN",
            "radius_mm": f"(N, 17) float32 mm: per joint, the radius around the most "
                         f"probable hypothesis holding the truth with probability "
                         f"{coverage:g}, the {coverage:g}-quantile of the joint's distance "
                         f"over {radius.RADIUS_SAMPLES} draws of the mixture (seed {seed}); "
                         "0 at the root; NaN where not valid"},
        "coverage": coverage,
        "radius_seed": seed,
        "recalibration": lifter.recalibration.record if lifter.recalibration else None,
        "output_joint_names": list(skeleton.H36M17_NAMES),
        "num_hypotheses": lifter.config.num_models,
        "architecture": lifter.config.architecture(),
        "miss_num": lifter.miss_num,
        "checkpoint": lifter.source,
        "normalization": {name: np.asarray(value).tolist()
                          for name, value in stats.as_arrays().items()},
    }

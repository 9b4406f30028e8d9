"""Lift your own 2D keypoints to K 3D hypotheses with a trained checkpoint.

    lifter = Lifter.load("experiments/demo")             # latest checkpoint there
    result = lifter.predict(keypoints_2d)                 # (16, 2) or (N, 16, 2) pixels
    result.poses      # (N, K, 17, 3) mm, root-relative, camera frame, most probable first
    result.weights    # (N, K) mixing weights, descending
    result.radius_mm  # (N, 17) per joint, the truth is within it with probability 0.9

Works on this project's checkpoints (statistics inside) and on the authors' released TF1
checkpoints (docs/faithfulness.md §5), whose statistics come from `stats` or are computed from the
training subjects of `data_dir`.

Missing joints are NaN and are treated exactly as --miss_num does in training
(docs/faithfulness.md §4): both normalised coordinates set to 0. Only limb joints can be missing,
at most 2 per pose.

A `recalibration.json` fitted for the loaded checkpoint (python -m mdm.calibrate,
mdm/checkpoint/recalibration.py) multiplies each joint's spread; `recalibrate=False`
keeps the network's raw spread. Every answer carries a per-joint radius around the
chosen pose (mdm/model/radius.py) that holds the truth with probability `coverage`.
"""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf

from mdm.checkpoint import recalibration as recalibration_file
from mdm.checkpoint import release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.checkpoint.loading import load_model
from mdm.core import skeleton
from mdm.core.config import ARCHITECTURE_FIELDS, Config
from mdm.core.errors import UserError
from mdm.data import splits
from mdm.evaluate import selection
from mdm.evaluate.oracle_free import DEFAULT_SMOOTHNESS
from mdm.evaluate import prediction
from mdm.model import mixture, radius
from mdm.serve import detector_lifting, keypoint_files
from mdm.serve.derived_joints import missing_joint_problem


class MissingJointsWarning(UserWarning):
    """Joints are missing from an input but the model was not trained for that many."""


@dataclasses.dataclass(frozen=True)
class Hypotheses:
    """The K hypotheses of N input poses, sorted by mixing weight, most probable first."""

    poses: np.ndarray  # (N, K, 17, 3) mm, root at 0, camera frame, H36M17_NAMES order
    weights: np.ndarray  # (N, K) mixing coefficients a_k
    scales: np.ndarray  # (N, K) s_k, the kernel's std in the normalised 3D space
    scales_mm: np.ndarray  # (N, K, 17, 3) that std per coordinate in mm (s_k * std_3d)
    kernel_index: np.ndarray  # (N, K) the model's kernel k behind each hypothesis
    missing: np.ndarray  # (N, 16) bool, input joints treated as missing (h36m order)
    samples: np.ndarray = None  # (N, S, 17, 3) mm draws from the mixture, if asked for
    # (N, 17) mm around the most probable hypothesis: the truth is within it with
    # probability `coverage` (0 at the root and at joints the model does not predict)
    radius_mm: np.ndarray = None
    coverage: float = radius.DEFAULT_COVERAGE

    def as_arrays(self):
        arrays = {"poses_3d": self.poses, "weights": self.weights, "scales": self.scales,
                  "scales_mm": self.scales_mm, "kernel_index": self.kernel_index,
                  "missing": self.missing}
        if self.radius_mm is not None:
            arrays["radius_mm"] = self.radius_mm
        if self.samples is not None:
            arrays["samples"] = self.samples
        return arrays


@dataclasses.dataclass(frozen=True)
class SequencePath:
    """The pose a video's temporal path takes in each frame (Lifter.predict_sequence)."""

    poses: np.ndarray  # (T, 17, 3) mm, root-relative, camera frame
    kernel: np.ndarray  # (T,) the model's kernel k chosen in each frame
    probability: np.ndarray  # (T,) its mixing weight a_k in that frame
    hypotheses: Hypotheses  # all K hypotheses per frame, most probable first
    radius_mm: np.ndarray = None  # (T, 17) mm around the path's pose (Hypotheses.radius_mm)


@dataclasses.dataclass(frozen=True)
class MultiViewPoses:
    """The hypotheses chosen for the views of each instant (Lifter.predict_multiview)."""

    poses: np.ndarray  # (V, N, 17, 3) mm, each view's chosen hypothesis, its camera frame
    fused: np.ndarray  # (V, N, 17, 3) mm, the chosen poses' mean, in each camera frame
    fused_world: np.ndarray  # (N, 17, 3) mm, that mean in world axes, root-relative
    kernel: np.ndarray  # (V, N) the kernel chosen in each view
    probability: np.ndarray  # (V, N) its mixing weight
    radius_mm: np.ndarray = None  # (V, N, 17) mm around each view's chosen pose


class Lifter:
    """A loaded model plus its normalisation statistics, for inference."""

    def __init__(self, model, stats, config, miss_num=None, source="", recalibration=None):
        self.model, self.stats, self.config = model, stats, config
        self.miss_num = miss_num  # None: the checkpoint does not record it
        self.source = source
        self.recalibration = recalibration  # mdm.checkpoint.recalibration.Recalibration
        self._forward = tf.function(lambda inputs: model(inputs, training=False),
                                    input_signature=[tf.TensorSpec([None, 32], tf.float32)])

    @classmethod
    def load(cls, load_dir, step=0, stats=None, data_dir="", cache_dir="", recalibrate=True):
        """Checkpoint `step` (0: the latest) of `load_dir`. `stats` (NormStats) replaces
        the checkpoint's; a released TF1 checkpoint needs it or `data_dir`, whose prepared
        training split is cached in `cache_dir` (default: <load_dir>/cache). With
        `recalibrate`, the recalibration.json fitted for this step (if any) is applied."""
        step = checkpoint_store.resolve_step(load_dir, step)
        path = checkpoint_store.checkpoint_path(load_dir, step)
        if release_format.checkpoint_format(path) == release_format.RELEASE:
            lifter = cls._load_release(path, stats, data_dir,
                                       cache_dir or os.path.join(load_dir, "cache"))
        else:
            config, miss_num = _project_config(load_dir)
            config = dataclasses.replace(config, load_dir=load_dir, load=step)
            model, saved_stats = load_model(load_dir, step, config)
            lifter = cls(model, saved_stats if stats is None else stats, config, miss_num,
                         source=path)
        lifter.recalibration = recalibration_file.load_for(
            load_dir, step, lifter.config.predict_14, recalibrate)
        return lifter

    @classmethod
    def _load_release(cls, path, stats, data_dir, cache_dir):
        if stats is None and not data_dir:
            raise UserError(f"{path} is a released TF1 checkpoint, which holds no "
                            "normalisation statistics: give the Human3.6M data directory "
                            "(--data_dir) to compute them from the training subjects, as "
                            "the release did")
        architecture = release_format.release_architecture(path)
        config = Config(**architecture, data_dir=data_dir, cache_dir=cache_dir)
        model = release_format.load_release_model(path, config)
        if stats is None:
            stats = splits.training_statistics(config)
        # The release never corrupted its inputs: the call was commented out (docs/faithfulness.md §4).
        return cls(model, stats, config, miss_num=0, source=path)

    def save(self, directory, step):
        """Write model and statistics as this project's checkpoint-<step> in `directory`,
        e.g. to keep a released checkpoint together with its statistics."""
        checkpoint_store.write_config(directory, self.config)
        return checkpoint_store.CheckpointStore(directory, self.model, stats=self.stats).save(step, 0)

    @property
    def num_models(self):
        return self.config.num_models

    def predict(self, keypoints_2d, joint_order=keypoint_files.H36M, num_samples=0, seed=0,
                coverage=radius.DEFAULT_COVERAGE):
        """Hypotheses for (16, 2) or (N, 16, 2) pixel keypoints in `joint_order`, with the
        per-joint radius of probability `coverage` around the most probable one (from
        seeded draws; `coverage=None` skips them and leaves `radius_mm` None); with
        `num_samples` S > 0 also S draws per pose from the mixture."""
        return self.predict_with_parameters(keypoints_2d, joint_order, num_samples, seed, coverage)[0]

    def predict_with_parameters(self, keypoints_2d, joint_order, num_samples=0, seed=0,
                                coverage=radius.DEFAULT_COVERAGE):
        """`predict`'s Hypotheses and the raw mixture parameters behind them (for
        `joint_radius` around another choice of kernel)."""
        _check_count("num_samples", num_samples, 0)
        _check_count("seed", seed, 2 ** 31 - 1)
        pixels = keypoint_files.to_model_order(keypoints_2d, joint_order)
        missing = self.check_missing(pixels)
        params = self.mixture_parameters(pixels, missing)
        means, scales, weights = params
        order = np.argsort(-weights, axis=1, kind="stable")
        sorted_means = np.take_along_axis(means, order[:, :, None], axis=1)
        sorted_scales = np.take_along_axis(scales, order, axis=1)
        samples = None
        if num_samples:
            draws = mixture.sample_mixture(means, scales, weights, num_samples, seed,
                                           self.mixture_adjustment).numpy()
            samples = self._to_mm(draws)
        hypotheses = Hypotheses(
            poses=self._to_mm(sorted_means), weights=np.take_along_axis(weights, order, axis=1),
            scales=sorted_scales, scales_mm=sorted_scales[:, :, None, None] * self._spread_mm(),
            kernel_index=order, missing=missing, samples=samples, coverage=coverage,
            radius_mm=None if coverage is None else self.joint_radius(params, order[:, 0],
                                                                      coverage, seed))
        return hypotheses, params

    def predict_sequence(self, keypoints_2d, joint_order=keypoint_files.H36M,
                         smoothness=DEFAULT_SMOOTHNESS, coverage=radius.DEFAULT_COVERAGE,
                         seed=0):
        """One pose per frame of a video, without ground truth: (T, 16, 2) pixel
        keypoints of consecutive frames (one person, one camera, time order) -> the
        Viterbi path through the K hypotheses that trades the mixing weight against the
        frame-to-frame change, sum_t -log a_t + smoothness * MPJPE(pose_t, pose_t-1),
        with the per-joint radius of probability `coverage` around the path's pose."""
        hypotheses, params = self.predict_with_parameters(keypoints_2d, joint_order, seed=seed,
                                           coverage=coverage)
        rank = selection.viterbi_path(hypotheses.poses, hypotheses.weights,
                                      np.zeros(len(hypotheses.poses), int), smoothness)
        frames = np.arange(len(rank))
        kernel = hypotheses.kernel_index[frames, rank]
        return SequencePath(poses=hypotheses.poses[frames, rank], kernel=kernel,
                            probability=hypotheses.weights[frames, rank],
                            hypotheses=hypotheses,
                            radius_mm=self.joint_radius(params, kernel, coverage, seed))

    def predict_detections(self, detections, options=None, temporal=False, smoothness=None,
                           num_samples=0, seed=0, coverage=radius.DEFAULT_COVERAGE):
        """A 2D detector's output (mdm.serve.detector_formats.read_detections: COCO-17,
        OpenPose BODY_25, h36m17, with scores) -> detector_lifting.FrameLift: one row per
        frame, flagged where it cannot be lifted; `temporal` adds the Viterbi path."""
        _check_coverage(coverage)
        return detector_lifting.lift_detections(
            self, detections, options or detector_lifting.DetectorOptions(), temporal,
            smoothness, num_samples, seed, coverage)

    def predict_multiview(self, keypoints_per_camera, rotations,
                          joint_order=keypoint_files.H36M, coverage=radius.DEFAULT_COVERAGE,
                          seed=0):
        """One pose per instant seen by several calibrated cameras, without ground truth.

        keypoints_per_camera: (V, N, 16, 2) pixels, the same N instants in each of V
        views; rotations: V world-to-camera rotation matrices (3, 3) (X_cam = R (X_world
        - T)), or objects with such an `R` (mdm.data.cameras.Camera). Per instant, one
        hypothesis per view is chosen so that the chosen poses, rotated into world axes,
        agree best (least summed pairwise MPJPE over all K^V combinations); `radius_mm`
        is the per-joint radius of probability `coverage` around each view's choice."""
        lifted = [self.predict_with_parameters(keypoints, joint_order, seed=seed, coverage=coverage)
                  for keypoints in keypoints_per_camera]
        views = [view for view, _ in lifted]
        matrices = np.stack([np.asarray(getattr(r, "R", r), np.float64) for r in rotations])
        if len(matrices) != len(views) or matrices.shape[1:] != (3, 3):
            raise UserError(f"{len(views)} views need {len(views)} 3x3 rotations "
                            f"(got {matrices.shape})")
        count = len(views[0].poses)
        if any(len(view.poses) != count for view in views):
            raise UserError("every camera needs the same number of poses (one per instant)")
        # Rows view-major: row v * N + n is view v of instant n.
        choice = selection.multi_view_select(
            np.concatenate([view.poses for view in views]),
            np.concatenate([view.weights for view in views]),
            np.repeat(matrices, count, axis=0), np.tile(np.arange(count), len(views)))
        rank = choice.chosen.reshape(len(views), count)
        frames = np.arange(count)
        chosen = np.stack([view.poses[frames, rank[v]] for v, view in enumerate(views)])
        fused_world = selection.to_world_axes(choice.fused[:count], matrices[0])
        return MultiViewPoses(
            poses=chosen, fused_world=fused_world,
            fused=choice.fused.reshape(len(views), count, *chosen.shape[2:]),
            kernel=np.stack([view.kernel_index[frames, rank[v]] for v, view in enumerate(views)]),
            probability=np.stack([view.weights[frames, rank[v]]
                                  for v, view in enumerate(views)]),
            radius_mm=np.stack([self.joint_radius(params, view.kernel_index[frames, rank[v]],
                                                  coverage, seed)
                                for v, (view, params) in enumerate(lifted)]))

    @property
    def mixture_adjustment(self):
        """The recalibration's mixture.Adjustment, or None (the network's raw mixture)."""
        return None if self.recalibration is None else self.recalibration.adjustment

    def joint_radius(self, params, kernel, coverage, seed):
        """(N, 17) mm: per joint, the radius around kernel `kernel` (N,) of each pose that
        the (recalibrated) mixture `params` gives probability `coverage`, from
        radius.RADIUS_SAMPLES draws seeded by `seed`; 0 where nothing is predicted."""
        _check_coverage(coverage)  # every radius is made here; `predict` asks none for None
        means, scales, weights = params
        chosen = means[np.arange(len(means)), kernel]
        joints = skeleton.output_joints(self.config.predict_14)
        spread = self._unit_mm()[joints].ravel()
        radii = np.zeros((len(means), skeleton.NUM_JOINTS), np.float32)
        radii[:, joints] = radius.joint_radius_numpy(
            means, scales, weights, chosen, spread, [coverage], seed,
            self.mixture_adjustment)[..., 0]
        return radii

    def mixture_parameters(self, pixels, missing):
        """Raw network outputs (means (N, K, D), scales, weights) for (N, 16, 2) pixels in
        model order; `missing` (N, 16) joints get normalised value 0 (docs/faithfulness.md §4)."""
        filled = np.where(missing[..., None], self.stats.mean_2d, pixels)
        inputs = self.stats.normalize_inputs(filled).reshape(-1, 16, 2)
        inputs[missing] = 0.0
        return prediction.predict_mixture(self._forward, inputs.reshape(len(inputs), -1))

    def check_missing(self, pixels):
        """(N, 16) mask of NaN joints; refuses what training never saw, warns when the
        model was trained with fewer (or no) missing joints."""
        missing = np.isnan(pixels).any(axis=-1)
        for pose in np.flatnonzero(missing.any(axis=1)):
            names = [keypoint_files.INPUT_NAMES[j] for j in np.flatnonzero(missing[pose])]
            _check_one_pose(pose, names)
        most = int(missing.sum(axis=1).max())
        if most and (self.miss_num is None or most > self.miss_num):
            warnings.warn(self._missing_warning(int(missing.any(axis=1).sum()), most),
                          MissingJointsWarning, stacklevel=3)
        return missing

    def _missing_warning(self, poses, most):
        if self.miss_num is None:
            trained = "the checkpoint does not record whether it was trained with --miss_num"
        elif self.miss_num == 0:
            trained = "the model was not trained for missing joints (--miss_num 0)"
        else:
            trained = f"the model was trained with --miss_num {self.miss_num}"
        return (f"{poses} pose(s) have missing joints (up to {most}) but {trained}: "
                "expect larger errors")

    def _to_mm(self, flat_3d):
        """(..., D) normalised -> (..., 17, 3) mm, root at 0 (docs/faithfulness.md §1)."""
        return self.stats.unnormalize_targets(flat_3d, self.config.predict_14)

    def _unit_mm(self):
        """(17, 3) mm per unit of the normalised space: std_3d at predicted joints, else 0."""
        dim = skeleton.output_dim(self.config.predict_14)
        return self._to_mm(np.ones(dim)) - self._to_mm(np.zeros(dim))

    def _spread_mm(self):
        """`_unit_mm` times the recalibration's factor of each joint, if one is applied:
        a kernel's std per coordinate in mm is its scale times this."""
        if self.recalibration is None:
            return self._unit_mm()
        return self._unit_mm() * self.recalibration.factors_17(self.config.predict_14)[:, None]


def _check_count(name, value, top):
    """A non-negative integer (at most `top` when `top` > 0): the sampler takes int32 seeds."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 \
            or (top and value > top):
        limit = f" up to {top}" if top else ""
        raise UserError(f"{name} must be a non-negative integer{limit} (got {value!r})")


def _check_coverage(coverage):
    """A probability strictly between 0 and 1 (the radius of 0 or 1 is 0 or infinite)."""
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float, np.floating)) \
            or not 0.0 < coverage < 1.0:
        raise UserError(f"coverage must be a probability between 0 and 1, exclusive "
                        f"(got {coverage!r})")


def _check_one_pose(pose, names):
    problem = missing_joint_problem(names)
    if problem:
        raise UserError(f"pose {pose}: {problem}")


def _project_config(load_dir):
    """Config with the checkpoint's architecture (config.json) and its recorded
    --miss_num, or None where config.json does not hold it."""
    saved = checkpoint_store.read_saved_config(load_dir)
    if saved is None:
        path = os.path.join(load_dir, checkpoint_store.CONFIG_FILE)
        raise UserError(f"{path} not found: it records the architecture the checkpoints in "
                        f"{load_dir} need")
    fields = {name: saved[name] for name in ARCHITECTURE_FIELDS if name in saved}
    miss_num = saved.get("miss_num")
    return Config(**fields, miss_num=miss_num or 0), miss_num

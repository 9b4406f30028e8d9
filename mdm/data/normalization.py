"""Per-dimension z-scoring of 2D inputs and 3D targets with training statistics
(docs/faithfulness.md §1 "Normalisation").

2D stays in pixels (not root-centred) before the z-score; 3D is root-centred in the
camera frame. Only the dimensions the model sees are normalised; un-normalising puts the
root back at 0 and, with predict_14, fills the joints not predicted with their training
mean, as the release's unNormalizeData did.
"""

import dataclasses

import numpy as np

from mdm.core import skeleton

# Dimensions with no spread (never in real data) keep a unit std instead of dividing by 0.
_MIN_STD = 1e-8


@dataclasses.dataclass(frozen=True)
class NormStats:
    mean_2d: np.ndarray  # (16, 2) pixels, skeleton.INPUT_JOINTS order
    std_2d: np.ndarray
    mean_3d: np.ndarray  # (17, 3) mm, root-centred
    std_3d: np.ndarray

    @classmethod
    def from_training(cls, poses_2d, poses_3d):
        """Population mean and std (numpy's default, as the release) in float64."""
        poses_2d = np.asarray(poses_2d, np.float64)
        poses_3d = np.asarray(poses_3d, np.float64)
        return cls(
            mean_2d=poses_2d.mean(axis=0), std_2d=poses_2d.std(axis=0),
            mean_3d=poses_3d.mean(axis=0), std_3d=poses_3d.std(axis=0),
        )

    def as_arrays(self):
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(**{field.name: np.asarray(arrays[field.name], np.float64)
                      for field in dataclasses.fields(cls)})

    def normalize_inputs(self, poses_2d):
        """(N, 16, 2) pixels -> (N, 32) float32 z-scores (joint-major x, y)."""
        z = (np.asarray(poses_2d, np.float64) - self.mean_2d) / safe_std(self.std_2d)
        return z.reshape(len(z), -1).astype(np.float32)

    def unnormalize_inputs(self, flat_2d):
        """(..., 32) z-scores -> (..., 16, 2) pixels."""
        z = np.asarray(flat_2d, np.float64).reshape(flat_2d.shape[:-1] + (-1, 2))
        return z * safe_std(self.std_2d) + self.mean_2d

    def normalize_targets(self, poses_3d, predict_14=False):
        """(N, 17, 3) root-centred mm -> (N, 3 * J_out) float32 z-scores."""
        joints = skeleton.output_joints(predict_14)
        z = (np.asarray(poses_3d, np.float64)[:, joints] - self.mean_3d[joints]) / safe_std(
            self.std_3d[joints])
        return z.reshape(len(z), -1).astype(np.float32)

    def unnormalize_targets(self, flat_3d, predict_14=False):
        """(..., 3 * J_out) z-scores -> (..., 17, 3) mm with the root at 0."""
        joints = skeleton.output_joints(predict_14)
        flat_3d = np.asarray(flat_3d, np.float64)
        z = flat_3d.reshape(flat_3d.shape[:-1] + (len(joints), 3))
        poses = np.broadcast_to(self.mean_3d, flat_3d.shape[:-1] + (skeleton.NUM_JOINTS, 3)).copy()
        poses[..., joints, :] = z * safe_std(self.std_3d[joints]) + self.mean_3d[joints]
        poses[..., skeleton.ROOT, :] = 0.0
        return poses


def safe_std(std):
    """The std used for dividing: dimensions without spread keep a unit std."""
    return np.where(std < _MIN_STD, 1.0, std)

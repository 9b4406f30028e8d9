"""The dataset containers every loader returns (Human3.6M and MPI-INF-3DHP alike): a
split is one PoseSet, a set of frame-aligned arrays whose rows belong to Streams (one
sequence seen by one camera)."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Stream:
    """One (sequence, camera) pair: every frame of it is one sample."""

    subject: int
    action: str
    sequence: str  # 3D file name without .h5, e.g. "Directions 1"
    camera: int  # 0..3, the order of cameras.h5


@dataclasses.dataclass
class PoseSet:
    """Frame-aligned arrays of one split, one row per (frame, camera)."""

    poses_2d: np.ndarray  # (N, 16, 2) float32 pixels, skeleton.INPUT_JOINTS order
    poses_3d: np.ndarray  # (N, 17, 3) float32 mm, root-centred, camera (or world) frame
    roots: np.ndarray  # (N, 3) float32 root position removed by the centring
    stream_index: np.ndarray  # (N,) int32 index into `streams`
    frame_index: np.ndarray  # (N,) int32 frame number within its stream
    streams: list

    def __len__(self):
        return len(self.poses_2d)

    def actions(self):
        """(N,) action name of every sample."""
        names = np.array([stream.action for stream in self.streams])
        return names[self.stream_index]

    def subset(self, mask):
        return dataclasses.replace(
            self,
            poses_2d=self.poses_2d[mask],
            poses_3d=self.poses_3d[mask],
            roots=self.roots[mask],
            stream_index=self.stream_index[mask],
            frame_index=self.frame_index[mask],
        )

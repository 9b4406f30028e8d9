"""Writes the synthetic Human3.6M (mdm.data.synthetic.generator) in the 3d-pose-baseline
layout of docs/faithfulness.md §1: cameras.h5, 3D positions and one detection file per
sequence and camera, for subjects 1, 5, 6, 7, 8, 9, 11 and all 15 actions."""

import os

import h5py
import numpy as np

from mdm.core.errors import UserError
from mdm.core.skeleton import ACTIONS
from mdm.data.cameras import save_cameras
from mdm.data.synthetic.generator import (
    DEFAULT_FRAMES_PER_SEQUENCE,
    SUBJECTS,
    check_output_directory,
    detect,
    generate_sequence,
    is_whole_number,
    make_body,
    make_cameras,
    sequence_names,
    to_h36m32,
)


def _check_arguments(out_dir, frames_per_sequence, seed, subjects):
    if not is_whole_number(frames_per_sequence) or frames_per_sequence < 1:
        raise UserError(f"frames_per_sequence must be a positive integer, got {frames_per_sequence!r}")
    if not is_whole_number(seed) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    unknown = sorted(set(subjects) - set(SUBJECTS))
    if unknown or not subjects:
        raise UserError(f"subjects must be among {SUBJECTS}, got {tuple(subjects)}")
    check_output_directory(out_dir)


def _write_subject(out_dir, subject, cameras, frames, seed):
    """All sequences of one subject: 3D positions and one SH file per camera."""
    body = make_body(np.random.default_rng([seed, subject, 1]), subject)
    pose_dir = os.path.join(out_dir, f"S{subject}", "MyPoses", "3D_positions")
    sh_dir = os.path.join(out_dir, f"S{subject}", "StackedHourglass")
    os.makedirs(pose_dir)
    os.makedirs(sh_dir)
    for a, action in enumerate(ACTIONS):
        for s, name in enumerate(sequence_names(subject, action)):
            # One random stream per sequence, so any subset of subjects reproduces the same data.
            rng = np.random.default_rng([seed, subject, 2, a, s])
            poses = generate_sequence(rng, body, action, frames)
            with h5py.File(os.path.join(pose_dir, name + ".h5"), "w") as handle:
                handle["3D_positions"] = to_h36m32(poses).reshape(frames, -1).T
            for camera in cameras:
                sh_name = f"{name.replace(' ', '_')}.{camera.name}.h5"
                with h5py.File(os.path.join(sh_dir, sh_name), "w") as handle:
                    handle["poses"] = detect(rng, poses, camera)


def write_synthetic_h36m(out_dir, frames_per_sequence=DEFAULT_FRAMES_PER_SEQUENCE, seed=0,
                         subjects=SUBJECTS):
    """Write the synthetic dataset into `out_dir` (new or empty) in the 3d-pose-baseline
    layout (docs/faithfulness.md §1) and return `out_dir`. Deterministic for a given seed."""
    _check_arguments(out_dir, frames_per_sequence, seed, subjects)
    try:
        os.makedirs(out_dir, exist_ok=True)
        cameras = {s: make_cameras(np.random.default_rng([seed, s, 0])) for s in subjects}
        save_cameras(os.path.join(out_dir, "cameras.h5"), cameras)
        for subject in subjects:
            _write_subject(out_dir, subject, cameras[subject], frames_per_sequence, seed)
    except OSError as err:
        raise UserError(f"cannot write the synthetic dataset to {out_dir}: {err}") from None
    return out_dir



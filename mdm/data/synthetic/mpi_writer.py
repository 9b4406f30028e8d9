"""A small synthetic MPI-INF-3DHP written in the raw layout of the public dataset (format
facts of the MPI-INF-3DHP issue, docs/faithfulness.md §8), from the same kinematic generator as
the synthetic Human3.6M (mdm.synthetic), so that preprocessing, training and the
cross-dataset evaluation run without the real data.

    python -m mdm.synthetic --format mpi_inf_3dhp --out DIR [--frames_per_sequence N]

Written, independently of the readers in mdm.data.mpi_inf_3dhp_raw:
  S<1..8>/Seq<1,2>/annot.mat            MATLAB v5; annot2 / annot3 / univ_annot3 are 14x1
                                        cell arrays, cell c = camera c, (n, 28*2) px or
                                        (n, 28*3) mm, joint-major; frames (n, 1);
                                        cameras (1, 14)
  S<1..8>/Seq<1,2>/camera.calibration.txt   header + 7 lines per camera
  mpi_inf_3dhp_test_set/TS<1..6>/annot_data.mat   MATLAB v7.3 (HDF5 with MATLAB's 512-byte
                                        header): annot2 (N,1,17,2), annot3 / univ_annot3
                                        (N,1,17,3), valid_frame and activity_annotation
                                        (N,1), as h5py shows them
"""

import dataclasses
import os

import h5py
import numpy as np
import scipy.io

from mdm.core.errors import UserError
from mdm.core.skeleton import ACTIONS, H36M17_NAMES, MPI17_NAMES, MPI28_NAMES
from mdm.data.mpi_inf_3dhp_raw import TEST_IMAGE_SIZES, TRAIN_IMAGE_SIZE
from mdm.data.synthetic import generator
from mdm.data.synthetic.generator import Body, generate_sequence, make_body, to_h36m32

NUM_CAMERAS = 14
DEFAULT_FRAMES = 160
INVALID_RATE = 0.1  # share of test frames marked invalid (valid_frame = 0)
NUM_ACTIVITIES = 7
# MATLAB's v7.3 files are HDF5 files behind a 512-byte header: 116 bytes of text, 8 bytes
# subsystem offset, version 0x0200 and the endian mark "IM". A fixed date keeps the files
# byte-identical across runs.
MAT73_TEXT = ("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 "
              "HDF5 schema 1.00 .")
USERBLOCK_BYTES = 512


@dataclasses.dataclass(frozen=True)
class PinholeCamera:
    """X_cam = R X_world + T (mm); pixel = K X_cam / z."""

    K: np.ndarray
    R: np.ndarray
    T: np.ndarray
    size: tuple


def mpi28_from_h36m17(poses):
    """(n, 17, 3) world poses (H36M17_NAMES, z up) -> (n, 28, 3) in MPI28_NAMES order.
    Joints both skeletons share are copied (MPI's neck is H36M's Thorax, head its
    Neck/Nose, head_top its Head, ankles its Feet); the others are placed in between or,
    for hands and feet, as the synthetic Human3.6M places them."""
    joint = {name: poses[:, index] for index, name in enumerate(H36M17_NAMES)}
    full = to_h36m32(poses)  # its hands: 22 left, 30 right; toe bases 4, 9; tips 5, 10

    def between(a, b, t):
        return joint[a] + t * (joint[b] - joint[a])

    mpi = {"pelvis": joint["Hip"], "spine": joint["Spine"],
           "spine2": between("Spine", "Thorax", 0.25), "spine3": between("Spine", "Thorax", 0.5),
           "spine4": between("Spine", "Thorax", 0.75), "neck": joint["Thorax"],
           "head": joint["Neck/Nose"], "head_top": joint["Head"]}
    for side, prefix, hand, foot, toe in (("left", "L", 22, 9, 10), ("right", "R", 30, 4, 5)):
        mpi.update({
            f"{side}_clavicle": between("Thorax", f"{prefix}Shoulder", 0.45),
            f"{side}_shoulder": joint[f"{prefix}Shoulder"],
            f"{side}_elbow": joint[f"{prefix}Elbow"],
            f"{side}_wrist": joint[f"{prefix}Wrist"], f"{side}_hand": full[:, hand],
            f"{side}_hip": joint[f"{prefix}Hip"], f"{side}_knee": joint[f"{prefix}Knee"],
            f"{side}_ankle": joint[f"{prefix}Foot"], f"{side}_foot": full[:, foot],
            f"{side}_toe": full[:, toe]})
    return np.stack([mpi[name] for name in MPI28_NAMES], axis=1)


def _look_at(centre, target):
    """World-to-camera rotation whose rows are the image right, down and viewing axes."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward])


def make_camera(rng, azimuth_deg, distance, height, size):
    """A camera `distance` mm from the volume's centre looking at the subject's hips."""
    angle = np.radians(azimuth_deg)
    centre = np.array([distance * np.cos(angle), distance * np.sin(angle), height])
    rotation = _look_at(centre, np.array([0.0, 0.0, 900.0]) + rng.normal(0.0, 50.0, 3))
    focal = 1500.0 + rng.normal(0.0, 10.0, 2)
    principal = np.array(size, float) / 2 + rng.normal(0.0, 8.0, 2)
    intrinsics = np.array([[focal[0], 0, principal[0]], [0, focal[1], principal[1]], [0, 0, 1]])
    return PinholeCamera(K=intrinsics, R=rotation, T=-rotation @ centre, size=tuple(size))


def make_studio_cameras(rng):
    """14 cameras on a ring 5-6 m from the centre; 11-13 high up, looking down."""
    return [make_camera(rng, 360.0 * c / NUM_CAMERAS + rng.normal(0.0, 4.0),
                        rng.uniform(5000.0, 6000.0),
                        rng.uniform(2800.0, 3200.0) if c >= 11 else rng.uniform(700.0, 2000.0),
                        TRAIN_IMAGE_SIZE) for c in range(NUM_CAMERAS)]


def to_camera(poses_world, camera):
    return poses_world @ camera.R.T + camera.T


def project(poses_camera, camera):
    pixels = poses_camera @ camera.K.T
    return pixels[..., :2] / pixels[..., 2:3]


def universal_scale(body):
    """Factor from `body` to the mean skeleton (the synthetic univ_annot3): MPI's
    univ_annot3 is the pose retargeted to a skeleton of standard height."""
    lengths = [(field.default, getattr(body, field.name)) for field in dataclasses.fields(Body)
               if field.name != "subject"]
    return sum(default for default, _ in lengths) / sum(own for _, own in lengths)


def _rescaled_about_pelvis(poses, names, scale):
    pelvis = poses[:, names.index("pelvis")][:, None]
    return pelvis + scale * (poses - pelvis)


def write_calibration(path, cameras):
    """camera.calibration.txt: a header, then name, sensor, size, animated, intrinsic
    (row-major 4x4), extrinsic (row-major 4x4 [R|T], mm) and radial per camera."""
    lines = ["Skeletool Camera Calibration File V1.0"]
    for index, camera in enumerate(cameras):
        intrinsic, extrinsic = np.eye(4), np.eye(4)
        intrinsic[:3, :3] = camera.K
        extrinsic[:3, :3], extrinsic[:3, 3] = camera.R, camera.T
        lines += [f"name          {index}", "  sensor      10 10",
                  f"  size        {camera.size[0]} {camera.size[1]}", "  animated    0",
                  "  intrinsic   " + " ".join(f"{v + 0.0:.9g}" for v in intrinsic.ravel()),
                  "  extrinsic   " + " ".join(f"{v + 0.0:.9g}" for v in extrinsic.ravel()),
                  "  radial      0"]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _cell_column(arrays):
    """A 14x1 MATLAB cell array (numpy object array) of per-camera (n, 28*d) matrices."""
    cells = np.empty((len(arrays), 1), dtype=object)
    for index, array in enumerate(arrays):
        cells[index, 0] = array.reshape(len(array), -1)
    return cells


def write_train_sequence(folder, poses_world, cameras, univ_scale):
    """annot.mat and camera.calibration.txt of one training sequence (28 joints)."""
    os.makedirs(folder)
    mpi = mpi28_from_h36m17(poses_world)
    annot3 = [to_camera(mpi, camera) for camera in cameras]
    variables = {
        "annot2": _cell_column([project(a3, cam) for a3, cam in zip(annot3, cameras)]),
        "annot3": _cell_column(annot3),
        "univ_annot3": _cell_column([_rescaled_about_pelvis(a3, MPI28_NAMES, univ_scale)
                                     for a3 in annot3]),
        "frames": np.arange(len(poses_world), dtype=np.float64)[:, None],
        "cameras": np.arange(len(cameras), dtype=np.float64)[None, :],
    }
    scipy.io.savemat(os.path.join(folder, "annot.mat"), variables, format="5")
    write_calibration(os.path.join(folder, "camera.calibration.txt"), cameras)


def mat73_header():
    """MATLAB's 512-byte userblock of a v7.3 MAT-file."""
    header = MAT73_TEXT.ljust(116).encode("ascii") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return header.ljust(USERBLOCK_BYTES, b"\x00")


def write_mat73(path, variables):
    """A MATLAB v7.3 MAT-file of double arrays. MATLAB stores arrays column-major, so a
    MATLAB a x b x c array is an HDF5 dataset that h5py shows as (c, b, a): we write the
    h5py view, e.g. annot2 (N, 1, 17, 2) for MATLAB's 2x17x1xN."""
    with h5py.File(path, "w", userblock_size=USERBLOCK_BYTES) as handle:
        for name, array in variables.items():
            dataset = handle.create_dataset(name, data=np.asarray(array, np.float64))
            dataset.attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(path, "r+b") as handle:
        handle.write(mat73_header())


def write_test_sequence(folder, poses_world, camera, univ_scale, rng):
    """annot_data.mat of one test sequence (17 joints, one camera)."""
    os.makedirs(folder)
    mpi28 = to_camera(mpi28_from_h36m17(poses_world), camera)
    annot3 = mpi28[:, [MPI28_NAMES.index(name) for name in MPI17_NAMES]]
    count = len(annot3)
    write_mat73(os.path.join(folder, "annot_data.mat"), {
        "annot2": project(annot3, camera)[:, None],
        "annot3": annot3[:, None],
        "univ_annot3": _rescaled_about_pelvis(annot3, MPI17_NAMES, univ_scale)[:, None],
        "valid_frame": (rng.random(count) >= INVALID_RATE).astype(np.float64)[:, None],
        "activity_annotation": rng.integers(1, NUM_ACTIVITIES + 1, count)[:, None],
    })


def _check_output(out_dir, frames):
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise UserError(f"frames_per_sequence must be a positive integer, got {frames!r}")
    generator.check_output_directory(out_dir)


def _write_train(out_dir, frames, seed, subjects):
    for subject in subjects:
        body = make_body(np.random.default_rng([seed, 100 + subject, 1]), subject)
        cameras = make_studio_cameras(np.random.default_rng([seed, 100 + subject, 0]))
        for sequence in (1, 2):
            rng = np.random.default_rng([seed, 100 + subject, 2, sequence])
            action = ACTIONS[rng.integers(len(ACTIONS))]
            write_train_sequence(os.path.join(out_dir, f"S{subject}", f"Seq{sequence}"),
                                 generate_sequence(rng, body, action, frames), cameras,
                                 universal_scale(body))


def _write_test(out_dir, frames, seed):
    for sequence, size in TEST_IMAGE_SIZES.items():
        rng = np.random.default_rng([seed, 200 + sequence])
        body = make_body(rng, 100 + sequence)
        outdoor = size != TRAIN_IMAGE_SIZE
        camera = make_camera(rng, rng.uniform(0.0, 360.0),
                             rng.uniform(6500.0, 7500.0) if outdoor else rng.uniform(5000, 6000),
                             rng.uniform(900.0, 1500.0), size)
        poses = generate_sequence(rng, body, ACTIONS[rng.integers(len(ACTIONS))], frames)
        write_test_sequence(os.path.join(out_dir, "mpi_inf_3dhp_test_set", f"TS{sequence}"),
                            poses, camera, universal_scale(body), rng)


def write_synthetic_mpi(out_dir, frames_per_sequence=DEFAULT_FRAMES, seed=0,
                        subjects=tuple(range(1, 9))):
    """Write the raw synthetic MPI-INF-3DHP into `out_dir` (new or empty); returns it.
    Training: `subjects` x 2 sequences x 14 cameras; test: TS1-TS6, one camera each;
    `frames_per_sequence` frames everywhere. Deterministic for a given seed."""
    _check_output(out_dir, frames_per_sequence)
    try:
        os.makedirs(out_dir, exist_ok=True)
        _write_train(out_dir, frames_per_sequence, seed, subjects)
        _write_test(out_dir, frames_per_sequence, seed)
    except OSError as err:
        raise UserError(f"cannot write the synthetic dataset to {out_dir}: {err}") from None
    return out_dir


def write_synthetic_npz(out_dir, frames_per_sequence=DEFAULT_FRAMES, seed=0, subsample=None):
    """The synthetic raw set in <out_dir>/raw, preprocessed into <out_dir>/npz: returns
    (train npz path, test npz path), for the notebook and tests."""
    from mdm.data import (  # the reader side, kept out of the writer's imports
        mpi_inf_3dhp_preprocess,
    )
    raw_dir = write_synthetic_mpi(os.path.join(out_dir, "raw"), frames_per_sequence, seed)
    npz_dir = os.path.join(out_dir, "npz")
    return tuple(mpi_inf_3dhp_preprocess.preprocess(raw_dir, npz_dir, mode, subsample)[0]
                 for mode in ("train", "test"))

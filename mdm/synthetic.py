"""Command line of the built-in synthetic datasets.

    python -m mdm.synthetic --out DIR [--frames_per_sequence N] [--seed S]
    python -m mdm.synthetic --format mpi_inf_3dhp --out DIR [--frames_per_sequence N]
    python -m mdm.synthetic --format detectors --out DIR [--frames_per_sequence N]

Human3.6M-like data in the 3d-pose-baseline layout (mdm.data.synthetic.h36m_writer), or
MPI-INF-3DHP-like data in that dataset's raw layout (mdm.data.synthetic.mpi_writer), both
from one kinematic generator (mdm.data.synthetic.generator), or one walk as 2D detectors
write it (mdm.serve.detector_examples).
"""

import argparse
import sys

from mdm.cli import exit_on_user_error

DESCRIPTION = """Write a synthetic dataset generated from a kinematic skeleton.
--format h36m (default): a Human3.6M-like set in the 3d-pose-baseline layout (cameras.h5,
S<n>/MyPoses/3D_positions/*.h5, S<n>/StackedHourglass/*.h5) for subjects 1, 5, 6, 7, 8, 9,
11 and all 15 actions, to train and test with predict_3dpose_mdm.py --data_dir DIR.
--format mpi_inf_3dhp: an MPI-INF-3DHP-like set in that dataset's raw layout (S1-S8 training
sequences of 14 cameras with annot.mat and camera.calibration.txt, test sequences TS1-TS6
with annot_data.mat), to convert with preprocessing.py.
--format detectors: one synthetic walk seen by a 1920x1080 camera, as COCO-17 results
(coco_walk.json) and OpenPose BODY_25 frames (openpose_walk/), with scores, to lift with
python -m mdm.infer --joint_order coco or openpose25."""


def parse_arguments(argv):
    from mdm.data.synthetic.generator import DEFAULT_FRAMES_PER_SEQUENCE
    parser = argparse.ArgumentParser(prog="python -m mdm.synthetic", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="new or empty output directory")
    parser.add_argument("--frames_per_sequence", type=int, default=DEFAULT_FRAMES_PER_SEQUENCE,
                        help="frames in every sequence (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=("h36m", "mpi_inf_3dhp", "detectors"),
                        default="h36m",
                        help="h36m (3d-pose-baseline layout, default), mpi_inf_3dhp "
                             "(the raw layout of MPI-INF-3DHP) or detectors (COCO and "
                             "OpenPose files of one walk)")
    return parser.parse_args(argv)


def write(args):
    """Write the dataset `args` describe and print what was written."""
    if args.format == "detectors":
        from mdm.serve import detector_examples
        detector_examples.write_examples(args.out, args.frames_per_sequence, args.seed)
        print(f"wrote {args.out}/coco_walk.json and {args.out}/openpose_walk/: "
              f"{args.frames_per_sequence} frames")
        return
    if args.format == "mpi_inf_3dhp":
        from mdm.data.synthetic import mpi_writer
        mpi_writer.write_synthetic_mpi(args.out, args.frames_per_sequence, args.seed)
        print(f"wrote synthetic MPI-INF-3DHP to {args.out}: S1-S8 x Seq1-2 x "
              f"{mpi_writer.NUM_CAMERAS} cameras and TS1-TS6, {args.frames_per_sequence} "
              "frames each")
        return
    from mdm.core.skeleton import ACTIONS, CAMERA_NAMES
    from mdm.data.synthetic import h36m_writer
    h36m_writer.write_synthetic_h36m(args.out, args.frames_per_sequence, args.seed)
    count = len(h36m_writer.SUBJECTS) * len(ACTIONS) * 2
    print(f"wrote {count} sequences x {args.frames_per_sequence} frames x "
          f"{len(CAMERA_NAMES)} cameras to {args.out}")


def main(argv=None):
    """Command line: write the synthetic dataset; returns the exit code."""
    args = parse_arguments(argv)
    return exit_on_user_error(lambda: write(args))


if __name__ == "__main__":
    sys.exit(main())

"""MPI-INF-3DHP raw dataset -> npz (imgname, center, scale, part, S), see
mdm/mpi_inf_3dhp_preprocess.py and docs/faithfulness.md §8.

  python preprocessing.py --dataset_path D --out_path data/mpi_inf_3dhp --mode train
  python preprocessing.py --dataset_path D --out_path data/mpi_inf_3dhp --mode test

This is the only module that reads these flags.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("dataset_path", None, "Folder holding S1..S8 (training set) and/or "
                        "mpi_inf_3dhp_test_set/TS1..TS6 (test set)")
    flags.DEFINE_string("out_path", "data/mpi_inf_3dhp", "Output folder (the npz is "
                        "mpi_inf_3dhp_<mode>.npz in it) or an output .npz file")
    flags.DEFINE_enum("mode", "train", ["train", "test"], "Which part of the dataset")
    flags.DEFINE_integer("subsample", None, "Keep every n-th frame (default: 10 in train "
                         "mode, 1 in test mode)")
    flags.DEFINE_list("subjects", ["1", "2", "3", "4", "5", "6", "7", "8"],
                      "Training subjects to read (train mode)")
    flags.DEFINE_list("cameras", ["0", "1", "2", "4", "5", "6", "7", "8"],
                      "Training cameras to read (train mode)")
    flags.DEFINE_boolean("extract_frames", False, "Also extract the kept training frames "
                         "from the videos (needs OpenCV)")
    flags.mark_flag_as_required("dataset_path")


def parse_flags(argv):
    from mdm.cli import parse_flags_or_exit
    return parse_flags_or_exit(FLAGS, argv)


def preprocess():
    from mdm.cli import int_list
    from mdm.data import mpi_inf_3dhp_preprocess
    path, count = mpi_inf_3dhp_preprocess.preprocess(
        FLAGS.dataset_path, FLAGS.out_path, FLAGS.mode, subsample=FLAGS.subsample,
        subjects=int_list(FLAGS.subjects, "subjects"),
        cameras=int_list(FLAGS.cameras, "cameras"), extract_frames=FLAGS.extract_frames)
    print(f"wrote {count} frames to {path}")


def main(argv):
    from mdm.cli import exit_on_user_error, quiet_tensorflow_logging
    if len(argv) > 1:
        sys.stderr.write(f"error: unexpected arguments {' '.join(argv[1:])}\n")
        return 2
    # No TensorFlow here, but the same quiet start-up as the other command lines.
    quiet_tensorflow_logging(FLAGS["verbosity"])
    return exit_on_user_error(preprocess, show_traceback=FLAGS.verbosity >= 1)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)

"""Train, test or sample the mixture density network (Li & Lee, CVPR 2019).

The flags keep the release's names and defaults (docs/faithfulness.md §6); this is the only
module that reads them. It builds one `mdm.core.config.Config` and passes it down.

  python predict_3dpose_mdm.py --data_dir D --train_dir T            # train (resumes)
  python predict_3dpose_mdm.py --test True --load N --load_dir T     # evaluate
  python predict_3dpose_mdm.py --sample True --load N --load_dir T   # draw figures
"""

import logging
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
RELEASE_DATA_DIR = "../data/h36m/"
SYNTHETIC_DATA_DIR = "data/synthetic"


def define_flags():
    # The release's flags, names and defaults (docs/faithfulness.md §6).
    flags.DEFINE_float("learning_rate", 1e-3, "Learning rate")
    flags.DEFINE_float("dropout", 0.5, "Dropout keep probability. 1 means no dropout")
    flags.DEFINE_integer("batch_size", 64, "Batch size to use during training")
    flags.DEFINE_integer("epochs", 200, "How many epochs we should train for")
    flags.DEFINE_boolean("camera_frame", True, "Convert 3d poses to camera coordinates")
    flags.DEFINE_boolean("max_norm", True, "Apply maxnorm constraint to the weights")
    flags.DEFINE_boolean("batch_norm", True, "Use batch_normalization")
    flags.DEFINE_boolean("predict_14", False, "predict 14 joints")
    flags.DEFINE_boolean("use_sh", True, "Use 2d pose predictions from StackedHourglass")
    flags.DEFINE_string("action", "All", "The action to train on. 'All' means all the actions")
    flags.DEFINE_integer("linear_size", 1024, "Size of each model layer.")
    flags.DEFINE_integer("num_layers", 2, "Number of residual blocks in the model.")
    flags.DEFINE_boolean("residual", True, "Whether to add a residual connection every 2 layers")
    flags.DEFINE_boolean("procrustes", False, "Apply procrustes analysis at test time")
    flags.DEFINE_boolean("evaluateActionWise", True, "Evaluate per action, averaged")
    flags.DEFINE_string("cameras_path", RELEASE_DATA_DIR + "cameras.h5", "cameras.h5")
    flags.DEFINE_string("data_dir", RELEASE_DATA_DIR, "Data directory (3d-pose-baseline layout)")
    flags.DEFINE_string("train_dir", "../experiments/test_git/", "Training directory.")
    flags.DEFINE_string("load_dir", "../Models/mdm_5_prior/", "Directory of the checkpoint.")
    flags.DEFINE_boolean("sample", False, "Draw the hypotheses of test frames")
    flags.DEFINE_boolean("test", False, "Evaluate a checkpoint")
    flags.DEFINE_boolean("use_cpu", False, "Whether to use the CPU")
    flags.DEFINE_integer("load", 0, "Global step of the checkpoint to load (0 = latest)")
    # The release's default was 1 but its corruption call was commented out, so it trained
    # without missing joints; 0 keeps that behaviour now that the flag works (docs/faithfulness.md §4).
    flags.DEFINE_integer("miss_num", 0, "Limb joints to drop per sample (0, 1 or 2)")
    flags.DEFINE_boolean("use_fp16", False, "Train with mixed precision (float16)")
    # Flags this reproduction adds.
    flags.DEFINE_integer("num_models", 5, "K, the number of Gaussian kernels / hypotheses")
    flags.DEFINE_boolean("dirichlet_prior", True, "Add the Dirichlet prior on the mixing weights")
    flags.DEFINE_integer("seed", 42, "Seed of initialisation, shuffling, dropout and miss_num")
    flags.DEFINE_string("sh_dir", "", "Detection folder under S<n>/ (default: "
                        "StackedHourglassFineTuned240 if present, else StackedHourglass)")
    flags.DEFINE_list("train_subjects", ["1", "5", "6", "7", "8"], "Training subjects")
    flags.DEFINE_list("test_subjects", ["9", "11"], "Test subjects")
    flags.DEFINE_string("cache_dir", "", "Where prepared data is cached (default train_dir/cache)")
    flags.DEFINE_integer("sample_figures", 20, "Figures per test sequence and camera in --sample")
    # XLA measured slower on the 2-core CPU (README, Performance), so it is off by default;
    # try --jit_compile on a GPU.
    flags.DEFINE_boolean("jit_compile", False, "Compile the train and inference steps with XLA")
    flags.DEFINE_integer("steps_per_execution", 1, "Training steps per compiled call: fewer "
                         "host round trips; callbacks and the progress bar see every n-th step")
    flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 bar, 2 line/epoch")
    flags.DEFINE_integer("max_to_keep", 5, "Checkpoints kept in train_dir (oldest deleted)")
    flags.DEFINE_enum("distribute", "", ["", "mirrored", "multi_worker"],
                      "tf.distribute: mirrored (this machine's GPUs) or multi_worker "
                      "(TF_CONFIG); --batch_size stays the global batch")
    # MPI-INF-3DHP (docs/faithfulness.md §8): mdm/data/mpi_inf_3dhp_npz.py and mdm/mpi_inf_3dhp_test.py.
    flags.DEFINE_enum("dataset", "h36m", ["h36m", "mpi_inf_3dhp"],
                      "Train and test on Human3.6M (data_dir) or on the MPI-INF-3DHP npz files")
    flags.DEFINE_string("mpi_train_npz", "", "MPI-INF-3DHP training npz "
                        "(python preprocessing.py --mode train)")
    flags.DEFINE_string("mpi_test_npz", "", "MPI-INF-3DHP test npz "
                        "(python preprocessing.py --mode test)")
    flags.DEFINE_enum("mpi_norm_stats", "both", ["checkpoint", "mpi", "both"],
                      "2D normalisation in the MPI-INF-3DHP test: the checkpoint's training "
                      "statistics, those of the MPI 2D input itself (the release), or both")


def parse_flags(argv):
    from mdm.cli import parse_flags_or_exit
    return parse_flags_or_exit(FLAGS, argv)


def _data_location():
    """The release's data_dir, or the built-in synthetic set when it is absent.

    Without --cameras_path the cameras are <data_dir>/cameras.h5, which is what the
    release's two defaults amount to."""
    data_dir = FLAGS.data_dir
    if FLAGS["data_dir"].using_default_value and not os.path.isdir(data_dir):
        data_dir = SYNTHETIC_DATA_DIR
    cameras_path = "" if FLAGS["cameras_path"].using_default_value else FLAGS.cameras_path
    return data_dir, cameras_path


def build_config():
    from mdm.cli import int_list
    from mdm.core.config import Config
    data_dir, cameras_path = _data_location()
    return Config(
        learning_rate=FLAGS.learning_rate, dropout=FLAGS.dropout, batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs, camera_frame=FLAGS.camera_frame, use_sh=FLAGS.use_sh,
        sh_dir=FLAGS.sh_dir, action=FLAGS.action, data_dir=data_dir, cameras_path=cameras_path,
        cache_dir=FLAGS.cache_dir,
        train_subjects=int_list(FLAGS.train_subjects, "train_subjects"),
        test_subjects=int_list(FLAGS.test_subjects, "test_subjects"),
        miss_num=FLAGS.miss_num, linear_size=FLAGS.linear_size, num_layers=FLAGS.num_layers,
        residual=FLAGS.residual, batch_norm=FLAGS.batch_norm, max_norm=FLAGS.max_norm,
        predict_14=FLAGS.predict_14, num_models=FLAGS.num_models,
        dirichlet_prior=FLAGS.dirichlet_prior, use_fp16=FLAGS.use_fp16,
        jit_compile=FLAGS.jit_compile, steps_per_execution=FLAGS.steps_per_execution,
        procrustes=FLAGS.procrustes,
        evaluate_action_wise=FLAGS.evaluateActionWise, train_dir=FLAGS.train_dir,
        load_dir=FLAGS.load_dir, load=FLAGS.load, test=FLAGS.test, sample=FLAGS.sample,
        sample_figures=FLAGS.sample_figures, use_cpu=FLAGS.use_cpu, seed=FLAGS.seed,
        verbose=FLAGS.verbose, max_to_keep=FLAGS.max_to_keep, distribute=FLAGS.distribute,
        dataset=FLAGS.dataset, mpi_train_npz=FLAGS.mpi_train_npz,
        mpi_test_npz=FLAGS.mpi_test_npz, mpi_norm_stats=FLAGS.mpi_norm_stats)


def setup_logging(train_dir, to_file):
    logger = logging.getLogger("mdm")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr)]
    if to_file:
        log_dir = os.path.join(train_dir, "log")
        os.makedirs(log_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(log_dir, "log.txt")))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def run(config):
    if config.use_cpu:
        import tensorflow as tf
        tf.config.set_visible_devices([], "GPU")
    from mdm.data.synthetic import h36m_writer
    from mdm.evaluate import modes
    from mdm.train import distribute
    from mdm.train import loop as training_loop
    logger = setup_logging(config.train_dir, distribute.writes_outputs(config.distribute))
    if (config.dataset == "h36m" and config.data_dir == SYNTHETIC_DATA_DIR
            and not os.path.isdir(SYNTHETIC_DATA_DIR)):
        logger.warning("no Human3.6M at %s: generating the built-in synthetic dataset in %s",
                       RELEASE_DATA_DIR, SYNTHETIC_DATA_DIR)
        # Written aside and renamed, so an interrupted run never leaves half a dataset.
        partial_dir = f"{SYNTHETIC_DATA_DIR}.partial-{os.getpid()}"
        h36m_writer.write_synthetic_h36m(partial_dir)
        os.replace(partial_dir, SYNTHETIC_DATA_DIR)
    if config.dataset == "h36m":
        logger.info("data: %s", os.path.abspath(config.data_dir))
    if config.test or config.sample:
        from mdm.checkpoint.loading import with_resolved_checkpoint
        config = with_resolved_checkpoint(config)
        if config.dataset == "mpi_inf_3dhp":
            from mdm.core.errors import UserError
            from mdm.evaluate import mpi_inf_3dhp_test
            if config.sample:
                raise UserError("--sample draws Human3.6M test sequences; use --dataset h36m")
            return mpi_inf_3dhp_test.run_cross_dataset_test(config)
        return modes.run_sample(config) if config.sample else modes.run_test(config)
    return training_loop.train(config)


def main(argv):
    from mdm.cli import exit_on_user_error
    if len(argv) > 1:
        sys.stderr.write(f"error: unexpected arguments {' '.join(argv[1:])}\n")
        return 2
    return exit_on_user_error(lambda: run(validated_config()),
                              show_traceback=FLAGS.verbosity >= 1)


def validated_config():
    config = build_config()
    config.validate()
    return config


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)

"""Train, test or sample the mixture density network (Li & Lee, CVPR 2019).

The flags keep the release's names and defaults (docs/faithfulness.md §6), except those
listed in docs/faithfulness.md §10; each is declared once, as a field of
`mdm.core.config.Config`. This is the only module that reads them: it builds one Config
and passes it down.

  python predict_3dpose_mdm.py --data_dir D --train_dir T            # train (resumes)
  python predict_3dpose_mdm.py --test True --load N --load_dir T     # evaluate
  python predict_3dpose_mdm.py --sample True --load N --load_dir T   # draw figures
"""

import dataclasses
import logging
import os
import sys

from absl import app, flags

from mdm import cli
from mdm.core.config import RELEASE_DATA_DIR, Config

FLAGS = flags.FLAGS


def define_flags():
    """The flags are the fields of Config, each declared once in mdm/core/config.py with
    the release's name, default and help (docs/faithfulness.md §6)."""
    for name in cli.define_config_flags(Config):
        flags.declare_key_flag(name)  # listed by --help as this script's own


def parse_flags(argv):
    return cli.parse_flags_or_exit(FLAGS, argv)


def build_config():
    """The Config of the parsed flags.

    A --data_dir left at the release's default falls back to the built-in synthetic set
    when that folder does not exist (docs/faithfulness.md §10)."""
    config = cli.config_from_flags(Config)
    if not FLAGS["data_dir"].present and not os.path.isdir(config.data_dir):
        config = dataclasses.replace(config, data_dir=Config.data_dir)
    return config


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
    synthetic_dir = Config.data_dir
    if (config.dataset == "h36m" and config.data_dir == synthetic_dir
            and not os.path.isdir(synthetic_dir)):
        logger.warning("no Human3.6M at %s: generating the built-in synthetic dataset in %s",
                       RELEASE_DATA_DIR, synthetic_dir)
        # Written aside and renamed, so an interrupted run never leaves half a dataset.
        partial_dir = f"{synthetic_dir}.partial-{os.getpid()}"
        h36m_writer.write_synthetic_h36m(partial_dir)
        os.replace(partial_dir, synthetic_dir)
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
    if len(argv) > 1:
        sys.stderr.write(f"error: unexpected arguments {' '.join(argv[1:])}\n")
        return 2
    return cli.exit_on_user_error(lambda: run(validated_config()),
                              show_traceback=FLAGS.verbosity >= 1)


def validated_config():
    config = build_config()
    config.validate()
    return config


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)

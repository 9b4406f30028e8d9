"""Train, test or sample the mixture density network (Li & Lee, CVPR 2019).

The flags keep the release's names and defaults (docs/faithfulness.md §6), except those
listed in docs/faithfulness.md §10; each is declared once, as a field of
`mdm.core.config.Config`. This is the only module that reads them: it builds one Config
and passes it down.

  python predict_3dpose_mdm.py --data_dir D --train_dir T            # train (resumes)
  python predict_3dpose_mdm.py --test True --load N --load_dir T     # evaluate
  python predict_3dpose_mdm.py --sample True --load N --load_dir T   # draw figures
"""

import contextlib
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
    when that folder does not exist (docs/faithfulness.md §10). A --verbose left at its
    default becomes one line per epoch when stdout is no terminal: Keras's progress bar
    would write an update per step into a log file."""
    config = cli.config_from_flags(Config)
    if not FLAGS["data_dir"].present and not os.path.isdir(config.data_dir):
        config = dataclasses.replace(config, data_dir=Config.data_dir)
    return dataclasses.replace(config, verbose=cli.progress_verbose(FLAGS["verbose"],
                                                                    sys.stdout))


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


def run(config, explicit=frozenset()):
    """Train, test or sample as `config` says; `explicit` names the fields the user gave
    as flags (only those may contradict a checkpoint's recorded architecture).

    A training holds train_dir's lock from the start, before its log file is opened, so
    a second training refused on a busy train_dir writes nothing there."""
    from mdm.train import run_lock
    trains = not (config.test or config.sample)
    with run_lock.training_lock(config) if trains else contextlib.nullcontext():
        return run_locked(config, explicit, locked=trains)


def run_locked(config, explicit, locked):
    """`run` once train_dir is this training's (`locked`) or not needed."""
    import tensorflow as tf
    from mdm.checkpoint import loading
    from mdm.data.synthetic import h36m_writer
    from mdm.evaluate import modes
    from mdm.train import distribute
    from mdm.train import loop as training_loop
    gpus = cli.select_devices(config.use_cpu, tf.config)
    logger = setup_logging(config.train_dir, distribute.writes_outputs(config.distribute))
    logger.info(cli.describe_devices(config.use_cpu, gpus))
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
        config = loading.with_resolved_checkpoint(config)
        config = loading.with_saved_architecture(config, explicit, config.load_dir)
        if config.dataset == "mpi_inf_3dhp":
            from mdm.core.errors import UserError
            from mdm.evaluate import mpi_inf_3dhp_test
            if config.sample:
                raise UserError("--sample draws Human3.6M test sequences; use --dataset h36m")
            return mpi_inf_3dhp_test.run_cross_dataset_test(config)
        return modes.run_sample(config) if config.sample else modes.run_test(config)
    # Resuming in train_dir, or starting from another --load_dir's checkpoint: the
    # architecture recorded there stands for the flags left at their defaults.
    config = loading.with_saved_architecture(config, explicit,
                                             loading.training_source_directory(config))
    return training_loop.train(config, locked_by_caller=locked)


def resume_hint(config):
    """What a Ctrl-C during training leaves and how to go on, for the one-line message."""
    if config.test or config.sample:
        return ""
    store = sys.modules.get("mdm.checkpoint.store")
    if store is None:  # interrupted before the run loaded anything
        return f"resume with: {cli.command_line()}"
    steps = store.available_steps(config.train_dir)
    kept = (f"the last checkpoint kept is "
            f"{os.path.join(config.train_dir, f'{store.PREFIX}-{steps[-1]}')}"
            if steps else f"no checkpoint in {config.train_dir} yet")
    return f"{kept}; resume with: {cli.command_line()}"


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"error: unexpected arguments {' '.join(argv[1:])}\n")
        return 2
    show_traceback = FLAGS.verbosity >= 1
    configs = []  # every flag is checked before TensorFlow loads
    status = cli.exit_on_user_error(lambda: configs.append(validated_config()),
                                    show_traceback=show_traceback)
    if status:
        return status
    config = configs[0]
    if cli.quiet_tensorflow_logging(FLAGS["verbosity"]):
        cli.import_tensorflow_quietly()
    return cli.exit_on_user_error(lambda: run(config, cli.explicit_fields(Config)),
                                  show_traceback=show_traceback,
                                  on_interrupt=lambda: resume_hint(config))


def validated_config():
    config = build_config()
    config.validate()
    return config


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)

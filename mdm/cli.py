"""Shared pieces of the absl command lines (predict_3dpose_mdm.py, preprocessing.py):
flags defined from the option fields of a config dataclass and read back into one, flag
parsing that answers a bad flag with one line, list flags of integers, and the one
error-exit wrapper."""

import os
import shlex
import sys
import types

from absl import flags
from absl import logging as absl_logging

from mdm.core import options, sigint
from mdm.core.errors import UserError

_BOOLEAN_WORDS = {"true": "true", "false": "false", "1": "true", "0": "false"}


def normalize_boolean_args(argv, flag_values):
    """Accept the release's `--test True` form: absl booleans take no separate value."""
    booleans = {name for name, flag in flag_values._flags().items() if flag.boolean}
    result, index = [], 0
    while index < len(argv):
        arg = argv[index]
        name = arg[2:] if arg.startswith("--") and "=" not in arg else None
        if (name in booleans and index + 1 < len(argv)
                and argv[index + 1].lower() in _BOOLEAN_WORDS):
            result.append(f"--{name}={_BOOLEAN_WORDS[argv[index + 1].lower()]}")
            index += 2
            continue
        result.append(arg)
        index += 1
    return result


def parse_flags_or_exit(flag_values, argv):
    """absl's parse (with `--flag True` accepted); a bad flag is one line and exit 2."""
    try:
        return flag_values(normalize_boolean_args(argv, flag_values))
    except flags.Error as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)


def define_config_flags(config_class, flag_values=flags.FLAGS):
    """One absl flag per option field of `config_class` (mdm.core.options): its flag name,
    default and help text, the help ending with the valid range. Returns the flag names
    (for absl's flags.declare_key_flag, which lists them in the caller's --help)."""
    names = []
    for field in options.option_fields(config_class):
        spec = options.spec_of(field)
        name, default = options.flag_name(field), options.flag_default(field)
        shown_range = spec.range_text() if field.type is not str else ""  # enums show theirs
        help_text = spec.help + (f" [{shown_range}]" if shown_range else "")
        keywords = {"flag_values": flag_values}
        if field.type is str and spec.choices:
            flags.DEFINE_enum(name, default, list(spec.choices), help_text, **keywords)
        elif field.type is tuple:
            flags.DEFINE_list(name, [str(value) for value in default], help_text, **keywords)
        else:
            define = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                      float: flags.DEFINE_float, str: flags.DEFINE_string}[field.type]
            define(name, default, help_text, **keywords)
        names.append(name)
    return names


def config_from_flags(config_class, flag_values=flags.FLAGS):
    """A `config_class` holding the parsed value of every flag of `define_config_flags`."""
    values = {}
    for field in options.option_fields(config_class):
        name = options.flag_name(field)
        value = flag_values[name].value
        values[field.name] = int_list(value, name) if field.type is tuple else value
    return config_class(**values)


def explicit_fields(config_class, flag_values=flags.FLAGS):
    """Names of the fields whose flag the user gave on the command line."""
    return {field.name for field in options.option_fields(config_class)
            if flag_values[options.flag_name(field)].present}


def progress_verbose(verbose_flag, stdout):
    """Keras's `verbose`: as given, or for a flag left at its default, the progress bar (1)
    on a terminal and one line per epoch (2) otherwise, where a bar would write an update
    per step into a log file."""
    if verbose_flag.present:
        return verbose_flag.value
    return 1 if stdout.isatty() else 2


def int_list(values, flag):
    """The integers of a list flag, or a UserError naming the flag."""
    try:
        return tuple(int(value) for value in values)
    except ValueError:
        raise UserError(f"--{flag} takes integers, e.g. 1,5,6 (got {','.join(values)})") \
            from None


def quiet_tensorflow_logging(verbosity_flag):
    """Before TensorFlow is imported: hide its C++ start-up logging (CUDA probing, CPU
    features) with TF_CPP_MIN_LOG_LEVEL=3, and absl's INFO/WARNING lines (TensorFlow's
    deprecation notes), so that a user sees the project's own log and its errors.

    `--verbosity 1` or more keeps everything; a TF_CPP_MIN_LOG_LEVEL the user set, and a
    --verbosity given explicitly, are respected. Returns whether the C++ side is quieted."""
    if verbosity_flag.value >= 1:
        return False
    if not verbosity_flag.present:
        absl_logging.set_verbosity(absl_logging.ERROR)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return True


def import_tensorflow_quietly():
    """Import TensorFlow with the process's stderr (file descriptor 2) muted meanwhile.

    Its CUDA plugins write their start-up complaints ("Unable to register cuDNN factory",
    tensorflow/tensorflow#62075) from C++ before any log level applies. An import that
    fails still raises, and its message is shown once stderr is back."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def select_devices(use_cpu, tf_config):
    """The GPUs this run computes on: none for --use_cpu (hidden from TensorFlow, which
    must not have initialised its devices yet), else every GPU TensorFlow finds.
    `tf_config` is `tf.config` (a stand-in in tests)."""
    gpus = tf_config.list_physical_devices("GPU")
    if use_cpu and gpus:
        tf_config.set_visible_devices([], "GPU")
        return []
    return gpus


def describe_devices(use_cpu, gpus):
    """The log line that says where the run computes."""
    if gpus:
        return f"devices: {len(gpus)} GPU(s): {', '.join(gpu.name for gpu in gpus)}"
    return "devices: CPU only" + (" (--use_cpu)" if use_cpu else " (no GPU found)")


def command_line():
    """The command this process was started with, to be pasted back into a shell."""
    return shlex.join(["python", *sys.argv])


def exit_on_user_error(run, show_traceback=False, on_interrupt=None):
    """Run `run()` and return the exit status for the command line.

    0 when it returns; 1 with one line on stderr for a UserError or an OSError (the
    traceback instead when `show_traceback`); 130 on Ctrl-C, with one line that
    `on_interrupt()` may complete (e.g. which checkpoint was kept).
    """
    ctrl_c = types.SimpleNamespace(pressed=False)
    with sigint.sigint_wrapped(_remembering(ctrl_c)):
        try:
            run()
        except UserError as err:
            if show_traceback:
                raise
            return _fail(str(err), 1)
        except KeyboardInterrupt:
            if show_traceback:
                raise
            return _interrupted(on_interrupt)
        except Exception as err:  # pylint: disable=broad-except
            if show_traceback:
                raise
            # Ctrl-C raises KeyboardInterrupt wherever Python next runs, also inside Python
            # called back from TensorFlow's C++, which may then fail in its own way (seen:
            # "SystemError: ... bad argument to internal function"). After a Ctrl-C,
            # whatever escapes is the interrupt.
            if ctrl_c.pressed:
                return _interrupted(on_interrupt)
            if isinstance(err, OSError):
                return _fail(f"{err.strerror or err}: {err.filename or ''}", 1)
            raise
    return 0


def _remembering(ctrl_c):
    """A SIGINT wrapper (mdm.core.sigint) that sets `ctrl_c.pressed`, then does what the
    handler in place does (Python's own raises KeyboardInterrupt)."""
    def wrap(previous):
        def remember_and_pass_on(signum, frame):
            ctrl_c.pressed = True
            previous(signum, frame)
        return remember_and_pass_on
    return wrap


def _interrupted(on_interrupt):
    detail = on_interrupt() if on_interrupt else ""
    return _fail("interrupted" + (f"; {detail}" if detail else ""), 130)


def _fail(message, status):
    """Each line of `message` as its own `error:` line on stderr."""
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"error: {line}\n")
    return status

"""Shared pieces of the absl command lines (predict_3dpose_mdm.py, preprocessing.py):
flag parsing that answers a bad flag with one line, and list flags of integers."""

import sys

from absl import flags

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


def int_list(values, flag):
    """The integers of a list flag, or a UserError naming the flag."""
    try:
        return tuple(int(value) for value in values)
    except ValueError:
        raise UserError(f"--{flag} takes integers, e.g. 1,5,6 (got {','.join(values)})") \
            from None


def exit_on_user_error(run, show_traceback=False, on_interrupt=None):
    """Run `run()` and return the exit status for the command line.

    0 when it returns; 1 with one line on stderr for a UserError or an OSError (the
    traceback instead when `show_traceback`); 130 on Ctrl-C, with one line that
    `on_interrupt()` may complete (e.g. which checkpoint was kept).
    """
    try:
        run()
    except UserError as err:
        if show_traceback:
            raise
        return _fail(str(err), 1)
    except OSError as err:
        if show_traceback:
            raise
        return _fail(f"{err.strerror or err}: {err.filename or ''}", 1)
    except KeyboardInterrupt:
        if show_traceback:
            raise
        detail = on_interrupt() if on_interrupt else ""
        return _fail("interrupted" + (f"; {detail}" if detail else ""), 130)
    return 0


def _fail(message, status):
    sys.stderr.write(f"error: {message}\n")
    return status

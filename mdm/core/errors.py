"""The one exception type for mistakes a user can make (bad data, flags, files), and the
one way an error is shortened to a line.

The command-line entry points catch it and print its message as a single line with a
non-zero exit status instead of a traceback (mdm.cli.exit_on_user_error).
"""


class UserError(Exception):
    """An error caused by the user's input; its message is meant to be shown verbatim."""


def first_line(err):
    """The first line of an exception's message, or its type name when it has none."""
    message = str(err).strip()
    return message.splitlines()[0] if message else type(err).__name__

"""The one exception type for mistakes a user can make (bad data, flags, files).

The command-line entry points catch it and print its message as a single line with a
non-zero exit status instead of a traceback.
"""


class UserError(Exception):
    """An error caused by the user's input; its message is meant to be shown verbatim."""

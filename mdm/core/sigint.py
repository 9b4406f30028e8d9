"""Taking over Ctrl-C (SIGINT) for a while, the one way the command lines
(mdm.cli.exit_on_user_error) and training (mdm.train.interruption) do it."""

import contextlib
import signal
import threading


@contextlib.contextmanager
def sigint_wrapped(wrap):
    """While inside, SIGINT goes to `wrap(previous)`, a handler built around the one in
    place; that one is back on leaving.

    Installed only in the main thread (the only one that may set handlers) and only where
    a Python handler is in place: an ignored SIGINT (`command &`) stays ignored.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return
    signal.signal(signal.SIGINT, wrap(previous))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

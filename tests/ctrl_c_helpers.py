"""Real Ctrl-C presses inside the test process."""

import contextlib
import os
import signal
import time


@contextlib.contextmanager
def sigint_handled_by(handler):
    """SIGINT handled by `handler` inside (signal.default_int_handler: as in a terminal's
    foreground process, whatever pytest or xdist set), restored after."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def press_ctrl_c():
    """SIGINT to this process; Python runs its handler before this returns."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)

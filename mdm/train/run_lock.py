"""One training at a time per train_dir: an exclusive OS lock held for the whole run.

Two trainings writing one train_dir would overwrite each other's same-named checkpoints
and interleave one log. The lock is `fcntl.flock` on `train_dir/train.lock`: the kernel
releases it when the holding process ends in any way (SIGKILL, a crash, a power cut), so
no stale lock can block the next run and nothing needs cleaning up. The file itself stays
(unlinking it would let a third process lock a new file while the second still waits on
the old one); it holds the holder's pid while the lock is held, only for the message.
"""

import contextlib
import fcntl
import os
import time

from mdm.core.errors import UserError
from mdm.train import distribute

LOCK_FILE = "train.lock"
# The holder writes its pid just after locking: a second run that lands in between waits
# up to this long to name it.
_PID_WAIT_SECONDS = 1.0


def training_lock(config):
    """The lock a training holds for its whole run: train_dir's, except in the non-chief
    tasks of --distribute multi_worker, which share the chief's train_dir."""
    if not distribute.writes_outputs(config.distribute):
        return contextlib.nullcontext()
    return exclusive_train_dir(config.train_dir)


@contextlib.contextmanager
def exclusive_train_dir(train_dir):
    """Hold train_dir's lock for the `with` block, or raise a UserError naming the pid of
    the process that holds it. Creates train_dir if needed; writes nothing else there."""
    path = os.path.join(train_dir, LOCK_FILE)
    if os.path.exists(train_dir) and not os.path.isdir(train_dir):
        raise UserError(f"cannot lock {train_dir}: it is not a directory")
    try:
        os.makedirs(train_dir, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise UserError(f"cannot lock {train_dir}: {err.strerror or err}: "
                        f"{err.filename or path}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{train_dir} is in use by another training (pid "
                            f"{_holder_pid(descriptor)}); wait for it to end, stop it, or "
                            "give another --train_dir") from None
        _write_pid(descriptor, f"{os.getpid()}\n")
        try:
            yield path
        finally:
            _write_pid(descriptor, "")  # the pid of a finished run would only mislead
    finally:
        os.close(descriptor)  # releases the lock


def _write_pid(descriptor, text):
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text.encode(), 0)


def _holder_pid(descriptor):
    """The pid the holder wrote, or "unknown" if it wrote none in time."""
    deadline = time.monotonic() + _PID_WAIT_SECONDS
    while True:
        text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.05)

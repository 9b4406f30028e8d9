"""One training per train_dir: the lock refuses a second holder with its pid, is released
on exit and by a SIGKILL, and a second real training on a busy train_dir stops at once."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from cli_helpers import error_line, finish_cli, start_cli

from mdm.checkpoint import store as checkpoint_store
from mdm.core.errors import UserError
from mdm.train import run_lock

HOLD_UNTIL_KILLED = textwrap.dedent("""
    import sys, time
    from mdm.train import run_lock
    with run_lock.exclusive_train_dir(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(600)
""")


def test_second_holder_is_refused_with_the_pid_then_released(tmp_path):
    train_dir = str(tmp_path / "t")
    with run_lock.exclusive_train_dir(train_dir) as path:
        assert open(path).read() == f"{os.getpid()}\n"
        # flock locks belong to an open file, so a second open in this process conflicts
        # just as another process would.
        with pytest.raises(UserError, match=rf"{train_dir} is in use by another training "
                                            rf"\(pid {os.getpid()}\)"):
            with run_lock.exclusive_train_dir(train_dir):
                pass
    assert os.listdir(train_dir) == [run_lock.LOCK_FILE]
    assert open(path).read() == ""
    with run_lock.exclusive_train_dir(train_dir):  # free again
        pass


def test_unusable_train_dir_is_one_error(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(UserError, match="cannot lock .*file: it is not a directory"):
        with run_lock.exclusive_train_dir(str(tmp_path / "file")):
            pass
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.slow
def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path):
    train_dir = str(tmp_path / "t")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_KILLED, train_dir],
                              stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"\(pid {holder.pid}\)"):
            with run_lock.exclusive_train_dir(train_dir):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert holder.returncode == -signal.SIGKILL
    with run_lock.exclusive_train_dir(train_dir) as path:
        assert open(path).read() == f"{os.getpid()}\n"


def _wait_for_a_checkpoint(process, train_dir, timeout=300):
    """Until `process` has saved its first checkpoint in train_dir (so it is training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, finish_cli(process).stderr
        if checkpoint_store.available_steps(train_dir):
            return
        time.sleep(0.5)
    raise AssertionError(f"pid {process.pid} saved no checkpoint in {timeout} s")


def _finish_or_kill(process, timeout):
    try:
        return finish_cli(process, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"the second training still ran after {timeout} s") from None


@pytest.mark.slow
def test_second_training_on_a_busy_train_dir_stops_and_writes_nothing(synthetic_h36m,
                                                                       tmp_path):
    """A real training holds train_dir (it would run for hours); the same command started
    again exits 1 naming its pid, without a checkpoint, summary or config of its own."""
    train_dir = str(tmp_path / "t")
    args = ("--data_dir", synthetic_h36m(8, 5), "--train_dir", train_dir, "--action",
            "Walking", "--epochs", "100000", "--linear_size", "24", "--num_layers", "1",
            "--batch_size", "32", "--verbose", "0")
    first = start_cli(*args)
    try:
        _wait_for_a_checkpoint(first, train_dir)
        assert open(os.path.join(train_dir, run_lock.LOCK_FILE)).read() == f"{first.pid}\n"
        second = _finish_or_kill(start_cli(*args), timeout=240)
        assert second.returncode == 1
        assert error_line(second) == (f"error: {train_dir} is in use by another training "
                                      f"(pid {first.pid}); wait for it to end, stop it, or "
                                      "give another --train_dir")
        assert "training on" not in second.stderr and "resuming" not in second.stderr
        assert first.poll() is None  # the first run goes on
        assert len(os.listdir(os.path.join(train_dir, "summary"))) == 1  # the first's events
        with open(os.path.join(train_dir, "log", "log.txt")) as log:
            assert log.read().count("data: ") == 1  # nothing of the second run in the log
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    with run_lock.exclusive_train_dir(train_dir):  # the killed run left no stale lock
        pass

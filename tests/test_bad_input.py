"""The rest of the bad-input matrix (the README's "Reliability" table): every case ends
with one `error:` line and a non-zero exit, and never harms an existing checkpoint."""

import glob

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import error_line, run_cli

from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.train import loop as training_loop

pytestmark = pytest.mark.slow  # every test here runs the command line in a subprocess

TINY = ["--linear_size", "16", "--num_layers", "1", "--batch_size", "32", "--verbose", "0",
        "--action", "Walking", "--epochs", "1"]


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 2)


def test_empty_data_dir(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(run_cli("--data_dir", str(empty), "--train_dir", str(tmp_path / "t")))
    assert "cameras file not found" in line and "3d-pose-baseline" in line


def test_batch_larger_than_the_training_set(data_dir, tmp_path):
    # Walking at 8 frames per sequence is 320 training samples.
    line = error_line(run_cli("--data_dir", data_dir, "--train_dir", str(tmp_path / "t"),
                              *TINY, "--batch_size", "1000"))
    assert line == ("error: 320 training samples are fewer than one batch of 1000; "
                    "lower --batch_size")


def test_train_dir_not_writable(data_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    line = error_line(run_cli("--data_dir", data_dir, "--train_dir", str(blocker / "run"),
                              *TINY))
    assert str(blocker) in line


def test_truncated_checkpoint_in_test_mode(data_dir, tiny_trained_dir, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(tiny_trained_dir, broken)
    step = checkpoint_store.available_steps(str(broken))[-1]
    data_file = glob.glob(str(broken / f"checkpoint-{step}.data-*"))[0]
    with open(data_file, "r+b") as handle:
        handle.truncate(100)
    line = error_line(run_cli("--data_dir", data_dir, "--test", "True", "--load", str(step),
                              "--load_dir", str(broken), "--train_dir", str(broken), *TINY))
    assert f"checkpoint-{step}" in line


def test_full_disk_while_saving_keeps_previous_checkpoint(data_dir, tiny_trained_dir, tmp_path,
                                                          monkeypatch):
    import shutil
    train_dir = tmp_path / "full"
    shutil.copytree(tiny_trained_dir, train_dir)
    good = checkpoint_store.available_steps(str(train_dir))
    reader = tf.train.load_checkpoint(str(train_dir / f"checkpoint-{good[-1]}"))
    before = reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")

    def disk_full(self, prefix, options=None):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", disk_full)
    config = Config(data_dir=data_dir, train_dir=str(train_dir), linear_size=16, num_layers=1,
                    batch_size=32, epochs=2, verbose=0, action="Walking", jit_compile=False)
    with pytest.raises(UserError, match="No space left on device"):
        training_loop.train(config)
    monkeypatch.undo()
    assert checkpoint_store.available_steps(str(train_dir)) == good
    reader = tf.train.load_checkpoint(str(train_dir / f"checkpoint-{good[-1]}"))
    np.testing.assert_array_equal(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"), before)


def test_verbosity_shows_the_traceback(tmp_path):
    result = run_cli("--data_dir", str(tmp_path / "nowhere"), "--train_dir",
                     str(tmp_path / "t"), "--verbosity", "1")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UserError" in result.stderr

"""Shared test setup: quiet TensorFlow and locate the optional real-data excerpt."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic_h36m(tmp_path_factory):
    """make(frames_per_sequence, seed) -> a synthetic dataset directory, written once."""
    from mdm.data.synthetic import h36m_writer

    made = {}

    def make(frames_per_sequence, seed):
        key = (frames_per_sequence, seed)
        if key not in made:
            out = tmp_path_factory.mktemp(f"synthetic_{frames_per_sequence}_{seed}")
            made[key] = h36m_writer.write_synthetic_h36m(str(out), frames_per_sequence, seed)
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_trained_dir(synthetic_h36m, tmp_path_factory):
    """A tiny model (16 units, 1 block) trained for one epoch on Walking of the 8-frame
    synthetic set (seed 2), with config.json: the command-line tests' checkpoint. Tests
    that damage it work on a copy."""
    from mdm.core.config import Config
    from mdm.train import loop as training_loop

    train_dir = str(tmp_path_factory.mktemp("tiny_trained"))
    training_loop.train(Config(data_dir=synthetic_h36m(8, 2), train_dir=train_dir,
                               linear_size=16, num_layers=1, batch_size=32, epochs=1,
                               verbose=0, action="Walking", jit_compile=False))
    return train_dir


@pytest.fixture(scope="session")
def h36m_sample_dir():
    """The real Human3.6M excerpt in shared/data/h36m_sample beside the repository, or skip."""
    path = SHARED_DATA / "h36m_sample"
    if not (path / "cameras.h5").is_file():
        pytest.skip(f"real Human3.6M excerpt not found at {path}")
    return path


@pytest.fixture(scope="module")
def lifter_dir(tmp_path_factory):
    """A tiny random checkpoint (tests/lifter_helpers.py) for the serving tests; a module
    may define its own."""
    from lifter_helpers import save_tiny_lifter

    return save_tiny_lifter(str(tmp_path_factory.mktemp("checkpoint")))


@pytest.fixture(scope="module")
def lifter(lifter_dir):
    from mdm.serve.lifter import Lifter

    return Lifter.load(lifter_dir)

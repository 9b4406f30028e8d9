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
def h36m_sample_dir():
    """The real Human3.6M excerpt in shared/data/h36m_sample beside the repository, or skip."""
    path = SHARED_DATA / "h36m_sample"
    if not (path / "cameras.h5").is_file():
        pytest.skip(f"real Human3.6M excerpt not found at {path}")
    return path

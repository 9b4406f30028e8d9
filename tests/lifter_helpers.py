"""A tiny random checkpoint for the serving tests (mdm.infer, detector inputs)."""

import numpy as np

from mdm.core.config import Config
from mdm.data.normalization import NormStats
from mdm.model.network import build_model
from mdm.serve import keypoint_files
from mdm.serve.lifter import Lifter


def save_tiny_lifter(directory):
    """A 32-unit model with random weights as checkpoint-5 of `directory`, its statistics
    those of Human3.6M-like pixels around the example pose."""
    rng = np.random.default_rng(4)
    example = keypoint_files.synthetic_example()
    poses_3d = rng.normal(0.0, 250.0, (17, 3)) + rng.normal(0.0, 60.0, (100, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(example + rng.normal(0.0, 30.0, (100, 16, 2)), poses_3d)
    config = Config(linear_size=32, num_layers=1)
    Lifter(build_model(config, 48), stats, config).save(directory, 5)
    return directory

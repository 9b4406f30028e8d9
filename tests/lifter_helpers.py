"""A tiny untrained checkpoint with random statistics, as the serving tests use it."""

import numpy as np

from mdm.core.config import Config
from mdm.data.normalization import NormStats
from mdm.model.network import build_model
from mdm.serve.lifter import Lifter


def save_random_lifter(directory, seed, step, num_models=3):
    """Write a 32-unit, 1-block, K = `num_models` model with statistics of random poses
    (root at 0) as checkpoint-`step` in `directory`; returns `directory`."""
    rng = np.random.default_rng(seed)
    poses_3d = rng.normal(0.0, 250.0, (17, 3)) + rng.normal(0.0, 60.0, (100, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(rng.uniform(300, 700, (16, 2)) +
                                    rng.normal(0.0, 30.0, (100, 16, 2)), poses_3d)
    config = Config(linear_size=32, num_layers=1, num_models=num_models)
    Lifter(build_model(config, 48), stats, config).save(directory, step)
    return directory

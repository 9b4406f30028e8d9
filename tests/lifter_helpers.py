"""Tiny untrained checkpoints with random statistics, as the serving tests use them
(mdm.infer, detector inputs, recalibrated serving)."""

import numpy as np

from mdm.core.config import Config
from mdm.data.normalization import NormStats
from mdm.model.network import build_model
from mdm.serve import keypoint_files
from mdm.serve.lifter import Lifter


def _save(directory, rng, centre_2d, step, num_models):
    """A 32-unit, 1-block model as checkpoint-`step` of `directory`, with the statistics
    of random root-centred poses and of 2D poses around `centre_2d(rng)` (16, 2) pixels."""
    poses_3d = rng.normal(0.0, 250.0, (17, 3)) + rng.normal(0.0, 60.0, (100, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(centre_2d(rng) + rng.normal(0.0, 30.0, (100, 16, 2)),
                                    poses_3d)
    config = Config(linear_size=32, num_layers=1, num_models=num_models)
    Lifter(build_model(config, 48), stats, config).save(directory, step)
    return directory


def save_tiny_lifter(directory):
    """K = 5, checkpoint-5, its 2D statistics around the example pose."""
    rng = np.random.default_rng(4)
    return _save(directory, rng, lambda _: keypoint_files.synthetic_example(), 5, 5)


def save_random_lifter(directory, seed, step, num_models=3):
    """K = `num_models`, checkpoint-`step`, its 2D statistics around random pixels."""
    rng = np.random.default_rng(seed)
    return _save(directory, rng, lambda r: r.uniform(300, 700, (16, 2)), step, num_models)

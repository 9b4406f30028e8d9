"""The cross-fit's kernel check (mdm/evaluate/kernel_spread.py): the per-rank median std
against a frame-by-frame numpy computation, the mismatch rule, and `mdm.calibrate`'s
comparison of a checkpoint with a fold model of another run on the fold's frames."""

import statistics

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mdm.evaluate import kernel_spread


def numpy_spread_by_rank(sigmas_mm):
    """Frame by frame: each kernel's mean std, sorted; then the median of each rank."""
    ranked = [sorted(float(np.mean(kernel)) for kernel in frame) for frame in sigmas_mm]
    return np.array([statistics.median(frame[rank] for frame in ranked)
                     for rank in range(len(ranked[0]))])


def _sigmas(rng, frames=101, kernels=5, broad=1.0):
    """(N, K, 16, 3) stds in mm whose kernel 2 is `broad` times wider than the others."""
    sigmas = rng.uniform(20.0, 60.0, (frames, kernels, 16, 3))
    sigmas[:, 2] *= broad
    return sigmas


def test_spread_by_rank_equals_numpy():
    sigmas = _sigmas(np.random.default_rng(0), frames=100, broad=4.0)
    assert_allclose(kernel_spread.spread_by_rank(sigmas), numpy_spread_by_rank(sigmas),
                    rtol=1e-12)
    assert_allclose(kernel_spread.spread_by_rank(sigmas)[-1],
                    statistics.median(float(np.mean(frame[2])) for frame in sigmas),
                    rtol=1e-12)  # the broad kernel ranks last in every frame


@pytest.mark.parametrize("broad, mismatch", [(1.0, False), (1.3, False), (2.0, True),
                                             (0.4, True)])
def test_a_rank_wider_or_narrower_than_the_limit_is_a_mismatch(broad, mismatch):
    rng = np.random.default_rng(1)
    fold = _sigmas(rng)
    checkpoint = fold.copy()
    checkpoint[:, 2] *= broad
    comparison = kernel_spread.compare(checkpoint, fold)
    assert_allclose(comparison["ratio"], numpy_spread_by_rank(checkpoint)
                    / numpy_spread_by_rank(fold), rtol=1e-12)
    assert comparison["mismatch"] is mismatch
    line = kernel_spread.describe(comparison, "exp/no8", (8,))
    assert ("WARNING" in line) is mismatch and "exp/no8" in line and "[8]" in line


def test_calibrate_compares_the_checkpoint_with_a_fold_of_another_run(
        synthetic_h36m, tiny_trained_dir, tmp_path):
    """A fold model of another run (random weights) against the trained checkpoint, on
    the fold's held-out frames: both medians as numpy computes them from each model's own
    predictions; the checkpoint as its own fold is not compared."""
    from lifter_helpers import save_random_lifter
    from mdm.core.config import Config
    from mdm.evaluate import recalibration_run

    data_dir = synthetic_h36m(8, 2)
    other = save_random_lifter(str(tmp_path / "other"), seed=3, step=4, num_models=5)
    loaded = recalibration_run.load_checkpoint(Config(data_dir=data_dir,
                                                      load_dir=tiny_trained_dir))
    config = loaded[0]
    fold = recalibration_run.Fold(other, (9,))
    fold_kernels = recalibration_run.held_out_kernels(config, fold, 2, str(tmp_path / "a"),
                                                      loaded)[:4]
    said = []
    [spread] = recalibration_run.compare_kernel_spreads(
        config, loaded, [fold], [fold_kernels], 2, str(tmp_path / "a"), said.append)
    own = recalibration_run.held_out_kernels(config, recalibration_run.Fold(
        tiny_trained_dir, (9,)), 2, str(tmp_path / "b"), loaded)
    assert len(own[3]) == len(fold_kernels[3])  # the same frames
    assert_allclose(own[3], fold_kernels[3])
    assert_allclose(spread["checkpoint_mm"], numpy_spread_by_rank(own[1]), rtol=1e-6)
    assert_allclose(spread["fold_mm"], numpy_spread_by_rank(fold_kernels[1]), rtol=1e-6)
    assert spread["subjects"] == [9] and spread["load_dir"] == other
    ratio = numpy_spread_by_rank(own[1]) / numpy_spread_by_rank(fold_kernels[1])
    assert spread["mismatch"] is bool(np.any((ratio > 1.5) | (ratio < 1 / 1.5)))
    assert len(said) == 1 and ("WARNING" in said[0]) is spread["mismatch"]
    assert recalibration_run.compare_kernel_spreads(
        config, loaded, [recalibration_run.Fold(tiny_trained_dir, (9,))], [own[:4]], 2,
        str(tmp_path / "a"), said.append) == []

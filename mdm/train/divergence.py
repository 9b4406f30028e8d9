"""Telling a diverged training from a healthy one, so that it stops before it saves.

A far too large learning rate does not always make the loss non-finite: the loss may sit at
mixture_loss's 1e30 clip, or fall back to a few hundred nats while the network predicts
poses kilometres wide (measured on the synthetic set with --learning_rate 1e6: epoch losses
1.1e29, 4.0e28, then 1042, with test errors of 1e14-3e15 mm). Two checks, both far from
anything a healthy run reaches:

* the loss (a per-sample mixture NLL in the normalised 3D space) above LOSS_CEILING, read
  every 100 steps and at the epoch's end;
* before each save, the best hypothesis's mean joint error on a fixed probe of training
  samples above ERROR_CEILING_MM.
"""

import math

import numpy as np

from mdm.evaluate import prediction

# An untrained model (means at the mean pose, unit scales) scores 0.5 * D * (log 2 pi + 1)
# = 68 nats for the D = 48 outputs, and training only lowers it: healthy runs on the
# synthetic set read 70 at step 100 falling to 35 by epoch 3 (default flags), 58-163 with
# --learning_rate 1e-3..1e-1 and small networks. 1e4 is 50x above any of them; diverged
# runs read 1e5 (--learning_rate 1) to 1e30 (the clip, 10 and above) with a 256-wide
# network, but only 250-1100 with a 24-wide one (--learning_rate 10 to 1e9): the probe
# below catches those.
LOSS_CEILING = 1e4
# No joint is more than about 1 m from the root, so a mean error above 10 m is no pose at
# all. Healthy runs: 137-187 mm on the probe (--linear_size 256, 3 epochs, --learning_rate
# 1e-3 and 1e-1), 69-201 mm test error; diverged ones (--learning_rate 100 and above):
# 8.8e4 mm to 1e19 mm on the probe.
ERROR_CEILING_MM = 1e4
PROBE_SAMPLES = 1024  # one inference batch: negligible next to an epoch


def loss_problem(loss):
    """Why a reading of the epoch's running-mean loss means divergence, or None."""
    if not math.isfinite(loss):
        return "non-finite loss"
    if loss > LOSS_CEILING:
        return f"the loss diverged to {loss:.3g} (above {LOSS_CEILING:.0e})"
    return None


class ErrorProbe:
    """The best hypothesis's mean joint error (mm) on a fixed, evenly spread subset of the
    training samples: a look at the predicted poses before a checkpoint is saved."""

    def __init__(self, stats, inputs, targets, predict_14):
        rows = np.unique(np.linspace(0, len(inputs) - 1, PROBE_SAMPLES).astype(int))
        self.inputs = np.asarray(inputs[rows], np.float32)
        self.stats, self.predict_14 = stats, predict_14
        self.truth_mm = stats.unnormalize_targets(targets[rows], predict_14)  # (P, 17, 3)

    def error_mm(self, predictor):
        means, _, _ = prediction.predict_mixture(predictor, self.inputs)
        hypotheses = self.stats.unnormalize_targets(means, self.predict_14)  # (P, K, 17, 3)
        joint_errors = np.linalg.norm(hypotheses - self.truth_mm[:, None], axis=-1)
        return float(np.mean(np.min(np.mean(joint_errors, axis=-1), axis=1)))

    def problem(self, predictor):
        """Why the predicted poses mean divergence, or None."""
        with np.errstate(over="ignore", invalid="ignore"):
            error = self.error_mm(predictor)
        if not math.isfinite(error):
            return "non-finite predicted poses"
        if error > ERROR_CEILING_MM:
            return (f"the model diverged: mean joint error {error:.3g} mm on training "
                    f"samples (above {ERROR_CEILING_MM / 1000:.0f} m)")
        return None

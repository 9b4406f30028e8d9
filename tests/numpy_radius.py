"""The per-joint radius written out in numpy, independently of mdm.model.radius: the
mixture (recalibrated by hand when asked), draws with the radius's shared noise,
un-normalisation, distances to the chosen kernel's mean and their quantile."""

import numpy as np

from mdm.model import mixture, radius


def numpy_radius(network_outputs, std_3d, coverage, seed, recalibration=None, kernel=None):
    """(N, J) radius in mm for the network's normalised (means (N, K, 3 J), scales (N, K),
    weights (N, K)); `std_3d` (J, 3) the predicted joints' training std; `recalibration`
    (widths (J,), shrinks (J,), temperature) pulls the kernel means toward the most
    probable one by the shrinks, multiplies the stds by the widths and raises the
    weights to the temperature; `kernel` (N,) the chosen kernel (default most probable)."""
    means, scales, weights = (np.asarray(t, np.float64) for t in network_outputs)
    rows = np.arange(len(means))
    kernel = np.argmax(weights, axis=1) if kernel is None else kernel
    chosen = means[rows, kernel]
    stds = np.broadcast_to(scales[..., None], means.shape)
    if recalibration is not None:
        widths, shrinks, temperature = recalibration
        centre = means[rows, np.argmax(weights, axis=1)][:, None]
        means = centre + np.repeat(shrinks, 3) * (means - centre)
        stds = stds * np.repeat(widths, 3)
        weights = weights ** temperature / np.sum(weights ** temperature, 1, keepdims=True)
    uniform, normal = (t.numpy() for t in mixture.shared_noise(radius.RADIUS_SAMPLES,
                                                               means.shape[-1], seed))
    cumulative = np.cumsum(weights, axis=1) / weights.sum(1, keepdims=True)
    picked = np.minimum((uniform[None, :, None] >= cumulative[:, None]).sum(-1),
                        means.shape[1] - 1)
    draws = means[rows[:, None], picked] + stds[rows[:, None], picked] * normal[None]
    offsets = (draws - chosen[:, None]).reshape(len(means), -1, *np.shape(std_3d)) * std_3d
    return np.quantile(np.linalg.norm(offsets, axis=-1), coverage, axis=1)

"""How often the per-joint radius (mdm/model/radius.py) holds the ground truth.

For every pose, the radius is taken around the most probable hypothesis for each nominal
coverage p; the observed coverage is the fraction of (pose, joint) pairs whose
ground-truth joint lies within it. A calibrated radius observes p.
"""

import numpy as np

from mdm.model import radius

COVERAGES = (0.5, 0.9, 0.95)
RADIUS_SEED = 0


def most_probable(means_mm, weights):
    """(N, J, 3): each pose's hypothesis of largest mixing weight."""
    rank = np.argmax(weights, axis=1)
    return np.asarray(means_mm)[np.arange(len(rank)), rank]


def joint_radii(means, scales, weights, spread, coverages, adjustment=None,
                seed=RADIUS_SEED):
    """Radii (N, J, L) in mm around the most probable hypothesis of each row."""
    means = np.asarray(means, np.float32)
    chosen = means[np.arange(len(means)), np.argmax(weights, axis=1)]
    return radius.joint_radius_numpy(means, scales, weights, chosen, spread, coverages, seed,
                                     adjustment)


def observed_coverage(radii, chosen_mm, targets_mm):
    """Fraction (J, L) of poses whose ground-truth joint is within the radius (N, J, L)
    of the chosen pose (N, J, 3)."""
    error = np.linalg.norm(np.asarray(targets_mm) - np.asarray(chosen_mm), axis=-1)
    return (error[..., None] <= radii).mean(axis=0)


def by_group(per_joint, joint_groups, coverages):
    """{"0.9": {group: observed, ..., "overall": ...}, ...} from (J, L) per-joint values."""
    table = {}
    for column, level in enumerate(coverages):
        values = {name: float(np.mean(per_joint[list(joints), column]))
                  for name, joints in joint_groups.items()}
        values["overall"] = float(np.mean(per_joint[:, column]))
        table[f"{level:g}"] = values
    return table


def measure(means, scales, weights, means_mm, targets_mm, spread, joint_groups,
            adjustment=None, coverages=COVERAGES):
    """Observed coverage of the radii, {"0.9": {group: fraction}} plus the mean radius in
    mm per level; means etc. normalised (N, K, D), means_mm (N, K, J, 3), targets (N, J, 3),
    spread (D,) mm per normalised unit."""
    radii = joint_radii(means, scales, weights, spread, coverages, adjustment)
    observed = observed_coverage(radii, most_probable(means_mm, weights), targets_mm)
    return {"observed": by_group(observed, joint_groups, coverages),
            "observed_per_joint": observed.tolist(),
            "mean_radius_mm": {f"{level:g}": float(radii[..., column].mean())
                               for column, level in enumerate(coverages)}}


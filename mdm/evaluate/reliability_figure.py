"""The reliability diagram: observed against expected quantile level, per joint group.

Built on a `matplotlib.figure.Figure` rendered by Agg, never pyplot, so nothing touches
matplotlib's global backend state and no figure stays registered after it is written.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_INCHES = (4.5, 4.5)
DPI = 120


def h36m17_joint_groups(root_dropped=True):
    """{group name: joint indices} of the 17 Human3.6M joints (project order).

    Order: Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head,
    LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist. The root (Hip) is in no group:
    its distances are always 0. With `root_dropped` the indices are into the 16 joints
    left once the root is removed (what calibration curves are computed on).
    """
    shift = 1 if root_dropped else 0
    groups = {"torso": [7, 8, 9, 10], "arms": [11, 12, 13, 14, 15, 16],
              "legs": [1, 2, 3, 4, 5, 6]}
    return {name: [j - shift for j in joints] for name, joints in groups.items()}


def group_curves(observed, joint_groups, include_overall=True):
    """Average per-joint curves (J, Q) into {group name: (Q,)} for `joint_groups`.

    joint_groups: {name: joint indices into observed's first axis}. With
    `include_overall`, an "overall" entry is the mean over all J joints.
    """
    observed = np.asarray(observed)
    curves = {name: observed[list(joints)].mean(axis=0) for name, joints in joint_groups.items()}
    if include_overall:
        curves["overall"] = observed.mean(axis=0)
    return curves


def draw_reliability_diagram(path, levels, curves, title=""):
    """Write a PNG with one observed-vs-expected curve per entry of `curves`.

    levels: (Q,) expected quantile levels in [0, 1]; curves: {label: (Q,) observed};
    the diagonal is perfect calibration (above it: under-confident, below: over-).
    Returns `path`.
    """
    levels = np.asarray(levels)
    figure = Figure(figsize=FIGURE_INCHES)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for label, observed in curves.items():
        ax.plot(levels, np.asarray(observed), marker="o", markersize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("expected quantile level q")
    ax.set_ylabel("observed fraction inside the q-quantile")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    figure.clear()
    return path

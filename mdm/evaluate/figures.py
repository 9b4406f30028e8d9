"""Figures: the release's `--sample` hypotheses figure and a training curve.

Built on `matplotlib.figure.Figure` objects, never pyplot, so nothing touches global
backend state and no figure stays registered after use: saving renders with Agg, and
each figure is cleared once written.
"""

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from mdm.core.skeleton import EDGES, INPUT_JOINTS, LEFT_JOINTS, RIGHT_JOINTS, ROOT

# docs/faithfulness.md §7: 3D axes +-750 mm around the root, seen from azimuth 129, elevation 10.
RADIUS_3D_MM = 750.0
VIEW_AZIMUTH = 129
VIEW_ELEVATION = 10
# Left and right limbs in two colours (those of 3d-pose-baseline's viz.py); torso grey.
LEFT_COLOUR = "#3498db"
RIGHT_COLOUR = "#e74c3c"
CENTRE_COLOUR = "#555555"
PANEL_INCHES = (2.6, 3.3)
RADIUS_COLOUR = "#2ca02c"
SPHERE_STEPS = (9, 6)  # meridians x parallels of each radius sphere's wireframe


def bone_colour(joint_a, joint_b):
    """Colour of the bone between two of the 17 joints: by the side of its limb."""
    if joint_a in LEFT_JOINTS or joint_b in LEFT_JOINTS:
        return LEFT_COLOUR
    if joint_a in RIGHT_JOINTS or joint_b in RIGHT_JOINTS:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def input_edges():
    """Bones of the 16-joint 2D input as (17-joint pair, input-position pair) tuples.

    `EDGES` restricted to `INPUT_JOINTS`; a bone whose parent the input lacks (Head,
    under the missing Neck/Nose) is attached to the nearest present ancestor (Thorax),
    as the release's 2D drawing joined Thorax to Head.
    """
    parent_of = {child: parent for parent, child in EDGES}
    position_of = {int(joint): position for position, joint in enumerate(INPUT_JOINTS)}
    bones = []
    for parent, child in EDGES:
        if child not in position_of:
            continue
        while parent not in position_of:
            parent = parent_of[parent]
        bones.append(((parent, child), (position_of[parent], position_of[child])))
    return bones


def draw_skeleton_2d(ax, pose_2d):
    """Draw a `(16, 2)` (or flat 32) pixel pose, INPUT_JOINTS order, as an image (y down).
    Missing joints (NaN) and their bones are left out; the root is never missing."""
    pose_2d = np.asarray(pose_2d, dtype=np.float64).reshape(-1, 2)
    for (joint_a, joint_b), (pos_a, pos_b) in input_edges():
        ax.plot(pose_2d[[pos_a, pos_b], 0], pose_2d[[pos_a, pos_b], 1],
                color=bone_colour(joint_a, joint_b), linewidth=2)
    ax.scatter(pose_2d[:, 0], pose_2d[:, 1], s=6, color="black", zorder=3)
    root = pose_2d[list(INPUT_JOINTS).index(ROOT)]
    half_width = 1.15 * max(float(np.nanmax(np.abs(pose_2d - root))), 1.0)
    ax.set_xlim(root[0] - half_width, root[0] + half_width)
    ax.set_ylim(root[1] + half_width, root[1] - half_width)  # image rows grow downwards
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_xlabel("x (px)", fontsize=7)
    ax.set_ylabel("y (px)", fontsize=7, labelpad=1)


def draw_skeleton_3d(ax, pose_3d):
    """Draw a `(17, 3)` (or flat 51) pose in mm, z up, in a +-750 mm cube around its root."""
    pose_3d = np.asarray(pose_3d, dtype=np.float64).reshape(-1, 3)
    for joint_a, joint_b in EDGES:
        segment = pose_3d[[joint_a, joint_b]]
        ax.plot(segment[:, 0], segment[:, 1], segment[:, 2],
                color=bone_colour(joint_a, joint_b), linewidth=2)
    root = pose_3d[ROOT]
    ax.set_xlim(root[0] - RADIUS_3D_MM, root[0] + RADIUS_3D_MM)
    ax.set_ylim(root[1] - RADIUS_3D_MM, root[1] + RADIUS_3D_MM)
    ax.set_zlim(root[2] - RADIUS_3D_MM, root[2] + RADIUS_3D_MM)
    ax.set_box_aspect((1, 1, 1), zoom=1.15)  # the default leaves wide margins
    ax.view_init(elev=VIEW_ELEVATION, azim=VIEW_AZIMUTH)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    for set_label, name in ((ax.set_xlabel, "x"), (ax.set_ylabel, "y"), (ax.set_zlabel, "z")):
        set_label(f"{name} (mm)", fontsize=7, labelpad=-12)


def draw_joint_radius(ax, pose_3d, radius_mm, colour=RADIUS_COLOUR):
    """Draw a wireframe sphere of radius `radius_mm[j]` (17,) mm around each joint of
    `pose_3d` (17, 3) on a 3D axes (a joint of radius 0, the root, gets none): where the
    truth lies with the radius's probability (mdm/model/radius.py). Returns the axes."""
    pose_3d = np.asarray(pose_3d, dtype=np.float64).reshape(-1, 3)
    azimuth = np.linspace(0.0, 2.0 * np.pi, SPHERE_STEPS[0])
    polar = np.linspace(0.0, np.pi, SPHERE_STEPS[1])
    unit = np.stack([np.outer(np.cos(azimuth), np.sin(polar)),
                     np.outer(np.sin(azimuth), np.sin(polar)),
                     np.outer(np.ones_like(azimuth), np.cos(polar))])  # (3, A, P)
    for centre, size in zip(pose_3d, np.asarray(radius_mm, dtype=np.float64)):
        if size > 0 and np.isfinite(size):
            sphere = centre[:, None, None] + size * unit
            ax.plot_wireframe(*sphere, color=colour, linewidth=0.4, alpha=0.5)
    return ax


def hypotheses_figure(pose_2d, hypotheses, weights=None, gt_3d=None, title=None,
                      radius=None, coverage=None):
    """Build (without saving) the one-row sample figure of docs/faithfulness.md §7.

    Panels: the 2D input `(16, 2)` px, the ground truth `(17, 3)` if given, then each of
    the K hypotheses `(K, 17, 3)` (root-centred, world frame, mm); with `weights` `(K,)`
    the most probable first, as `python -m mdm.infer` draws them, each titled with its
    mixing weight. A legend tells the left limbs from the right. With `radius` (17,) mm,
    the most probable hypothesis (the first with `weights`) carries a sphere per joint
    (`draw_joint_radius`) of probability `coverage`. Returns the Figure.
    """
    hypotheses = np.asarray(hypotheses, dtype=np.float64)
    if weights is not None:
        order = np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable")
        hypotheses, weights = hypotheses[order], np.asarray(weights)[order]
    poses_3d = ([("Ground truth", gt_3d)] if gt_3d is not None else []) + [
        (_hypothesis_title(k, weights), pose) for k, pose in enumerate(hypotheses)]
    num_panels = 1 + len(poses_3d)
    figure = Figure(figsize=(PANEL_INCHES[0] * num_panels, PANEL_INCHES[1]))
    FigureCanvasAgg(figure)
    ax_2d = figure.add_subplot(1, num_panels, 1)
    draw_skeleton_2d(ax_2d, pose_2d)
    ax_2d.set_title("2D input", fontsize=9)
    for panel, (panel_title, pose) in enumerate(poses_3d, start=2):
        ax_3d = figure.add_subplot(1, num_panels, panel, projection="3d")
        draw_skeleton_3d(ax_3d, pose)
        first_hypothesis = panel == num_panels - len(hypotheses) + 1
        if radius is not None and first_hypothesis:
            draw_joint_radius(ax_3d, pose, radius)
            panel_title += f"\n{coverage:g} radius" if coverage else "\nradius"
        ax_3d.set_title(panel_title, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10, y=0.99)
    _add_side_legend(figure)
    # Leave room above the two-line panel titles for the figure title, and below the
    # panels for the axis labels and the legend.
    figure.subplots_adjust(left=0.05, right=0.97, bottom=0.16, wspace=0.15,
                           top=(0.80 if title else 0.86) - (0.05 if radius is not None else 0))
    return figure


def _add_side_legend(figure):
    """Which colour is the subject's left and which the right (the torso is grey)."""
    handles = [Line2D([], [], color=LEFT_COLOUR, linewidth=2, label="left limbs"),
               Line2D([], [], color=RIGHT_COLOUR, linewidth=2, label="right limbs")]
    figure.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)


def _hypothesis_title(index, weights):
    """'Hypothesis k' (1-based), with its mixing coefficient when known."""
    if weights is None:
        return f"Hypothesis {index + 1}"
    return f"Hypothesis {index + 1}\nw = {float(np.asarray(weights)[index]):.3f}"


def draw_hypotheses_figure(path, pose_2d, hypotheses, weights=None, gt_3d=None, title=None,
                           radius=None, coverage=None):
    """Write the sample figure (see `hypotheses_figure`) as a PNG; returns `path`."""
    figure = hypotheses_figure(pose_2d, hypotheses, weights, gt_3d, title, radius, coverage)
    return _save_and_free(figure, path)


def plot_training_curve(path_or_ax, history, title=None):
    """Plot each named series of `history` (name -> per-epoch values) against epoch.

    `path_or_ax`: a matplotlib Axes to draw into (returned, e.g. in a notebook), or a
    path: a new figure is written there as a PNG and the path is returned.
    """
    if hasattr(path_or_ax, "plot"):
        _draw_curves(path_or_ax, history, title)
        return path_or_ax
    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    _draw_curves(figure.add_subplot(1, 1, 1), history, title)
    figure.tight_layout()
    return _save_and_free(figure, path_or_ax)


def _draw_curves(ax, history, title):
    """One line per series, epochs counted from 1."""
    for name, values in history.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if history:
        ax.legend()
    if title:
        ax.set_title(title)


def _save_and_free(figure, path):
    """Save as PNG (creating the directory), then drop the figure's artists."""
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    figure.clear()
    return path

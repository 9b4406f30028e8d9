"""mdm.evaluate.figures: the sample figure's panels and the PNG files."""

import matplotlib.figure
import matplotlib.image
import numpy as np
import pytest

from mdm.core.skeleton import EDGES, H36M17_NAMES, INPUT_JOINTS
from mdm.evaluate import figures


def standing_pose():
    """A root-centred `(17, 3)` pose in mm, z up, arms down."""
    return np.array([
        [0, 0, 0], [-130, 0, 0], [-130, 0, -450], [-130, 0, -880], [130, 0, 0],
        [130, 0, -450], [130, 0, -880], [0, 0, 230], [0, 0, 480], [0, -60, 580],
        [0, 0, 680], [170, 0, 450], [200, 0, 180], [210, -50, -50], [-170, 0, 450],
        [-200, 0, 180], [-210, -50, -50]], dtype=np.float64)


def sample_inputs(num_hypotheses=5):
    pose = standing_pose()
    rng = np.random.default_rng(0)
    hypotheses = pose + rng.normal(scale=30.0, size=(num_hypotheses, 17, 3))
    hypotheses[:, 0] = 0.0  # root-centred, as the caller passes them
    # A front view in pixels: image x from world x, image y (down) from world z.
    pose_2d = np.stack([500 + 0.4 * pose[:, 0], 500 - 0.4 * pose[:, 2]], axis=-1)
    return pose_2d[INPUT_JOINTS], hypotheses, rng.dirichlet(np.ones(num_hypotheses)), pose


@pytest.mark.parametrize("with_gt, num_hypotheses", [(True, 5), (False, 3)])
def test_panel_count_and_titles(with_gt, num_hypotheses):
    pose_2d, hypotheses, weights, gt = sample_inputs(num_hypotheses)
    figure = figures.hypotheses_figure(pose_2d, hypotheses, weights,
                                             gt if with_gt else None)
    axes = figure.get_axes()
    assert len(axes) == 1 + int(with_gt) + num_hypotheses
    assert axes[0].name == "rectilinear" and all(ax.name == "3d" for ax in axes[1:])
    assert axes[0].yaxis_inverted()  # image convention: y grows downwards
    assert axes[-1].get_title().endswith(f"w = {weights.min():.3f}")  # most probable first
    assert axes[1].get_title() == ("Ground truth" if with_gt else "Hypothesis 1\n"
                                   f"w = {weights.max():.3f}")
    # docs/faithfulness.md §7: +-750 mm around the root, azimuth 129, elevation 10.
    assert axes[-1].get_xlim3d() == pytest.approx((-750.0, 750.0))
    assert (axes[-1].azim, axes[-1].elev) == (129, 10)


def test_hypotheses_are_drawn_most_probable_first():
    pose_2d, hypotheses, _, _ = sample_inputs(4)
    weights = np.array([0.1, 0.4, 0.2, 0.3])
    figure = figures.hypotheses_figure(pose_2d, hypotheses, weights)
    for rank, (panel, kernel) in enumerate(zip(figure.get_axes()[1:], [1, 3, 2, 0])):
        assert panel.get_title() == f"Hypothesis {rank + 1}\nw = {weights[kernel]:.3f}"
        # The first bone drawn is EDGES[0] of this kernel's pose.
        xs, ys, zs = panel.lines[0].get_data_3d()
        np.testing.assert_allclose(np.stack([xs, ys, zs], axis=-1),
                                   hypotheses[kernel][list(EDGES[0])])


def test_legend_tells_left_from_right_and_axes_are_labelled():
    pose_2d, hypotheses, weights, gt = sample_inputs(2)
    figure = figures.hypotheses_figure(pose_2d, hypotheses, weights, gt)
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["left limbs", "right limbs"]
    assert [line.get_color() for line in legend.get_lines()] == [figures.LEFT_COLOUR,
                                                                  figures.RIGHT_COLOUR]
    ax_2d, *axes_3d = figure.get_axes()
    assert (ax_2d.get_xlabel(), ax_2d.get_ylabel()) == ("x (px)", "y (px)")
    for ax in axes_3d:
        assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) == (
            "x (mm)", "y (mm)", "z (mm)")


def test_draw_hypotheses_figure_writes_a_png(tmp_path):
    pose_2d, hypotheses, weights, gt = sample_inputs()
    path = figures.draw_hypotheses_figure(tmp_path / "samples" / "f.png", pose_2d,
                                                hypotheses, weights, gt, title="SittingDown")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > 4 * image.shape[0]  # one wide row
    assert image[..., :3].std() > 0.01  # not blank


def test_input_edges_bridge_the_missing_neck():
    bones = figures.input_edges()
    named = {(H36M17_NAMES[a], H36M17_NAMES[b]) for (a, b), _ in bones}
    assert ("Thorax", "Head") in named
    assert len(bones) == len(EDGES) - 1  # Thorax-Neck and Neck-Head become Thorax-Head
    for (joint_a, joint_b), (pos_a, pos_b) in bones:
        assert (INPUT_JOINTS[pos_a], INPUT_JOINTS[pos_b]) == (joint_a, joint_b)


def test_left_and_right_limbs_have_two_colours():
    names = {name: index for index, name in enumerate(H36M17_NAMES)}
    left = figures.bone_colour(names["LShoulder"], names["LElbow"])
    right = figures.bone_colour(names["RHip"], names["RKnee"])
    assert left != right


def test_plot_training_curve_to_file_and_axes(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5], "error_mm": [90.0, 70.0, 61.0]}
    path = figures.plot_training_curve(tmp_path / "curve.png", history)
    assert matplotlib.image.imread(path).shape[2] in (3, 4)

    figure = matplotlib.figure.Figure()
    ax = figure.add_subplot(1, 1, 1)
    assert figures.plot_training_curve(ax, history) is ax
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "error_mm"]
    assert list(ax.get_lines()[1].get_xdata()) == [1, 2, 3]


def test_radius_spheres_on_the_most_probable_hypothesis_only():
    """One wireframe sphere per joint of positive radius, centred on the joint, of that
    radius; only on the most probable hypothesis's panel."""
    pose_2d, hypotheses, _, _ = sample_inputs(3)
    weights = np.array([0.2, 0.5, 0.3])
    radius = np.linspace(0.0, 160.0, 17)  # the root's 0: no sphere
    figure = figures.hypotheses_figure(pose_2d, hypotheses, weights, radius=radius,
                                       coverage=0.9)
    first, others = figure.get_axes()[1], figure.get_axes()[2:]
    assert first.get_title() == "Hypothesis 1\nw = 0.500\n0.9 radius"
    spheres = first.collections
    assert len(spheres) == 16 and all(not ax.collections for ax in others)
    for joint, sphere in zip(range(1, 17), spheres):
        points = np.concatenate([np.asarray(segment) for segment in sphere._segments3d])
        distances = np.linalg.norm(points - hypotheses[1][joint], axis=-1)
        np.testing.assert_allclose(distances, radius[joint], rtol=1e-9)

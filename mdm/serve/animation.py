"""A video's lifted poses as an animation: the 2D input beside the chosen 3D pose (the
temporal path, or the most probable hypothesis), the other hypotheses faint behind it.

matplotlib's animation writers: PillowWriter for .gif (Pillow comes with matplotlib),
FFMpegWriter for .mp4 where ffmpeg is installed. Built on a `Figure`, never pyplot, as
mdm.evaluate.figures is.
"""

import os

import numpy as np
from matplotlib import animation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mdm.core.errors import UserError
from mdm.core.skeleton import EDGES
from mdm.data.cameras import camera_to_upright
from mdm.evaluate import figures
from mdm.serve.progress import Progress

DEFAULT_FPS = 25.0
SUFFIXES = (".gif", ".mp4")
FAINT_ALPHA = 0.15  # the hypotheses not chosen
MARGIN = 0.1  # of the 2D extent, around the input's pixels over the whole video


def check_animation_path(path):
    """Refuse what cannot be written before any work is done."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: unknown animation format {suffix or '(no suffix)'}; use "
                        f"{', '.join(SUFFIXES)}")
    if suffix == ".mp4" and not animation.writers.is_available("ffmpeg"):
        raise UserError(f"{path}: writing .mp4 needs ffmpeg, which is not installed; "
                        "use .gif")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"animation directory does not exist: {directory}")


def write_animation(path, pixels_2d, chosen, hypotheses, valid=None, problems=None,
                    fps=DEFAULT_FPS):
    """Write the animation of T frames: pixels_2d (T, 16, 2) model-order input (NaN
    missing), chosen (T, 17, 3) and hypotheses (T, K, 17, 3) in mm, camera frame; a frame
    not `valid` (T,) shows its `problems` text instead of a pose. Returns `path`."""
    check_animation_path(path)
    count = len(chosen)
    valid = np.ones(count, bool) if valid is None else np.asarray(valid, bool)
    upright_chosen, upright_all = camera_to_upright(chosen), camera_to_upright(hypotheses)
    figure = Figure(figsize=(8.0, 4.0))
    FigureCanvasAgg(figure)
    ax_2d = figure.add_subplot(1, 2, 1)
    ax_3d = figure.add_subplot(1, 2, 2, projection="3d")
    limits = _image_limits(pixels_2d[valid])

    def draw(frame):
        ax_2d.cla()
        ax_3d.cla()
        if valid[frame]:
            figures.draw_skeleton_2d(ax_2d, pixels_2d[frame])
            for pose in upright_all[frame]:
                _draw_faint(ax_3d, pose)
            figures.draw_skeleton_3d(ax_3d, upright_chosen[frame])
        else:
            ax_3d.text2D(0.5, 0.5, "not lifted:\n" + (problems[frame] if problems else ""),
                         ha="center", va="center", wrap=True, fontsize=7,
                         transform=ax_3d.transAxes)
        ax_2d.set_xlim(*limits[0])
        ax_2d.set_ylim(*limits[1])
        ax_2d.set_title(f"2D input, frame {frame}", fontsize=9)
        ax_3d.set_title("3D (others faint)", fontsize=9)

    movie = animation.FuncAnimation(figure, draw, frames=count, interval=1000.0 / fps,
                                    repeat=False)
    writer = (animation.PillowWriter(fps=fps) if path.lower().endswith(".gif")
              else animation.FFMpegWriter(fps=fps))
    progress = Progress(count, "animation")
    try:
        movie.save(path, writer=writer,
                   progress_callback=lambda done, total: progress.update(done + 1))
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        progress.close()
        figure.clear()
    return path


def _image_limits(pixels_2d):
    """((x_min, x_max), (y_max, y_min)) around every frame's joints, image rows down."""
    low, high = np.nanmin(pixels_2d, axis=(0, 1)), np.nanmax(pixels_2d, axis=(0, 1))
    pad = MARGIN * max(float(np.max(high - low)), 1.0)
    return (low[0] - pad, high[0] + pad), (high[1] + pad, low[1] - pad)


def _draw_faint(ax, pose):
    for joint_a, joint_b in EDGES:
        segment = pose[[joint_a, joint_b]]
        ax.plot(segment[:, 0], segment[:, 1], segment[:, 2], linewidth=1,
                color=figures.bone_colour(joint_a, joint_b), alpha=FAINT_ALPHA)

"""The generator behind the built-in synthetic datasets: Human3.6M-like bodies, motion,
cameras and detections, written out by h36m_writer (the 3d-pose-baseline layout of
docs/faithfulness.md §1) and mpi_writer (MPI-INF-3DHP's raw layout), so that the whole
pipeline runs without the real datasets.

Motion comes from a kinematic skeleton with human bone lengths driven by smooth joint-angle
tracks, one style per action. Depth ambiguity is built in on purpose: shoulder and hip
flexion targets are drawn from symmetric bimodal distributions (forward or backward by the
same amount), so a limb tilted towards a camera and one tilted away often give nearly the
same 2D; this is what lets a mixture density network beat a single hypothesis.
"""

import collections
import dataclasses
import numbers
import os

import numpy as np

from mdm.core.errors import UserError
from mdm.core.skeleton import CAMERA_NAMES, H36M17_FROM_32, H36M17_NAMES, NUM_JOINTS_32, SH_NAMES
from mdm.data.cameras import Camera, project_to_pixels, world_to_camera

SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
# 160 frames: 5 train subjects x 15 actions x 2 sequences x 4 cameras x 160 = 96,000 samples.
DEFAULT_FRAMES_PER_SEQUENCE = 160
FPS = 50.0  # Human3.6M's frame rate; motion speeds below are per second
ANKLE_HEIGHT = 80.0  # mm above the floor of the lower ankle (real data: 60-100 mm)
NOISE_PX = 3.0  # Gaussian detection noise per coordinate
OUTLIER_RATE = 0.02  # share of detected joints displaced by tens of pixels
SWAP_RATE = 0.01  # share of frames with one left/right pair swapped

# Joint-angle limits in degrees (flexion > 0 swings a limb forward; knees bend backward
# and elbows forward only, so neither can hyperextend).
LIMITS = {"knee": (0.0, 150.0), "elbow": (0.0, 150.0), "hip_flex": (-30.0, 120.0),
          "hip_abd": (-10.0, 45.0), "shoulder_flex": (-75.0, 170.0),
          "shoulder_abd": (0.0, 120.0)}


@dataclasses.dataclass(frozen=True)
class Body:
    """One subject's bone lengths in millimetres (means match Human3.6M's subject 1)."""

    subject: int
    hip: float = 133.0  # root to each hip joint
    thigh: float = 443.0
    shin: float = 454.0
    spine: float = 233.0  # root to spine
    thorax: float = 257.0  # spine to thorax
    neck: float = 121.0  # thorax to neck/nose
    head: float = 115.0  # neck/nose to head top
    shoulder: float = 151.0  # thorax to each shoulder
    upper_arm: float = 279.0
    forearm: float = 252.0


# How each action moves. speed: walking speed along the path (m/s); sit: 0 stands,
# 1 seated throughout, 2 sits down during the sequence; lean: forward torso lean range;
# arm: magnitude range of shoulder flexion, sign drawn at random (the ambiguity);
# abd/elbow: shoulder abduction and elbow flexion ranges; gesture: amplitude of fast arm
# oscillation (talking, waving); busy: arms doing a hand-to-face task (phone, food,
# cigarette, camera); step: magnitude of a forward/backward step stance of the legs.
Style = collections.namedtuple("Style", "speed sit lean arm abd elbow gesture busy step")
STYLES = {
    "Directions": Style(0.3, 0, (0, 15), (25, 75), (5, 60), (0, 40), 8, 0, (8, 20)),
    "Discussion": Style(0.2, 0, (0, 15), (20, 60), (5, 40), (20, 100), 12, 0, (8, 18)),
    "Eating": Style(0.0, 1, (5, 25), (15, 45), (5, 30), (30, 110), 5, 2, (0, 0)),
    "Greeting": Style(0.5, 0, (0, 20), (30, 70), (20, 100), (10, 90), 25, 0, (8, 18)),
    "Phoning": Style(0.3, 0, (0, 15), (15, 45), (5, 30), (0, 60), 5, 1, (8, 20)),
    "Photo": Style(0.2, 0, (0, 20), (25, 70), (10, 40), (60, 130), 3, 2, (8, 20)),
    "Posing": Style(0.0, 0, (-10, 20), (20, 75), (0, 110), (0, 90), 5, 0, (15, 35)),
    "Purchases": Style(0.3, 0, (10, 45), (25, 75), (5, 40), (10, 80), 5, 0, (8, 20)),
    "Sitting": Style(0.0, 1, (0, 25), (15, 60), (5, 40), (10, 100), 8, 0, (0, 0)),
    "SittingDown": Style(0.0, 2, (5, 30), (15, 50), (5, 40), (0, 80), 5, 0, (0, 0)),
    "Smoking": Style(0.1, 0, (0, 10), (15, 35), (5, 30), (0, 50), 3, 1, (8, 15)),
    "Waiting": Style(0.1, 0, (0, 10), (10, 30), (5, 25), (0, 40), 3, 0, (8, 15)),
    "WalkDog": Style(0.9, 0, (5, 20), (20, 50), (5, 30), (20, 80), 5, 0, (0, 0)),
    "Walking": Style(1.3, 0, (0, 10), (5, 15), (5, 15), (5, 30), 0, 0, (0, 0)),
    "WalkTogether": Style(1.0, 0, (0, 10), (5, 25), (5, 20), (5, 40), 0, 0, (0, 0)),
}

# Sequence-name suffixes as in the real data: default "<A>.h5" + "<A> 1.h5"; these
# subjects differ (so loaders meet "Eating 2", "Sitting 1/2", "SittingDown 2", ...).
_SUFFIX_EXCEPTIONS = {
    1: {"Eating": ("", " 2"), "Sitting": (" 1", " 2"), "SittingDown": ("", " 2")},
    5: {"Directions": (" 1", " 2"), "Discussion": (" 2", " 3"), "Greeting": (" 1", " 2"),
        "Photo": ("", " 2"), "Waiting": (" 1", " 2")},
    6: {"Eating": (" 1", " 2"), "Posing": ("", " 2"), "Sitting": (" 1", " 2"),
        "Waiting": ("", " 3")},
    7: {"Phoning": ("", " 2"), "Waiting": (" 1", " 2"), "Walking": (" 1", " 2")},
    8: {"WalkTogether": (" 1", " 2")},
    9: {"Discussion": (" 1", " 2")},
    11: {"Discussion": (" 1", " 2"), "Greeting": ("", " 2"), "Phoning": (" 2", " 3"),
         "Smoking": ("", " 2")},
}

# Human3.6M's 4 cameras sit near the corners of the capture volume (azimuth, degrees).
_CAMERA_AZIMUTHS = (70.0, -70.0, 110.0, -115.0)
_SH_FROM_17 = np.array([H36M17_NAMES.index(name) for name in SH_NAMES])
_SH_LEFT_RIGHT = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
_DOWN = np.array([0.0, 0.0, -1.0])


def sequence_names(subject, action):
    """The two sequence names of (subject, action), e.g. ("Sitting 1", "Sitting 2")."""
    suffixes = _SUFFIX_EXCEPTIONS.get(subject, {}).get(action, ("", " 1"))
    return tuple(action + suffix for suffix in suffixes)


def make_body(rng, subject):
    """A subject's body: Human3.6M-like bone lengths, overall scale +-4 %, each bone +-2 %."""
    scale = np.clip(rng.normal(1.0, 0.04), 0.9, 1.1)
    lengths = {
        field.name: float(field.default * scale * np.clip(rng.normal(1.0, 0.02), 0.95, 1.05))
        for field in dataclasses.fields(Body) if field.name != "subject"
    }
    return Body(subject=subject, **lengths)


def _look_at(centre, target, roll_deg):
    """World-to-camera rotation: rows are the image x (right), y (down), z (forward) axes."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = np.radians(roll_deg)
    right, down = (np.cos(roll) * right + np.sin(roll) * down,
                   -np.sin(roll) * right + np.cos(roll) * down)
    return np.stack([right, down, forward])


def make_cameras(rng):
    """Four cameras around the volume, 4.3-5.6 m from its centre, about 1.5 m high,
    looking at its centre, with Human3.6M-like intrinsics and small distortion."""
    cameras = []
    for azimuth, name in zip(_CAMERA_AZIMUTHS, CAMERA_NAMES):
        angle = np.radians(azimuth + rng.normal(0.0, 3.0))
        distance = rng.uniform(4300.0, 5600.0)
        centre = np.array([distance * np.cos(angle), distance * np.sin(angle),
                           rng.uniform(1450.0, 1650.0)])
        target = np.array([rng.normal(0.0, 100.0), rng.normal(0.0, 100.0),
                           rng.uniform(450.0, 650.0)])
        cameras.append(Camera(
            R=_look_at(centre, target, rng.normal(0.0, 1.0)), T=centre,
            f=1145.0 + rng.normal(0.0, 3.0, 2), c=np.array([512.0, 515.0]) + rng.normal(0, 5, 2),
            k=np.array([-0.20, 0.24, -0.003]) + rng.normal(0.0, [0.01, 0.01, 0.005]),
            p=rng.normal(0.0, 0.0015, 2), name=name,
        ))
    return cameras


def _track(rng, n, value_range, hold=60.0, signed=False):
    """A smooth random angle track (n,): keyframe values drawn in `value_range` about
    `hold` frames apart, joined by cosine easing. Easing never overshoots its keys, so the
    track stays inside the range (joint limits hold). `signed` flips each key's sign at
    random: a symmetric bimodal angle, the source of the depth ambiguity."""
    count = int(n / (0.6 * hold)) + 3
    gaps = rng.uniform(0.6, 1.4, count) * hold
    times = np.concatenate([[0.0], np.cumsum(gaps)]) - rng.uniform(0.0, gaps[0])
    values = rng.uniform(*value_range, count + 1)
    if signed:
        values *= rng.choice([-1.0, 1.0], count + 1)
    frames = np.arange(n)
    seg = np.searchsorted(times, frames, side="right") - 1
    ease = 0.5 - 0.5 * np.cos(np.pi * (frames - times[seg]) / (times[seg + 1] - times[seg]))
    return values[seg] * (1.0 - ease) + values[seg + 1] * ease


def _rot(axis, degrees):
    """(n, 3, 3) rotations by `degrees` about body axis 0 (forward), 1 (left) or 2 (up)."""
    rad = np.radians(degrees)
    cos, sin = np.cos(rad), np.sin(rad)
    i, j = ((1, 2), (2, 0), (0, 1))[axis]
    mats = np.zeros(rad.shape + (3, 3))
    mats[..., axis, axis] = 1.0
    mats[..., i, i] = mats[..., j, j] = cos
    mats[..., i, j], mats[..., j, i] = -sin, sin
    return mats


def _limb(base_rot, angles, side, upper, lower, bend_sign):
    """Middle and end joint offsets (n, 3) of a two-bone limb hanging from its root.
    Flexion swings it forward, abduction out to `side` (+1 left, -1 right), internal
    rotation turns the bending plane inwards; the middle joint bends forward
    (`bend_sign` +1, elbow) or backward (-1, knee) only."""
    flex, abd, twist, bend = angles
    rot = base_rot @ _rot(1, -flex) @ _rot(0, side * abd) @ _rot(2, -side * twist)
    middle = upper * (rot @ _DOWN)
    end = middle + lower * (rot @ _rot(1, -bend_sign * bend) @ _DOWN)
    return middle, end


def _sit_weight(rng, n, sit):
    """How seated (0 standing .. 1 seated) the subject is in each frame."""
    if sit != 2:
        return np.full(n, float(sit))
    # SittingDown: one 1.2 s transition somewhere in the sequence, sometimes standing up.
    centre, width = rng.uniform(0.3, 0.7) * n, 1.2 * FPS
    weight = np.clip((np.arange(n) - centre) / width + 0.5, 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(np.pi * weight)
    return 1.0 - weight if rng.random() < 0.3 else weight


def _leg_angles(rng, n, style, sit, phase, side):
    """(flexion, abduction, internal rotation, knee) tracks of one leg, in degrees."""
    gait = 8.0 + 14.0 * style.speed if style.speed > 0 else 0.0
    # Left and right legs are half a gait cycle apart: seen from the front, each leg
    # forward and the same leg backward occur equally often.
    cycle = phase + (0.0 if side > 0 else np.pi)
    flex = gait * np.sin(cycle) + _track(rng, n, style.step, signed=True)
    knee = 5.0 + (10.0 + 30.0 * style.speed) * np.clip(np.cos(cycle - 0.5), 0, None) ** 2
    knee = knee + _track(rng, n, (0.0, 20.0))
    seated_flex, seated_knee = _track(rng, n, (75.0, 100.0)), _track(rng, n, (70.0, 110.0))
    flex = (1.0 - sit) * flex + sit * seated_flex
    knee = (1.0 - sit) * knee + sit * seated_knee
    abd = _track(rng, n, (0.0, 15.0))
    twist = _track(rng, n, (-10.0, 10.0))
    return (np.clip(flex, *LIMITS["hip_flex"]), np.clip(abd, *LIMITS["hip_abd"]), twist,
            np.clip(knee, *LIMITS["knee"]))


def _arm_angles(rng, n, style, phase, side, busy):
    """(flexion, abduction, internal rotation, elbow) tracks of one arm, in degrees."""
    if busy:  # hand near the face: elbow strongly bent, upper arm forward or sideways
        flex = _track(rng, n, (10.0, 40.0), signed=True)
        abd, elbow = _track(rng, n, (10.0, 40.0)), _track(rng, n, (100.0, 145.0))
    else:
        flex = _track(rng, n, style.arm, signed=True)
        abd, elbow = _track(rng, n, style.abd), _track(rng, n, style.elbow)
    swing = (10.0 + 12.0 * style.speed) if style.speed > 0 else 0.0
    gesture_phase = 2 * np.pi * rng.uniform(0.8, 2.0) * np.arange(n) / FPS + rng.uniform(0, 7)
    # Arms swing opposite to the leg of the same side while walking.
    flex = flex - swing * side * np.sin(phase) + style.gesture * np.sin(gesture_phase)
    elbow = elbow + 0.5 * style.gesture * np.cos(gesture_phase)
    twist = _track(rng, n, (-30.0, 60.0))
    return (np.clip(flex, *LIMITS["shoulder_flex"]), np.clip(abd, *LIMITS["shoulder_abd"]),
            twist, np.clip(elbow, *LIMITS["elbow"]))


def _torso(rng, n, style, body, sit):
    """Torso joints relative to the root in the pelvis frame and the upper-torso rotation."""
    lean = _track(rng, n, style.lean)
    if style.sit == 2:  # people lean forward while sitting down or standing up
        lean = lean + 30.0 * np.sin(np.pi * sit)
    side_lean, twist = _track(rng, n, (-8.0, 8.0)), _track(rng, n, (-25.0, 25.0))
    lower = _rot(2, twist / 2) @ _rot(1, lean / 2) @ _rot(0, side_lean / 2)
    upper = _rot(2, twist) @ _rot(1, lean) @ _rot(0, side_lean)
    head_rot = upper @ _rot(2, _track(rng, n, (-40.0, 40.0))) @ _rot(1, _track(rng, n, (-15, 25)))
    spine = body.spine * (lower @ [0.0, 0.0, 1.0])
    thorax = spine + body.thorax * (upper @ [0.0, 0.0, 1.0])
    # Directions of neck/nose and head top as measured on Human3.6M subject 1.
    nose = thorax + body.neck * (head_rot @ [0.49, 0.0, 0.87])
    head = nose + body.head * (head_rot @ [-0.845, 0.0, 0.535])
    return {"Spine": spine, "Thorax": thorax, "Neck/Nose": nose, "Head": head}, upper


def _body_frame_pose(rng, n, style, body, phase):
    """(n, 17, 3) joints relative to the root, axes forward, left, up of the pelvis."""
    sit = _sit_weight(rng, n, style.sit)
    joints, upper = _torso(rng, n, style, body, sit)
    joints["Hip"] = np.zeros((n, 3))
    level = np.broadcast_to(np.eye(3), (n, 3, 3))
    busy_arms = rng.permutation([1, -1])[: style.busy]
    for side, prefix in ((1, "L"), (-1, "R")):
        hip = np.array([0.0, side * body.hip, 0.0])
        knee, foot = _limb(level, _leg_angles(rng, n, style, sit, phase, side), side,
                           body.thigh, body.shin, bend_sign=-1)
        joints.update({prefix + "Hip": np.broadcast_to(hip, (n, 3)), prefix + "Knee": hip + knee,
                       prefix + "Foot": hip + foot})
        shoulder = joints["Thorax"] + body.shoulder * (upper @ [0.0, side * 0.875, -0.483])
        elbow, wrist = _limb(upper, _arm_angles(rng, n, style, phase, side, side in busy_arms),
                             side, body.upper_arm, body.forearm, bend_sign=1)
        joints.update({prefix + "Shoulder": shoulder, prefix + "Elbow": shoulder + elbow,
                       prefix + "Wrist": shoulder + wrist})
    return np.stack([joints[name] for name in H36M17_NAMES], axis=1)


def _trajectory(rng, n, speed):
    """Root ground position (n, 2) in mm and heading (n,) in degrees: the subject walks
    along a circle around the volume's centre (standing still when speed is 0), facing
    along the path, with slow turns of the body on top."""
    centre = rng.uniform(-300.0, 300.0, 2)
    radius = rng.uniform(800.0, 1500.0)
    direction = rng.choice([-1.0, 1.0])
    angle = rng.uniform(0.0, 2 * np.pi) + direction * speed * 1000.0 * np.arange(n) / FPS / radius
    ground = centre + radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    heading = np.degrees(angle) + direction * 90.0 + _track(rng, n, (-25.0, 25.0))
    if speed == 0:  # standing subjects face anywhere
        heading = heading + rng.uniform(0.0, 360.0)
    return ground, heading


def generate_sequence(rng, body, action, n_frames):
    """World poses (n_frames, 17, 3) in mm, H36M17_NAMES order, z up, of `body` doing
    `action` (one of skeleton.ACTIONS) inside a 4 m x 4 m capture volume."""
    style = STYLES[action]
    cadence = 0.6 + 0.35 * style.speed  # gait cycles per second
    phase = 2 * np.pi * cadence * np.arange(n_frames) / FPS + rng.uniform(0.0, 2 * np.pi)
    local = _body_frame_pose(rng, n_frames, style, body, phase)
    ground, heading = _trajectory(rng, n_frames, style.speed)
    world = local @ np.swapaxes(_rot(2, heading), 1, 2)
    # Stand on the floor: the lower ankle sits ANKLE_HEIGHT above it, so sitting on a
    # chair (bent legs) lowers the pelvis by itself.
    feet_z = world[:, [H36M17_NAMES.index("LFoot"), H36M17_NAMES.index("RFoot")], 2]
    root = np.concatenate([ground, ANKLE_HEIGHT - feet_z.min(axis=1, keepdims=True)], axis=1)
    return world + root[:, None, :]


def to_h36m32(poses):
    """(n, 17, 3) poses to Human3.6M's (n, 32, 3): the 15 joints that do not move in the
    model get plausible positions (toes, hand ends) or copies, as in the real files."""
    out = np.zeros((len(poses), NUM_JOINTS_32, 3))
    out[:, H36M17_FROM_32] = poses
    hips = poses[:, H36M17_NAMES.index("LHip")] - poses[:, H36M17_NAMES.index("RHip")]
    forward = np.cross(hips, [0.0, 0.0, 1.0])
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    for ankle, toe, tip in ((3, 4, 5), (8, 9, 10)):
        out[:, toe] = out[:, ankle] + 150.0 * forward - [0.0, 0.0, 30.0]
        out[:, tip] = out[:, toe] + 75.0 * forward
    for elbow, wrist, thumb, hand in ((18, 19, 21, 22), (26, 27, 29, 30)):
        forearm = out[:, wrist] - out[:, elbow]
        out[:, thumb] = out[:, wrist] + 0.25 * forearm + [0.0, 0.0, -20.0]
        out[:, hand] = out[:, wrist] + 0.4 * forearm
    for copy, source in ((11, 0), (16, 13), (24, 13), (20, 19), (23, 22), (28, 27), (31, 30)):
        out[:, copy] = out[:, source]
    return out


def detect(rng, poses, camera):
    """Stacked-hourglass-like detections (n, 16, 2) in SH_NAMES order, whole pixels: the
    distorted projection plus Gaussian noise, a few gross errors and left/right swaps."""
    pixels = project_to_pixels(world_to_camera(poses[:, _SH_FROM_17], camera), camera)
    pixels = pixels + rng.normal(0.0, NOISE_PX, pixels.shape)
    gross = rng.random(pixels.shape[:2]) < OUTLIER_RATE
    angle = rng.uniform(0.0, 2 * np.pi, gross.sum())
    pixels[gross] += rng.uniform(20.0, 60.0, angle.size)[:, None] * np.stack(
        [np.cos(angle), np.sin(angle)], axis=1)
    for frame in np.flatnonzero(rng.random(len(pixels)) < SWAP_RATE):
        left, right = _SH_LEFT_RIGHT[rng.integers(len(_SH_LEFT_RIGHT))]
        pixels[frame, [left, right]] = pixels[frame, [right, left]]
    return np.round(pixels)  # the real SH files hold whole pixels


def is_whole_number(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_output_directory(out_dir):
    """A dataset is only written into a new or empty directory: nothing is overwritten."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"output path {out_dir} exists and is not a directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise UserError(f"output directory {out_dir} is not empty; give a new or empty "
                        "directory (nothing was overwritten)")

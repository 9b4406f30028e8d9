"""Optional frame extraction for preprocessing.py --extract_frames: the training set ships
videos (S<s>/Seq<q>/imageSequence/video_<c>.avi); the npz names the frames it keeps as
S<s>/Seq<q>/imageFrames/video_<c>/frame_<000001-based>.jpg. Only this module needs a
video library (OpenCV), and only when asked; nothing else in the project imports it.
"""

import os

from mdm.core.errors import UserError


def open_video_library():
    """The cv2 module, or a UserError saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise UserError("--extract_frames decodes the videos with OpenCV, which is not "
                        "installed: pip install opencv-python-headless (or leave "
                        "--extract_frames off; the npz does not need the images)") from None
    return cv2


def frame_file_name(index):
    """File name of 0-based frame `index` (frames are numbered from 1 on disk)."""
    return f"frame_{index + 1:06d}.jpg"


def extract_frames(video_path, frame_dir, frames):
    """Write the 0-based `frames` of `video_path` as JPEGs into `frame_dir`; returns the
    number written."""
    wanted = {int(index) for index in frames}
    if not wanted:
        return 0
    cv2 = open_video_library()
    if not os.path.isfile(video_path):
        raise UserError(f"video not found: {video_path}")
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        raise UserError(f"{video_path}: cannot open the video")
    os.makedirs(frame_dir, exist_ok=True)
    written, index, last = 0, 0, max(wanted)
    try:
        while index <= last:
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                cv2.imwrite(os.path.join(frame_dir, frame_file_name(index)), image)
                written += 1
            index += 1
    finally:
        capture.release()
    if written < len(wanted):
        raise UserError(f"{video_path}: the video ends after {index} frames but the "
                        f"annotations need frame {last + 1}")
    return written

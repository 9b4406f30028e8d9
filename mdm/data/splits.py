"""Prepared train/test splits of Human3.6M, cached as .npz so that a second run starts
in seconds (issue: "Preprocessing of the full dataset should be cached").

The cache key covers every option that changes the arrays and the size and modification
time of every file read, so an edited or replaced data file is never served stale.
"""

import glob
import hashlib
import json
import logging
import os
import time
import zipfile

import numpy as np

from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.data import cameras as cams
from mdm.data import h36m, mpi_inf_3dhp_npz
from mdm.data.containers import PoseSet, Stream
from mdm.data.normalization import NormStats

LOG = logging.getLogger(__name__)
CACHE_VERSION = 1


def _file_signature(data_dir, subjects, cameras_path):
    entries = []
    for subject in subjects:
        pattern = os.path.join(data_dir, f"S{subject}", "**", "*.h5")
        for path in sorted(glob.glob(pattern, recursive=True)):
            stat = os.stat(path)
            entries.append((os.path.relpath(path, data_dir), stat.st_size, stat.st_mtime_ns))
    stat = os.stat(cameras_path)
    entries.append((os.path.abspath(cameras_path), stat.st_size, stat.st_mtime_ns))
    return entries


def cache_key(options, data_dir, subjects, cameras_path):
    payload = {"version": CACHE_VERSION, "options": options,
               "files": _file_signature(data_dir, subjects, cameras_path)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _to_arrays(pose_set):
    streams = pose_set.streams
    return {
        "poses_2d": pose_set.poses_2d,
        "poses_3d": pose_set.poses_3d,
        "roots": pose_set.roots,
        "stream_index": pose_set.stream_index,
        "frame_index": pose_set.frame_index,
        "stream_subject": np.array([s.subject for s in streams], np.int32),
        "stream_action": np.array([s.action for s in streams], dtype=str),
        "stream_sequence": np.array([s.sequence for s in streams], dtype=str),
        "stream_camera": np.array([s.camera for s in streams], np.int32),
    }


def _from_arrays(arrays):
    streams = [
        Stream(int(subject), str(action), str(sequence), int(camera))
        for subject, action, sequence, camera in zip(
            arrays["stream_subject"], arrays["stream_action"], arrays["stream_sequence"],
            arrays["stream_camera"])
    ]
    return PoseSet(
        poses_2d=arrays["poses_2d"], poses_3d=arrays["poses_3d"], roots=arrays["roots"],
        stream_index=arrays["stream_index"], frame_index=arrays["frame_index"], streams=streams,
    )


def save_pose_set(path, pose_set):
    """Write atomically: a crash mid-write never leaves a truncated cache behind."""
    with atomic_write(path, "wb") as stream:
        np.savez(stream, **_to_arrays(pose_set))


def load_pose_set(path):
    with np.load(path) as arrays:
        return _from_arrays({name: arrays[name] for name in arrays.files})


def _load_or_build(cache_path, build):
    if os.path.isfile(cache_path):
        try:
            return load_pose_set(cache_path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            LOG.warning("ignoring unreadable cache %s (%s)", cache_path, err)
    pose_set = build()
    try:
        save_pose_set(cache_path, pose_set)
    except OSError as err:
        LOG.warning("could not write the data cache %s (%s)", cache_path, err)
    return pose_set


def load_splits(config, need_train=True):
    """(train, test, sh_folder) PoseSets for the configured subjects and actions.

    Training with no test subjects (`--test_subjects ""`, e.g. on all five subjects that
    have 3D) gives test None: no per-epoch evaluation."""
    if config.dataset == mpi_inf_3dhp_npz.DATASET_NAME:  # docs/faithfulness.md §8: npz, no SH folder
        return mpi_inf_3dhp_npz.load_mpi_splits(config, need_train) + ("",)
    data_dir, cameras_path = config.data_dir, config.resolved_cameras_path()
    h36m.check_data_dir(data_dir, cameras_path)
    actions = h36m.define_actions(config.action)
    subjects = {"train": list(config.train_subjects) if need_train else [],
                "test": list(config.test_subjects)}
    present = {split: h36m.present_subjects(data_dir, ids) for split, ids in subjects.items()}
    untested = need_train and not subjects["test"]  # training without an evaluation
    all_present = sorted(set(present["train"]) | set(present["test"]))
    sh_folder = h36m.resolve_sh_folder(data_dir, all_present, config.sh_dir)
    if config.use_sh:
        LOG.info("2D input: stacked-hourglass detections from %s/", sh_folder)
    else:
        LOG.info("2D input: ground-truth projections with distortion")
    camera_table = cams.load_cameras(cameras_path, all_present)
    splits = {}
    for split, split_subjects in present.items():
        if split == "test" and untested:
            continue
        options = {"subjects": split_subjects, "actions": actions, "use_sh": config.use_sh,
                   "sh_folder": sh_folder if config.use_sh else "",
                   "camera_frame": config.camera_frame,
                   "data_dir": os.path.abspath(data_dir)}
        key = cache_key(options, data_dir, split_subjects, cameras_path)
        cache_path = os.path.join(config.resolved_cache_dir(), f"h36m_{split}_{key}.npz")
        start = time.time()
        splits[split] = _load_or_build(cache_path, lambda o=options: h36m.load_split(
            data_dir, o["subjects"], actions, camera_table, config.use_sh, sh_folder,
            config.camera_frame))
        LOG.info("%s split: %d samples from subjects %s (%.1f s)", split, len(splits[split]),
                 split_subjects, time.time() - start)
    if need_train and len(splits["train"]) == 0:
        raise UserError(f"no training samples for subjects {subjects['train']} in {data_dir} "
                        f"({h36m.LAYOUT_HINT})")
    if untested:
        LOG.info("no test subjects: training without a per-epoch evaluation")
        return splits["train"], None, sh_folder
    if len(splits["test"]) == 0:
        raise UserError(f"no test samples for subjects {subjects['test']} in {data_dir} "
                        "(set --test_subjects to subjects present in the data)")
    return splits["train"], splits["test"], sh_folder


def training_statistics(config):
    """NormStats of the training subjects of `config.data_dir`, computed as for training.

    Released checkpoints hold no statistics; the release recomputed them from the
    training split on every run (docs/faithfulness.md §5), so this needs Human3.6M (or
    data in its layout) in config.data_dir.
    """
    train_set, _, _ = load_splits(config)
    LOG.info("normalisation statistics computed from %d training samples of subjects %s in "
             "%s", len(train_set), list(config.train_subjects), config.data_dir)
    return NormStats.from_training(train_set.poses_2d, train_set.poses_3d)

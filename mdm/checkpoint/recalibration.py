"""The recalibration file next to the checkpoints: per-joint factors on the mixture's
spread, fitted by `python -m mdm.calibrate` on subjects the checkpoint did not train on.

`recalibration.json` records the checkpoint step it was fitted for, the subjects and
frames, the objective and one factor per predicted joint (by name). A loader applies it
only to that step (`load_for`); the factors multiply the std of the joint's 3
coordinates in every kernel (mdm/model/mixture.py).
"""

import dataclasses
import json
import logging
import math
import os

import numpy as np

from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError, first_line

LOG = logging.getLogger(__name__)
FILE_NAME = "recalibration.json"


@dataclasses.dataclass(frozen=True)
class Recalibration:
    """A recalibration record and its factors in the model's output order."""

    record: dict
    joint_factors: np.ndarray  # (J_out,) one per predicted joint (skeleton.output_joints)

    @property
    def coordinate_factors(self):
        """(3 J_out,) the factor of each flat output coordinate (x, y, z per joint)."""
        return coordinate_factors(self.joint_factors)

    def factors_17(self, predict_14):
        """(17,) factor per joint of H36M17_NAMES, 1 where the model predicts nothing."""
        factors = np.ones(skeleton.NUM_JOINTS)
        factors[skeleton.output_joints(predict_14)] = self.joint_factors
        return factors

    def summary(self):
        record = self.record
        return (f"recalibrated spread from {record.get('path', FILE_NAME)} (checkpoint-"
                f"{record['checkpoint']}, subjects {record.get('calibration_subjects')}, "
                f"objective {record.get('objective')})")


def coordinate_factors(joint_factors):
    """(J,) per-joint factors -> (3 J,) float32 per flat output coordinate (x, y, z)."""
    return np.repeat(np.asarray(joint_factors, np.float64), 3).astype(np.float32)


def record_path(directory):
    return os.path.join(directory, FILE_NAME)


def make_record(step, joint_factors, predict_14, **details):
    """The JSON record of per-joint factors (J_out,) for checkpoint `step`; `details`
    (subjects, objective, frames, ...) are stored as given."""
    names = [skeleton.H36M17_NAMES[j] for j in skeleton.output_joints(predict_14)]
    factors = np.asarray(joint_factors, np.float64)
    if factors.shape != (len(names),):
        raise ValueError(f"{len(names)} joint factors needed, got shape {factors.shape}")
    return {"checkpoint": int(step), **details,
            "joint_factors": {name: float(f) for name, f in zip(names, factors)}}


def check_writable(directory, replace):
    """A UserError when FILE_NAME exists in `directory` and `replace` is False."""
    path = record_path(directory)
    if os.path.exists(path) and not replace:
        raise UserError(f"{path} exists (fitted for checkpoint-"
                        f"{_existing_step(path)}): give --replace True to overwrite it")


def write_record(directory, record, replace=False):
    """Write `record` as FILE_NAME in `directory`; an existing file is kept (a UserError)
    unless `replace`."""
    check_writable(directory, replace)
    path = record_path(directory)
    try:
        with atomic_write(path) as handle:
            json.dump(record, handle, indent=1)
    except OSError as err:
        raise UserError(f"cannot write {path}: {first_line(err)}") from None
    return path


def _existing_step(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("checkpoint", "?")
    except (OSError, ValueError, AttributeError):
        return "?"


def read_record(directory):
    """The record in `directory`, or None when there is no FILE_NAME."""
    path = record_path(directory)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        step, factors = int(record["checkpoint"]), record["joint_factors"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"cannot read {path}: {first_line(err)}") from None
    if not isinstance(factors, dict):
        raise UserError(f"cannot read {path}: joint_factors must map joint names to factors")
    return dict(record, checkpoint=step, path=path)


def from_record(record, predict_14):
    """The Recalibration of `record` for a model with `predict_14`; a UserError naming a
    missing joint or a factor that is not a positive finite number."""
    factors = []
    for joint in skeleton.output_joints(predict_14):
        name = skeleton.H36M17_NAMES[joint]
        value = record["joint_factors"].get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise UserError(f"{record.get('path', FILE_NAME)}: the factor of {name} must be a "
                            f"positive number (got {value!r})")
        factors.append(float(value))
    return Recalibration(record, np.array(factors))


def load_for(directory, step, predict_14, enabled=True):
    """The Recalibration to apply to checkpoint `step` of `directory`, or None (no file,
    fitted for another step, or `enabled` False); the log says which."""
    record = read_record(directory)
    if record is None:
        return None
    if not enabled:
        LOG.info("%s not applied (--recalibrate False): the network's raw spread",
                 record["path"])
        return None
    if record["checkpoint"] != step:
        LOG.warning("%s was fitted for checkpoint-%d, not checkpoint-%d: not applied",
                    record["path"], record["checkpoint"], step)
        return None
    recalibration = from_record(record, predict_14)
    LOG.info("%s", recalibration.summary())
    return recalibration

"""The recalibration file next to the checkpoints: how the mixture's spread is adjusted,
fitted by `python -m mdm.calibrate` on subjects the checkpoint did not train on.

`recalibration.json` records the checkpoint step it was fitted for, the subjects and
frames (with a k-fold over subjects, each fold's checkpoint), the objective and, per
predicted joint (by name), a width factor on the std of the joint's 3 coordinates in
every kernel (`joint_factors`) and a shrink of the kernel means toward the most probable
one (`joint_shrink`), and one `temperature` on the mixing weights (mdm/model/mixture.py,
`Adjustment`). A file without `joint_shrink` or `temperature` (width factors only) keeps
those at 1. A loader applies it only to that step (`load_for`).
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
from mdm.model.mixture import Adjustment

LOG = logging.getLogger(__name__)
FILE_NAME = "recalibration.json"


@dataclasses.dataclass(frozen=True)
class Recalibration:
    """A recalibration record and its factors in the model's output order."""

    record: dict
    joint_factors: np.ndarray  # (J_out,) width, one per predicted joint (output_joints)
    joint_shrink: np.ndarray  # (J_out,) pull of the kernel means toward the most probable
    temperature: float = 1.0  # on the mixing weights

    @property
    def adjustment(self):
        """The mixture.Adjustment per flat output coordinate (x, y, z per joint)."""
        return Adjustment(coordinate_factors(self.joint_factors),
                          coordinate_factors(self.joint_shrink), float(self.temperature))

    def factors_17(self, predict_14):
        """(17,) factor per joint of H36M17_NAMES, 1 where the model predicts nothing."""
        factors = np.ones(skeleton.NUM_JOINTS)
        factors[skeleton.output_joints(predict_14)] = self.joint_factors
        return factors

    def summary(self):
        record = self.record
        return (f"recalibrated spread from {record.get('path', FILE_NAME)} (checkpoint-"
                f"{record['checkpoint']}, subjects {record.get('calibration_subjects')}, "
                f"objective {record.get('objective')}, temperature {self.temperature:.3g})")


def coordinate_factors(joint_factors):
    """(J,) per-joint factors -> (3 J,) float32 per flat output coordinate (x, y, z)."""
    return np.repeat(np.asarray(joint_factors, np.float64), 3).astype(np.float32)


def record_path(directory):
    return os.path.join(directory, FILE_NAME)


def make_record(step, joint_factors, predict_14, joint_shrink=None, temperature=1.0,
                **details):
    """The JSON record of per-joint width factors and shrinks (J_out,) (None: 1) and the
    weights' temperature for checkpoint `step`; `details` (subjects, objective, frames,
    ...) are stored as given."""
    names = [skeleton.H36M17_NAMES[j] for j in skeleton.output_joints(predict_14)]
    factors = np.asarray(joint_factors, np.float64)
    shrink = np.ones(len(names)) if joint_shrink is None else np.asarray(joint_shrink,
                                                                         np.float64)
    if factors.shape != (len(names),) or shrink.shape != (len(names),):
        raise ValueError(f"{len(names)} joint factors and shrinks needed, got shapes "
                         f"{factors.shape} and {shrink.shape}")
    return {"checkpoint": int(step), **details,
            "joint_factors": {name: float(f) for name, f in zip(names, factors)},
            "joint_shrink": {name: float(a) for name, a in zip(names, shrink)},
            "temperature": float(temperature)}


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
    missing joint, a factor or temperature that is not a positive finite number, or a
    shrink that is not a finite number >= 0."""
    where = record.get("path", FILE_NAME)
    names = [skeleton.H36M17_NAMES[joint] for joint in skeleton.output_joints(predict_14)]
    shrink = record.get("joint_shrink", dict.fromkeys(names, 1.0))
    if not isinstance(shrink, dict):
        raise UserError(f"{where}: joint_shrink must map joint names to numbers")
    factors = [_number(record["joint_factors"].get(name), f"the factor of {name}", where)
               for name in names]
    shrinks = [_number(shrink.get(name), f"the shrink of {name}", where, zero_ok=True)
               for name in names]
    temperature = _number(record.get("temperature", 1.0), "the temperature", where)
    return Recalibration(record, np.array(factors), np.array(shrinks), temperature)


def _number(value, what, where, zero_ok=False):
    """`value` as a float, or a UserError: it must be a finite number > 0 (>= 0 if
    `zero_ok`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind = "a number >= 0" if zero_ok else "a positive number"
        raise UserError(f"{where}: {what} must be {kind} (got {value!r})")
    return float(value)


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

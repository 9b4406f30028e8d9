"""A trained model packaged to ship: `<directory>/checkpoint-<step>.npz` next to the
run's `config.json`, as in `models/<name>/`.

A training checkpoint holds Adam's two moments and the random-generator states besides
the weights, in float32: about 54 MB for the default network. A package holds what
inference needs, the weights (batch-norm averages included) in float16 and the
normalisation statistics in float64, in one numpy archive of about 9 MB. Loading restores
float32 weights; the difference this makes is measured by `python -m mdm.package` when
it writes a package and stated in each model's MODEL.md.

The package is named like a checkpoint (`checkpoint-<step>`, the step it was trained to),
so `--load_dir`/`--load` find it as they find a checkpoint (mdm.checkpoint.store).
"""

import os

import numpy as np

from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.data.normalization import NormStats

SUFFIX = ".npz"
WEIGHTS = "weights/"
NORMALIZATION = "normalization/"
STATS_NAMES = ("mean_2d", "std_2d", "mean_3d", "std_3d")
FLOAT16_LARGEST = float(np.finfo(np.float16).max)


def is_package(prefix):
    """Whether checkpoint `prefix` (directory/checkpoint-<step>) is a package."""
    return os.path.isfile(prefix + SUFFIX)


def _weight_name(variable):
    """The variable's path below the model, e.g. 'stem/dense/kernel'."""
    return variable.path.split("/", 1)[1]


def write_package(model, stats, prefix):
    """Write `prefix`.npz: the model's weights in float16 and `stats`; refuses to replace
    an existing file."""
    path = prefix + SUFFIX
    if os.path.exists(path):
        raise UserError(f"{path} exists; it is not replaced (choose another --out)")
    arrays = {}
    for variable in model.weights:
        values = variable.numpy()
        if np.abs(values).max(initial=0.0) > FLOAT16_LARGEST:
            raise UserError(f"weight {_weight_name(variable)} exceeds the float16 range")
        arrays[WEIGHTS + _weight_name(variable)] = values.astype(np.float16)
    for name, values in stats.as_arrays().items():
        arrays[NORMALIZATION + name] = np.asarray(values, np.float64)
    with atomic_write(path, "wb") as stream:
        np.savez_compressed(stream, **arrays)
    return path


def _read(prefix):
    path = prefix + SUFFIX
    try:
        with np.load(path) as archive:
            return path, {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read the model package {path}: {err}") from None


def restore_package(model, prefix):
    """Assign the package's weights (as float32) to `model`, built with the package's
    architecture (every weight must be there with its shape, and nothing else); returns
    the package's normalisation statistics, from the same single read."""
    path, arrays = _read(prefix)
    stored = {name[len(WEIGHTS):]: values for name, values in arrays.items()
              if name.startswith(WEIGHTS)}
    expected = {_weight_name(variable): variable for variable in model.weights}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise UserError(f"{path} does not fit the model of config.json (missing weights: "
                        f"{', '.join(missing) or 'none'}; unexpected: "
                        f"{', '.join(unexpected) or 'none'})")
    for name, variable in expected.items():
        if tuple(stored[name].shape) != tuple(variable.shape):
            raise UserError(f"{path}: weight {name} has shape {stored[name].shape}, the model "
                            f"of config.json needs {tuple(variable.shape)}")
        variable.assign(stored[name].astype(np.float32))
    return _stats(path, arrays)


def _stats(path, arrays):
    try:
        return NormStats.from_arrays({name: arrays[NORMALIZATION + name]
                                      for name in STATS_NAMES})
    except KeyError as err:
        raise UserError(f"{path} holds no normalisation statistics ({err})") from None

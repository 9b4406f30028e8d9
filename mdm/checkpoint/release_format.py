"""The authors' released TF1 checkpoints (docs/faithfulness.md §5): telling them apart from this
project's checkpoints, the explicit map from every TF1 variable name to its Keras
variable, and loading with a full coverage check.

A release checkpoint is a `tf.compat.v1.train.Saver` file: flat variable names such as
`linear_model/two_linear_0/w2_0`. This project's checkpoints are object-based
(`tf.train.Checkpoint`): their keys end in `/.ATTRIBUTES/VARIABLE_VALUE` and they carry
the object graph. Release checkpoints hold no normalisation statistics; the release
computed them from the training subjects every time it ran, and so does
`mdm.data.splits.training_statistics`.
"""

import logging
import re

import numpy as np
import tensorflow as tf

from mdm.core import skeleton
from mdm.checkpoint import package
from mdm.core.errors import UserError, first_line
from mdm.model.network import build_model

LOG = logging.getLogger(__name__)

RELEASE = "release"
PROJECT = "project"
PACKAGE = "package"  # a packaged model (mdm.checkpoint.package)
SCOPE = "linear_model"
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")
# Training bookkeeping the release saved with the weights, not needed for inference:
# the step counter, the learning-rate variable, Adam's slots and beta powers.
_TRAINING_STATE = re.compile(r"^(global_step|learning_rate|beta[12]_power(_\d+)?)$|/Adam(_\d+)?$")
_SEED_STATE = "seed_generator_state"  # Keras dropout/miss_num RNG state, not a weight
_LISTED = 6  # names shown per kind of problem before "and N more"
# What TensorFlow's checkpoint reader raises on damaged or truncated files.
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError)


def checkpoint_format(path):
    """RELEASE, PROJECT or PACKAGE for the checkpoint prefix `path`: a package by its
    file, the others by their variable names."""
    if package.is_package(path):
        return PACKAGE
    names = set(_variable_shapes(path))
    if f"{SCOPE}/w1" in names:
        return RELEASE
    if _OBJECT_GRAPH_KEY in names:
        return PROJECT
    raise UserError(f"{path} is neither a released TF1 checkpoint (no {SCOPE}/w1) nor one "
                    "written by this project (no object graph)")


def _variable_shapes(path):
    try:
        return dict(tf.train.list_variables(path))
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None


def _read_values(path, names):
    """All of `names` read before anything is assigned, so a damaged file changes nothing."""
    try:
        reader = tf.train.load_checkpoint(path)
        return {name: np.asarray(reader.get_tensor(name)) for name in names}
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None


def _unreadable(path, err):
    return UserError(f"cannot read checkpoint {path}: {first_line(err)}")


def release_name_map(num_layers, batch_norm=True):
    """{Keras variable path below the model, e.g. 'two_linear_0/unit_a/dense/kernel':
    TF1 name, e.g. 'linear_model/two_linear_0/w2_0'}, written out per layer as in the
    release's mix_den_model.py (docs/faithfulness.md §5)."""
    names = _dense("stem/dense", SCOPE, "w1", "b1")
    if batch_norm:
        names.update(_batch_norm("stem/bn", f"{SCOPE}/batch_normalization"))
    for i in range(num_layers):
        block, tf1_block = f"two_linear_{i}", f"{SCOPE}/two_linear_{i}"
        names.update(_dense(f"{block}/unit_a/dense", tf1_block, f"w2_{i}", f"b2_{i}"))
        names.update(_dense(f"{block}/unit_b/dense", tf1_block, f"w3_{i}", f"b3_{i}"))
        if batch_norm:
            names.update(_batch_norm(f"{block}/unit_a/bn", f"{tf1_block}/batch_normalization1{i}"))
            names.update(_batch_norm(f"{block}/unit_b/bn", f"{tf1_block}/batch_normalization2{i}"))
    # w4/b4 means (output j*K + k = coordinate j of kernel k, the layout the Keras model
    # reads too), w5/b5 scales, w6/b6 mixing.
    for head, number in (("means", 4), ("scales", 5), ("mixing", 6)):
        names.update(_dense(head, SCOPE, f"w{number}", f"b{number}"))
    return names


def _dense(keras_layer, tf1_scope, weight, bias):
    return {f"{keras_layer}/kernel": f"{tf1_scope}/{weight}",
            f"{keras_layer}/bias": f"{tf1_scope}/{bias}"}


def _batch_norm(keras_layer, tf1_scope):
    return {f"{keras_layer}/{field}": f"{tf1_scope}/{field}" for field in _BN_FIELDS}


def model_weights(model):
    """{path below the model's name: variable} for every weight of `model` (the Keras
    random-generator states are not weights: the release had none)."""
    prefix = model.name + "/"
    return {variable.path[len(prefix):] if variable.path.startswith(prefix) else variable.path:
            variable for variable in model.variables if not variable.path.endswith(_SEED_STATE)}


def release_architecture(path):
    """The architecture flags a release checkpoint's shapes determine. residual and
    max_norm leave no trace in the variables: the release's defaults (True) are assumed."""
    shapes = _variable_shapes(path)
    for name in ("w1", "w4", "w5"):
        if f"{SCOPE}/{name}" not in shapes:
            raise UserError(f"{path}: released checkpoint without {SCOPE}/{name}")
    input_size, linear_size = shapes[f"{SCOPE}/w1"]
    num_models = shapes[f"{SCOPE}/w5"][1]
    output_dim, remainder = divmod(shapes[f"{SCOPE}/w4"][1], num_models)
    if input_size != 32 or remainder or output_dim not in (42, 48):
        raise UserError(f"{path}: w1 {shapes[f'{SCOPE}/w1']}, w4 {shapes[f'{SCOPE}/w4']} and "
                        f"w5 {shapes[f'{SCOPE}/w5']} do not describe a 32 -> 48K (or 42K) model")
    blocks = {int(m.group(1)) for name in shapes
              for m in [re.match(rf"^{SCOPE}/two_linear_(\d+)/w2_\d+$", name)] if m}
    return {"linear_size": int(linear_size), "num_layers": len(blocks),
            "num_models": int(num_models), "predict_14": output_dim == 42,
            "batch_norm": f"{SCOPE}/batch_normalization/gamma" in shapes,
            "residual": True, "max_norm": True}


def check_release_architecture(path, config):
    """A UserError naming every flag of `config` that the checkpoint's shapes contradict."""
    found = release_architecture(path)
    differences = [f"--{name}={getattr(config, name)} (checkpoint: {value})"
                   for name, value in found.items()
                   if name not in ("residual", "max_norm") and getattr(config, name) != value]
    if differences:
        raise UserError(f"{path} is a released TF1 checkpoint with other architecture flags: "
                        f"{', '.join(differences)}")


def restore_release(model, path, num_layers, batch_norm=True):
    """Assign every weight of `model` from the release checkpoint `path`.

    Every model weight must have its TF1 variable with the same shape, and every TF1
    variable must be used, except the training state (global_step, learning_rate, Adam).
    Otherwise nothing is assigned and a UserError lists what does not match.
    """
    shapes = _variable_shapes(path)
    weights = model_weights(model)
    names = release_name_map(num_layers, batch_norm)
    folded = _folded_biases(weights, names)
    problems = _coverage_problems(weights, names, shapes,
                                  also_used={names[bias] for bias in folded})
    if problems:
        raise UserError(f"{path} does not match the model: {'; '.join(problems)}")
    values = _read_values(path, [names[p] for p in weights] + [names[b] for b in folded])
    for bias, moving_mean in folded.items():
        # In front of batch norm a bias b only shifts what the mean subtracts:
        # BN(x + b) with moving mean m is BN(x) with moving mean m - b (and in training
        # the batch mean absorbs b), so the model without it computes the same function.
        values[names[moving_mean]] = values[names[moving_mean]] - values[names[bias]]
    for keras_path, variable in weights.items():
        variable.assign(values[names[keras_path]].astype(variable.dtype))
    LOG.info("restored %d variables from the released TF1 checkpoint %s%s", len(weights), path,
             f" ({len(folded)} pre-batch-norm biases folded into the moving means)"
             if folded else "")


def _folded_biases(weights, names):
    """{pre-batch-norm bias path: its batch norm's moving-mean path} for the biases the
    model leaves out (--remove_pre_bn_bias) but the release's checkpoint holds."""
    moving_means = {path: path.replace("/dense/bias", "/bn/moving_mean") for path in names
                    if path.endswith("/dense/bias") and path not in weights}
    return {bias: mean for bias, mean in moving_means.items() if mean in weights}


def _coverage_problems(weights, names, shapes, also_used=()):
    """Human-readable lines for unmapped, missing, mis-shaped and unexpected variables
    (`also_used`: TF1 names read without a model variable of their own)."""
    unmapped = sorted(set(weights) - set(names))
    missing = sorted(names[p] for p in weights if p in names and names[p] not in shapes)
    wrong_shape = [f"{names[p]} is {list(shapes[names[p]])} in the checkpoint but "
                   f"{list(v.shape)} in the model" for p, v in sorted(weights.items())
                   if p in names and names[p] in shapes
                   and tuple(shapes[names[p]]) != tuple(v.shape)]
    used = {names[p] for p in weights if p in names} | set(also_used)
    unexpected = sorted(name for name in shapes
                        if name not in used and not _TRAINING_STATE.search(name))
    problems = []
    for label, items in (("model variables without a TF1 name", unmapped),
                         ("missing from the checkpoint", missing),
                         ("shape mismatch", wrong_shape),
                         ("unexpected in the checkpoint", unexpected)):
        if items:
            shown = ", ".join(items[:_LISTED])
            more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
            problems.append(f"{label}: {shown}{more}")
    return problems


def load_release_model(path, config):
    """The Keras model for `config` with the release checkpoint's weights."""
    check_release_architecture(path, config)
    model = build_model(config, skeleton.output_dim(config.predict_14))
    restore_release(model, path, config.num_layers, config.batch_norm)
    return model

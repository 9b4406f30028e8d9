"""The biases that feed batch norm, in this project and in the release's TF1 graph
(docs/faithfulness.md §11, item 3).

  python benchmarks/bias_drift.py --data_dir /tmp/h36m --action Walking --use_sh False \
      --num_models 1 --dropout 1.0 --work_dir /tmp/drift [--json FILE]

Trains the same network twice for --epochs on the same batches from the same initial
weights: once with this project's training loop (mdm.train.loop.train, the command
line's code), once with the release's graph rebuilt in tf.compat.v1
(benchmarks/release_graph.py). Then, for every linear layer followed by batch norm:

- the RMS of its bias gradient, from Adam's second moment (sqrt of the bias-corrected
  v, averaged over the layer's units): analytically the gradient is 0, so this is the
  rounding noise that Adam normalises into steps;
- Adam's step size for that bias relative to the learning rate, |m_hat| / (sqrt(v_hat)
  + eps), the median over units (about 0.2 for zero-mean noise, 1 for a steady push);
- the lag of batch norm's moving mean: median over units of |moving mean - mean of the
  layer's input over --lag_samples training samples| / moving std, the input computed
  as in training (batch statistics, no dropout);

and the per-action Protocol #1 error on the test subjects (best, most probable).

The gradient check (--gradient_batches) then puts this project's trained weights into the
release's graph and compares the two implementations' bias gradients on the same batches.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from release_graph import ReleaseGraph  # the script's own folder, benchmarks/

from mdm.checkpoint import release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.checkpoint.loading import load_model
from mdm.core import skeleton
from mdm.core.config import Config
from mdm.data.pipeline import training_dataset
from mdm.evaluate import prediction
from mdm.model.network import build_model
from mdm.train import loop as training_loop
from mdm.train.optimizer import make_optimizer

ADAM_EPSILON = 1e-8


def pre_bn_bias_paths(num_layers):
    """Keras paths (below the model) of the biases that feed batch norm: every linear
    unit's, in the release's layer order."""
    return [path for path in release_format.release_name_map(num_layers, batch_norm=True)
            if path.endswith("/dense/bias")]


def _unit_with_batch_statistics(unit, hidden):
    """The unit as in training (batch statistics, no dropout), without touching the
    moving averages; returns (output, mean of the batch-norm input)."""
    pre_bn = unit.dense(hidden)
    mean, variance = tf.nn.moments(pre_bn, [0])
    norm = unit.norm
    normalised = tf.nn.batch_normalization(pre_bn, mean, variance, norm.beta, norm.gamma,
                                           norm.epsilon)
    return tf.nn.relu(normalised), mean.numpy()


def moving_mean_lag(model, inputs):
    """{unit: median over units of |moving mean - batch mean| / moving std}."""
    lags = {}
    hidden, lags["stem"] = _lag_of(model.stem, tf.constant(inputs))
    for block in model.blocks():
        first, lags[f"{block.name}/unit_a"] = _lag_of(block.first, hidden)
        second, lags[f"{block.name}/unit_b"] = _lag_of(block.second, first)
        hidden = hidden + second if block.residual else second
    return lags


def _lag_of(unit, hidden):
    output, batch_mean = _unit_with_batch_statistics(unit, hidden)
    moving_std = np.sqrt(unit.norm.moving_variance.numpy())
    return output, float(np.median(np.abs(unit.norm.moving_mean.numpy() - batch_mean)
                                   / moving_std))


def _adam_summary(first_moment, second_moment, step):
    """(RMS gradient, median |m_hat| / (sqrt(v_hat) + eps)) from Adam's slots."""
    m_hat = first_moment / (1.0 - 0.9 ** step)
    v_hat = second_moment / (1.0 - 0.999 ** step)
    rms = float(np.sqrt(np.mean(v_hat)))
    ratio = float(np.median(np.abs(m_hat) / (np.sqrt(v_hat) + ADAM_EPSILON)))
    return rms, ratio


def project_adam(config, path):
    """{bias path: (RMS gradient, step ratio)} from a checkpoint of this project."""
    model = build_model(config, skeleton.output_dim(config.predict_14))
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)
    checkpoint_store.CheckpointStore(os.path.dirname(path), model, optimizer).restore(path)
    weights = release_format.model_weights(model)
    step = int(optimizer.iterations.numpy())
    summary = {}
    for bias_path in pre_bn_bias_paths(config.num_layers):
        if bias_path not in weights:  # --remove_pre_bn_bias
            continue
        index = optimizer._get_variable_index(weights[bias_path])  # pylint: disable=protected-access
        summary[bias_path] = _adam_summary(optimizer._momentums[index].numpy(),  # pylint: disable=protected-access
                                           optimizer._velocities[index].numpy(), step)
    return summary


def release_adam(config, path):
    """{bias path: (RMS gradient, step ratio)} from a release-format checkpoint."""
    reader = tf.train.load_checkpoint(path)
    names = release_format.release_name_map(config.num_layers)
    step = int(reader.get_tensor("global_step"))
    return {bias_path: _adam_summary(reader.get_tensor(names[bias_path] + "/Adam"),
                                     reader.get_tensor(names[bias_path] + "/Adam_1"), step)
            for bias_path in pre_bn_bias_paths(config.num_layers)}


def train_release(config, inputs, targets, directory):
    """The release graph from the project's seeded initial weights, on the project's
    batches (same seed and order); returns the checkpoint path."""
    keras.utils.set_random_seed(config.seed)
    initial = build_model(config, targets.shape[1])
    names = release_format.release_name_map(config.num_layers, config.batch_norm)
    graph = ReleaseGraph(output_dim=targets.shape[1], linear_size=config.linear_size,
                         num_layers=config.num_layers, num_models=config.num_models,
                         dropout=config.dropout, dirichlet_prior=config.dirichlet_prior,
                         learning_rate=config.learning_rate, seed=config.seed)
    graph.assign({names[path]: variable.numpy()
                  for path, variable in release_format.model_weights(initial).items()})
    data, _ = training_dataset(inputs, targets, config.batch_size, config.seed, config.epochs)
    for batch_inputs, batch_targets in data.as_numpy_iterator():
        graph.step(batch_inputs, batch_targets)
    path = graph.save(directory)
    graph.close()
    return path


def gradient_check(config, path, inputs, targets, batches):
    """{implementation: {bias path: RMS gradient}} of both implementations at the same
    weights (this project's trained ones) on the same `batches` training batches. The
    gradient is analytically 0, so both are rounding noise."""
    model, _ = load_model(os.path.dirname(path), int(path.rsplit("-", 1)[1]), config)
    weights = release_format.model_weights(model)
    names = release_format.release_name_map(config.num_layers)
    graph = ReleaseGraph(output_dim=targets.shape[1], linear_size=config.linear_size,
                         num_layers=config.num_layers, num_models=config.num_models,
                         dropout=config.dropout, dirichlet_prior=config.dirichlet_prior)
    graph.assign({names[p]: variable.numpy() for p, variable in weights.items()})
    biases = pre_bn_bias_paths(config.num_layers)
    averages = [v for v in model.variables if "moving" in v.path]
    kept = [v.numpy() for v in averages]
    squares = {"project": np.zeros(len(biases)), "release": np.zeros(len(biases))}
    rng = np.random.default_rng(config.seed)
    for _ in range(batches):
        rows = rng.permutation(len(inputs))[: config.batch_size]
        x, y = tf.constant(inputs[rows]), tf.constant(targets[rows])
        with tf.GradientTape() as tape:
            loss = model.compute_loss_value(y, model(x, training=True))
        ours = tape.gradient(loss, [weights[p] for p in biases])
        for variable, value in zip(averages, kept):  # a training call moved them
            variable.assign(value)
        theirs = graph.bias_gradients(inputs[rows], targets[rows])
        squares["project"] += [float(np.mean(g.numpy() ** 2)) for g in ours]
        squares["release"] += [float(np.mean(theirs[names[p]] ** 2)) for p in biases]
    graph.close()
    return {name: dict(zip(biases, np.sqrt(total / batches).tolist()))
            for name, total in squares.items()}


def evaluate(model, stats, test_set, config):
    predictor = prediction.make_predictor(model, jit_compile=False)
    results, _ = prediction.evaluate(predictor, stats, test_set, config, procrustes=False)
    return {column: results["Average"][column] for column in ("best", "most_probable")}


def measure(name, config, path, inputs, test_set, lag_samples):
    model, stats = load_model(os.path.dirname(path), int(path.rsplit("-", 1)[1]), config)
    rows = rng_rows(len(inputs), lag_samples, config.seed)
    adam = (release_adam if name == "release" else project_adam)(config, path)
    figures = {"mpjpe_p1": evaluate(model, stats, test_set, config),
               "lag": moving_mean_lag(model, inputs[rows]),
               "bias_grad_rms": {path: rms for path, (rms, _) in adam.items()},
               "adam_step_ratio": {path: ratio for path, (_, ratio) in adam.items()}}
    figures["lag_median"] = float(np.median(list(figures["lag"].values())))
    if adam:
        figures["bias_grad_rms_median"] = float(np.median(list(figures["bias_grad_rms"].values())))
    return figures


def rng_rows(count, samples, seed):
    return np.sort(np.random.default_rng(seed).permutation(count)[:samples])


def add_run_arguments(parser, use_sh="False", num_models=1, dropout=1.0):
    """The flags of the runs `config_from` builds (shared with seed_spread.py)."""
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--work_dir", required=True, help="checkpoints of the runs")
    parser.add_argument("--train_subjects", default="1,5,6,7")
    parser.add_argument("--test_subjects", default="8")
    parser.add_argument("--action", default="Walking")
    parser.add_argument("--use_sh", default=use_sh, choices=("True", "False"))
    parser.add_argument("--num_models", type=int, default=num_models)
    parser.add_argument("--dropout", type=float, default=dropout)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--linear_size", type=int, default=1024)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--remove_pre_bn_bias", default="False", choices=("True", "False"),
                        help="for this project's run (the release always had the biases)")
    parser.add_argument("--lag_samples", type=int, default=8192)
    parser.add_argument("--implementations", default="project,release")
    parser.add_argument("--gradient_batches", type=int, default=20,
                        help="batches of the gradient check at identical weights (0: none)")
    parser.add_argument("--json", default="")
    return parser.parse_args(argv)


def config_from(args, name):
    subjects = lambda text: tuple(int(s) for s in text.split(","))  # noqa: E731
    return Config(data_dir=args.data_dir, train_dir=os.path.join(args.work_dir, name),
                  action=args.action,
                  train_subjects=subjects(args.train_subjects),
                  test_subjects=subjects(args.test_subjects), use_sh=args.use_sh == "True",
                  num_models=args.num_models, dropout=args.dropout, epochs=args.epochs,
                  seed=args.seed, verbose=0, cache_dir=os.path.join(args.work_dir, "cache"),
                  linear_size=args.linear_size,
                  remove_pre_bn_bias=args.remove_pre_bn_bias == "True" and name == "project")


def write_json(path, figures):
    """`figures` to `path`, when one is given (--json)."""
    if path:
        with open(path, "w") as handle:
            json.dump(figures, handle, indent=2)


def train_one(args, name):
    """Train implementation `name` ("project" or "release") as `args` say; returns
    (config, checkpoint path, training inputs and targets, test set)."""
    config = config_from(args, name)
    inputs, targets, _, test_set = training_loop.prepare_training_arrays(config)
    if name == "release":
        path = train_release(config, inputs, targets, config.train_dir)
    else:
        training_loop.train(config)
        step = checkpoint_store.available_steps(config.train_dir)[-1]
        path = os.path.join(config.train_dir, f"checkpoint-{step}")
    return config, path, inputs, targets, test_set


def main(argv=None):
    args = parse_args(argv)
    figures = {"command": " ".join([sys.argv[0]] + (argv or sys.argv[1:]))}
    for name in args.implementations.split(","):
        config, path, inputs, targets, test_set = train_one(args, name)
        figures[name] = measure(name, config, path, inputs, test_set, args.lag_samples)
        print(name, json.dumps(figures[name], indent=1), flush=True)
        if name == "project" and args.gradient_batches and not config.remove_pre_bn_bias:
            figures["gradient_check"] = gradient_check(config, path, inputs, targets,
                                                       args.gradient_batches)
            print("gradient_check", json.dumps(figures["gradient_check"], indent=1),
                  flush=True)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

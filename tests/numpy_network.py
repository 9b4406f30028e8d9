"""The network of docs/faithfulness.md §2 in numpy, from a dict of weights named by their
path below the model ('stem/dense/kernel', ...): the tests' independent forward pass."""

import numpy as np


def weights_of(model):
    """The model's weights as that dict, in float64."""
    return {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in model.weights}


def forward(w, inputs, num_models):
    """(means (N, K, D), scales (N, K), weights (N, K)) for (N, 32) normalised inputs;
    a unit without a dense bias (--remove_pre_bn_bias) adds none."""

    def dense(x, name, clip=True):
        kernel = w[f"{name}/kernel"]
        scale = min(1.0, 1.0 / np.linalg.norm(kernel)) if clip else 1.0
        return x @ (kernel * scale) + w.get(f"{name}/bias", 0.0)

    def unit(x, name):
        y = dense(x, f"{name}/dense")
        y = (y - w[f"{name}/bn/moving_mean"]) / np.sqrt(w[f"{name}/bn/moving_variance"] + 1e-3)
        return np.maximum(y * w[f"{name}/bn/gamma"] + w[f"{name}/bn/beta"], 0.0)

    hidden = unit(inputs, "stem")
    block = 0
    while f"two_linear_{block}/unit_a/dense/kernel" in w:
        name = f"two_linear_{block}"
        hidden = hidden + unit(unit(hidden, f"{name}/unit_a"), f"{name}/unit_b")
        block += 1
    flat = dense(hidden, "means")
    means = flat.reshape(len(inputs), -1, num_models).transpose(0, 2, 1)
    raw = dense(hidden, "scales")
    scales = np.where(raw > 0, raw, np.expm1(raw)) + 1.0
    logits = dense(hidden, "mixing", clip=False)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    return means, scales, weights / weights.sum(1, keepdims=True)


def read_package(path):
    """(weights as float64 by name, statistics by name) of a packaged model's .npz, read
    with numpy alone."""
    with np.load(path) as archive:
        weights = {name[len("weights/"):]: archive[name].astype(np.float64)
                   for name in archive.files if name.startswith("weights/")}
        stats = {name[len("normalization/"):]: archive[name] for name in archive.files
                 if name.startswith("normalization/")}
    return weights, stats

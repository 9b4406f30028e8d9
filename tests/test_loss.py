"""mdm.model.loss.mixture_loss against a brute-force float64 numpy log-sum-exp of the mixture
negative log-likelihood of docs/faithfulness.md §2, with and without the Dirichlet prior."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from mdm.model import loss as objective


def _reference_loss(targets, means, scales, weights, prior):
    """-mean_b log sum_k a_k N(y_b; mu_bk, s_bk^2 I) [- mean_b sum_k log a_bk], float64."""
    targets, means = np.asarray(targets, np.float64), np.asarray(means, np.float64)
    s = np.clip(np.asarray(scales, np.float64), 1e-15, 1e15)
    a = np.clip(np.asarray(weights, np.float64), 1e-8, 1.0)
    batch, num_models, dim = means.shape
    total = 0.0
    penalty = 0.0
    for b in range(batch):
        exponents = []
        for k in range(num_models):
            squared = sum((targets[b, d] - means[b, k, d]) ** 2 for d in range(dim))
            exponents.append(np.log(a[b, k]) - 0.5 * dim * np.log(2 * np.pi)
                             - dim * np.log(s[b, k]) - squared / (2 * s[b, k] ** 2))
        top = max(exponents)
        total += -(top + np.log(sum(np.exp(e - top) for e in exponents)))
        penalty += -sum((2.0 - 1.0) * np.log(a[b, k]) for k in range(num_models))
    loss = total / batch
    return loss + penalty / batch if prior else loss


def _inputs(seed, batch=6, num_models=5, dim=48, scale_range=(0.3, 2.0)):
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(batch, dim)).astype(np.float32)
    means = (targets[:, None] + rng.normal(size=(batch, num_models, dim))).astype(np.float32)
    scales = rng.uniform(*scale_range, size=(batch, num_models)).astype(np.float32)
    logits = rng.normal(size=(batch, num_models)) * 2
    weights = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    return targets, means, scales, weights


@pytest.mark.parametrize("prior", [True, False])
@pytest.mark.parametrize("seed,scale_range", [(0, (0.3, 2.0)), (1, (0.05, 0.3)), (2, (1.0, 30.0))])
def test_loss_matches_bruteforce_numpy(prior, seed, scale_range):
    targets, means, scales, weights = _inputs(seed, scale_range=scale_range)
    loss = objective.mixture_loss(targets, means, scales, weights, dirichlet_prior=prior)
    assert loss.dtype == tf.float32 and loss.shape == ()
    expected = _reference_loss(targets, means, scales, weights, prior)
    assert_allclose(float(loss), expected, rtol=1e-6, atol=1e-5)


def test_prior_term_is_minus_sum_log_weights():
    targets, means, scales, weights = _inputs(3)
    with_prior = float(objective.mixture_loss(targets, means, scales, weights, True))
    without = float(objective.mixture_loss(targets, means, scales, weights, False))
    expected = -np.mean(np.sum(np.log(np.clip(weights.astype(np.float64), 1e-8, 1)), axis=1))
    assert_allclose(with_prior - without, expected, rtol=1e-5)
    assert expected > 0


def test_clipping_of_scales_and_weights():
    targets, means, scales, weights = _inputs(4, batch=3, num_models=3, dim=4)
    scales[0, 0] = 1e-30  # -> 1e-15
    scales[1, 1] = 0.0  # elu + 1 can underflow to 0 in float32
    scales[2, 2] = 1e30  # -> 1e15
    weights[0] = [1.0, 0.0, 0.0]  # zeros -> 1e-8
    means[1, 1] = targets[1]
    for prior in (True, False):
        loss = float(objective.mixture_loss(targets, means, scales, weights, prior))
        expected = _reference_loss(targets, means, scales, weights, prior)
        assert np.isfinite(loss)
        assert_allclose(loss, expected, rtol=1e-5)


def test_single_component_is_a_gaussian_nll():
    rng = np.random.default_rng(5)
    targets = rng.normal(size=(4, 48)).astype(np.float32)
    means = rng.normal(size=(4, 1, 48)).astype(np.float32)
    scales = np.full((4, 1), 0.7, np.float32)
    weights = np.ones((4, 1), np.float32)
    loss = float(objective.mixture_loss(targets, means, scales, weights, False))
    residual = targets.astype(np.float64) - means[:, 0]
    nll = (0.5 * 48 * np.log(2 * np.pi) + 48 * np.log(0.7)
           + np.sum(residual ** 2, axis=1) / (2 * 0.7 ** 2))
    assert_allclose(loss, nll.mean(), rtol=1e-6)


def _loss_and_gradients(targets, means, scales, weights, prior):
    means, scales, weights = (tf.Variable(v) for v in (means, scales, weights))
    with tf.GradientTape() as tape:
        loss = objective.mixture_loss(tf.constant(targets), means, scales, weights, prior)
    return loss, tape.gradient(loss, [means, scales, weights])


def test_gradient_wrt_means_matches_responsibilities():
    targets, means, scales, weights = _inputs(6, batch=3, num_models=4, dim=5)
    _, (grad_means, _, _) = _loss_and_gradients(targets, means, scales, weights, True)
    # d/dmu_k of -mean_b log p = -(1/B) r_bk (y_b - mu_bk) / s_bk^2.
    t, m = targets.astype(np.float64), means.astype(np.float64)
    s, a = scales.astype(np.float64), weights.astype(np.float64)
    log_terms = (np.log(a) - 5 * np.log(s)
                 - np.sum((t[:, None] - m) ** 2, axis=-1) / (2 * s ** 2))
    resp = np.exp(log_terms - log_terms.max(1, keepdims=True))
    resp /= resp.sum(1, keepdims=True)
    expected = -(resp[..., None] * (t[:, None] - m) / s[..., None] ** 2) / 3
    assert_allclose(grad_means.numpy(), expected, rtol=1e-4, atol=1e-6)


EXTREME_CASES = {
    "huge residuals": dict(target=1e30, mean=-1e30, scale=1.0, weights=[0.2] * 5),
    "tiny scales": dict(target=1.0, mean=-1.0, scale=1e-20, weights=[0.2] * 5),
    "huge scales": dict(target=1.0, mean=0.0, scale=1e20, weights=[0.2] * 5),
    "huge residuals, tiny scales": dict(target=3e38, mean=-3e38, scale=1e-20,
                                        weights=[1.0, 0, 0, 0, 0]),
    "zero weights": dict(target=0.5, mean=0.0, scale=1.0, weights=[0, 0, 1.0, 0, 0]),
    "zero scale": dict(target=0.5, mean=0.0, scale=0.0, weights=[0, 0.5, 0.5, 0, 0]),
}


@pytest.mark.parametrize("prior", [True, False])
@pytest.mark.parametrize("case", sorted(EXTREME_CASES))
def test_extreme_inputs_give_finite_loss_and_gradients(case, prior):
    spec = EXTREME_CASES[case]
    batch, num_models, dim = 2, 5, 48
    targets = np.full((batch, dim), spec["target"], np.float32)
    means = np.full((batch, num_models, dim), spec["mean"], np.float32)
    means[:, 1] = targets  # one component on the target, the others far away
    scales = np.full((batch, num_models), spec["scale"], np.float32)
    weights = np.tile(np.array(spec["weights"], np.float32), (batch, 1))
    loss, gradients = _loss_and_gradients(targets, means, scales, weights, prior)
    assert np.isfinite(float(loss)), case
    for gradient in gradients:
        assert gradient is not None
        assert np.all(np.isfinite(gradient.numpy())), case
    expected = _reference_loss(targets, means, scales, weights, prior)
    if abs(expected) < 1e29:
        assert_allclose(float(loss), expected, rtol=1e-5)
    else:
        assert float(loss) >= 1e29


_finite = dict(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=50, deadline=None, database=None)
@given(
    data=st.data(),
    magnitude=st.sampled_from([1.0, 1e3, 1e10, 1e20, 1e30, 3e38]),
    prior=st.booleans(),
)
def test_property_finite_for_extreme_finite_values(data, magnitude, prior):
    batch, num_models, dim = 2, 3, 4
    bound = float(np.float32(magnitude))
    value = st.floats(min_value=-bound, max_value=bound, **_finite)
    targets = np.array(data.draw(st.lists(value, min_size=batch * dim, max_size=batch * dim)),
                       np.float32).reshape(batch, dim)
    means = np.array(data.draw(st.lists(value, min_size=batch * num_models * dim,
                                        max_size=batch * num_models * dim)),
                     np.float32).reshape(batch, num_models, dim)
    scale = st.one_of(st.sampled_from([0.0, 1e-38, 1e-20, 1e-15, 1.0, 1e15, 1e20, 3e38]),
                      st.floats(min_value=0.0, max_value=float(np.float32(3e38)), **_finite))
    scales = np.array(data.draw(st.lists(scale, min_size=batch * num_models,
                                         max_size=batch * num_models)),
                      np.float32).reshape(batch, num_models)
    raw = np.array(data.draw(st.lists(st.sampled_from([0.0, 1e-12, 1e-3, 0.5, 1.0, 7.0]),
                                      min_size=batch * num_models,
                                      max_size=batch * num_models)),
                   np.float64).reshape(batch, num_models)
    raw[:, 0] += 1e-3  # every row has some mass
    weights = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)

    loss, gradients = _loss_and_gradients(targets, means, scales, weights, prior)
    assert np.isfinite(float(loss))
    for gradient in gradients:
        assert np.all(np.isfinite(gradient.numpy()))
    expected = _reference_loss(targets, means, scales, weights, prior)
    if np.isfinite(expected) and abs(expected) < 1e29:
        assert_allclose(float(loss), expected, rtol=1e-5, atol=1e-4)

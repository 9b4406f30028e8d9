"""The authors' TF1 training graph, rebuilt with tf.compat.v1 as a reference to measure
this project against: the same step time (benchmarks/bench.py, step_breakdown.py) and
the same pre-batch-norm bias behaviour (benchmarks/bias_drift.py).

It follows the release's mix_den_model.py (docs/faithfulness.md §2): variables made with
tf.compat.v1.get_variable under `linear_model/` with the release's names and Kaiming
truncated-normal initialiser, `tf.matmul(x, tf.clip_by_norm(W, 1)) + b`, TF1's non-fused
`tf.layers.batch_normalization` (batch moments by tf.nn.moments, a tf.cond on the
`isTraining` placeholder, moving averages by assign_sub in UPDATE_OPS), ReLU,
`tf.nn.dropout` with a keep-probability placeholder, the concatenated [means, scales,
mixing] output read back by a reshape to (D + 2, K), the float32 mixture loss with
log-sum-exp and the Dirichlet prior, and tf.compat.v1.train.AdamOptimizer on the
continuously decayed learning rate, run after the batch-norm updates. A step feeds numpy
batches through feed_dict and fetches the loss, the two summaries and all the mixture
parameters back, as the release's `LinearModel.step` did.

Everything lives in its own tf.Graph and tf.compat.v1.Session, so it runs in the same
process as the project's TF2 code.
"""

import os

import numpy as np
import tensorflow as tf

SCOPE = "linear_model"
BN_MOMENTUM = 0.99  # tf.layers.batch_normalization's defaults, which the release used
BN_EPSILON = 1e-3


def _kaiming(shape, dtype=tf.float32, partition_info=None):  # pylint: disable=unused-argument
    """The release's initialiser: truncated normal times sqrt(2 / shape[0])."""
    return tf.random.truncated_normal(shape, dtype=dtype) * tf.sqrt(2.0 / float(shape[0]))


class ReleaseGraph:
    """One release training graph with its session. `step(inputs, targets)` is one
    training step of the release; `bias_names()` and friends expose what
    benchmarks/bias_drift.py compares."""

    def __init__(self, output_dim=48, linear_size=1024, num_layers=2, num_models=5,
                 dropout=0.5, max_norm=True, batch_norm=True, residual=True,
                 dirichlet_prior=True, learning_rate=1e-3, seed=0):
        self.output_dim, self.num_models, self.keep_prob = output_dim, num_models, dropout
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.set_random_seed(seed)
            self.inputs = tf.compat.v1.placeholder(tf.float32, [None, 32], "inputs")
            self.targets = tf.compat.v1.placeholder(tf.float32, [None, output_dim], "targets")
            self.is_training = tf.compat.v1.placeholder(tf.bool, [], "isTraining")
            self.keep = tf.compat.v1.placeholder(tf.float32, [], "dropout_keep_prob")
            self.pre_bn = {}  # bias variable name -> the (batch, units) tensor batch norm sees
            with tf.compat.v1.variable_scope(SCOPE):
                self.outputs = self._network(linear_size, num_layers, max_norm, batch_norm,
                                             residual)
            self.loss = self._loss(dirichlet_prior)
            self._optimizer(learning_rate)
            self.summaries = [tf.compat.v1.summary.scalar("loss/loss", self.loss),
                              tf.compat.v1.summary.scalar("learning_rate/learning_rate",
                                                          self.learning_rate)]
            self.session = tf.compat.v1.Session(graph=self.graph)
            self.session.run(tf.compat.v1.global_variables_initializer())
            self.saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables(),
                                                  max_to_keep=None)

    # --- the graph -------------------------------------------------------------------

    def _linear(self, x, weight, bias, units, max_norm, clip=True):
        w = tf.compat.v1.get_variable(weight, [int(x.shape[1]), units], initializer=_kaiming)
        b = tf.compat.v1.get_variable(bias, [units], initializer=_kaiming)
        w = tf.clip_by_norm(w, 1) if (max_norm and clip) else w
        return tf.matmul(x, w) + b

    def _unit(self, x, weight, bias, units, max_norm, batch_norm, bn_name):
        y = self._linear(x, weight, bias, units, max_norm)
        if batch_norm:
            self.pre_bn[f"{tf.compat.v1.get_variable_scope().name}/{bias}"] = y
            y = self._batch_norm(y, bn_name)
        # tf.nn.dropout(y, keep_prob) of TF1, spelled with the rate it computes.
        return tf.compat.v1.nn.dropout(tf.nn.relu(y), rate=1.0 - self.keep)

    def _batch_norm(self, y, name):
        """TF1's non-fused tf.layers.batch_normalization for (batch, units) inputs."""
        units = int(y.shape[1])
        with tf.compat.v1.variable_scope(name):
            gamma = tf.compat.v1.get_variable("gamma", [units], initializer=tf.ones_initializer())
            beta = tf.compat.v1.get_variable("beta", [units], initializer=tf.zeros_initializer())
            moving_mean = tf.compat.v1.get_variable(
                "moving_mean", [units], initializer=tf.zeros_initializer(), trainable=False)
            moving_variance = tf.compat.v1.get_variable(
                "moving_variance", [units], initializer=tf.ones_initializer(), trainable=False)
            batch_mean, batch_variance = tf.nn.moments(y, [0])
            mean = tf.cond(self.is_training, lambda: batch_mean, lambda: moving_mean)
            variance = tf.cond(self.is_training, lambda: batch_variance,
                               lambda: moving_variance)
            for variable, value in ((moving_mean, batch_mean), (moving_variance, batch_variance)):
                update = tf.cond(self.is_training,
                                 lambda v=variable, x=value: _moving_average(v, x),
                                 lambda v=variable: tf.identity(v))
                tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
        return tf.nn.batch_normalization(y, mean, variance, beta, gamma, BN_EPSILON)

    def _network(self, linear_size, num_layers, max_norm, batch_norm, residual):
        unit = dict(units=linear_size, max_norm=max_norm, batch_norm=batch_norm)
        y = self._unit(self.inputs, "w1", "b1", bn_name="batch_normalization", **unit)
        for i in range(num_layers):
            with tf.compat.v1.variable_scope(f"two_linear_{i}"):
                h = self._unit(y, f"w2_{i}", f"b2_{i}", bn_name=f"batch_normalization1{i}",
                               **unit)
                h = self._unit(h, f"w3_{i}", f"b3_{i}", bn_name=f"batch_normalization2{i}",
                               **unit)
                y = y + h if residual else h
        k = self.num_models
        mu = self._linear(y, "w4", "b4", self.output_dim * k, max_norm)
        sigma = tf.nn.elu(self._linear(y, "w5", "b5", k, max_norm)) + 1
        alpha = tf.nn.softmax(self._linear(y, "w6", "b6", k, max_norm, clip=False), axis=1)
        return tf.concat([mu, sigma, alpha], axis=1)

    def _loss(self, dirichlet_prior):
        """The release's mean_log_Gaussian_like + Dirichlet_loss, in float32."""
        dim, k = self.output_dim, self.num_models
        components = tf.reshape(self.outputs, [-1, dim + 2, k])
        means, sigma, alpha = components[:, :dim, :], components[:, dim, :], components[:, dim + 1, :]
        alpha = tf.clip_by_value(alpha, 1e-8, 1.0)
        sigma = tf.clip_by_value(sigma, 1e-15, 1e15)
        exponent = (tf.math.log(alpha) - 0.5 * dim * np.log(2 * np.pi) - dim * tf.math.log(sigma)
                    - tf.reduce_sum((tf.expand_dims(self.targets, 2) - means) ** 2, axis=1)
                    / (2 * sigma ** 2))
        x_max = tf.reduce_max(exponent, axis=1, keepdims=True)
        log_gauss = tf.math.log(tf.reduce_sum(tf.exp(exponent - x_max), axis=1)) + tf.squeeze(
            x_max, 1)
        loss = -tf.reduce_mean(log_gauss)
        if dirichlet_prior:
            loss += -tf.reduce_mean(tf.reduce_sum((2.0 - 1.0) * tf.math.log(alpha), axis=1))
        return loss

    def _optimizer(self, learning_rate):
        self.global_step = tf.compat.v1.Variable(0, trainable=False, name="global_step")
        base_rate = tf.compat.v1.Variable(float(learning_rate), trainable=False,
                                          name="learning_rate")
        self.learning_rate = tf.compat.v1.train.exponential_decay(
            base_rate, self.global_step, 100000, 0.96)
        optimizer = tf.compat.v1.train.AdamOptimizer(self.learning_rate)
        with tf.control_dependencies(tf.compat.v1.get_collection(
                tf.compat.v1.GraphKeys.UPDATE_OPS)):
            gradients = optimizer.compute_gradients(self.loss)
            self.updates = optimizer.apply_gradients(gradients, global_step=self.global_step)
        self.gradients = {variable.op.name: gradient for gradient, variable in gradients}

    # --- running it ------------------------------------------------------------------

    def step(self, inputs, targets):
        """One training step on numpy batches; returns (loss, the (B, (D + 2) K) outputs)."""
        feed = {self.inputs: inputs, self.targets: targets, self.is_training: True,
                self.keep: self.keep_prob}
        _, loss, _, _, outputs = self.session.run(
            [self.updates, self.loss] + self.summaries + [self.outputs], feed)
        return loss, outputs

    def bias_gradients(self, inputs, targets):
        """{bias name: its gradient} of the biases that feed batch norm, without a step."""
        names = list(self.pre_bn)
        feed = {self.inputs: inputs, self.targets: targets, self.is_training: True,
                self.keep: self.keep_prob}
        values = self.session.run([self.gradients[name] for name in names], feed)
        return dict(zip(names, values))

    def variable_values(self):
        """{TF1 variable name: value} of every global variable."""
        with self.graph.as_default():
            variables = tf.compat.v1.global_variables()
        return dict(zip((v.op.name for v in variables), self.session.run(variables)))

    def assign(self, values):
        """Set variables by TF1 name (e.g. from a Keras model, to start from its weights)."""
        with self.graph.as_default():
            variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
            for name, value in values.items():
                variables[name].load(value, self.session)

    def save(self, directory):
        """A release-format checkpoint `checkpoint-<global_step>` in `directory`."""
        os.makedirs(directory, exist_ok=True)
        step = int(self.session.run(self.global_step))
        with self.graph.as_default():
            return self.saver.save(self.session, os.path.join(directory, "checkpoint"),
                                   global_step=step)

    def close(self):
        self.session.close()


def _moving_average(variable, value):
    """TF1's BatchNormalization._assign_moving_average: v -= (v - value) (1 - momentum)."""
    decay = tf.constant(1.0 - BN_MOMENTUM, variable.dtype)
    return tf.compat.v1.assign_sub(variable, (variable - value) * decay)

"""The network of docs/faithfulness.md §2: residual linear blocks feeding a mixture head.

The model returns plain tensors (means, scales, mixing weights); the mixture
distribution is built from them in one place, `mdm.model.mixture`.
"""

import keras
import tensorflow as tf

from mdm.model.layers import LinearUnit, MaxNormDense, ResidualBlock
from mdm.model.loss import mixture_loss
from mdm.model.missing_joints import corrupt_missing_joints


class MixtureDensityNetwork(keras.Model):
    """Maps (B, 32) normalised 2D poses to K isotropic Gaussians over (B, D) 3D poses.

    call() returns (means (B, K, D), scales (B, K), weights (B, K)).
    """

    def __init__(self, output_dim, linear_size=1024, num_layers=2, residual=True,
                 batch_norm=True, max_norm=True, dropout=0.5, num_models=5,
                 dirichlet_prior=True, miss_num=0, policy="float32", seed=None,
                 synchronized_bn=False, pre_bn_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.output_dim, self.num_models = output_dim, num_models
        self.dirichlet_prior, self.miss_num = dirichlet_prior, miss_num
        unit = dict(units=linear_size, max_norm=max_norm, batch_norm=batch_norm,
                    keep_prob=dropout, synchronized=synchronized_bn, pre_bn_bias=pre_bn_bias,
                    dtype=policy)
        self.stem = LinearUnit(name="stem", **unit)
        # One attribute per block: a Python list of layers is invisible to
        # tf.train.Checkpoint under Keras 3, so its variables would not be saved.
        self.num_blocks = num_layers
        for index in range(num_layers):
            setattr(self, f"two_linear_{index}",
                    ResidualBlock(residual=residual, name=f"two_linear_{index}", **unit))
        # Heads compute in float32 so that the loss never sees float16 or bfloat16
        # (docs/faithfulness.md §2).
        self.means_head = MaxNormDense(output_dim * num_models, max_norm, name="means",
                                       dtype="float32")
        self.scales_head = MaxNormDense(num_models, max_norm, name="scales", dtype="float32")
        # The mixing head is the one linear layer without max-norm (docs/faithfulness.md §2).
        self.mixing_head = MaxNormDense(num_models, max_norm=False, name="mixing",
                                        dtype="float32")
        self.miss_seed = keras.random.SeedGenerator(seed, name="miss_seed")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, inputs, training=False):
        hidden = self.stem(inputs, training=training)
        for block in self.blocks():
            hidden = block(hidden, training=training)
        hidden = tf.cast(hidden, tf.float32)
        # Release layout: output j*K + k is coordinate j of kernel k (docs/faithfulness.md §2).
        flat_means = self.means_head(hidden)
        means = tf.transpose(tf.reshape(flat_means, [-1, self.output_dim, self.num_models]),
                             [0, 2, 1])
        scales = tf.nn.elu(self.scales_head(hidden)) + 1.0
        weights = tf.nn.softmax(self.mixing_head(hidden), axis=-1)
        return means, scales, weights

    def blocks(self):
        return [getattr(self, f"two_linear_{index}") for index in range(self.num_blocks)]

    def compute_loss_value(self, targets, outputs):
        means, scales, weights = outputs
        return mixture_loss(targets, means, scales, weights, self.dirichlet_prior)

    def train_step(self, data):
        inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        inputs = corrupt_missing_joints(inputs, self.miss_num, self.miss_seed)
        with tf.GradientTape() as tape:
            loss = self.compute_loss_value(targets, self(inputs, training=True))
            # Replica gradients are summed, so each replica contributes loss / R
            # (the mean over the global batch); mixed precision also scales the loss.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return _as_logs({"loss": self.loss_tracker.result(),
                         "learning_rate": self.optimizer.learning_rate})

    def test_step(self, data):
        inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        loss = self.compute_loss_value(targets, self(inputs, training=False))
        self.loss_tracker.update_state(loss)
        return _as_logs({"loss": self.loss_tracker.result()})

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3's fit() first reduces one distributed batch with strategy.reduce, which
        # raises for an (inputs, targets) tuple under MultiWorkerMirroredStrategy with two
        # or more workers (keras-team/keras#20585). That batch only serves to build what is
        # unbuilt; build_model() has built the network, which leaves the optimizer.
        if not self.built:
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        elif self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker]


def _as_logs(scalars):
    """The step's logs. Across several workers Keras averages them with
    strategy.reduce(MEAN, value, axis=0), which needs an axis to reduce: give each
    scalar one, so the reduced log is again a scalar."""
    if spans_several_workers(tf.distribute.get_strategy()):
        return {name: tf.reshape(value, [1]) for name, value in scalars.items()}
    return scalars


def build_model(config, output_dim):
    """The network for `config`, its variables created (input width 32)."""
    model = MixtureDensityNetwork(
        output_dim=output_dim, linear_size=config.linear_size, num_layers=config.num_layers,
        residual=config.residual, batch_norm=config.batch_norm, max_norm=config.max_norm,
        dropout=config.dropout, num_models=config.num_models,
        dirichlet_prior=config.dirichlet_prior, miss_num=config.miss_num,
        policy=config.compute_policy(), seed=config.seed, synchronized_bn=bool(config.distribute),
        pre_bn_bias=not config.remove_pre_bn_bias, name="linear_model")
    model(tf.zeros([1, 32]), training=False)
    return model


def spans_several_workers(strategy):
    """Whether `strategy` is a MultiWorkerMirroredStrategy over two or more tasks."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1

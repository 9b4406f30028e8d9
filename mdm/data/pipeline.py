"""tf.data training pipelines (docs/faithfulness.md §2).

Training batches are index batches gathered from in-memory tensors: shuffling int64
indices is far cheaper than shuffling rows, and the permutation of epoch `e` depends only
on (seed, e), so a run resumed at epoch e sees exactly the batches an uninterrupted run
would have seen.
"""

import tensorflow as tf


def _epoch_order(num_samples, steps, batch_size, seed, epoch):
    noise = tf.random.stateless_uniform([num_samples], seed=tf.stack([seed, epoch]))
    order = tf.argsort(noise)[: steps * batch_size]
    return tf.reshape(order, [steps, batch_size])


def _index_batches(num_samples, batch_size, seed, epochs, first_epoch):
    """Global batches of sample indices for epochs first_epoch..epochs-1."""
    steps = num_samples // batch_size
    if steps == 0:
        raise ValueError(f"{num_samples} training samples are fewer than one batch")
    seed = tf.constant(seed, tf.int64)

    def epoch_batches(epoch):
        order = _epoch_order(num_samples, steps, batch_size, seed, epoch)
        return tf.data.Dataset.from_tensor_slices(order)

    return tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches), steps


def _gathered(index_batches, inputs, targets):
    # Tensors pass through unconverted, so datasets built every epoch from the same
    # tensors share one copy of the data (see training._fit_one_epoch).
    x = tf.convert_to_tensor(inputs, tf.float32)
    y = tf.convert_to_tensor(targets, tf.float32)
    dataset = index_batches.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)),
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def training_dataset(inputs, targets, batch_size, seed, epochs, first_epoch=0):
    """Batches of (x, y) for epochs first_epoch..epochs-1, reshuffled every epoch, the
    last partial batch dropped (docs/faithfulness.md §2). Returns (dataset, steps_per_epoch).
    `inputs` and `targets` are arrays or float32 tensors (N, 32) and (N, D)."""
    index_batches, steps = _index_batches(len(inputs), batch_size, seed, epochs, first_epoch)
    return _gathered(index_batches, inputs, targets), steps


def replica_index_batches(index_batches, batch_size, input_context):
    """This input pipeline's share of every global batch, one per-replica slice per element:
    replica r of R gets rows [r * B/R, (r + 1) * B/R) of global batch B, so all replicas
    together see exactly the batches of a single-device run."""
    per_replica = input_context.get_per_replica_batch_size(batch_size)
    local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    first = input_context.input_pipeline_id * local * per_replica

    def split(batch):
        mine = tf.reshape(batch[first: first + local * per_replica], [local, per_replica])
        return tf.data.Dataset.from_tensor_slices(mine)

    return index_batches.flat_map(split)


def distributed_training_dataset(strategy, inputs, targets, batch_size, seed, epochs,
                                 first_epoch=0):
    """training_dataset for a tf.distribute strategy; `batch_size` is the global batch."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return training_dataset(inputs, targets, batch_size, seed, epochs, first_epoch)
    if batch_size % replicas:
        raise ValueError(f"batch size {batch_size} is not divisible by {replicas} replicas")
    index_batches, steps = _index_batches(len(inputs), batch_size, seed, epochs, first_epoch)

    def dataset_fn(input_context):
        return _gathered(replica_index_batches(index_batches, batch_size, input_context),
                         inputs, targets)

    return strategy.distribute_datasets_from_function(dataset_fn), steps

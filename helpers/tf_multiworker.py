"""What TensorFlow's multi-worker strategy does with the course's ``PyDataset``, observed.

Run inside a worker of ``tf.distribute.MultiWorkerMirroredStrategy`` (``helpers.distributed``'s
TensorFlow job does), these functions record what happens instead of assuming it:

- ``distributed_ids(gen, strategy)``: the sample IDs this worker's replica receives, step by
  step, when a dataset built like the one Keras builds from a ``PyDataset``
  (``tf.data.Dataset.from_generator``, one element per batch; here it carries the batch's
  IDs) goes through ``strategy.experimental_distribute_dataset``, once with TensorFlow's
  default auto-shard policy and once with it ``OFF``. A generator that already serves only
  this worker's shard needs every one of its IDs back.
- ``describe_failure(error)``: an exception from ``fit()`` in one line, with the innermost
  Keras function it came from (run ``keras.config.disable_traceback_filtering()`` first, or
  Keras removes its own frames from the traceback).
- ``train_replicated(model, gen, strategy)``: what to do while ``fit()`` does not work under
  the multi-worker strategy (Keras 3.15.1): a training loop of one's own, on the same model,
  optimizer and generator, that records what each step trained on.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

__all__ = ["describe_failure", "distributed_ids", "train_replicated"]


def distributed_ids(gen, strategy, policies: tuple[str, ...] = ("AUTO", "OFF")) -> dict:
    """``{policy: [IDs of each step]}`` for this worker's first replica, one epoch of ``gen``.

    ``gen`` needs ``len()`` and ``batch_ids(index)`` (``DataGenerator`` has both); a policy is
    a name of ``tf.data.experimental.AutoShardPolicy``. Only the input runs: no model.
    """
    import tensorflow as tf

    batches = [gen.batch_ids(b) for b in range(len(gen))]
    out = {}
    for policy in policies:
        dataset = tf.data.Dataset.from_generator(
            lambda: iter(batches), output_signature=tf.TensorSpec((None,), tf.string))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = getattr(
            tf.data.experimental.AutoShardPolicy, policy)
        dist = strategy.experimental_distribute_dataset(dataset.with_options(options))
        out[policy] = [[i.decode() for i in strategy.experimental_local_results(x)[0].numpy()]
                       for x in dist]
    return out


def describe_failure(error: Exception) -> dict:
    """``{"error": "Type: first line", "raised_in": "keras/src/.../file.py, function()"}``:
    the message without the tensor values it may print, and the innermost Keras frame."""
    message = re.sub(r"\{.*\}", "{...}", str(error), flags=re.S)  # a tensor's values
    message = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", message).splitlines()[0][:160]
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if "keras" in Path(f.filename).parts]
    parts = Path(frames[-1].filename).parts if frames else ()
    inside = parts[len(parts) - 1 - parts[::-1].index("keras"):]  # from the last "keras" on
    where = f"{'/'.join(inside)}, {frames[-1].name}()" if frames else ""
    return {"error": f"{type(error).__name__}: {message}", "raised_in": where}


def train_replicated(model, gen, strategy, epochs: int = 2) -> dict:
    """Train ``model`` (built and compiled under ``strategy.scope()``) on ``gen`` for
    ``epochs``, without ``fit()``; return ``{"served": [IDs per epoch], "steps", "weights"}``.

    ``strategy.distribute_datasets_from_function`` hands each replica this worker's batches
    as ``gen`` serves them (no auto-sharding, no splitting: ``gen`` is already this worker's
    shard), ``strategy.run`` runs one step on every replica, and Keras' optimizer sums the
    gradients over all replicas of all workers before it updates the shared weights. Each
    worker must run the same number of steps, which ``shard=`` guarantees.
    """
    import keras
    import tensorflow as tf

    spec = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.float32) for a in gen[0])
    dist = strategy.distribute_datasets_from_function(lambda _context: (
        tf.data.Dataset.from_generator(lambda: (gen[i] for i in range(len(gen))),
                                       output_signature=spec)))
    loss_fn = keras.losses.get(model.loss)  # per sample: averaged over the global batch below
    global_batch = gen.batch_size * strategy.num_replicas_in_sync

    @tf.function
    def step(iterator):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(loss_fn(y, model(x, training=True)),
                                                  global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        strategy.run(replica_step, args=next(iterator))

    out: dict = {"served": [], "steps": 0}
    for _ in range(epochs):
        iterator = iter(dist)
        out["served"].append([])
        for b in range(len(gen)):  # one element of the dataset per step: batch b
            out["served"][-1].extend(gen.batch_ids(b))
            step(iterator)
            out["steps"] += 1
        gen.on_epoch_end()
    out["weights"] = model.get_weights()
    return out

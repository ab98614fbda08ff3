"""Data-parallel training on one CPU machine, in child processes the caller waits on, bounded.

Keras trains over several devices itself (``keras.distribution.DataParallel`` on JAX,
``tf.distribute`` on TensorFlow); this module only starts the runs and reports what they
did, so a notebook can show it on a laptop or in CI:

- ``train_local(data_dir, devices=N)``: one process that sees N devices. JAX splits the CPU
  into N virtual devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and
  TensorFlow into N logical CPUs; both must be set before the framework starts, hence a
  fresh process, whatever backend the caller runs.
- ``train_job(data_dir, num_processes=2)``: a real multi-process JAX job on localhost
  (``keras.distribution.initialize``), each process reading only its shard of the IDs
  (``DataGenerator(shard=(i, count))``).
- ``train_tf_job(data_dir, num_processes=2)``: the same job on TensorFlow
  (``MultiWorkerMirroredStrategy``, one ``TF_CONFIG`` per worker). Keras 3.15.1's ``fit()``
  raises there before its first step; the workers report the error and where Keras raised it,
  and what ``tf.distribute`` hands them from their shard (``helpers.tf_multiworker``).

Each child trains a small model on the course's volumes with ``DataGenerator`` and prints one
JSON line: the IDs each training step was given (per epoch), the step count, seconds per
epoch and the weights. Every wait is bounded; when one process fails or time runs out, the
others are killed too, so nothing is left running. Run ``python -m helpers.distributed -h``
for the child's arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["free_port", "main", "run_children", "train_job", "train_local",
           "train_tf_job"]

_LOG_LINE = re.compile(r"^\s*(\[?[IWEF]\d{4} |\S+\.cc:\d+\]|WARNING: All log messages|"
                       r"E\d{4}|\[Gloo\]|gloo)")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _tail(stderr: str, lines: int = 6) -> str:
    """The last lines of a child's error stream, without the frameworks' C++ log lines."""
    kept = [line for line in stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]
    return "\n".join(kept[-lines:])


def run_children(commands: list[list[str]], envs: list[dict], timeout: float) -> list[str]:
    """Run the processes together; return their standard outputs once all exit with 0.

    If one exits with an error, the others are killed at once (in a collective job they
    would otherwise wait for it for ever); after ``timeout`` seconds all are killed.
    Either way RuntimeError says which process failed, with its last non-log lines.
    """
    files = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
    procs = [subprocess.Popen(c, env=e, stdout=o, stderr=r, text=True, start_new_session=True)
             for c, e, (o, r) in zip(commands, envs, files, strict=True)]
    deadline, failed = time.monotonic() + timeout, None
    try:  # files, not pipes: a child writing more than a pipe holds would wait for ever
        while failed is None and any(p.poll() is None for p in procs):
            failed = next((k for k, p in enumerate(procs) if p.poll()), None)
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()  # reaps it: no zombie, no orphan
    failed = next((k for k, p in enumerate(procs) if p.returncode > 0), failed)
    outs = []
    for o, r in files:
        o.seek(0), r.seek(0)
        outs.append((o.read(), r.read()))
        o.close(), r.close()
    if failed is not None:
        raise RuntimeError(f"process {failed} exited with code {procs[failed].returncode}; "
                           f"the others were stopped:\n{_tail(outs[failed][1])}")
    if any(p.returncode != 0 for p in procs):
        raise RuntimeError(f"the processes did not finish within {timeout:.0f} s and were "
                           f"stopped:\n{_tail(outs[0][1])}")
    return [o[0] for o in outs]


def _env(backend: str, devices: int) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONWARNINGS": "ignore", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    if backend == "jax":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _command(data_dir: str | Path, **args) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in args.items() if v is not None]
    return [sys.executable, "-m", "helpers.distributed", f"--data-dir={data_dir}", *flags]


def _result(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def train_local(data_dir: str | Path, devices: int = 4, backend: str = "jax",
                epochs: int = 2, batch_size: int = 8, timeout: float = 240.0) -> dict:
    """In one fresh process that sees ``devices`` CPU devices (JAX or TensorFlow), train the
    same model twice from the same initial weights on the same batches: on one device, then
    data-parallel over all ``devices`` (``DataParallel`` / ``MirroredStrategy``).

    Returns the child's report: ``devices``, ``max_diff_epoch1`` and ``max_diff`` (largest
    absolute weight difference between the two runs after epoch 1 and at the end),
    ``seconds_single`` and ``seconds_parallel`` (per epoch), ``samples`` (per epoch) and
    ``last_batch``: what ``fit()`` did with a last partial batch the devices cannot share
    evenly ("ok", or the error's type and first line).
    """
    if backend not in ("jax", "tensorflow"):
        raise ValueError(f"backend must be 'jax' or 'tensorflow', got {backend!r}")
    command = _command(data_dir, devices=devices, backend=backend, epochs=epochs,
                       batch_size=batch_size)
    return _result(run_children([command], [_env(backend, devices)], timeout)[0])


def train_job(data_dir: str | Path, num_processes: int = 2, epochs: int = 2,
              batch_size: int = 8, shard_remainder: str = "drop",
              fail_process: int | None = None, timeout: float = 180.0) -> list[dict]:
    """A ``num_processes``-process JAX job on localhost, each process reading its shard.

    ``batch_size`` is per process (the global batch is ``num_processes`` times larger).
    ``fail_process`` makes that process crash after its first step, to show that the job
    still ends (RuntimeError) and leaves nothing running. Returns one report per process.
    """
    port = free_port()
    commands = [_command(data_dir, backend="jax", epochs=epochs, batch_size=batch_size,
                         num_processes=num_processes, process_id=i, port=port,
                         shard_remainder=shard_remainder,
                         fail_after_step=0 if i == fail_process else None)
                for i in range(num_processes)]
    outs = run_children(commands, [_env("jax", 1)] * num_processes, timeout)
    return [_result(o) for o in outs]


def train_tf_job(data_dir: str | Path, num_processes: int = 2, epochs: int = 2,
                 batch_size: int = 8, shard_remainder: str = "drop",
                 timeout: float = 180.0) -> list[dict]:
    """A ``num_processes``-process TensorFlow job on localhost, each process reading its shard:
    one ``MultiWorkerMirroredStrategy`` worker per process (cluster and index in ``TF_CONFIG``),
    ``fit()`` on its ``DataGenerator(shard=(i, count))`` under ``strategy.scope()``. Returns
    the reports ``train_job`` does, plus ``shard_ids`` (epoch 0), ``tf_input``
    (``helpers.tf_multiworker.distributed_ids``), ``loop`` (``train_replicated``'s record of
    the same training without ``fit()``) and, where ``fit()`` raised, ``error`` and
    ``raised_in`` (``describe_failure``) instead of a training record."""
    workers: list[str] = []
    while len(workers) < num_processes:  # free_port() may give a port twice: ask again
        workers = list(dict.fromkeys([*workers, f"localhost:{free_port()}"]))
    commands = [_command(data_dir, backend="tensorflow", epochs=epochs, batch_size=batch_size,
                         num_processes=num_processes, process_id=i,
                         shard_remainder=shard_remainder)
                for i in range(num_processes)]
    envs = [{**_env("tensorflow", 1), "TF_CONFIG": json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
        for i in range(num_processes)]
    return [_result(o) for o in run_children(commands, envs, timeout)]


# --------------------------------------------------------------------------------------
# What each child process runs
# --------------------------------------------------------------------------------------

def _connect(args: argparse.Namespace):
    """Start the backend with its devices; return (a function giving the scope to build the
    parallel model in, the number of devices)."""
    if args.backend == "tensorflow":
        import tensorflow as tf

        if args.num_processes > 1:  # the cluster and this worker's index: from TF_CONFIG
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            return strategy.scope, strategy.num_replicas_in_sync
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
        names = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(names).scope, len(names)
    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    if args.num_processes > 1:
        keras.distribution.initialize(job_addresses=f"localhost:{args.port}",
                                      num_processes=args.num_processes,
                                      process_id=args.process_id)
    devices = keras.distribution.list_devices("cpu")
    dist = keras.distribution.DataParallel(devices=devices)
    if args.num_processes > 1:  # each process already reads only its own shard
        dist.auto_shard_dataset = False
    return dist.scope, len(devices)


def _generator(args: argparse.Namespace, **kwargs):
    from .generator import DataGenerator
    from .volumes import load_partition

    partition, labels = load_partition(args.data_dir)
    meta = json.loads((Path(args.data_dir) / "dataset.json").read_text(encoding="utf-8"))
    shard = (args.process_id, args.num_processes) if args.num_processes > 1 else None
    return DataGenerator(partition["train"], labels, args.data_dir, batch_size=args.batch_size,
                         dim=tuple(meta["dim"]), n_classes=meta["n_classes"], seed=0,
                         shard=shard, shard_remainder=args.shard_remainder, **kwargs)


def _model(gen):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((*gen.dim, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(gen.n_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss="categorical_crossentropy")
    return model


def _fit(model, gen, epochs: int, fail_after_step: int | None = None) -> dict:
    """Train; return the IDs of the batch each step was given, steps, seconds, weights."""
    import keras

    out = {"served": [], "steps": 0, "epoch_seconds": [], "batches": len(gen),
           "generator_epochs": []}

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            out["served"].append([])
            out["generator_epochs"].append(gen.epoch)  # fit() may have advanced it already
            self.t0 = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            out["served"][-1].extend(gen.batch_ids(batch))

        def on_train_batch_end(self, batch, logs=None):
            out["steps"] += 1
            if fail_after_step is not None and out["steps"] > fail_after_step:
                os._exit(3)  # a crash: no clean-up, no goodbye to the other processes

        def on_epoch_end(self, epoch, logs=None):
            out["epoch_seconds"].append(time.perf_counter() - self.t0)
            if epoch == 0:
                out["weights_epoch1"] = model.get_weights()

    model.fit(gen, epochs=epochs, verbose=0, shuffle=False, callbacks=[Record()])
    out["weights"] = model.get_weights()
    return out


def _max_diff(a: list, b: list) -> float:
    import numpy as np

    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def _compare(args: argparse.Namespace) -> dict:
    scope, n_devices = _connect(args)
    single = _model(_generator(args))
    start = single.get_weights()
    one = _fit(single, _generator(args, drop_remainder=True), args.epochs)
    with scope():  # the same model, weights and batches; only the devices differ
        parallel = _model(_generator(args))
        parallel.set_weights(start)
        many = _fit(parallel, _generator(args, drop_remainder=True), args.epochs)
    partial = _generator(args)  # len() rounds up: the last batch is partial
    last = len(partial.list_IDs) - args.batch_size * (len(partial) - 1)
    try:
        with scope():
            _model(partial).fit(partial, epochs=1, verbose=0, shuffle=False)
        outcome = "ok"
    except Exception as e:  # what the engine does is the observation
        gist = re.search(r"partitioned \d+ times, but the dimension size is \d+", str(e))
        outcome = f"{type(e).__name__}: {gist.group(0) if gist else str(e)[:90]}"
    return {"devices": n_devices, "batch_size": args.batch_size,
            "samples": args.batch_size * one["batches"],
            "same_order": one["served"] == many["served"],
            "max_diff_epoch1": _max_diff(one["weights_epoch1"], many["weights_epoch1"]),
            "max_diff": _max_diff(one["weights"], many["weights"]),
            "seconds_single": one["epoch_seconds"], "seconds_parallel": many["epoch_seconds"],
            "last_batch_rows": last, "last_batch": outcome}


def _job(args: argparse.Namespace) -> dict:
    scope, n_devices = _connect(args)
    if args.backend == "tensorflow":
        import keras
        import tensorflow as tf

        from .tf_multiworker import describe_failure, distributed_ids, train_replicated

        keras.config.disable_traceback_filtering()  # keeps Keras' frames for raised_in
    gen = _generator(args)
    shard_ids = [i for b in range(len(gen)) for i in gen.batch_ids(b)]
    with scope():  # the strategy in scope: what its input pipeline serves, then fit()
        extra = {} if args.backend != "tensorflow" else {
            "tf_input": distributed_ids(gen, tf.distribute.get_strategy())}
        model = _model(gen)
        try:
            out = _fit(model, gen, args.epochs, args.fail_after_step)
        except Exception as e:  # on TensorFlow, what the engine does is the observation
            if args.backend != "tensorflow":
                raise
            out = {"served": [], "steps": 0, "batches": len(gen), **describe_failure(e)}
        if args.backend == "tensorflow":  # the same training without fit(): a loop of one's own
            loop = train_replicated(_model(gen), _generator(args), tf.distribute.get_strategy(),
                                    args.epochs)
            extra["loop"] = {**loop, "weights": [w.tolist() for w in loop["weights"]]}
    out.pop("weights_epoch1", None)
    out["weights"] = [w.tolist() for w in out.get("weights", [])]
    return {**out, "devices": n_devices, "process_id": args.process_id, "shard_ids": shard_ids,
            **extra, "samples_dropped": gen.samples_dropped,
            "samples_repeated": gen.samples_repeated}


def main(argv: list[str] | None = None) -> None:
    """The child: train as the arguments say, print the report as one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--backend", choices=("jax", "tensorflow"), default="jax")
    p.add_argument("--devices", type=int, default=1, help="TensorFlow: logical CPUs")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-processes", type=int, default=1)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--shard-remainder", choices=("pad", "drop"), default="drop")
    p.add_argument("--fail-after-step", type=int, default=None)
    args = p.parse_args(argv)
    report = _job(args) if args.num_processes > 1 else _compare(args)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

"""How each Keras backend's ``fit()`` consumes a ``PyDataset``: observed, not assumed.

Keras reads ``KERAS_BACKEND`` once, when ``keras`` is first imported, so one Python process
cannot try all three backends. ``observe(backend)`` runs this module as a script in a child
process with ``KERAS_BACKEND`` set, and returns what that child saw:

- ``reads``: how many batches ``fit()`` read outside its training epochs (to learn the
  batch shapes), how many times it called the dataset's ``on_epoch_begin``, and whether
  ``__getitem__`` ran on the main thread (no overlap with the training step) or elsewhere.
- ``consumed``: which batches the training steps really received, epoch by epoch, for one
  and two workers, with a model that is unbuilt when ``fit()`` starts and one built first.
  A tap layer in an eagerly run model records each batch's tag, so this counts what training
  used, not what the dataset served.
- ``overlap``: whether loading overlaps the training step, from three timed epochs: the
  model on ready batches, the loader alone, and both together through ``fit()``.
- ``empty``: what ``fit()`` does with a dataset of zero batches.

With ``cache_dir``, each part's findings are kept in ``cache_dir/<backend>/<part>.json`` with
the versions they were observed with (Python, NumPy, Keras, the backend's framework), and
reused while those versions are installed: the observations are of library behaviour, which
only a new version changes. Delete the folder to observe again.

Run directly: ``KERAS_BACKEND=jax python -m helpers.backends`` prints the JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import warnings

__all__ = ["BACKENDS", "PARTS", "installed_backends", "observe", "run_in_backend"]

BACKENDS = ("tensorflow", "jax", "torch")
"""The three Keras backends, in the order the course shows them."""


def installed_backends() -> list[str]:
    """The backends whose framework is importable here (TensorFlow, JAX, PyTorch)."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


PARTS = ("reads", "consumed", "overlap", "empty")


def _versions(backend: str) -> dict[str, str | None]:
    """The versions a finding depends on (read from the installed packages' metadata)."""
    import importlib.metadata
    import platform

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "numpy": version("numpy"),
            "keras": version("keras"), backend: version(backend)}


def _read_kept(path, key: dict):
    """The value kept at ``path`` under exactly ``key`` (versions, script), or None."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(kept, dict) and "value" in kept and {k: kept.get(k) for k in key} == key:
        return kept["value"]
    return None


def _keep(path, key: dict, value) -> None:
    """Write ``value`` to ``path`` with ``key``, whole or not at all."""
    from .atomic import write_text_atomic

    write_text_atomic(path, json.dumps({**key, "value": value}))


def _run_child(backend: str, args: list[str], what: str, timeout: float):
    """``python *args`` in a child process with ``KERAS_BACKEND=backend``: the JSON its last
    printed line holds. RuntimeError naming ``what``, with the child's last lines, if it
    fails or exceeds ``timeout`` seconds (the child is killed then)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONWARNINGS": "ignore"}
    try:
        run = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took over {timeout:.0f} s") from None
    if run.returncode != 0:
        tail = "\n".join(run.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{what} failed:\n{tail}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def observe(backend: str, parts: tuple[str, ...] = PARTS, timeout: float = 300.0,
            cache_dir: str | os.PathLike | None = None) -> dict:
    """Run the observations ``parts`` in a child process on ``backend``; return its findings.

    ``parts`` picks among ``PARTS`` (each costs a few seconds; "overlap" the most).
    ``cache_dir``: reuse findings kept there for the same versions, and keep new ones there
    (see the module's docstring); None observes every time.
    Raises RuntimeError, with the child's last lines, if it fails or exceeds ``timeout``
    seconds (the child is killed then: nothing is left running).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts must be among {PARTS}, got {sorted(unknown)}")
    if cache_dir is None:
        return _observe(backend, tuple(parts), timeout)
    from pathlib import Path

    folder, key = Path(cache_dir) / backend, {"versions": _versions(backend)}
    found = {part: value for part in parts
             if (value := _read_kept(folder / f"{part}.json", key)) is not None}
    missing = tuple(p for p in parts if p not in found)
    if missing:
        new = _observe(backend, missing, timeout)
        for part in missing:
            _keep(folder / f"{part}.json", key, new[part])
        found |= new
    return {part: found[part] for part in parts}


def run_in_backend(backend: str, script: str, name: str,
                   cache_dir: str | os.PathLike | None = None, timeout: float = 300.0):
    """Run ``script`` with ``python -c`` in a child process on ``backend``; return the JSON
    its last printed line holds. With ``cache_dir``, the result is kept as
    ``cache_dir/<backend>/<name>.json`` with the versions it was seen with and reused while
    they are installed, as ``observe`` does. RuntimeError with the child's last lines if it
    fails or exceeds ``timeout`` seconds."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from pathlib import Path

    path = None if cache_dir is None else Path(cache_dir) / backend / f"{name}.json"
    key = {"versions": _versions(backend), "script": script}
    if path is not None and (kept := _read_kept(path, key)) is not None:
        return kept
    result = _run_child(backend, ["-c", script], f"{name} on {backend}", timeout)
    if path is not None:
        _keep(path, key, result)
    return result


def _observe(backend: str, parts: tuple[str, ...], timeout: float) -> dict:
    """Run the child process on ``backend`` for ``parts``; its findings."""
    return _run_child(backend, ["-m", "helpers.backends", *parts], f"observing {backend}",
                      timeout)


# --------------------------------------------------------------------------------------
# What the child process runs
# --------------------------------------------------------------------------------------

_N_BATCHES, _BATCH, _FEATURES = 8, 64, 512


def _child(parts: tuple[str, ...]) -> dict:
    import keras
    import numpy as np

    class Probe(keras.utils.PyDataset):
        """Batches whose first column tags them: epoch * 1000 + batch index."""

        def __init__(self, n_batches: int = _N_BATCHES, load_s: float = 0.0, **kwargs):
            super().__init__(**kwargs)
            self.n, self.load_s, self.epoch = n_batches, load_s, 0
            self.reads: list[tuple[int, bool, bool]] = []  # (index, in fit epoch, main thread)
            self.in_fit_epoch, self.begins = False, 0
            self.x = np.random.default_rng(0).normal(size=(_BATCH, _FEATURES)).astype("float32")

        def __len__(self) -> int:
            return self.n

        def on_epoch_begin(self) -> None:
            self.begins += 1

        def on_epoch_end(self) -> None:
            self.epoch += 1

        def __getitem__(self, i: int):
            self.reads.append((i, self.in_fit_epoch,
                               threading.current_thread() is threading.main_thread()))
            if self.load_s:
                time.sleep(self.load_s)  # like waiting for a disk: releases the GIL
            x = self.x.copy()
            x[:, 0] = self.epoch * 1000 + i
            return x, np.zeros((_BATCH, 1), "float32")

    class Marks(keras.callbacks.Callback):
        """Tells the probe when fit()'s own training epochs begin and end; times them."""

        def __init__(self, probe):
            super().__init__()
            self.probe, self.seconds = probe, []

        def on_epoch_begin(self, epoch, logs=None):
            self.probe.in_fit_epoch, self.t0 = True, time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.probe.in_fit_epoch = False
            self.seconds.append(time.perf_counter() - self.t0)

    def tap(log: list):
        """A layer that records the tag of every batch a training step receives (eager runs
        only). The list is captured by the closure: Keras would copy a list attribute."""

        class Tap(keras.layers.Layer):
            def call(self, x, training=None):
                if training:
                    tags = keras.ops.convert_to_numpy(keras.ops.stop_gradient(x[:, 0]))
                    log.append(int(tags[0]))
                return x

        return Tap()

    def model(tap_log=None, width=1024):
        layers = [keras.Input((_FEATURES,))]
        if tap_log is not None:
            layers.append(tap(tap_log))
        layers += [keras.layers.Dense(width, activation="relu"),
                   keras.layers.Dense(width, activation="relu"), keras.layers.Dense(1)]
        m = keras.Sequential(layers)
        m.compile(optimizer="sgd", loss="mse", run_eagerly=tap_log is not None)
        return m

    def reads() -> dict:
        """Reads outside training epochs, and on which thread __getitem__ runs."""
        probe = Probe()
        model(width=64).fit(probe, epochs=2, verbose=0, callbacks=[Marks(probe)])
        inside = [r for r in probe.reads if r[1]]
        return {"fit_epochs": 2, "outside_epochs": sum(not r[1] for r in probe.reads),
                "dataset_epoch_begins": probe.begins,
                "in_main_thread": all(r[2] for r in inside)}

    def consumed() -> dict:
        """Per training epoch: did the steps receive every batch of one epoch exactly once?"""
        found = {}
        for workers in (1, 2):
            for build_first in (False, True):
                log: list[int] = []
                probe = Probe(workers=workers)
                m = model(tap_log=log, width=64)
                if build_first:  # one evaluate() builds the model, its loss and its metrics
                    m.evaluate(*probe[0], verbose=0)
                m.fit(probe, epochs=3, verbose=0, shuffle=False)
                epochs = [log[k * _N_BATCHES:(k + 1) * _N_BATCHES] for k in range(3)]
                ok = [sorted(t % 1000 for t in e) == list(range(_N_BATCHES))
                      and len({t // 1000 for t in e}) == 1 for e in epochs]
                found[f"workers={workers}, {'built' if build_first else 'unbuilt'}"] = ok
        return found

    def overlap() -> dict:
        """Per-batch time (best of three epochs after a warm-up) of the model alone, then
        with a loader that waits as long as one training step takes, for 1 and 2 workers."""
        def per_batch_ms(m, probe):
            marks = Marks(probe)
            m.fit(probe, epochs=4, verbose=0, callbacks=[marks])
            return 1000 * min(marks.seconds[1:]) / probe.n

        m = model(width=2048)  # a step of tens of milliseconds: overheads stay small beside it
        step_ms = per_batch_ms(m, Probe())
        found = {"step_ms": step_ms, "load_ms": step_ms}
        for workers in (1, 2):
            found[f"together_ms_workers={workers}"] = per_batch_ms(
                m, Probe(load_s=step_ms / 1000, workers=workers))
        return found

    def empty() -> dict:
        """What fit() does with a dataset of zero batches, model unbuilt or built."""
        def outcome(m):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    h = m.fit(Probe(n_batches=0), epochs=1, verbose=0)
                except Exception as e:  # what each backend raises is the observation
                    first = (str(e).splitlines() or [""])[0][:100]
                    return f"{type(e).__name__}: {first}" if first else type(e).__name__
            said = [str(w.message).split("; ")[0] for w in caught  # its first clause
                    if "ran out of data" in str(w.message)]
            return (f"no error, {len(h.history)} metrics recorded"
                    + (f"; warns: {said[0]}" if said else ""))

        built = model(width=8)
        built.evaluate(*Probe()[0], verbose=0)
        return {"unbuilt model": outcome(model(width=8)), "built model": outcome(built)}

    out: dict = {"backend": keras.backend.backend(), "keras": keras.__version__}
    steps = {"reads": reads, "consumed": consumed, "overlap": overlap, "empty": empty}
    for part in parts:
        out[part] = steps[part]()
    return out


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    print(json.dumps(_child(tuple(sys.argv[1:]) or PARTS)))

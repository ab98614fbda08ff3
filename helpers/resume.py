"""Checkpoints in the middle of an epoch, and a ``fit()`` that resumes from them exactly.

Keras' ``BackupAndRestore(save_freq=N)`` saves in the middle of an epoch but resumes at the
start of that epoch (it restores the epoch number only, in Keras 3.15's
keras/src/callbacks/backup_and_restore.py), so the batches trained before the save are
trained again. With a dataset whose order is a function of ``(seed, epoch)`` (the course's
generators), the position ``(epoch, batch)`` is enough to serve the rest of the epoch:
resumed this way, a training trains each batch once and ends on the same weights as an
uninterrupted one (tests/test_resume.py checks both, on each backend).

- ``MidEpochCheckpoint``: a callback that positions the dataset at every epoch's start and
  saves the model (``model.save``: weights and optimizer state) every ``every`` batches and
  at every epoch's end, into one file named by the position to resume from.
- ``latest_checkpoint``: that file and position.
- ``fit_resumable``: build or load the model, finish the interrupted epoch, train the rest.

What Keras 3 does that shapes this (keras/src/trainers/epoch_iterator.py, backend
``trainer.py``): ``fit()`` calls the dataset's ``on_epoch_end`` once before the first epoch,
fixes an epoch's number of batches (``len()``) once per call, and with ``shuffle=True`` (its
default) serves a ``PyDataset``'s batches in an order drawn from Python's ``random``.

The dataset must offer ``set_epoch(epoch, start_batch=0)`` (then ``len()`` is the number of
batches left in that epoch) and ``epoch``. This module needs only Keras and the standard
library: copy it into your project as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

__all__ = ["MidEpochCheckpoint", "fit_resumable", "latest_checkpoint"]

_NAME = re.compile(r"epoch(\d{4,})-batch(\d{6,})\.keras")
_PARTIAL = ".partial-"  # prefix of a checkpoint being written (never a resume point)


def _checkpoints(directory: Path) -> list[tuple[int, int, Path]]:
    """``(epoch, batch, path)`` of every complete checkpoint in ``directory``."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise NotADirectoryError(f"checkpoint directory {directory} is not a folder")
    return [(int(m[1]), int(m[2]), p) for p in directory.iterdir()
            if (m := _NAME.fullmatch(p.name)) and p.is_file()]


def latest_checkpoint(directory: str | Path) -> tuple[Path, int, int] | None:
    """``(path, epoch, batch)`` of the furthest checkpoint in ``directory``, or ``None``.

    ``(epoch, batch)`` is where to resume: epoch ``epoch`` with its first ``batch`` batches
    done. Files being written (hidden ``.partial-*`` names) are not checkpoints.
    """
    found = _checkpoints(Path(directory))
    if not found:
        return None
    epoch, batch, path = max(found, key=lambda c: (c[0], c[1]))
    return path, epoch, batch


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_dataset(dataset: Any) -> None:
    if not callable(getattr(dataset, "set_epoch", None)):
        raise TypeError(f"dataset ({type(dataset).__name__}) has no "
                        "set_epoch(epoch, start_batch): its position cannot be set")


class MidEpochCheckpoint(keras.callbacks.Callback):
    """Positions ``dataset`` at each epoch's start and saves where training can resume.

    Args:
        directory: the folder of this training's checkpoints (created when first needed).
            One training per folder: a save deletes the checkpoints behind it.
        dataset: the dataset given to ``fit()``, with ``set_epoch(epoch, start_batch)``.
        every: save after every ``every`` batches of an epoch, counted from the epoch's
            first batch (so resumed and uninterrupted runs save at the same positions),
            and at every epoch's end.
        start_batch: the batch the first epoch this callback sees starts at (a resumed
            run); that ``fit()`` must then train that one epoch only, since Keras fixes an
            epoch's number of batches per call (``fit_resumable`` does this).

    Each save writes ``directory/epoch{E:04d}-batch{B:06d}.keras`` with ``model.save``
    (weights and optimizer state) under a temporary name, renames it with ``os.replace``
    (so a checkpoint is whole or absent), then deletes the checkpoints behind it.
    ``(E, B)``: resume at epoch ``E`` with its first ``B`` batches done; an epoch's end
    saves ``(epoch + 1, 0)``.
    """

    def __init__(self, directory: str | Path, dataset: Any, every: int,
                 start_batch: int = 0) -> None:
        super().__init__()
        _check_dataset(dataset)
        self.directory = Path(directory)
        self.dataset = dataset
        self.every = _check_count(every, "every", 1)
        self.start_batch = _check_count(start_batch, "start_batch", 0)
        self._pending = self.start_batch  # where the next epoch begun starts (used once)
        self._short = False  # whether the running fit() began mid-epoch
        self._epoch = 0
        self._start = 0  # batches of the current epoch done before this fit() began
        self._saved = 0  # batches of the current epoch done at the last save

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._short = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        # fit() has already called the dataset's on_epoch_end once before the first epoch
        # (and once after each epoch): set the position it must serve now.
        if self._short:
            raise ValueError(
                f"this fit() began mid-epoch (start_batch={self._start}), so its epochs "
                "have that epoch's shorter length: train the rest of that epoch in a fit() "
                "of its own (epochs=initial_epoch + 1), as fit_resumable does")
        self._start, self._pending = self._pending, 0
        self._short = self._start > 0
        self._epoch, self._saved = int(epoch), self._start
        self.dataset.set_epoch(self._epoch, self._start)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        done = self._start + batch + 1  # batches of this epoch done, from its first
        steps = (self.params or {}).get("steps")
        last = steps is not None and batch + 1 >= steps  # on_epoch_end saves that one
        if done // self.every > self._saved // self.every and not last:
            self._save(self._epoch, done)
            self._saved = done

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._save(int(epoch) + 1, 0)

    def _save(self, epoch: int, batch: int) -> None:
        """Write the checkpoint of position ``(epoch, batch)`` whole, then drop older ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"epoch{epoch:04d}-batch{batch:06d}.keras"
        partial = self.directory / f"{_PARTIAL}{os.getpid()}-{final.name}"
        try:
            self.model.save(partial)  # the name must end in .keras
            with open(partial, "rb+") as f:  # on disk before the rename makes it visible
                os.fsync(f.fileno())
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        for e, b, path in _checkpoints(self.directory):
            if (e, b) < (epoch, batch):
                path.unlink(missing_ok=True)
        for path in self.directory.glob(f"{_PARTIAL}*.keras"):  # left by a killed run
            path.unlink(missing_ok=True)


def _build_before_fit(model: keras.Model, dataset: Any) -> None:
    """Build the model's loss and metrics with one ``evaluate()`` on ``dataset[0]`` when
    ``fit()`` would read the dataset through workers.

    With an unbuilt loss or metrics, ``fit()`` on JAX and PyTorch (Keras 3.15) reads a first
    batch through the dataset's workers before training; the batches they read ahead then
    go to the first epoch's steps, and so on one epoch late (``helpers.backends``
    observes it): the order of an epoch would no longer be ``(seed, epoch)``'s.
    """
    workers = getattr(dataset, "workers", 1) or 0
    if workers > 1 or (workers > 0 and getattr(dataset, "use_multiprocessing", False)):
        x, y, weights = keras.utils.unpack_x_y_sample_weight(dataset[0])
        model.evaluate(x, y, sample_weight=weights, verbose=0)


def fit_resumable(build_model: Callable[[], keras.Model], dataset: Any, epochs: int,
                  directory: str | Path, every: int, **fit_kwargs) -> keras.Model:
    """Train ``epochs`` epochs on ``dataset``, resuming from ``directory``'s checkpoint if any.

    Args:
        build_model: returns a new compiled model; called only when ``directory`` holds no
            checkpoint (otherwise the model is ``keras.models.load_model`` of it: custom
            layers must be registered with ``keras.saving.register_keras_serializable``).
        dataset: a dataset with ``set_epoch(epoch, start_batch=0)`` whose order is a
            function of its seed and the epoch (the course's generators), built as for the
            first run.
        epochs: the total number of epochs, as ``fit(epochs=)``.
        directory, every: as for ``MidEpochCheckpoint``.
        **fit_kwargs: passed to ``model.fit`` (``callbacks``, ``validation_data``,
            ``verbose``...). ``shuffle`` is always False: ``shuffle=True`` reorders the
            batches with Python's ``random``, which no checkpoint records (ValueError).
            ``initial_epoch`` and ``steps_per_epoch`` are set here (ValueError if given).

    An interrupted epoch is finished by a ``fit()`` of its own (Keras fixes an epoch's
    number of batches per call), then one ``fit()`` trains the epochs left; ``callbacks``
    go to both. When the dataset has workers, one ``evaluate()`` on its first batch builds
    the model's loss and metrics first (see ``_build_before_fit``). Returns the model.
    """
    if fit_kwargs.get("shuffle"):
        raise ValueError("shuffle=True cannot be resumed: fit() would reorder the batches "
                         "with Python's random; the dataset's own shuffling (seed, epoch) "
                         "is what resumes exactly")
    for name in ("initial_epoch", "steps_per_epoch", "x", "y"):
        if name in fit_kwargs:
            raise ValueError(f"fit_resumable sets {name} itself; do not pass it")
    epochs, every = _check_count(epochs, "epochs", 1), _check_count(every, "every", 1)
    _check_dataset(dataset)
    fit_kwargs["shuffle"] = False
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    found = latest_checkpoint(directory)
    if found is None:
        model, epoch, batch = build_model(), 0, 0
    else:
        path, epoch, batch = found
        model = keras.models.load_model(path)
    if epoch >= epochs:  # a finished training
        return model
    dataset.set_epoch(epoch, batch)  # len() is now the batches left: fit() reads it
    _build_before_fit(model, dataset)
    if batch > 0:  # finish the interrupted epoch in a fit() of its own
        saver = MidEpochCheckpoint(directory, dataset, every, start_batch=batch)
        model.fit(dataset, initial_epoch=epoch, epochs=epoch + 1,
                  callbacks=[saver, *callbacks], **fit_kwargs)
        epoch += 1
        if epoch < epochs:
            dataset.set_epoch(epoch)
    if epoch < epochs:
        saver = MidEpochCheckpoint(directory, dataset, every)
        model.fit(dataset, initial_epoch=epoch, epochs=epochs,
                  callbacks=[saver, *callbacks], **fit_kwargs)
    return model

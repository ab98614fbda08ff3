"""``EndlessDataset``: batches made on demand, without end, each a pure function of its index.

When the data is simulated (a physics model, a game, a signal generator) there is no file
and no epoch: every batch is new. ``EndlessDataset`` serves batch ``i`` as
``make_batch(np.random.default_rng([seed, i]), batch_size)``. Because the random generator
is drawn from ``(seed, i)`` alone, batch ``i`` is the same whichever worker thread or
process computes it and in whatever order, and a re-run repeats the whole stream. It has
no length (``num_batches`` is ``None``), so ``fit()`` needs ``steps_per_epoch``.

``waves`` is a small simulator to try it on: noisy sinusoids of a few frequencies, whose
class (the frequency) a small model learns in seconds on a CPU. This module needs only
numpy and Keras: copy it into your project as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

__all__ = ["EndlessDataset", "waves"]


class EndlessDataset(keras.utils.PyDataset):
    """An endless ``PyDataset``: batch ``i`` is ``make_batch(default_rng([seed, i]), batch_size)``.

    Args:
        make_batch: ``(rng, batch_size) -> batch`` (``(X, y)``, ``(X, y, w)`` or dicts as
            ``fit()`` takes them). It must draw all its randomness from ``rng``, and be
            defined at module level (picklable) for ``use_multiprocessing=True``.
        batch_size: passed to ``make_batch``.
        seed: the stream's seed; ``None`` draws one (kept in ``self.seed``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    ``len()`` raises TypeError: pass ``steps_per_epoch=`` to ``fit()`` to say how many
    batches make an epoch, and ``shuffle=False`` (there is no order to shuffle; Keras warns
    that it ignores its default ``shuffle=True``). ``epochs_ended`` counts the calls of
    ``on_epoch_end``, for information: Keras 3 makes one more before the first epoch.
    """

    def __init__(self, make_batch: Callable[[np.random.Generator, int], Any],
                 batch_size: int = 32, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not callable(make_batch):
            raise TypeError(f"make_batch must be a function (rng, batch_size) -> batch, got "
                            f"{type(make_batch).__name__}")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.make_batch = make_batch
        self.batch_size = int(batch_size)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.epochs_ended = 0

    @property
    def num_batches(self) -> None:
        """``None``: Keras' mark of a dataset without end."""
        return None

    def __len__(self) -> int:
        raise TypeError("an EndlessDataset has no length: pass steps_per_epoch= to fit() "
                        "(and steps= to evaluate() or predict())")

    def __getitem__(self, index: int):
        if (isinstance(index, bool) or not isinstance(index, (int, np.integer))
                or index < 0):
            raise IndexError(f"batch index must be a non-negative integer, got {index!r}")
        return self.make_batch(np.random.default_rng([self.seed, int(index)]),
                               self.batch_size)

    def on_epoch_end(self) -> None:
        """Count the epoch (nothing else changes: batch ``i`` depends on ``i`` alone)."""
        self.epochs_ended += 1


def waves(rng: np.random.Generator, batch_size: int, length: int = 64,
          n_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A batch of noisy sinusoids: ``X`` float32 ``(batch_size, length, 1)``, ``y`` int32.

    Sample ``j`` of class ``k`` makes ``2 * (k + 1)`` cycles over ``length`` steps, with a
    random phase, an amplitude in [0.5, 1.5) and Gaussian noise of standard deviation 0.3.
    Which frequency it is, ``y``, can be told from the shape alone: a small Conv1D or Dense
    model learns it. All randomness comes from ``rng``.
    """
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if not isinstance(length, (int, np.integer)) or length < 4 * n_classes + 1:
        raise ValueError(f"length={length!r} is too short for n_classes={n_classes}: the "
                         f"highest frequency needs length > {4 * n_classes} steps")
    y = rng.integers(0, n_classes, size=batch_size).astype(np.int32)
    cycles = 2.0 * (y + 1)
    phase = rng.uniform(0.0, 2 * np.pi, size=batch_size)
    amplitude = rng.uniform(0.5, 1.5, size=batch_size)
    t = np.arange(length) / length
    X = amplitude[:, None] * np.sin(2 * np.pi * cycles[:, None] * t + phase[:, None])
    X += rng.normal(0.0, 0.3, size=X.shape)
    return X[..., None].astype(np.float32), y

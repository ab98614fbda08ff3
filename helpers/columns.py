"""``WithColumns``: a course generator's batches with extra per-sample columns, and named.

A model with several inputs or outputs (an image plus a table row in, a class plus a number
out) takes dicts keyed by the names of its ``keras.Input`` layers and output layers. The
course's generators serve ``(X, y)``. This wrapper builds each batch from the base's ``X``
and ``y`` and from in-memory per-sample arrays (metadata, extra targets, sample weights),
picked with ``base.batch_rows(i)``: the positions of the samples batch ``i`` holds. So the
columns follow the base's shuffling, sharding and resumption without a copy of its logic.

The base is anything with ``len()``, ``[i]`` (``(X, y)`` or ``X`` alone), ``batch_rows(i)``,
``num_samples`` and ``on_epoch_end()``; ``set_epoch``, ``epoch``, ``batch_ids``,
``batches_per_epoch`` and ``start_batch`` are forwarded when it has them. This module needs
only numpy and Keras: copy it into your project as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

__all__ = ["WithColumns"]

Column = str | np.ndarray
"""``"x"`` / ``"y"`` (the base batch's X or y) or an array with one row per sample."""


def _column(value: Any, n: int, where: str) -> Column:
    """``value`` checked: ``"x"``, ``"y"``, or an array of ``n`` rows (float32 unless integer)."""
    if isinstance(value, str):
        if value not in ("x", "y"):
            raise ValueError(f"{where} is {value!r}: a column is 'x', 'y' or an array "
                             "with one row per sample")
        return value
    array = np.asarray(value)
    if array.ndim == 0 or array.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected 'x', 'y' or a numeric array with one row per "
                         f"sample, got {type(value).__name__} of dtype {array.dtype}")
    if len(array) != n:
        raise ValueError(f"{where} has {len(array)} rows, the base dataset has {n} samples "
                         "(base.num_samples)")
    return array if array.dtype.kind in "iu" else array.astype(np.float32)


def _columns(spec: Any, n: int, where: str) -> Column | dict[str, Column]:
    """One column, or a dict ``{name: column}`` (a model's input or output names)."""
    if isinstance(spec, Mapping):
        if not spec:
            raise ValueError(f"{where} is an empty dict")
        return {str(k): _column(v, n, f"{where}[{k!r}]") for k, v in spec.items()}
    return _column(spec, n, where)


def _weights(values: Any, n: int, where: str) -> np.ndarray:
    """Per-sample weights as float32 ``(n,)``: finite and non-negative."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected a 1-D numeric array of per-sample weights, got "
                         f"shape {array.shape} of dtype {array.dtype}")
    if len(array) != n:
        raise ValueError(f"{where} has {len(array)} weights, the base dataset has {n} samples "
                         "(base.num_samples)")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        bad = int(np.flatnonzero(~np.isfinite(array) | (array < 0))[0])
        raise ValueError(f"{where}: weights must be finite and >= 0; sample {bad} has "
                         f"{array[bad]}")
    return array


def _refers_to(spec: Any, name: str) -> bool:
    values = spec.values() if isinstance(spec, dict) else [spec]
    return any(isinstance(v, str) and v == name for v in values)


class WithColumns(keras.utils.PyDataset):
    """Serves ``(inputs, outputs[, sample_weight])`` built from ``base`` and per-sample arrays.

    Args:
        base: a course generator (``DataGenerator``, ``CIFAR10Sequence``,
            ``ImageFolderDataset``) or anything with the same protocol (module docstring).
        inputs: ``"x"``, ``"y"``, an array with ``base.num_samples`` rows (indexed by
            ``base.batch_rows(i)``), or a dict ``{input name: one of those}`` so that the
            batch's inputs are a dict for a model with named inputs.
        outputs: the same for the targets; ``None`` serves the inputs alone (for
            ``predict``).
        sample_weight: ``None``, per-sample weights (``(b,)`` float32 third element), or a
            dict ``{output name: weights}`` when ``outputs`` is a dict (outputs it does not
            name are weighted 1, since Keras needs a weight for each).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of this wrapper,
            which is what ``fit()`` reads; the base's own are not used.

    Arrays are converted once: integer columns keep their dtype, the others become float32.
    Raises ValueError naming the argument (and key) at fault.
    """

    def __init__(self, base: Any, inputs: Any = "x", outputs: Any = "y",
                 sample_weight: Any = None, **kwargs) -> None:
        super().__init__(**kwargs)
        for needed in ("__len__", "__getitem__", "batch_rows", "num_samples"):
            if not hasattr(base, needed):
                raise TypeError(f"base ({type(base).__name__}) has no {needed}: WithColumns "
                                "needs len(), [i], batch_rows(i) and num_samples")
        self.base = base
        n = int(base.num_samples)
        self.inputs = _columns(inputs, n, "inputs")
        self.outputs = None if outputs is None else _columns(outputs, n, "outputs")
        if sample_weight is not None and self.outputs is None:
            raise ValueError("sample_weight needs outputs: there is no target to weight")
        if isinstance(sample_weight, Mapping):
            if not isinstance(self.outputs, dict):
                raise ValueError("sample_weight is a dict {output name: weights}, so outputs "
                                 "must be a dict of named outputs too")
            unknown = sorted(set(map(str, sample_weight)) - set(self.outputs))
            if unknown:
                raise ValueError(f"sample_weight[{unknown[0]!r}]: no output of that name; "
                                 f"outputs has {sorted(self.outputs)}")
            given = {str(k): v for k, v in sample_weight.items()}
            # Keras wants a weight for every output: those not named get 1 (no weighting)
            self.sample_weight = {k: _weights(given[k], n, f"sample_weight[{k!r}]")
                                  if k in given else np.ones(n, np.float32)
                                  for k in self.outputs}
        else:
            self.sample_weight = (None if sample_weight is None
                                  else _weights(sample_weight, n, "sample_weight"))
        self._reads_base = any(_refers_to(s, c) for s in (self.inputs, self.outputs)
                               for c in ("x", "y"))
        if any(_refers_to(s, "y") for s in (self.inputs, self.outputs)) and not isinstance(
                base[0], (tuple, list)):
            where = "inputs" if _refers_to(self.inputs, "y") else "outputs"
            raise ValueError(f"{where} asks for 'y', but the base dataset serves X alone "
                             "(built without labels?)")

    # What fit() and predict() call ------------------------------------------------------
    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        rows = np.asarray(self.base.batch_rows(index))
        x = y = None
        if self._reads_base:
            batch = self.base[index]
            if isinstance(batch, (tuple, list)):
                x, y = batch[0], batch[1]
            else:
                x = batch
            if len(x) != len(rows):
                raise ValueError(f"base[{index}] holds {len(x)} samples but "
                                 f"base.batch_rows({index}) names {len(rows)}")
        pick = {"x": x, "y": y}

        def build(spec):
            if isinstance(spec, dict):
                return {k: build(v) for k, v in spec.items()}
            return pick[spec] if isinstance(spec, str) else spec[rows]

        inputs = build(self.inputs)
        if self.outputs is None:
            return inputs
        outputs = build(self.outputs)
        if self.sample_weight is None:
            return inputs, outputs
        if isinstance(self.sample_weight, dict):
            return inputs, outputs, {k: w[rows] for k, w in self.sample_weight.items()}
        return inputs, outputs, self.sample_weight[rows]

    def on_epoch_begin(self) -> None:
        if hasattr(self.base, "on_epoch_begin"):
            self.base.on_epoch_begin()

    def on_epoch_end(self) -> None:
        """Move the base to its next epoch (``fit()`` calls this after every epoch)."""
        self.base.on_epoch_end()

    # Forwarded to the base ---------------------------------------------------------------
    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Position the base at ``epoch``, from its batch ``start_batch`` on."""
        self.base.set_epoch(epoch, start_batch)

    @property
    def epoch(self) -> int:
        return self.base.epoch

    @property
    def start_batch(self) -> int:
        return getattr(self.base, "start_batch", 0)

    @property
    def batches_per_epoch(self) -> int:
        return self.base.batches_per_epoch

    @property
    def num_samples(self) -> int:
        return self.base.num_samples

    def batch_rows(self, index: int) -> np.ndarray:
        """The positions of the samples batch ``index`` holds (the base's ``batch_rows``)."""
        return self.base.batch_rows(index)

    def batch_ids(self, index: int) -> list:
        """The IDs of the samples batch ``index`` holds, if the base names its samples."""
        if not hasattr(self.base, "batch_ids"):
            raise AttributeError(f"the base dataset ({type(self.base).__name__}) has no "
                                 "batch_ids; use batch_rows")
        return self.base.batch_ids(index)

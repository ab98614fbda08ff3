"""helpers.backends: what fit() does with a PyDataset, observed in a child process."""

from __future__ import annotations

import keras
import pytest

from helpers.backends import BACKENDS, installed_backends, observe


def test_observe_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        observe("numpy-only")


def test_installed_backends_lists_the_running_one():
    assert keras.backend.backend() in installed_backends()
    assert set(installed_backends()) <= set(BACKENDS)


def test_observe_the_running_backend():
    # "overlap" (timings) is left to notebook 05, which runs it on every backend.
    seen = observe(keras.backend.backend(), parts=("reads", "consumed", "empty"))
    assert seen["backend"] == keras.backend.backend()
    reads = seen["reads"]
    assert reads["fit_epochs"] == 2
    assert reads["outside_epochs"] >= 0
    assert reads["dataset_epoch_begins"] >= 2
    # A model built before fit() consumes every batch of every epoch exactly once.
    for workers in (1, 2):
        assert seen["consumed"][f"workers={workers}, built"] == [True] * 3
    assert all(isinstance(v, str) and v for v in seen["empty"].values())


def test_observe_runs_only_the_parts_asked_for():
    seen = observe(keras.backend.backend(), parts=("empty",))
    assert set(seen) == {"backend", "keras", "empty"}
    with pytest.raises(ValueError, match="parts must be among"):
        observe(keras.backend.backend(), parts=("speed",))

"""helpers.memory_study: peak memory of training, each run in a fresh process."""

from __future__ import annotations

import pytest

from helpers.memory_study import memory_study, train_one_epoch_peak


def test_memory_runs_in_this_process_and_in_fresh_ones(volumes):
    data_dir, _, _ = volumes
    assert train_one_epoch_peak("generator", 20, data_dir) > 50  # MiB: Python + Keras at least
    with pytest.raises(ValueError, match="mode"):
        train_one_epoch_peak("disk", 20, data_dir)
    peaks = memory_study([10, 20], data_dir)
    assert set(peaks) == {(m, n) for m in ("arrays", "generator") for n in (10, 20)}
    assert all(p > 50 for p in peaks.values())

"""helpers.memory_study: peak memory of training, each run in a fresh process."""

from __future__ import annotations

import pytest

from helpers.memory_study import memory_study, train_one_epoch_peak
from helpers.packed import pack_volume_dataset
from helpers.volumes import make_volume_dataset


def test_bad_mode_or_missing_packed_dir_is_named(volumes):
    data_dir, _, _ = volumes
    with pytest.raises(ValueError, match="mode"):
        train_one_epoch_peak("disk", 20, data_dir)
    with pytest.raises(ValueError, match="packed_dir"):
        train_one_epoch_peak("packed", 20, data_dir)


def test_arrays_hold_the_data_and_the_generator_does_not(tmp_path):
    # 256 samples of 32^3: 32 MiB as float32. The generator runs first, so the arrays run
    # cannot reuse memory the generator left behind.
    data_dir = tmp_path / "v"
    make_volume_dataset(data_dir, 256, n_classes=3, seed=0, progress=False)
    gen = train_one_epoch_peak("generator", 256, data_dir)
    arr = train_one_epoch_peak("arrays", 256, data_dir)
    assert set(gen) == set(arr) == {"anon_mb", "rss_mb"}
    assert arr["anon_mb"] - gen["anon_mb"] > 24


def test_fresh_processes_cover_every_mode_with_both_figures(volumes, tmp_path):
    data_dir, _, _ = volumes
    packed_dir = pack_volume_dataset(data_dir, tmp_path / "packed", progress=False)
    peaks = memory_study([10], data_dir, packed_dir)
    assert set(peaks) == {("arrays", 10), ("generator", 10), ("packed", 10)}
    for figures in peaks.values():
        assert 50 < figures["anon_mb"] <= figures["rss_mb"]  # MiB: Python + Keras at least

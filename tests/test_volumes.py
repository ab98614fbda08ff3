"""make_volume_dataset / load_partition: the files, their reuse, and what they refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.volumes import VOLUME_SHAPES, load_partition, make_volume, make_volume_dataset


def test_layout_matches_the_article(volumes):
    data_dir, partition, labels = volumes
    assert sorted(labels) == sorted(f"id-{i}" for i in range(1, 61))
    assert set(partition) == {"train", "validation"}
    assert sorted(partition["train"] + partition["validation"]) == sorted(labels)
    sample = np.load(data_dir / "id-1.npy")
    assert sample.shape == (16, 16, 16) and sample.dtype == np.uint8
    assert load_partition(data_dir) == (partition, labels)
    assert json.loads((data_dir / "labels.json").read_text()) == labels


def test_classes_are_balanced_and_in_range(volumes):
    _, _, labels = volumes
    counts = np.bincount(list(labels.values()))
    assert counts.tolist() == [20, 20, 20]


def test_classes_differ_in_content():
    """The class signal is real: mean volumes of two classes differ far beyond the noise."""
    rng = np.random.default_rng(0)
    means = [np.mean([make_volume(c, (16, 16, 16), 1, rng) for _ in range(30)], axis=0)
             for c in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(means[a] - means[b]).max() > 30


def test_channels_axis_when_several(tmp_path):
    make_volume_dataset(tmp_path, 4, dim=(8, 8, 8), n_channels=2, n_classes=2, progress=False)
    assert np.load(tmp_path / "id-3.npy").shape == (8, 8, 8, 2)


def test_rerun_reuses_and_completes(tmp_path):
    make_volume_dataset(tmp_path, 10, dim=(8, 8, 8), n_classes=2, progress=False)
    before = (tmp_path / "id-2.npy").stat().st_mtime_ns
    (tmp_path / "id-7.npy").unlink()  # as if interrupted
    again = make_volume_dataset(tmp_path, 10, dim=(8, 8, 8), n_classes=2, progress=False)
    assert (tmp_path / "id-7.npy").exists()
    assert (tmp_path / "id-2.npy").stat().st_mtime_ns == before
    assert again == load_partition(tmp_path)


def test_same_seed_same_content(tmp_path):
    a = make_volume_dataset(tmp_path / "a", 6, dim=(8, 8, 8), n_classes=2, progress=False)
    b = make_volume_dataset(tmp_path / "b", 6, dim=(8, 8, 8), n_classes=2, progress=False)
    assert a == b
    assert np.array_equal(np.load(tmp_path / "a/id-4.npy"), np.load(tmp_path / "b/id-4.npy"))


def test_other_arguments_in_same_folder_refused(tmp_path):
    make_volume_dataset(tmp_path, 4, dim=(8, 8, 8), n_classes=2, progress=False)
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        make_volume_dataset(tmp_path, 5, dim=(8, 8, 8), n_classes=2, progress=False)


def test_user_files_never_overwritten(tmp_path):
    mine = tmp_path / "id-2.npy"
    mine.write_bytes(b"my own data")
    with pytest.raises(FileExistsError, match="id-2.npy"):
        make_volume_dataset(tmp_path, 4, dim=(8, 8, 8), n_classes=2, progress=False)
    assert mine.read_bytes() == b"my own data"
    assert not (tmp_path / "id-1.npy").exists()


def test_no_partial_files_left(tmp_path):
    make_volume_dataset(tmp_path, 5, dim=(8, 8, 8), n_classes=2, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=3, n_classes=1), "n_classes"),
    (dict(n_samples=3, n_classes=len(VOLUME_SHAPES) + 1), "n_classes"),
    (dict(n_samples=3, dim=(8, 8)), "dim"),
    (dict(n_samples=3, n_channels=0), "n_channels"),
])
def test_bad_arguments(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_volume_dataset(tmp_path, progress=False, **kwargs)


def test_load_partition_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="partition.json"):
        load_partition(tmp_path)
    (tmp_path / "partition.json").write_text("{not json")
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(ValueError, match="partition.json"):
        load_partition(tmp_path)

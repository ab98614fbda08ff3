"""helpers.tfdata: the tf.data reader of notebooks 08 and 09."""

from __future__ import annotations

import os

import numpy as np
import pytest

from helpers.tfdata import volume_tf_data


def test_tf_data_reader_matches_the_files(volumes):
    data_dir, partition, labels = volumes
    ids = partition["train"][:10]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    ds = volume_tf_data(paths, [labels[i] for i in ids], 4, dim=(16, 16, 16), n_classes=3)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    assert [len(x) for x in xs] == [4, 4, 2] and xs[0].shape[1:] == (16, 16, 16, 1)
    got = sorted(np.concatenate(xs).reshape(10, -1).sum(axis=1).tolist())
    want = sorted(np.load(p).astype(np.float32).sum() for p in paths)
    assert got == pytest.approx(want)
    assert np.concatenate(ys).sum(axis=0).sum() == 10


def test_tf_data_reader_checks_file_sizes(volumes):
    data_dir, partition, labels = volumes
    paths = [os.path.join(data_dir, "id-1.npy")]
    with pytest.raises(ValueError, match="bytes"):
        volume_tf_data(paths, [0], 4, dim=(32, 32, 32))


def test_tf_data_reader_without_shuffling_keeps_the_order(volumes):
    data_dir, partition, labels = volumes
    ids = partition["train"][:6]
    paths = [os.path.join(data_dir, f"{i}.npy") for i in ids]
    ds = volume_tf_data(paths, [labels[i] for i in ids], 3, dim=(16, 16, 16), n_classes=3,
                        shuffle=False)
    xs = np.concatenate([x.numpy() for x, _ in ds])[..., 0]
    assert np.array_equal(xs, np.stack([np.load(p) for p in paths]).astype(np.float32))

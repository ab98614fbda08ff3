"""helpers.torchdata: the PyTorch DataLoader of notebook 07."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from helpers.torchdata import VolumeFiles, volume_torch_loader


def _paths(data_dir, ids):
    return [os.path.join(data_dir, f"{i}.npy") for i in ids]


def test_volume_files_serves_each_file_with_its_one_hot_label(volumes):
    data_dir, partition, labels = volumes
    ids = partition["train"][:5]
    ds = VolumeFiles(_paths(data_dir, ids), [labels[i] for i in ids], (16, 16, 16), 3)
    assert len(ds) == 5
    for k, i in enumerate(ids):
        x, y = ds[k]
        assert x.dtype == np.float32 and x.shape == (16, 16, 16, 1)
        assert np.array_equal(x[..., 0], np.load(_paths(data_dir, [i])[0]))
        assert y.tolist() == np.eye(3)[labels[i]].tolist()
    assert pickle.loads(pickle.dumps(ds))[2][1].tolist() == ds[2][1].tolist()


def test_volume_files_names_the_file_at_fault(volumes):
    data_dir, partition, labels = volumes
    path = _paths(data_dir, partition["train"][:1])
    with pytest.raises(ValueError, match="expected shape"):
        VolumeFiles(path, [0], (32, 32, 32), 3)[0]
    with pytest.raises(ValueError, match="outside"):
        VolumeFiles(path, [3], (16, 16, 16), 3)
    with pytest.raises(ValueError, match="1 paths but 2 labels"):
        VolumeFiles(path, [0, 1], (16, 16, 16), 3)


def test_loader_serves_every_sample_once_a_partial_last_batch_and_reshuffles(volumes):
    pytest.importorskip("torch")
    data_dir, partition, labels = volumes
    ids = partition["train"][:10]
    paths = _paths(data_dir, ids)
    loader = volume_torch_loader(paths, [labels[i] for i in ids], 4, dim=(16, 16, 16),
                                 n_classes=3, seed=0)
    sums = {float(np.load(p).astype(np.float32).sum()) for p in paths}
    orders = []
    for _ in range(2):
        batches = [np.asarray(x) for x, _ in loader]
        assert [len(b) for b in batches] == [4, 4, 2]
        order = [float(v.sum()) for v in np.concatenate(batches)]
        assert set(order) == sums and len(order) == 10
        orders.append(order)
    assert orders[0] != orders[1], "the DataLoader should draw a new order each epoch"

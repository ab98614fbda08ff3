"""PackedDataGenerator keeps DataGenerator's contract; pack_volume_dataset writes whole packs."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from helpers.generator import DataGenerator
from helpers.packed import PACKED_INDEX, PackedDataGenerator, pack_volume_dataset

DIM = (4, 5, 6)
N_CLASSES = 3


@pytest.fixture()
def dataset(tmp_path):
    """13 per-sample files whose values encode their ID, labels, and a pack (shards of 5)."""
    src = tmp_path / "src"
    src.mkdir()
    ids = [f"id-{i}" for i in range(1, 14)]
    labels = {id_: i % N_CLASSES for i, id_ in enumerate(ids)}
    for i, id_ in enumerate(ids):
        np.save(src / f"{id_}.npy", np.full(DIM, i + 1, dtype=np.uint8))
    (src / "labels.json").write_text(json.dumps(labels))
    (src / "partition.json").write_text(json.dumps({"train": ids[:10], "validation": ids[10:]}))
    dst = pack_volume_dataset(src, tmp_path / "packed", shard_size=5, progress=False)
    return src, dst, ids, labels


def _gen(cls, data_dir, ids, labels, **kw):
    kw = {"batch_size": 4, "dim": DIM, "n_classes": N_CLASSES, "seed": 3} | kw
    return cls(ids, labels, data_dir, **kw)


def test_pack_layout(dataset):
    src, dst, ids, _ = dataset
    index = json.loads((dst / PACKED_INDEX).read_text())
    assert index["shards"] == ["shard-000.npy", "shard-001.npy", "shard-002.npy"]
    assert index["index"]["id-1"] == [0, 0] and index["index"]["id-13"] == [2, 2]
    shard = np.load(dst / "shard-001.npy")
    assert shard.shape == (5, *DIM) and shard.dtype == np.uint8
    np.testing.assert_array_equal(shard[2], np.load(src / "id-8.npy"))
    assert (dst / "labels.json").read_text() == (src / "labels.json").read_text()
    assert (dst / "partition.json").is_file()
    assert [p.name for p in dst.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("shuffle", [True, False])
def test_same_batches_as_datagenerator(dataset, shuffle):
    src, dst, ids, labels = dataset
    subset = ids[::-1][:11]  # order and subset differ from the pack's
    ref = _gen(DataGenerator, src, subset, labels, shuffle=shuffle)
    packed = _gen(PackedDataGenerator, dst, subset, labels, shuffle=shuffle)
    assert len(packed) == len(ref) == 3  # ceil(11 / 4)
    for _ in range(2):
        for i in range(len(ref)):
            (xr, yr), (xp, yp) = ref[i], packed[i]
            assert xp.dtype == yp.dtype == np.float32
            np.testing.assert_array_equal(xp, xr)
            np.testing.assert_array_equal(yp, yr)
            assert packed.batch_ids(i) == ref.batch_ids(i)
        ref.on_epoch_end()
        packed.on_epoch_end()


def test_without_labels_and_resumed_like_datagenerator(dataset):
    """labels=None and start_batch come from DataGenerator: the packed reader serves them too."""
    src, dst, ids, labels = dataset
    kw = {"epoch": 2, "start_batch": 1}
    ref = _gen(DataGenerator, src, ids, labels, **kw)
    packed = _gen(PackedDataGenerator, dst, ids, None, **kw)
    assert len(packed) == len(ref) == 3 and packed.batches_per_epoch == 4
    for i in range(len(ref)):
        assert packed.batch_ids(i) == ref.batch_ids(i)
        np.testing.assert_array_equal(packed[i], ref[i][0])


def test_batch_spanning_shards_keeps_batch_order(dataset):
    _, dst, ids, labels = dataset
    gen = _gen(PackedDataGenerator, dst, ids, labels, batch_size=13, shuffle=True)
    X, y = gen[0]
    assert X.shape == (13, *DIM, 1) and y.shape == (13, N_CLASSES)
    values = X[:, 0, 0, 0, 0].astype(int)
    assert [f"id-{v}" for v in values] == gen.batch_ids(0)
    assert sorted(values) != list(values) or not gen.shuffle  # really shuffled
    np.testing.assert_array_equal(y.argmax(1), [labels[i] for i in gen.batch_ids(0)])


def test_last_batch_partial_and_past_the_end(dataset):
    _, dst, ids, labels = dataset
    gen = _gen(PackedDataGenerator, dst, ids, labels)
    assert len(gen) == 4 and gen[3][0].shape[0] == 1
    with pytest.raises(IndexError):
        gen[4]
    assert len(_gen(PackedDataGenerator, dst, ids, labels, drop_remainder=True)) == 3


def test_pickle_carries_no_data_and_still_reads(dataset):
    _, dst, ids, labels = dataset
    gen = _gen(PackedDataGenerator, dst, ids, labels)
    before = gen[1]
    assert gen._maps  # a shard is mapped now
    blob = pickle.dumps(gen)
    assert len(blob) < 4000
    clone = pickle.loads(blob)
    assert clone._maps == {}
    np.testing.assert_array_equal(clone[1][0], before[0])


def test_bad_arguments(dataset):
    _, dst, ids, labels = dataset
    with pytest.raises(KeyError, match="id-1'"):
        _gen(PackedDataGenerator, dst, ids, {k: v for k, v in labels.items() if k != "id-1"})
    with pytest.raises(ValueError, match="outside"):
        _gen(PackedDataGenerator, dst, ids, labels | {"id-2": N_CLASSES})
    with pytest.raises(ValueError, match="empty"):
        _gen(PackedDataGenerator, dst, [], labels)
    with pytest.raises(ValueError, match="batch_size"):
        _gen(PackedDataGenerator, dst, ids, labels, batch_size=0)
    with pytest.raises(KeyError, match="id-99"):
        _gen(PackedDataGenerator, dst, ["id-99"], labels | {"id-99": 0})
    with pytest.raises(FileNotFoundError, match=PACKED_INDEX):
        _gen(PackedDataGenerator, dst.parent / "src", ids, labels)
    with pytest.raises(ValueError, match="rows of shape"):
        _gen(PackedDataGenerator, dst, ids, labels, dim=(4, 5, 7))


def test_truncated_shard_is_named(dataset):
    _, dst, ids, labels = dataset
    shard = dst / "shard-001.npy"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ValueError, match="shard-001.npy.*truncated"):
        _gen(PackedDataGenerator, dst, ids, labels)
    # A split that does not touch the damaged shard still works.
    assert len(_gen(PackedDataGenerator, dst, ids[:5], labels)) == 2


def test_garbage_shard_is_named(dataset):
    _, dst, ids, labels = dataset
    (dst / "shard-002.npy").write_bytes(b"not a numpy file at all")
    with pytest.raises(ValueError, match="shard-002.npy"):
        _gen(PackedDataGenerator, dst, ids, labels)


def test_pack_reuses_its_own_and_refuses_others(dataset, tmp_path):
    src, dst, ids, _ = dataset
    mtime = (dst / "shard-000.npy").stat().st_mtime_ns
    assert pack_volume_dataset(src, dst, shard_size=5, progress=False) == dst
    assert (dst / "shard-000.npy").stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match="another pack"):
        pack_volume_dataset(src, dst, shard_size=4, progress=False)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing"):
        pack_volume_dataset(src, user, progress=False)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]


def test_failed_pack_leaves_nothing(dataset, tmp_path):
    src, _, ids, _ = dataset
    (src / "id-7.npy").write_bytes(b"\x93NUMPY broken")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="id-7"):
        pack_volume_dataset(src, out, shard_size=5, progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    with pytest.raises(FileNotFoundError, match="id-404"):
        pack_volume_dataset(src, out, ids=["id-1", "id-404"], progress=False)
    assert not out.exists()


def test_channels_last_samples(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    labels = {"a": 0, "b": 1, "c": 0}
    for v, id_ in enumerate(labels):
        np.save(src / f"{id_}.npy", np.full((*DIM, 2), v, dtype=np.float32))
    dst = pack_volume_dataset(src, tmp_path / "p", ids=list(labels), progress=False)
    ref = DataGenerator(list(labels), labels, src, 2, DIM, 2, 2, seed=0)
    gen = PackedDataGenerator(list(labels), labels, dst, 2, DIM, 2, 2, seed=0)
    for i in range(len(gen)):
        np.testing.assert_array_equal(gen[i][0], ref[i][0])

"""shard=(index, count): each process's share of every epoch (helpers.generator.shard_rows)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from helpers.generator import DataGenerator, epoch_order, shard_rows, shard_size

DIM = (16, 16, 16)
COUNTS = range(1, 9)


def make(volumes, ids=None, **kw):
    data_dir, partition, labels = volumes
    kw = {"batch_size": 4, "dim": DIM, "n_classes": 3, "seed": 0, **kw}
    return DataGenerator(partition["train"] if ids is None else ids, labels, data_dir, **kw)


def epoch_ids(gen):
    return [i for b in range(len(gen)) for i in gen.batch_ids(b)]


@pytest.mark.parametrize("n", [1, 2, 5, 7, 13, 48, 50])
@pytest.mark.parametrize("count", COUNTS)
def test_drop_shards_are_equal_disjoint_and_skip_only_the_remainder(n, count):
    if n < count:
        with pytest.raises(ValueError, match="shard_remainder='drop'"):
            shard_size(n, (0, count), "drop")
        return
    order = epoch_order(n, seed=3, epoch=1)
    parts = [shard_rows(order, (i, count), "drop") for i in range(count)]
    assert {len(p) for p in parts} == {n // count} == {shard_size(n, (0, count), "drop")}
    merged = np.concatenate(parts)
    assert len(set(merged.tolist())) == len(merged)  # disjoint
    skipped = set(range(n)) - set(merged.tolist())
    assert skipped == set(order[len(order) - n % count:].tolist()) if n % count else not skipped


@pytest.mark.parametrize("n", [1, 2, 5, 7, 13, 48, 50])
@pytest.mark.parametrize("count", COUNTS)
def test_pad_serves_everything_with_the_fewest_repeats(n, count):
    order = epoch_order(n, seed=3, epoch=1)
    parts = [shard_rows(order, (i, count), "pad") for i in range(count)]
    size = math.ceil(n / count)
    assert {len(p) for p in parts} == {size} == {shard_size(n, (0, count), "pad")}
    served = Counter(np.concatenate(parts).tolist())
    assert set(served) == set(range(n))  # every sample at least once
    assert sum(served.values()) - n == size * count - n  # repeats: only what equal sizes need
    assert max(served.values()) == math.ceil(size * count / n)  # spread evenly when n < count


def test_no_shard_is_the_whole_order_and_one_shard_is_too():
    order = epoch_order(10, seed=0, epoch=0)
    assert shard_rows(order, None) is order
    for remainder in ("pad", "drop"):
        assert np.array_equal(shard_rows(order, (0, 1), remainder), order)


def test_samples_move_between_shards_and_drop_skips_a_different_few_each_epoch():
    n, count = 50, 4
    owner = [dict.fromkeys(shard_rows(epoch_order(n, 0, e), (0, count), "drop").tolist())
             for e in range(2)]
    assert set(owner[0]) != set(owner[1])
    skipped = [set(range(n)) - set(np.concatenate(
        [shard_rows(epoch_order(n, 0, e), (i, count), "drop") for i in range(count)]).tolist())
        for e in range(3)]
    assert all(len(s) == n % count for s in skipped)
    assert len({frozenset(s) for s in skipped}) == 3


@pytest.mark.parametrize("remainder", ["pad", "drop"])
@pytest.mark.parametrize("count", [1, 2, 3, 7, 8])
def test_generators_serve_their_shard_with_equal_len_across_epochs(volumes, count, remainder):
    ids = volumes[1]["train"]
    gens = [make(volumes, shard=(i, count), shard_remainder=remainder) for i in range(count)]
    assert len({len(g) for g in gens}) == 1
    for _ in range(2):
        served = Counter(i for g in gens for i in epoch_ids(g))
        if remainder == "drop":
            assert all(v == 1 for v in served.values())  # exactly once, merged
            assert len(ids) - len(served) == gens[0].samples_dropped == len(ids) % count
            assert gens[0].samples_repeated == 0
        else:
            assert set(served) == set(ids)
            assert sum(served.values()) - len(ids) == gens[0].samples_repeated
            assert gens[0].samples_dropped == 0
        for g in gens:
            g.on_epoch_end()


def test_the_sharded_generator_reads_the_rows_it_names(volumes):
    data_dir = volumes[0]
    gen = make(volumes, shard=(1, 3), shard_remainder="drop", shuffle=False)
    X, _ = gen[0]
    expected = [np.load(data_dir / f"{i}.npy") for i in gen.batch_ids(0)]
    assert np.array_equal(X[..., 0], np.stack(expected).astype(np.float32))
    assert gen.batch_ids(0) == [volumes[1]["train"][k] for k in (1, 4, 7, 10)]


@pytest.mark.parametrize("shard, match", [
    ((2, 2), "0 <= index < count"), ((0, 0), "count >= 1"), ((-1, 3), "0 <= index"),
    ((0.5, 2), "pair of ints"), (3, "pair of ints"), ((0, 1, 2), "pair of ints"),
    ((True, 2), "pair of ints"),
])
def test_bad_shard_is_named(volumes, shard, match):
    with pytest.raises(ValueError, match=r"shard.*" + match.replace("(", r"\(")):
        make(volumes, shard=shard)


def test_bad_remainder_and_empty_shards_are_named(volumes):
    with pytest.raises(ValueError, match="shard_remainder must be one of"):
        make(volumes, shard=(0, 2), shard_remainder="wrap")
    with pytest.raises(ValueError, match="leaves every shard empty"):
        make(volumes, ids=volumes[1]["train"][:3], shard=(0, 5), shard_remainder="drop")


def test_packed_generator_shards_like_datagenerator(volumes, tmp_path):
    from helpers.packed import PackedDataGenerator, pack_volume_dataset

    data_dir, partition, labels = volumes
    packed_dir = pack_volume_dataset(data_dir, tmp_path / "packed", shard_size=16,
                                     progress=False)
    for i in range(3):
        ref = make(volumes, shard=(i, 3), shard_remainder="drop")
        packed = PackedDataGenerator(partition["train"], labels, packed_dir, batch_size=4,
                                     dim=DIM, n_classes=3, seed=0, shard=(i, 3),
                                     shard_remainder="drop")
        assert len(packed) == len(ref) and packed.samples_dropped == ref.samples_dropped
        assert epoch_ids(packed) == epoch_ids(ref)
        np.testing.assert_array_equal(packed[1][0], ref[1][0])


@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_cifar_sequence_shards_its_rows(tmp_path, remainder):
    from helpers.cifar import CIFAR10Sequence
    from helpers.cifar_standin import write_cifar10_like

    folder = write_cifar10_like(tmp_path / "cifar-10-batches-py", n_per_batch=5, seed=3)
    n, count = 23, 4  # limit=23: uneven over 4 shards
    seqs = [CIFAR10Sequence(folder, batch_size=4, seed=1, cache_dir=tmp_path / "cache",
                            limit=n, shard=(i, count), shard_remainder=remainder)
            for i in range(count)]
    assert len({len(s) for s in seqs}) == 1
    for _ in range(2):
        rows = Counter(int(r) for s in seqs for b in range(len(s)) for r in s.batch_rows(b))
        if remainder == "drop":
            assert set(rows.values()) == {1} and n - len(rows) == seqs[0].samples_dropped == 3
        else:
            assert set(rows) == set(range(n))
            assert sum(rows.values()) - n == seqs[0].samples_repeated == 1
        for s in seqs:
            s.on_epoch_end()
    with pytest.raises(ValueError, match="shard"):
        CIFAR10Sequence(folder, cache_dir=tmp_path / "cache", shard=(4, 4))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Thirteen tiny PNG files in two classes: 13 splits unevenly over 2 to 5 shards."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    for k in range(13):
        folder = root / ("a" if k % 3 else "b")
        folder.mkdir(exist_ok=True)
        Image.new("RGB", (4, 4), (k * 19, 0, 0)).save(folder / f"{k:02d}.png")
    return root


@pytest.mark.parametrize("remainder", ["pad", "drop"])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_image_folder_shards_like_datagenerator(image_folder, count, remainder):
    from helpers.images import ImageFolderDataset

    shards = [ImageFolderDataset(image_folder, image_size=(4, 4), batch_size=2, seed=5,
                                 shard=(i, count), shard_remainder=remainder)
              for i in range(count)]
    n = len(shards[0].file_paths)
    assert {len(s) for s in shards} == {math.ceil(shard_size(n, (0, count), remainder) / 2)}
    for epoch in range(3):
        served = [np.concatenate([s.batch_rows(b) for b in range(len(s))]) for s in shards]
        order = epoch_order(n, 5, epoch)  # drawn globally from (seed, epoch), then dealt out
        for i, rows in enumerate(served):
            assert np.array_equal(rows, shard_rows(order, (i, count), remainder))
        seen = Counter(np.concatenate(served).tolist())
        if remainder == "drop":
            assert set(seen.values()) == {1}  # exactly once across shards
            assert n - len(seen) == shards[0].samples_dropped == n % count
            assert shards[0].samples_repeated == 0
        else:
            assert set(seen) == set(range(n))  # every file at least once
            assert sum(seen.values()) - n == shards[0].samples_repeated == -n % count
            assert shards[0].samples_dropped == 0
        X, y = shards[-1][len(shards[-1]) - 1]  # the rows it names are the ones it decodes
        assert np.array_equal(y, shards[-1].labels[shards[-1].batch_rows(len(shards[-1]) - 1)])
        for s in shards:
            s.on_epoch_end()
    if count > 1:  # files move between shards from one epoch to the next
        first = set(shard_rows(epoch_order(n, 5, 0), (0, count), remainder).tolist())
        assert first != set(shard_rows(epoch_order(n, 5, 1), (0, count), remainder).tolist())


@pytest.mark.parametrize(("shard", "remainder", "match"), [
    ((2, 2), "pad", "0 <= index < count"), ((0, 2), "both", "shard_remainder must be"),
    ((0, 20), "drop", "leaves every shard empty")])
def test_image_folder_bad_shard_is_named(image_folder, shard, remainder, match):
    from helpers.images import ImageFolderDataset

    with pytest.raises(ValueError, match=match):
        ImageFolderDataset(image_folder, shard=shard, shard_remainder=remainder)

"""helpers.DataGenerator: the public contract that the notebooks and other code rely on."""

from __future__ import annotations

import math
import pickle

import keras
import numpy as np
import pytest

from helpers.generator import DataGenerator

DIM = (16, 16, 16)


def make(volumes, ids=None, **kw):
    data_dir, partition, labels = volumes
    kw = {"batch_size": 7, "dim": DIM, "n_classes": 3, "seed": 0, **kw}
    return DataGenerator(partition["train"] if ids is None else ids, labels, data_dir, **kw)


def epoch_ids(gen):
    return [i for b in range(len(gen)) for i in gen.batch_ids(b)]


def test_is_a_pydataset_passing_kwargs(volumes):
    gen = make(volumes, workers=3, use_multiprocessing=True, max_queue_size=5)
    assert isinstance(gen, keras.utils.PyDataset)
    assert (gen.workers, gen.use_multiprocessing, gen.max_queue_size) == (3, True, 5)


@pytest.mark.parametrize("batch_size", [1, 7, 48, 100])
def test_len_is_ceil_and_every_sample_served_once(volumes, batch_size):
    gen = make(volumes, batch_size=batch_size)
    n = len(volumes[1]["train"])
    assert len(gen) == math.ceil(n / batch_size)
    served = epoch_ids(gen)
    assert sorted(served) == sorted(volumes[1]["train"])
    sizes = [len(gen[i][0]) for i in range(len(gen))]
    assert sum(sizes) == n and sizes[-1] == n - batch_size * (len(gen) - 1)


def test_drop_remainder_floors(volumes):
    gen = make(volumes, drop_remainder=True)
    assert len(gen) == len(volumes[1]["train"]) // 7
    assert all(len(gen[i][0]) == 7 for i in range(len(gen)))


def test_batch_shapes_dtypes_and_content(volumes):
    data_dir, _, labels = volumes
    gen = make(volumes, shuffle=False)
    X, y = gen[1]
    assert X.shape == (7, *DIM, 1) and X.dtype == np.float32
    assert y.shape == (7, 3) and y.dtype == np.float32
    ids = gen.batch_ids(1)
    assert np.array_equal(X[2, ..., 0], np.load(data_dir / f"{ids[2]}.npy").astype(np.float32))
    assert np.array_equal(y, keras.utils.to_categorical([labels[i] for i in ids], 3))


def test_matches_plain_np_load_over_a_whole_epoch(volumes):
    """The fast reading path gives exactly what np.load gives, for every sample."""
    data_dir, _, _ = volumes
    gen = make(volumes, batch_size=16)
    for b in range(len(gen)):
        expected = np.stack([np.load(data_dir / f"{i}.npy") for i in gen.batch_ids(b)])
        assert np.array_equal(gen[b][0][..., 0], expected.astype(np.float32))


def test_index_past_the_end(volumes):
    gen = make(volumes)
    with pytest.raises(IndexError):
        gen[len(gen)]
    with pytest.raises(IndexError):
        gen[-1]


def test_reshuffled_every_epoch_and_reproducible(volumes):
    a, b = make(volumes, seed=5), make(volumes, seed=5)
    first = epoch_ids(a)
    a.on_epoch_end()
    second = epoch_ids(a)
    assert first != second and sorted(first) == sorted(second)
    assert epoch_ids(b) == first
    b.on_epoch_end()
    assert epoch_ids(b) == second
    assert epoch_ids(make(volumes, seed=6)) != first


def test_epoch_argument_starts_where_an_uninterrupted_run_is(volumes):
    """A new object built with epoch=k (a resumed run) serves what the old one served at k."""
    old = make(volumes, seed=5)
    orders = []
    for _ in range(3):
        orders.append(epoch_ids(old))
        old.on_epoch_end()
    resumed = make(volumes, seed=5, epoch=2)
    assert resumed.epoch == 2 and epoch_ids(resumed) == orders[2] != orders[0]
    assert np.array_equal(resumed[0][0], make(volumes, seed=5, epoch=2)[0][0])
    old.set_epoch(1)
    assert old.epoch == 1 and epoch_ids(old) == orders[1]
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="epoch"):
            make(volumes, epoch=bad)


def test_no_shuffle_keeps_order(volumes):
    gen = make(volumes, shuffle=False)
    gen.on_epoch_end()
    assert epoch_ids(gen) == volumes[1]["train"]


def test_unseeded_generators_differ(volumes):
    assert epoch_ids(make(volumes, seed=None)) != epoch_ids(make(volumes, seed=None))


def test_pickles_with_its_state(volumes):
    gen = make(volumes)
    gen.on_epoch_end()
    copy = pickle.loads(pickle.dumps(gen))
    assert epoch_ids(copy) == epoch_ids(gen)
    assert np.array_equal(copy[0][0], gen[0][0])


def test_any_numeric_dtype_and_channel_axis(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a": rng.random(DIM).astype(np.float64),
              "b": rng.integers(-5, 5, (*DIM, 1)).astype(np.int16),
              "c": rng.integers(0, 255, DIM).astype(np.uint8),
              "d": np.asfortranarray(rng.random(DIM).astype(np.float32))}
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
    gen = DataGenerator(list(arrays), {k: 0 for k in arrays}, tmp_path, batch_size=4,
                        dim=DIM, n_classes=2, shuffle=False)
    X, _ = gen[0]
    for j, arr in enumerate(arrays.values()):
        assert np.allclose(X[j, ..., 0], arr.reshape(DIM).astype(np.float32))


def test_several_channels(tmp_path):
    arr = np.arange(8 * 8 * 8 * 2, dtype=np.uint16).reshape(8, 8, 8, 2)
    np.save(tmp_path / "x.npy", arr)
    gen = DataGenerator(["x"], {"x": 1}, tmp_path, dim=(8, 8, 8), n_channels=2, n_classes=2)
    assert np.array_equal(gen[0][0][0], arr.astype(np.float32))


# --- errors: at construction where possible, else at load ---------------------------------

def test_missing_label_is_a_keyerror_naming_the_id(volumes):
    data_dir, partition, labels = volumes
    with pytest.raises(KeyError, match="id-999"):
        DataGenerator(partition["train"] + ["id-999"], labels, data_dir, n_classes=3)


def test_label_out_of_range(volumes):
    data_dir, partition, labels = volumes
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        DataGenerator(partition["train"], labels, data_dir, dim=DIM, n_classes=2)


@pytest.mark.parametrize("kwargs, words", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-3), "batch_size"),
    (dict(ids=[]), "empty"),
    (dict(batch_size=64, drop_remainder=True), "zero batches"),
])
def test_bad_arguments(volumes, kwargs, words):
    with pytest.raises(ValueError, match=words):
        make(volumes, **kwargs)


def test_missing_file_at_construction_names_id_and_path(volumes, tmp_path):
    _, partition, labels = volumes
    with pytest.raises(FileNotFoundError, match=r"id-1'.*id-1\.npy"):
        DataGenerator(partition["train"], labels, tmp_path, n_classes=3)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        DataGenerator(partition["train"], labels, tmp_path / "nowhere", n_classes=3)


def _one_bad_file(tmp_path, bad_bytes=None, bad_array=None):
    for i in range(4):
        np.save(tmp_path / f"s{i}.npy", np.zeros(DIM, np.uint8))
    if bad_array is not None:
        np.save(tmp_path / "s3.npy", bad_array)
    if bad_bytes is not None:
        (tmp_path / "s3.npy").write_bytes(bad_bytes)
    return DataGenerator([f"s{i}" for i in range(4)], dict.fromkeys([f"s{i}" for i in range(4)], 0),
                         tmp_path, batch_size=4, dim=DIM, n_classes=1, shuffle=False)


def test_file_deleted_after_construction(tmp_path):
    gen = _one_bad_file(tmp_path)
    (tmp_path / "s3.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"'s3'.*s3\.npy"):
        gen[0]


def test_wrong_shape_names_id_path_and_shapes(tmp_path):
    gen = _one_bad_file(tmp_path, bad_array=np.zeros((16, 16, 15), np.uint8))
    with pytest.raises(ValueError, match=r"'s3'.*s3\.npy.*\(16, 16, 16\).*\(16, 16, 15\)"):
        gen[0]


def test_same_size_wrong_shape_is_caught_too(tmp_path):
    gen = _one_bad_file(tmp_path, bad_array=np.zeros((32, 8, 16), np.uint8))
    with pytest.raises(ValueError, match=r"'s3'.*found \(32, 8, 16\)"):
        gen[0]


@pytest.mark.parametrize("content, words", [
    (b"not a numpy file at all", "not a .npy"),
    (None, "truncated"),
])
def test_unreadable_file(tmp_path, content, words):
    if content is None:
        np.save(tmp_path / "full.npy", np.zeros(DIM, np.uint8))
        content = (tmp_path / "full.npy").read_bytes()[:-100]
        (tmp_path / "full.npy").unlink()
    gen = _one_bad_file(tmp_path, bad_bytes=content)
    with pytest.raises(ValueError, match=rf"'s3'.*{words}"):
        gen[0]


def test_bad_first_file_does_not_poison_the_fast_path(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"s{i}.npy", np.zeros((32, 8, 16), np.uint8))
    gen = DataGenerator(["s0", "s1", "s2"], dict.fromkeys(["s0", "s1", "s2"], 0), tmp_path,
                        batch_size=1, dim=DIM, n_classes=1, shuffle=False)
    for i in range(3):
        with pytest.raises(ValueError, match="expected shape"):
            gen[i]


def test_object_arrays_refused(tmp_path):
    gen = _one_bad_file(tmp_path)
    np.save(tmp_path / "s3.npy", np.array([{"x": 1}] * 4096, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not numeric"):
        gen[0]


# --- with Keras -------------------------------------------------------------------------------

def _tiny_model(n_classes=3):
    model = keras.Sequential([keras.Input((*DIM, 1)), keras.layers.GlobalAveragePooling3D(),
                              keras.layers.Dense(n_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                  loss="categorical_crossentropy")
    return model


@pytest.mark.parametrize("workers, processes", [(1, False), (2, False), (2, True)])
def test_fit_with_workers(volumes, workers, processes):
    gen = make(volumes, workers=workers, use_multiprocessing=processes)
    history = _tiny_model().fit(gen, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert gen.epoch >= 2  # fit called on_epoch_end after each epoch


class _Recording(DataGenerator):
    """Remembers which IDs each epoch's batches held (threads share this list)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served: dict[int, list[str]] = {}

    def __getitem__(self, index):
        epoch = self.epoch
        batch = super().__getitem__(index)
        self.served.setdefault(epoch, []).extend(self.batch_ids(index))
        return batch


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_serves_every_sample_exactly_once_per_epoch(volumes, workers):
    data_dir, partition, labels = volumes
    gen = _Recording(partition["train"], labels, data_dir, batch_size=7, dim=DIM, n_classes=3,
                     seed=0, workers=workers)
    _tiny_model().fit(gen, epochs=3, verbose=0)
    epochs = [gen.served[k] for k in sorted(gen.served)][-3:]
    for served in epochs:
        assert sorted(served) == sorted(partition["train"])
    assert epochs[0] != epochs[1]



# --- inference without labels; resuming mid-epoch ---------------------------------------------

def test_without_labels_batches_are_x_alone(volumes):
    data_dir, partition, _ = volumes
    labelled = make(volumes, seed=3)
    bare = DataGenerator(partition["train"], None, data_dir, batch_size=7, dim=DIM, seed=3)
    assert len(bare) == len(labelled) and bare.num_samples == len(partition["train"]) == 48
    for b in range(len(bare)):
        X = bare[b]
        assert isinstance(X, np.ndarray) and X.dtype == np.float32
        assert bare.batch_ids(b) == labelled.batch_ids(b)
        np.testing.assert_array_equal(X, labelled[b][0])


@pytest.mark.parametrize("workers, processes", [(1, False), (2, False), (2, True)])
def test_predict_rows_follow_list_ids(volumes, workers, processes):
    data_dir, partition, _ = volumes
    gen = DataGenerator(partition["train"], None, data_dir, batch_size=7, dim=DIM,
                        shuffle=False, workers=workers, use_multiprocessing=processes)
    model = keras.Sequential([keras.Input((*DIM, 1)), keras.layers.GlobalAveragePooling3D()])
    means = model.predict(gen, verbose=0)[:, 0]  # one row per sample: its mean voxel
    expected = [np.load(data_dir / f"{i}.npy").astype(np.float32).mean()
                for i in partition["train"]]
    np.testing.assert_allclose(means, expected, rtol=1e-5)


RESUME_CASES = [  # (generator arguments, epoch, start_batch)
    ({}, 0, 1), ({}, 2, 3), ({}, 1, 6),  # 48 samples of batch 7: 7 batches, the last of 6
    ({"drop_remainder": True}, 1, 5),
    ({"shard": (1, 3), "shard_remainder": "pad", "batch_size": 4}, 2, 2),
]


@pytest.mark.parametrize("kw, epoch, start", RESUME_CASES)
def test_resumed_epoch_is_the_rest_of_the_uninterrupted_one(volumes, kw, epoch, start):
    ref = make(volumes, seed=5, **kw)
    for _ in range(epoch):
        ref.on_epoch_end()
    resumed = make(volumes, seed=5, epoch=epoch, start_batch=start, **kw)
    again = make(volumes, seed=5, **kw)
    again.set_epoch(epoch, start)
    for gen in (resumed, again):
        assert (gen.epoch, gen.start_batch) == (epoch, start)
        assert gen.batches_per_epoch == len(ref) == ref.batches_per_epoch
        assert len(gen) == len(ref) - start
        for i in range(len(gen)):
            assert gen.batch_ids(i) == ref.batch_ids(start + i)
            np.testing.assert_array_equal(gen.batch_rows(i), ref.batch_rows(start + i))
            for got, want in zip(gen[i], ref[start + i], strict=True):
                np.testing.assert_array_equal(got, want)
        with pytest.raises(IndexError):
            gen[len(gen)]
        gen.on_epoch_end()  # the next epoch is whole again
        ref_next = make(volumes, seed=5, epoch=epoch + 1, **kw)
        assert (gen.epoch, gen.start_batch, len(gen)) == (epoch + 1, 0, len(ref))
        assert epoch_ids(gen) == epoch_ids(ref_next)


def test_pickles_with_its_position(volumes):
    gen = make(volumes, seed=2, epoch=1, start_batch=4)
    copy = pickle.loads(pickle.dumps(gen))
    assert (copy.epoch, copy.start_batch, len(copy)) == (1, 4, 3)
    assert epoch_ids(copy) == epoch_ids(gen)
    np.testing.assert_array_equal(copy[1][0], gen[1][0])


@pytest.mark.parametrize("bad", [-1, 7, 100, 1.5, True, "1", None])
def test_bad_start_batch_is_named_and_changes_nothing(volumes, bad):
    with pytest.raises(ValueError, match=r"start_batch must be an integer in \[0, 7\)"):
        make(volumes, start_batch=bad)
    gen = make(volumes, seed=1, epoch=1, start_batch=2)
    before = epoch_ids(gen)
    with pytest.raises(ValueError, match="start_batch"):
        gen.set_epoch(3, bad)
    assert (gen.epoch, gen.start_batch, epoch_ids(gen)) == (1, 2, before)
    with pytest.raises(ValueError, match=r"\[0, 6\)"):  # drop_remainder: 6 whole batches
        make(volumes, drop_remainder=True, start_batch=6)

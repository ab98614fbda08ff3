"""HDF5Batches serves every row once per epoch in the course's seeded order, opens its file in
each process and pickles without it, names what is missing, and feeds fit() from 2 worker
processes; SharedHandleBatches (the anti-pattern) cannot be pickled."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from helpers.hdf5 import HDF5Batches, SharedHandleBatches  # noqa: E402

N, FEATURES = 37, 4


@pytest.fixture(scope="module")
def h5_path(tmp_path_factory):
    """N rows: row k of 'x' is k in every column, row k of 'y' is k; chunked and compressed."""
    path = tmp_path_factory.mktemp("hdf5") / "rows.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.repeat(np.arange(N, dtype=np.float32)[:, None], FEATURES, 1),
                         chunks=(8, FEATURES), compression="gzip")
        f.create_dataset("y", data=np.arange(N, dtype=np.float32)[:, None])
        f.create_dataset("short", data=np.zeros(N - 1))
        f.create_group("group")
    return path


def _epoch(ds: HDF5Batches) -> tuple[np.ndarray, list[int]]:
    """The rows one epoch served, in order (read from x, checked against y), and batch sizes."""
    xs, sizes = [], []
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.dtype == np.float32 and x.shape == (len(y), FEATURES)
        assert np.array_equal(x[:, 0], y[:, 0]) and np.array_equal(x[:, 0], ds.batch_rows(i))
        xs.append(x[:, 0].astype(int))
        sizes.append(len(x))
    return np.concatenate(xs), sizes


def test_every_row_once_per_epoch_reshuffled_and_seeded(h5_path):
    ds = HDF5Batches(h5_path, "x", "y", batch_size=8, seed=3)
    first, sizes = _epoch(ds)
    assert len(ds) == 5 and sizes == [8, 8, 8, 8, 5]
    assert sorted(first) == list(range(N)) and not np.array_equal(first, np.arange(N))
    ds.on_epoch_end()
    second, _ = _epoch(ds)
    assert sorted(second) == list(range(N)) and not np.array_equal(first, second)
    again = HDF5Batches(h5_path, "x", "y", batch_size=8, seed=3)
    assert np.array_equal(_epoch(again)[0], first)
    assert not np.array_equal(_epoch(HDF5Batches(h5_path, "x", "y", batch_size=8, seed=4))[0],
                              first)
    ordered = HDF5Batches(h5_path, "x", batch_size=8, shuffle=False)
    assert np.array_equal(ordered[1], np.repeat(np.arange(8, 16)[:, None], FEATURES, 1))
    with pytest.raises(IndexError, match="out of range for 5 batches"):
        ordered[5]


def test_pickles_without_its_handle_and_reads_right_after_unpickling(h5_path):
    ds = HDF5Batches(h5_path, "x", "y", batch_size=8, seed=1, workers=2)
    assert ds._files == {}  # nothing open until a batch is read
    expected = ds[2]
    assert list(ds._files) == [os.getpid()]
    data = pickle.dumps(ds)  # what a spawned worker process gets
    assert b"h5py" not in data and len(data) < 2000
    copy = pickle.loads(data)
    assert copy._files == {} and copy.workers == 2
    assert all(np.array_equal(a, b) for a, b in zip(copy[2], expected, strict=True))
    assert ds._files[os.getpid()][0].id.valid  # the original's handle is still open
    ds.close()
    assert ds._files == {} and np.array_equal(ds[0][0], copy[0][0])  # opened again
    ds.close()
    copy.close()


def test_a_handle_opened_in_another_process_is_not_used(h5_path):
    ds = HDF5Batches(h5_path, "x", batch_size=8, shuffle=False)
    ds._files[-1] = ("not a file", None, None)  # as a forked worker inherits its parent's
    assert np.array_equal(ds[0], ds[0]) and ds._files[os.getpid()][0].id.valid
    ds.close()


def test_missing_names_and_files_raise_errors_naming_them(h5_path, tmp_path):
    with pytest.raises(KeyError, match=r"rows\.h5 has no dataset 'images' .*'x', 'y'"):
        HDF5Batches(h5_path, "images")
    with pytest.raises(KeyError, match=r"rows\.h5 has no dataset 'labels'"):
        HDF5Batches(h5_path, "x", "labels")
    with pytest.raises(KeyError, match=r"rows\.h5 has no dataset 'group'"):
        HDF5Batches(h5_path, "group")
    with pytest.raises(ValueError, match=r"'short' has 36 rows, 'x' has 37"):
        HDF5Batches(h5_path, "x", "short")
    missing = tmp_path / "absent.h5"
    with pytest.raises(FileNotFoundError, match=r"HDF5 file .*absent\.h5 does not exist"):
        HDF5Batches(missing)
    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("not HDF5")
    with pytest.raises(OSError, match=r"cannot open .*notes\.h5 as an HDF5 file"):
        HDF5Batches(not_hdf5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        HDF5Batches(h5_path, batch_size=0)
    with pytest.raises(KeyError, match="has no dataset 'images'"):
        SharedHandleBatches(h5_path, "images")


def test_a_file_gone_before_a_worker_opens_it_is_named(h5_path, tmp_path):
    path = tmp_path / "moved.h5"
    path.write_bytes(h5_path.read_bytes())
    ds = HDF5Batches(path, "x")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"moved\.h5 does not exist"):
        ds[0]


def test_the_shared_handle_reads_the_same_batches_and_cannot_be_pickled(h5_path):
    shared = SharedHandleBatches(h5_path, "x", batch_size=8)
    lazy = HDF5Batches(h5_path, "x", batch_size=8, shuffle=False)
    assert len(shared) == len(lazy) == 5
    assert all(np.array_equal(shared[i], lazy[i]) for i in range(5))
    with pytest.raises(TypeError, match="h5py objects cannot be pickled"):
        pickle.dumps(shared)
    shared.file.close()
    lazy.close()


def test_the_module_imports_without_h5py():
    """h5py is imported when a file is opened: ``import helpers`` and the class need none."""
    code = ("import sys; sys.modules['h5py'] = None  # as if not installed\n"
            "from helpers import HDF5Batches\n"
            "try:\n    HDF5Batches('any.h5')\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ, "KERAS_BACKEND": "numpy"})
    assert "h5py" in out.stdout.strip().splitlines()[-1]


def test_fit_with_two_worker_processes_reads_the_right_rows(h5_path):
    """A model whose output is row k's value k for row k: the loss is 0 only if every x came
    with its own y; the mean of y over an epoch is that of every row once."""
    ds = HDF5Batches(h5_path, "x", "y", batch_size=8, seed=5, workers=2,
                     use_multiprocessing=True)
    ds[0]  # a handle open in the parent before the workers start, as after a look at a batch
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant(1 / FEATURES))])
    mean_y = keras.metrics.MeanMetricWrapper(lambda y_true, y_pred: y_true, name="mean_y")
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mae", metrics=[mean_y])
    # Build the metrics on arrays first: on JAX and PyTorch an unbuilt model's first fit()
    # takes one batch through the worker pool to build them (Trainer._symbolic_build, Keras
    # 3.15), and the batches the pool fetched ahead are served in the next epoch.
    model.fit(np.zeros((1, FEATURES)), np.zeros((1, 1)), verbose=0)
    with warnings.catch_warnings():  # JAX warns when a process with running threads forks
        warnings.simplefilter("ignore", RuntimeWarning)
        history = model.fit(ds, epochs=2, verbose=0)
        out = model.predict(HDF5Batches(h5_path, "x", batch_size=8, shuffle=False, workers=2,
                                        use_multiprocessing=True), verbose=0)
    assert history.history["loss"] == [0.0, 0.0]
    assert history.history["mean_y"] == pytest.approx([(N - 1) / 2] * 2)
    assert np.array_equal(out[:, 0], np.arange(N))  # every row, in order
    assert ds.epoch == 3  # fit() calls on_epoch_end once before the first epoch, then after each
    ds.close()


def test_spawned_worker_processes_unpickle_it_and_read_their_own_file(h5_path, monkeypatch):
    """What ``spawn`` and ``forkserver`` do: each worker imports the class by name from its
    module, gets a pickled copy without handles, and opens the file itself."""
    import multiprocessing
    import operator

    ds = HDF5Batches(h5_path, "x", "y", batch_size=8, seed=2)
    expected = [ds[i] for i in range(len(ds))]  # the parent's handle is open: not sent
    monkeypatch.setenv("KERAS_BACKEND", "numpy")  # the workers' Keras: the fastest to import
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        served = pool.starmap(operator.getitem, [(ds, i) for i in range(len(ds))])
    assert all(np.array_equal(a, b) for got, want in zip(served, expected, strict=True)
               for a, b in zip(got, want, strict=True))
    ds.close()

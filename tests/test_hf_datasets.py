"""helpers/hf_datasets.py on real Parquet files the tests write (offline, caches in tmp_path).

Every test but the ``fit()`` ones is marked backend_independent: those train through the
helper's routes on the current Keras backend, so ``make test`` runs them on each."""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import keras
import numpy as np
import pytest

from helpers.hf_datasets import (
    HFBatches,
    StreamPosition,
    load_parquet,
    resume_counts,
    stream_batches,
    write_parquet_shards,
)
from helpers.resume import fit_resumable

independent = pytest.mark.backend_independent

N = 40


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(images, labels, parquet files, cache folder) written once for the module."""
    root = tmp_path_factory.mktemp("hf")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, N)
    files = write_parquet_shards(root / "parquet", images, labels, num_shards=4)
    return images, labels, files, root / "cache"


@pytest.fixture(scope="module")
def ds(data):
    return load_parquet(data[2], cache_dir=data[3])


@independent
def test_written_files_read_back_as_the_same_images_and_labels(data, ds):
    images, labels, files, cache = data
    assert [f.name for f in files] == [f"train-{k:05d}-of-00004.parquet" for k in range(4)]
    rows = ds.with_format("numpy")[:]
    assert np.array_equal(rows["image"], images) and np.array_equal(rows["label"], labels)
    assert rows["id"].tolist() == list(range(N))
    assert all(Path(c["filename"]).is_relative_to(cache) for c in ds.cache_files)


@independent
def test_a_second_write_reuses_the_folder_and_a_foreign_folder_is_refused(data, tmp_path):
    images, labels, files, _ = data
    before = [f.stat().st_mtime_ns for f in files]
    again = write_parquet_shards(files[0].parent, images, labels, num_shards=4)
    assert again == files and [f.stat().st_mtime_ns for f in files] == before
    rebuilt = write_parquet_shards(tmp_path / "own", images, labels, num_shards=2)
    assert len(write_parquet_shards(tmp_path / "own", images[:8], labels[:8], num_shards=2)) == 2
    assert len(load_parquet(rebuilt, cache_dir=tmp_path / "c")) == 8  # its own folder, rebuilt
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_parquet_shards(tmp_path, images, labels)
    assert (tmp_path / "mine.txt").read_text() == "a user's file"
    assert (tmp_path / "own" / "manifest.json").exists()


@independent
def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import datasets

    def fail(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(datasets.Dataset, "to_parquet", fail)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_shards(tmp_path / "out", np.zeros((4, 2, 2, 3), np.uint8), np.zeros(4))
    assert list(tmp_path.iterdir()) == []


@independent
def test_a_truncated_or_missing_file_is_named(data, tmp_path):
    broken = tmp_path / "train-00001-of-00004.parquet"
    broken.write_bytes(data[2][1].read_bytes()[:200])
    with pytest.raises(ValueError, match="train-00001-of-00004.parquet is not a readable"):
        load_parquet([data[2][0], broken], cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="nothing.parquet"):
        load_parquet([tmp_path / "nothing.parquet"], cache_dir=tmp_path / "cache")


@independent
def test_batches_cover_every_row_once_in_a_seeded_order_per_epoch(ds, data):
    batches = HFBatches(ds, x="id", y=None, batch_size=16, seed=3)
    assert len(batches) == 3 and len(batches[2]) == N - 32
    epoch0 = np.concatenate([batches[i] for i in range(len(batches))])
    assert sorted(epoch0.tolist()) == list(range(N))
    batches.on_epoch_end()
    epoch1 = np.concatenate([batches[i] for i in range(len(batches))])
    assert sorted(epoch1.tolist()) == list(range(N)) and epoch1.tolist() != epoch0.tolist()
    again = HFBatches(ds, x="id", y=None, batch_size=16, seed=3)
    assert again[0].tolist() == epoch0[:16].tolist()
    x, y = HFBatches(ds, batch_size=16, shuffle=False)[0]
    assert np.array_equal(x, data[0][:16]) and np.array_equal(y, data[1][:16])
    with pytest.raises(IndexError):
        batches[3]


@independent
def test_set_epoch_with_start_batch_serves_the_rest_of_that_epoch(ds):
    whole = HFBatches(ds, x="id", y=None, batch_size=16, seed=3)
    whole.set_epoch(2)
    rest = HFBatches(ds, x="id", y=None, batch_size=16, seed=3)
    rest.set_epoch(2, start_batch=1)
    assert (len(whole), len(rest), rest.batches_per_epoch) == (3, 2, 3)
    assert all(np.array_equal(rest[i], whole[i + 1]) for i in range(2))
    rest.on_epoch_end()  # the next epoch starts at its first batch
    assert (rest.epoch, rest.start_batch, len(rest)) == (3, 0, 3)
    with pytest.raises(ValueError, match="start_batch"):
        rest.set_epoch(0, start_batch=3)


@independent
def test_a_missing_column_is_named(ds):
    with pytest.raises(KeyError, match="no column 'pixels'.*'image'"):
        HFBatches(ds, x="pixels")
    with pytest.raises(ValueError, match="batch_size"):
        HFBatches(ds, batch_size=0)


@independent
def test_a_memory_mapped_dataset_pickles_small_and_serves_the_same_batches(ds):
    batches = HFBatches(ds, batch_size=8, seed=1, workers=2, use_multiprocessing=True)
    blob = pickle.dumps(batches)
    assert len(blob) < 50_000  # the Arrow file's path, not its bytes
    copy = pickle.loads(blob)
    assert all(np.array_equal(a, b) for a, b in zip(copy[1], batches[1], strict=True))


@independent
def test_streaming_batches_and_an_exact_resume_without_a_shuffle_buffer(data):
    files, cache = data[2], data[3]

    def stream():
        return load_parquet(files, cache_dir=cache, streaming=True).with_format("numpy")

    reference = []
    batches = list(stream_batches(stream(), batch_size=8, ids=reference))
    assert reference == list(range(N)) and batches[0][0].shape == (8, 8, 8, 3)
    first, resumed = stream(), []
    served = stream_batches(first, batch_size=8, ids=resumed)
    for _ in range(2):
        next(served)
    state = first.state_dict()
    second = stream()
    second.load_state_dict(state)
    for _ in stream_batches(second, batch_size=8, ids=resumed):
        pass
    assert resume_counts(reference, resumed) == {
        "served": N, "same_position": N, "repeated": 0, "lost": 0}


@independent
def test_stream_batches_runs_one_pass_per_epoch_and_records_a_state_per_batch(data):
    stream = load_parquet(data[2], cache_dir=data[3], streaming=True).shuffle(
        seed=0, buffer_size=8, max_buffer_input_shards=1).with_format("numpy")
    ids, states = [], {}
    batches = list(stream_batches(stream, x="id", y=None, batch_size=8, ids=ids, epochs=2,
                                  states=states))
    assert len(batches) == 10 and sorted(ids[:N]) == sorted(ids[N:]) == list(range(N))
    assert ids[:N] != ids[N:]  # set_epoch reshuffled the second pass
    assert sorted(states) == list(range(1, 11)) and states[7]["epoch"] == 1


def _stream(data):
    return load_parquet(data[2], cache_dir=data[3], streaming=True).with_format("numpy")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Killed(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise KeyboardInterrupt


def test_each_route_trains_in_fit_on_this_backend(ds, data):
    """to_tf_dataset (when TensorFlow is installed), HFBatches and a stream, on the backend
    the tests run with; the stream two epochs of one pass each."""
    model = _model()
    if importlib.util.find_spec("tensorflow") is not None:
        tf_ds = ds.to_tf_dataset(batch_size=8, columns="image", label_cols="label")
        assert len(model.fit(tf_ds, epochs=1, shuffle=False, verbose=0).history["loss"]) == 1
    history = model.fit(HFBatches(ds, batch_size=8, seed=0), epochs=2, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    per_epoch = []
    count = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: per_epoch.append(0),
        on_train_batch_end=lambda batch, logs: per_epoch.__setitem__(-1, batch + 1))
    model.fit(stream_batches(_stream(data), batch_size=8, epochs=2), epochs=2,
              steps_per_epoch=N // 8, shuffle=False, verbose=0, callbacks=[count])
    assert per_epoch == [N // 8, N // 8]


def test_fit_resumable_resumes_hfbatches_to_the_same_weights(ds, tmp_path):
    def run(folder, *callbacks):
        return fit_resumable(_model, HFBatches(ds, batch_size=8, seed=0), 2, folder, every=2,
                             callbacks=list(callbacks), verbose=0)

    whole = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", _Killed())
    resumed = run(tmp_path / "killed")  # from the checkpoint after batch 2 of epoch 0
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_stream_position_resumes_a_stream_in_fit_exactly(data):
    stream, ids, states = _stream(data), [], {}
    position = StreamPosition(states)
    with pytest.raises(KeyboardInterrupt):
        _model().fit(stream_batches(stream, batch_size=8, ids=ids, states=states), epochs=1,
                     steps_per_epoch=N // 8, shuffle=False, verbose=0,
                     callbacks=[position, _Killed()])
    assert position.trained == 3 and len(ids) >= 3 * 8
    again = _stream(data)
    again.set_epoch(position.state["epoch"])
    again.load_state_dict(position.state)
    rest = [int(i) for b in again.iter(batch_size=8) for i in b["id"]]
    assert ids[:3 * 8] + rest == list(range(N))


@independent
def test_resume_counts():
    assert resume_counts([0, 1, 2, 3], [0, 1, 1, 3]) == {
        "served": 4, "same_position": 3, "repeated": 1, "lost": 1}


@independent
def test_works_without_torch(data, tmp_path):
    """`make lab` installs TensorFlow only: datasets must not need torch for this module."""
    # Hide torch from every import finder, as if it were not installed. (Setting
    # sys.modules["torch"] = None is no stand-in here: datasets' pickler imports torch
    # whenever the name "torch" is in sys.modules, so it would fail where a missing torch does not.)
    script = (
        "import sys\n"
        "class Hide:\n"
        "    def __init__(self, finder): self.finder = finder\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': return None\n"
        "        return self.finder.find_spec(name, path, target)\n"
        "    def __getattr__(self, name): return getattr(self.finder, name)\n"
        "sys.meta_path[:] = [Hide(f) for f in sys.meta_path]\n"
        "from helpers.hf_datasets import HFBatches, load_parquet, stream_batches\n"
        f"files = {[str(f) for f in data[2]]!r}\n"
        f"ds = load_parquet(files, cache_dir={str(tmp_path / 'c')!r})\n"
        "x, y = HFBatches(ds, batch_size=4, seed=0)[0]\n"
        f"s = load_parquet(files, cache_dir={str(tmp_path / 'c')!r}, streaming=True)\n"
        "b = next(stream_batches(s.with_format('numpy'), batch_size=4))\n"
        "import pickle; pickle.dumps(ds)\n"
        "print(x.shape, b[0].shape, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "(4, 8, 8, 3) (4, 8, 8, 3) False"

"""helpers.cifar (safe reading, the cache, the Sequence), helpers.cifar_standin (the stand-in in
the real format) and helpers.cifar_download (the archive, get_cifar10)."""

from __future__ import annotations

import os
import pickle
import pickletools
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.datasets.cifar import load_batch as keras_load_batch

from helpers import archive as archive_module
from helpers import cifar, cifar_download, cifar_standin
from helpers.archive import md5_of
from helpers.cifar import (
    CIFAR10Sequence,
    build_cifar10_cache,
    random_flip_and_crop,
    read_cifar10_batch,
    read_cifar10_label_names,
)
from helpers.cifar_download import download_cifar10, extract_cifar10, get_cifar10
from helpers.cifar_standin import write_cifar10_like

N = 30  # images per batch file in the small stand-ins below
REAL_MEMBERS = {"cifar-10-batches-py", "cifar-10-batches-py/batches.meta",
                "cifar-10-batches-py/readme.html", "cifar-10-batches-py/test_batch",
                *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_cifar10_like(tmp_path_factory.mktemp("c") / "cifar-10-batches-py",
                              n_per_batch=N, seed=3)


@pytest.fixture(scope="module")
def archive(folder, tmp_path_factory) -> Path:
    """A ``cifar-10-python.tar.gz`` with the real member names, built from the stand-in."""
    path = tmp_path_factory.mktemp("a") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


# --- the format ---------------------------------------------------------------------------

def test_standin_has_the_real_layout(folder, archive):
    with tarfile.open(archive) as tar:
        assert set(tar.getnames()) == REAL_MEMBERS
    raw = pickle.load(open(folder / "data_batch_2", "rb"), encoding="bytes")
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (N, 3072)
    assert raw[b"batch_label"] == b"training batch 2 of 5"
    assert len(raw[b"labels"]) == len(raw[b"filenames"]) == N
    meta = pickle.load(open(folder / "batches.meta", "rb"), encoding="bytes")
    assert meta[b"num_cases_per_batch"] == N and meta[b"num_vis"] == 3072
    names = read_cifar10_label_names(folder)
    assert len(names) == 10 and all(n.startswith("synthetic-") for n in names)


def test_standin_pickles_are_python2_style(folder):
    """Protocol 2, no global beyond numpy's array builders (no ``_codecs.encode``)."""
    raw = (folder / "data_batch_1").read_bytes()
    ops = list(pickletools.genops(raw))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_ == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}


@pytest.mark.parametrize("name", [*cifar.TRAIN_BATCHES, cifar.TEST_BATCH])
def test_reader_matches_keras(folder, name):
    images, labels = read_cifar10_batch(folder / name)
    k_images, k_labels = keras_load_batch(str(folder / name))  # channels first
    assert images.dtype == np.uint8 and images.shape == (N, 32, 32, 3)
    np.testing.assert_array_equal(images, np.transpose(k_images, (0, 2, 3, 1)))
    np.testing.assert_array_equal(labels, np.asarray(k_labels))
    assert labels.dtype == np.int64


def test_row_is_red_then_green_then_blue_planes(tmp_path):
    row = np.zeros((1, 3072), np.uint8)
    row[0, 0] = 11          # red of pixel (0, 0)
    row[0, 1024 + 33] = 22  # green of pixel (1, 1)
    row[0, 2048 + 1023] = 33  # blue of pixel (31, 31)
    path = tmp_path / "batch"
    path.write_bytes(cifar_standin._py2_pickle({b"data": row, b"labels": [4]}))
    images, labels = read_cifar10_batch(path)
    assert images[0, 0, 0].tolist() == [11, 0, 0]
    assert images[0, 1, 1].tolist() == [0, 22, 0]
    assert images[0, 31, 31].tolist() == [0, 0, 33]
    assert labels.tolist() == [4]


def test_reader_accepts_str_keys(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    path = tmp_path / "py3"
    path.write_bytes(pickle.dumps({"data": data, "labels": [1, 9]}, protocol=4))
    images, labels = read_cifar10_batch(path)
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [1, 9]
    np.testing.assert_array_equal(images[1, 0, 0], data[1, [0, 1024, 2048]])


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match=r"(builtins|io)\.open") as e:
        read_cifar10_batch(path)
    assert str(path) in str(e.value)
    assert not marker.exists()


def test_python3_protocol2_bytes_global_refused(tmp_path):
    """Python 3 writes protocol-2 bytes through ``_codecs.encode``: not a numpy builder."""
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": b"\x00" * 3072, b"labels": [0]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="_codecs.encode"):
        read_cifar10_batch(path)


def test_wrong_layout_named(tmp_path):
    path = tmp_path / "nodata"
    path.write_bytes(cifar_standin._py2_pickle({b"labels": [1], b"batch_label": b"x"}))
    with pytest.raises(KeyError, match="no data entry .keys found: batch_label, labels") as e:
        read_cifar10_batch(path)
    assert "nodata" in str(e.value)
    path.write_bytes(cifar_standin._py2_pickle({b"data": np.zeros((2, 100), np.uint8),
                                        b"labels": [1, 2]}))
    with pytest.raises(ValueError, match="3072"):
        read_cifar10_batch(path)
    path.write_bytes(cifar_standin._py2_pickle({b"data": np.zeros((2, 3072), np.uint8),
                                        b"labels": [1, 12]}))
    with pytest.raises(ValueError, match="outside"):
        read_cifar10_batch(path)


def test_standin_is_deterministic_and_never_overwritten(folder, tmp_path):
    again = write_cifar10_like(tmp_path / "x", n_per_batch=N, seed=3)
    for name in cifar.REQUIRED_FILES:
        assert (again / name).read_bytes() == (folder / name).read_bytes()
    with pytest.raises(FileExistsError):
        write_cifar10_like(again, n_per_batch=N)
    assert os.listdir(tmp_path) == ["x"]


def test_standin_classes_differ():
    """Mean images of different classes differ: the classes are learnable from pixels."""
    labels = np.repeat(np.arange(10), 200)
    images = cifar_standin._standin_images(labels, np.random.default_rng(0)).astype(np.float32)
    grey = images.mean(axis=3)
    centre = grey[:, 8:24, 8:24].reshape(10, 200, -1).mean(axis=1)
    dists = np.linalg.norm(centre[:, None] - centre[None], axis=2)
    assert dists[~np.eye(10, dtype=bool)].min() > 5


# --- archive and download -----------------------------------------------------------------

def test_extract_and_read(archive, folder, tmp_path):
    out = extract_cifar10(archive, tmp_path, md5=md5_of(archive))
    assert out == tmp_path / "cifar-10-batches-py"
    for name in cifar.REQUIRED_FILES:
        assert (out / name).read_bytes() == (folder / name).read_bytes()


def test_extract_default_md5_is_the_official_one(archive, tmp_path):
    with pytest.raises(ValueError, match="c58f30108f718f92721af3b95e74349a"):
        extract_cifar10(archive, tmp_path)
    assert os.listdir(tmp_path) == []


def test_download_serves_from_url_then_reuses(archive, tmp_path, monkeypatch):
    md5 = md5_of(archive)
    out = download_cifar10(tmp_path, url=archive.as_uri(), md5=md5)
    assert out == tmp_path / "cifar-10-batches-py"
    assert md5_of(tmp_path / "cifar-10-python.tar.gz") == md5
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    assert download_cifar10(tmp_path, url=archive.as_uri(), md5=md5) == out
    # A verified archive without its folder is unpacked again, not downloaded.
    os.rename(out, tmp_path / "moved")
    assert download_cifar10(tmp_path, url=archive.as_uri(), md5=md5) == out


def test_download_with_wrong_checksum_leaves_nothing(archive, tmp_path):
    with pytest.raises(ValueError, match="MD5"):
        download_cifar10(tmp_path, url=archive.as_uri(), md5="0" * 32)
    assert os.listdir(tmp_path) == []


def test_existing_unverified_archive_left_alone(archive, tmp_path):
    mine = tmp_path / "cifar-10-python.tar.gz"
    mine.write_bytes(b"something the user put here")
    with pytest.raises(ValueError, match="Delete"):
        download_cifar10(tmp_path, url=archive.as_uri(), md5=md5_of(archive))
    assert mine.read_bytes() == b"something the user put here"


# --- cache and Sequence -------------------------------------------------------------------

def test_cache_matches_batches_and_is_built_once(folder, tmp_path):
    images_path, labels_path = build_cifar10_cache(folder, "train", cache_dir=tmp_path)
    images = np.load(images_path, mmap_mode="r")
    assert isinstance(images, np.memmap) and images.shape == (5 * N, 32, 32, 3)
    parts = [read_cifar10_batch(folder / n) for n in cifar.TRAIN_BATCHES]
    np.testing.assert_array_equal(images, np.concatenate([p[0] for p in parts]))
    np.testing.assert_array_equal(np.load(labels_path), np.concatenate([p[1] for p in parts]))
    stamp = images_path.stat().st_mtime_ns
    build_cifar10_cache(folder, "train", cache_dir=tmp_path)
    assert images_path.stat().st_mtime_ns == stamp


def test_cache_failure_leaves_nothing(folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in cifar.REQUIRED_FILES:
        (broken / name).write_bytes((folder / name).read_bytes())
    (broken / "data_batch_4").write_bytes(b"\x80\x02garbage")
    with pytest.raises(pickle.UnpicklingError):
        build_cifar10_cache(broken, "train")
    assert os.listdir(broken / "cache") == []


@pytest.fixture
def seq(folder, tmp_path):
    return CIFAR10Sequence(folder, batch_size=64, seed=7, cache_dir=tmp_path)


def test_sequence_contract(seq, folder):
    assert len(seq) == 3  # ceil(150 / 64): the last, partial batch is served
    X, y = seq[0]
    assert X.dtype == np.float32 and X.shape == (64, 32, 32, 3)
    assert y.dtype == np.float32 and y.shape == (64, 10)
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_array_equal(y.sum(axis=1), np.ones(64))
    X_last, y_last = seq[2]
    assert X_last.shape == (150 - 128, 32, 32, 3) and y_last.shape == (22, 10)
    images = np.concatenate([read_cifar10_batch(folder / n)[0] for n in cifar.TRAIN_BATCHES])
    labels = np.concatenate([read_cifar10_batch(folder / n)[1] for n in cifar.TRAIN_BATCHES])
    rows = seq.batch_rows(0)
    np.testing.assert_allclose(X, images[rows] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y.argmax(axis=1), labels[rows])
    assert seq.label_names == read_cifar10_label_names(folder)
    with pytest.raises(IndexError):
        seq[3]


def test_every_sample_once_per_epoch_and_reshuffled(seq):
    orders = []
    for _ in range(3):
        rows = np.concatenate([seq.batch_rows(i) for i in range(len(seq))])
        assert sorted(rows.tolist()) == list(range(150))
        orders.append(rows)
        seq.on_epoch_end()
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])


def test_seed_reproducible_and_no_shuffle(folder, tmp_path):
    a = CIFAR10Sequence(folder, batch_size=50, seed=1, cache_dir=tmp_path)
    b = CIFAR10Sequence(folder, batch_size=50, seed=1, cache_dir=tmp_path)
    c = CIFAR10Sequence(folder, batch_size=50, seed=2, cache_dir=tmp_path)
    assert np.array_equal(a.batch_rows(1), b.batch_rows(1))
    assert not np.array_equal(a.batch_rows(1), c.batch_rows(1))
    plain = CIFAR10Sequence(folder, batch_size=50, shuffle=False, cache_dir=tmp_path)
    plain.on_epoch_end()
    assert plain.batch_rows(1).tolist() == list(range(50, 100))


def test_test_split_and_bad_arguments(folder, tmp_path):
    test = CIFAR10Sequence(folder, split="test", batch_size=8, cache_dir=tmp_path)
    assert test.num_samples == N and len(test) == 4
    with pytest.raises(ValueError, match="split"):
        CIFAR10Sequence(folder, split="validation", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        CIFAR10Sequence(folder, batch_size=0, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no CIFAR-10"):
        CIFAR10Sequence(tmp_path / "empty")


def test_limit_serves_the_first_samples(folder, tmp_path):
    s = CIFAR10Sequence(folder, batch_size=16, limit=40, seed=0, cache_dir=tmp_path)
    assert s.num_samples == 40 and len(s) == 3
    rows = np.concatenate([s.batch_rows(i) for i in range(len(s))])
    assert sorted(rows.tolist()) == list(range(40))
    with pytest.raises(ValueError, match="limit"):
        CIFAR10Sequence(folder, limit=0, cache_dir=tmp_path)


def test_parent_folder_accepted_and_kwargs_passed(folder):
    s = CIFAR10Sequence(folder.parent, workers=2, use_multiprocessing=True)
    assert s.folder == folder
    assert s.workers == 2 and s.use_multiprocessing is True


def test_pickles_without_the_images(seq):
    X, y = seq[1]
    assert isinstance(seq.images, np.memmap)
    blob = pickle.dumps(seq)
    assert len(blob) < 20_000  # paths, labels and order; not 150 * 3072 image bytes
    clone = pickle.loads(blob)
    assert clone._images is None
    X2, y2 = clone[1]
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_augmentation_reproducible_per_batch_and_epoch(folder, tmp_path):
    kw = dict(batch_size=64, seed=5, cache_dir=tmp_path, augment=True)
    a, b = CIFAR10Sequence(folder, **kw), CIFAR10Sequence(folder, **kw)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    plain = CIFAR10Sequence(folder, **{**kw, "augment": False})
    assert not np.array_equal(a[0][0], plain[0][0])
    np.testing.assert_array_equal(a[0][1], plain[0][1])  # labels untouched
    first = a[0][0]
    a.on_epoch_end()
    b.on_epoch_end()
    assert not np.array_equal(first, a[0][0])
    np.testing.assert_array_equal(a[0][0], b[0][0])


def test_epoch_argument_resumes_order_and_augmentation(folder, tmp_path):
    kw = dict(batch_size=64, seed=5, cache_dir=tmp_path, augment=True)
    old = CIFAR10Sequence(folder, **kw)
    batches = []
    for _ in range(3):
        batches.append([old[i][0] for i in range(len(old))])
        old.on_epoch_end()
    resumed = CIFAR10Sequence(folder, **kw, epoch=2)
    assert resumed.epoch == 2
    for i in range(len(resumed)):
        np.testing.assert_array_equal(resumed[i][0], batches[2][i])
    assert not np.array_equal(resumed[0][0], batches[0][0])
    resumed.set_epoch(1)
    np.testing.assert_array_equal(resumed[0][0], batches[1][0])
    with pytest.raises(ValueError, match="epoch"):
        CIFAR10Sequence(folder, **kw, epoch=-1)


@pytest.mark.parametrize("mode", ["int", None])
def test_label_modes(folder, tmp_path, mode):
    kw = dict(batch_size=64, seed=5, cache_dir=tmp_path, augment=True)
    categorical = CIFAR10Sequence(folder, **kw)
    other = CIFAR10Sequence(folder, **kw, label_mode=mode)
    assert other.label_mode == mode and len(other) == len(categorical) == 3
    for i in range(len(other)):
        X_ref, y_ref = categorical[i]
        batch = other[i]
        if mode is None:  # inference: the images alone
            assert isinstance(batch, np.ndarray)
            np.testing.assert_array_equal(batch, X_ref)
        else:
            X, y = batch
            np.testing.assert_array_equal(X, X_ref)
            assert y.dtype == np.int32 and y.shape == (len(X),)
            np.testing.assert_array_equal(y, y_ref.argmax(axis=1))
            np.testing.assert_array_equal(y, other.labels[other.batch_rows(i)])


@pytest.mark.parametrize("bad", ["binary", "sparse", "", 0])
def test_bad_label_mode_is_named(folder, tmp_path, bad):
    with pytest.raises(ValueError, match="label_mode must be 'categorical', 'int' or None"):
        CIFAR10Sequence(folder, cache_dir=tmp_path, label_mode=bad)


def test_predict_rows_follow_the_cache_without_labels(folder, tmp_path):
    seq = CIFAR10Sequence(folder, batch_size=16, shuffle=False, cache_dir=tmp_path,
                          label_mode=None, workers=2)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D()])
    means = model.predict(seq, verbose=0)  # (150, 3): each image's mean colour, in order
    images = np.concatenate([read_cifar10_batch(folder / n)[0] for n in cifar.TRAIN_BATCHES])
    np.testing.assert_allclose(means, images.mean(axis=(1, 2)) / 255.0, atol=1e-5)


@pytest.mark.parametrize("epoch, start, kw", [
    (0, 1, {}), (2, 2, {}), (1, 1, {"shard": (1, 2), "batch_size": 16}),
])
def test_resumed_epoch_is_the_rest_of_the_uninterrupted_one(folder, tmp_path, epoch, start,
                                                            kw):
    kw = {"batch_size": 64, "seed": 5, "cache_dir": tmp_path, "augment": True, **kw}
    ref = CIFAR10Sequence(folder, **kw)
    for _ in range(epoch):
        ref.on_epoch_end()
    resumed = CIFAR10Sequence(folder, **kw, epoch=epoch, start_batch=start)
    moved = CIFAR10Sequence(folder, **kw)
    moved.set_epoch(epoch, start)
    for seq in (resumed, moved):
        assert (seq.epoch, seq.start_batch) == (epoch, start)
        assert seq.batches_per_epoch == len(ref) and len(seq) == len(ref) - start
        for i in range(len(seq)):
            np.testing.assert_array_equal(seq.batch_rows(i), ref.batch_rows(start + i))
            X, y = seq[i]
            X_ref, y_ref = ref[start + i]
            np.testing.assert_array_equal(X, X_ref)  # the same augmentation draws too
            np.testing.assert_array_equal(y, y_ref)
        seq.on_epoch_end()
        whole = CIFAR10Sequence(folder, **kw, epoch=epoch + 1)
        assert (seq.start_batch, len(seq)) == (0, len(whole))
        for i in range(len(seq)):
            np.testing.assert_array_equal(seq[i][0], whole[i][0])
    copy = pickle.loads(pickle.dumps(resumed))
    assert (copy.epoch, copy.start_batch) == (epoch + 1, 0)


@pytest.mark.parametrize("bad", [-1, 3, 1.0, True])
def test_bad_start_batch_is_named(seq, folder, tmp_path, bad):
    with pytest.raises(ValueError, match=r"start_batch must be an integer in \[0, 3\)"):
        CIFAR10Sequence(folder, batch_size=64, cache_dir=tmp_path, start_batch=bad)
    with pytest.raises(ValueError, match="start_batch"):
        seq.set_epoch(1, bad)
    assert (seq.epoch, seq.start_batch, len(seq)) == (0, 0, 3)


def test_pickles_with_its_position(folder, tmp_path):
    seq = CIFAR10Sequence(folder, batch_size=64, seed=1, cache_dir=tmp_path, augment=True,
                          epoch=3, start_batch=1, label_mode="int")
    copy = pickle.loads(pickle.dumps(seq))
    assert (copy.epoch, copy.start_batch, len(copy), copy.label_mode) == (3, 1, 2, "int")
    for got, want in zip(copy[1], seq[1], strict=True):
        np.testing.assert_array_equal(got, want)


def test_flip_and_crop_are_shifts_of_the_image():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (40, 32, 32, 3), dtype=np.uint8)  # no zeros
    out = random_flip_and_crop(images, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    flips = 0
    for src, dst in zip(images, out, strict=True):
        padded_views = {}
        for flip in (False, True):
            padded = np.pad(src[:, ::-1] if flip else src, ((4, 4), (4, 4), (0, 0)))
            for oy in range(9):
                for ox in range(9):
                    padded_views[(flip, oy, ox)] = padded[oy:oy + 32, ox:ox + 32]
        matches = [k for k, v in padded_views.items() if np.array_equal(v, dst)]
        assert matches, "output is not a flipped/shifted crop of its input"
        flips += matches[0][0]
    assert 5 < flips < 35  # about half are flipped


def test_fit_runs_on_the_sequence(seq):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(seq, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and seq.epoch >= 1


# --- get_cifar10 --------------------------------------------------------------------------

def test_get_cifar10_standin_when_forced(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cifar_download, "download_cifar10", _no_download)
    data = get_cifar10(tmp_path, prefer="standin", standin_per_batch=10)
    assert not data.is_real and data.folder.name == "cifar-10-batches-py"
    assert all(n.startswith("synthetic-") for n in data.label_names)
    assert "STAND-IN" in capsys.readouterr().out
    assert read_cifar10_batch(data.folder / "test_batch")[0].shape == (10, 32, 32, 3)
    monkeypatch.setenv("COURSE_CIFAR10", "standin")
    assert get_cifar10(tmp_path, standin_per_batch=10).folder == data.folder


def _no_download(*args, **kwargs):
    raise AssertionError("a download was attempted")


def test_get_cifar10_in_ci_does_not_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("COURSE_CIFAR10", raising=False)
    monkeypatch.setattr(archive_module, "download_verified", _no_download)
    monkeypatch.setattr(archive_module, "host_reachable", _no_download)
    data = get_cifar10(tmp_path, standin_per_batch=10)
    assert not data.is_real
    assert "CI" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="CI"):
        get_cifar10(tmp_path, prefer="real")


def test_get_cifar10_uses_real_folder_and_downloads(archive, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_CIFAR10", raising=False)
    monkeypatch.setattr(archive_module, "host_reachable", lambda url: True)
    data = get_cifar10(tmp_path, url=archive.as_uri(), md5=md5_of(archive))
    assert data.is_real and data.folder == tmp_path / "cifar-10-batches-py"
    assert (tmp_path / "cifar-10-python.tar.gz").is_file()


def test_get_cifar10_falls_back_when_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_CIFAR10", raising=False)
    monkeypatch.setattr(archive_module, "host_reachable", lambda url: False)
    monkeypatch.setattr(archive_module, "download_verified", _no_download)
    assert not get_cifar10(tmp_path, standin_per_batch=10).is_real
    assert "cannot be reached" in capsys.readouterr().out
    with pytest.raises(ValueError, match="prefer"):
        get_cifar10(tmp_path, prefer="maybe")

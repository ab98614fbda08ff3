"""helpers.image_loaders: every loader serves the same files once an epoch, with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import image_loaders as il
from helpers.images import list_image_files
from helpers.quiet import c_stderr_silenced

S = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three classes; every pixel of an image of class k equals 40 * (k + 1)."""
    root = tmp_path_factory.mktemp("loaders")
    for k, name in enumerate(("x", "y", "z")):
        (root / name).mkdir()
        for i in range(3 + k):
            value = np.full((S + 4 * i, S, 3), 40 * (k + 1), dtype=np.uint8)
            Image.fromarray(value).save(root / name / f"{i}.png")
    return root


def _check_epoch(batches, n: int) -> None:
    """All n samples came, each image's pixels say the same class as its label."""
    seen = 0
    for X, y in batches:
        X, y = np.asarray(X), np.asarray(y)
        assert X.shape[1:] == (S, S, 3)
        np.testing.assert_allclose(X.mean(axis=(1, 2, 3)), 40.0 * (y + 1), atol=1)
        seen += len(y)
    assert seen == n


def test_decode_sample_and_grain_threads(folder):
    pytest.importorskip("grain")
    paths, labels, _ = list_image_files(folder)
    image, label = il.DecodeSample(paths, labels, (S, S))(4)
    assert image.dtype == np.float32 and label == labels[4]
    _check_epoch(il.grain_loader(paths, labels, (S, S), 4, seed=0, threads=2), len(paths))


def test_tf_data_and_keras_loaders(folder):
    pytest.importorskip("tensorflow")
    paths, labels, _ = list_image_files(folder)
    _check_epoch(il.tf_data_loader(paths, labels, (S, S), 4, seed=0), len(paths))
    _check_epoch(il.keras_image_dataset(folder, (S, S), 4, seed=0), len(paths))


def test_torch_loader(folder):
    pytest.importorskip("torch")
    paths, labels, _ = list_image_files(folder)
    _check_epoch(il.torch_loader(paths, labels, (S, S), 4, seed=0, workers=0), len(paths))


def test_torch_loader_spawned_persistent_workers(folder):
    """Two epochs from the same spawned workers (started once), each a full epoch."""
    pytest.importorskip("torch")
    paths, labels, _ = list_image_files(folder)
    loader = il.torch_loader(paths, labels, (S, S), 4, seed=0, workers=2)
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    assert loader.persistent_workers
    with c_stderr_silenced():  # each spawned worker imports Keras' backend afresh
        _check_epoch(loader, len(paths))
        workers = loader._iterator._workers
        _check_epoch(loader, len(paths))
        assert loader._iterator._workers == workers  # the same processes served epoch two
    assert il.close_torch_loader(loader) == 2
    for w in workers:
        w.join(timeout=30)
    assert not any(w.is_alive() for w in workers)
    assert il.close_torch_loader(loader) == 0  # closing twice is harmless


class _Worker:
    def is_alive(self) -> bool:
        return True


class _Iterator:
    """A DataLoader iterator whose shutdown fails as PyTorch's SIGCHLD handler makes it."""

    def __init__(self, message: str) -> None:
        self._workers, self.message = [_Worker(), _Worker()], message

    def _shutdown_workers(self) -> None:
        raise RuntimeError(self.message)


def test_close_torch_loader_passes_on_only_other_errors_than_a_worker_killed_on_exit():
    class Loader:
        _iterator = _Iterator("DataLoader worker (pid 20990) is killed by signal: Aborted. ")

    loader = Loader()
    assert il.close_torch_loader(loader) == 2
    assert loader._iterator is None
    Loader._iterator = _Iterator("something else went wrong")
    with pytest.raises(RuntimeError, match="something else"):
        il.close_torch_loader(Loader())


def test_loader_rate_counts_an_epoch_and_peak_sees_allocations(folder, monkeypatch):
    from helpers.images import ImageFolderDataset

    served = []
    real = ImageFolderDataset.__getitem__

    def counting(self, i):
        served.append(i)
        return real(self, i)

    monkeypatch.setattr(ImageFolderDataset, "__getitem__", counting)
    rate, peak = il.loader_rate(lambda: ImageFolderDataset(folder, (S, S), 4, workers=2),
                                rounds=2)
    assert rate > 0 and peak > 0
    assert sorted(served) == sorted(list(range(3)) * 2)  # 12 files in 3 batches, 2 epochs
    made = []
    rate, _ = il.loader_rate(lambda: made.append(1) or ImageFolderDataset(folder, (S, S), 4),
                             rounds=2, reuse=True)
    assert rate > 0 and made == [1]  # reuse: one loader for the warm-up and both rounds


def test_thread_scaling_tells_gil_holding_work_apart():
    """Pure-Python work holds the GIL: two threads keep about one core busy."""

    def python_work(n):
        return sum(i * i for i in range(n))

    held = il.thread_scaling(python_work, [20_000] * 40, rounds=2)
    assert held.wall_1 > 0 and held.wall_2 > 0
    # never two cores for GIL-holding work: CPU seconds per wall second, not a speed-up (the
    # walls are tens of milliseconds, and one noisy round once gave a "speed-up" of 1.6)
    assert held.busy_2 < 1.4

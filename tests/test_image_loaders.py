"""helpers.image_loaders: every loader serves the same files once an epoch, with their labels."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import image_loaders as il
from helpers.images import list_image_files

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


def test_loader_rate_counts_an_epoch_and_peak_sees_allocations(folder):
    from helpers.images import ImageFolderDataset

    rate, peak = il.loader_rate(lambda: ImageFolderDataset(folder, (S, S), 4), rounds=1)
    assert rate > 0 and peak > 0
    with il.PeakAnon() as mem:
        block = np.ones(64 * il.MB, dtype=np.uint8)  # touched: resident, anonymous
        time.sleep(0.2)  # held long enough for the 20 ms sampler to see it
        del block
    assert mem.peak - mem.before >= 48 * il.MB

"""Shared fixtures: small datasets in the real on-disk formats, built in a temporary folder."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from helpers.volumes import make_volume_dataset  # noqa: E402


@pytest.fixture(scope="session")
def volumes(tmp_path_factory):
    """A 60-sample, 16^3, 3-class volume dataset: (data_dir, partition, labels)."""
    data_dir = tmp_path_factory.mktemp("volumes")
    partition, labels = make_volume_dataset(data_dir, 60, dim=(16, 16, 16), n_classes=3,
                                            seed=1, progress=False)
    return data_dir, partition, labels

"""KeepingBatches keeps what it serves only when asked to; FailingBatches fails at the batch
holding its cut-short record, naming the sample only when asked to; both pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from helpers.faults import FailingBatches, KeepingBatches


def test_keeping_batches_keeps_every_batch_served_only_with_keep():
    leaky = KeepingBatches(True, n_batches=3, batch_size=2, features=5)
    fixed = KeepingBatches(False, n_batches=3, batch_size=2, features=5)
    for _ in range(2):  # two "epochs"
        for i in range(len(leaky)):
            xa, ya = leaky[i]
            xb, yb = fixed[i]
            assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
            assert xa.shape == (2, 5) and xa.dtype == np.float32 and ya.shape == (2, 1)
    assert len(leaky.kept) == 6 and fixed.kept == []
    assert sum(a.nbytes for a in leaky.kept) == 6 * leaky.batch_bytes
    assert not np.array_equal(leaky[0][0], leaky[1][0])


def test_keeping_batches_pickles_and_checks_its_arguments():
    ds = KeepingBatches(True, n_batches=2, batch_size=2, features=3, workers=2)
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker process gets
    assert np.array_equal(copy[1][0], ds[1][0]) and copy.workers == 2
    with pytest.raises(ValueError, match="n_batches must be a positive integer, got 0"):
        KeepingBatches(True, n_batches=0)
    with pytest.raises(IndexError, match="out of range for 2 batches"):
        ds[2]


@pytest.mark.parametrize("name_sample", [False, True])
def test_failing_batches_fail_at_the_batch_of_the_bad_sample(name_sample):
    ds = FailingBatches(name_sample, n_batches=8, batch_size=4, features=4, bad_sample=13)
    for i in (0, 1, 2, 4, 7):
        x, y = ds[i]
        assert x.shape == (4, 4) and np.array_equal(x[:, 0], np.arange(4 * i, 4 * i + 4))
        assert np.array_equal(y[:, 0], np.arange(4 * i, 4 * i + 4) % 2)
    with pytest.raises(ValueError) as caught:
        ds[3]
    message = str(caught.value)
    assert "cannot reshape array of size 3 into shape (4,)" in message
    assert ("id-13" in message) == name_sample
    assert ("sample 'id-13' (record id-13.f32, batch 3)" in message) == name_sample


def test_failing_batches_pickle_with_their_bad_record_and_check_arguments():
    ds = FailingBatches(True, n_batches=2, batch_size=2, features=3, bad_sample=1)
    copy = pickle.loads(pickle.dumps(ds))
    with pytest.raises(ValueError, match="sample 'id-1'"):
        copy[0]
    assert np.array_equal(copy[1][0], ds[1][0])
    assert len(FailingBatches(True, n_batches=2, batch_size=2, bad_sample=None)[0][0]) == 2
    with pytest.raises(ValueError, match=r"bad_sample must be a sample in \[0, 4\)"):
        FailingBatches(True, n_batches=2, batch_size=2, bad_sample=4)

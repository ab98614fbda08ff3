"""helpers.shards on real shard files the tests write: every format reads back the samples it
was given; a truncated or corrupt shard, and one cut where the format itself ends silently,
raises an error naming the file; a write leaves nothing half-written and never overwrites a
folder it did not write; the pipelines serve every sample once, seeded; WebDataset works
without torch."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import helpers.shards as shards
from helpers.shards import (
    FORMATS,
    DamagedShardError,
    NpyShardSource,
    check_shards,
    neighbour_stats,
    open_files,
    pack_record,
    read_shard,
    shard_files,
    tfrecord_dataset,
    unpack_record,
    webdataset_batches,
    write_shards,
)

pytestmark = pytest.mark.backend_independent

N, SHAPE, SHARDS = 48, (4, 4, 3), 4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (N, *SHAPE)).astype(np.uint8),
            rng.integers(0, 10, N).astype(np.int64))


@pytest.fixture(scope="module")
def written(tmp_path_factory, data):
    """One folder per format, written once for the module (tests that damage files copy)."""
    root = tmp_path_factory.mktemp("shards")
    return {fmt: write_shards(root / fmt, *data, fmt, num_shards=SHARDS) and root / fmt
            for fmt in FORMATS}


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_the_samples_in_stored_order(written, data, fmt):
    files, manifest = shard_files(written[fmt])
    assert manifest["counts"] == [N // SHARDS] * SHARDS and len(files) == SHARDS
    assert manifest["bytes"] == {p.name: p.stat().st_size for p in written[fmt].iterdir()
                                 if p.name != "shards.json"}
    rows = [r for f in files for r in read_shard(f, SHAPE)]
    assert [i for _, _, i in rows] == list(range(N))
    assert all(np.array_equal(x, data[0][i]) and y == data[1][i] for x, y, i in rows)
    assert check_shards(written[fmt]) == N


def test_memory_mapped_images_are_written_one_shard_at_a_time(data, tmp_path):
    np.save(tmp_path / "images.npy", data[0])
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    files = write_shards(tmp_path / "out", mapped, data[1], "arrayrecord", num_shards=SHARDS)
    rows = [r for f in files for r in read_shard(f, SHAPE)]
    assert all(np.array_equal(x, data[0][i]) for x, _, i in rows) and len(rows) == N


def test_records_round_trip():
    image = np.arange(48, dtype=np.uint8).reshape(SHAPE)
    x, y, i = unpack_record(pack_record(image, 7, 123), SHAPE)
    assert np.array_equal(x, image) and (y, i) == (7, 123)


# Where each format is cut: inside a record or member, and where the reader stops silently.
def _cut_points(fmt: str, size: int) -> list[int]:
    if fmt == "tfrecord":
        record = size // (N // SHARDS)  # equal records here: 12 bytes of header, then data
        return [5 * record + 5, 5 * record + 40]  # in a header (silent), in a body (DataLoss)
    if fmt == "tar":
        return [size // 2, size // 2 + 700]  # (its last 1,024+ bytes are end-of-archive zeros)
    return [size // 2, size - 7]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_truncated_shard_is_named(written, fmt, tmp_path):
    for cut in _cut_points(fmt, (written[fmt] / f"shard-001{shards._SUFFIX[fmt]}").stat().st_size):
        folder = _copy(written[fmt], tmp_path / str(cut))
        shard = folder / f"shard-001{shards._SUFFIX[fmt]}"
        shard.write_bytes(shard.read_bytes()[:cut])
        with pytest.raises(DamagedShardError, match="shard-001.* bytes, manifest") as caught:
            check_shards(folder, read=False)  # by its size, reading nothing
        assert caught.value.path == str(shard)
        with pytest.raises(DamagedShardError, match="shard-001") as caught:
            list(read_shard(shard, SHAPE, expected=N // SHARDS))  # by reading it
        assert caught.value.path == str(shard)


def test_tensorflow_names_an_offset_not_the_file_read_shard_names_it(written, tmp_path):
    import tensorflow as tf

    folder = _copy(written["tfrecord"], tmp_path / "tf")
    shard = folder / "shard-000.tfrecord"
    shard.write_bytes(shard.read_bytes()[:300])  # inside the body of an early record
    with pytest.raises(tf.errors.DataLossError, match="truncated record at") as caught:
        sum(1 for _ in tf.data.TFRecordDataset(str(shard)))
    assert "shard-000" not in str(caught.value)
    with pytest.raises(DamagedShardError, match="shard-000.tfrecord") as named:
        list(read_shard(shard, SHAPE))
    assert isinstance(named.value.__cause__, tf.errors.DataLossError)


def test_tfrecord_and_tar_end_silently_where_a_count_is_the_only_check(written, tmp_path):
    """The reason read_shard compares counts: the libraries themselves raise nothing here."""
    import tensorflow as tf
    import webdataset as wds

    folder = _copy(written["tfrecord"], tmp_path / "tf")
    shard = folder / "shard-000.tfrecord"
    shard.write_bytes(shard.read_bytes()[:_cut_points("tfrecord", shard.stat().st_size)[0]])
    assert sum(1 for _ in tf.data.TFRecordDataset(str(shard))) == 5
    folder = _copy(written["tar"], tmp_path / "tar")
    shard = folder / "shard-000.tar"
    shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 2])
    assert 0 < sum(1 for _ in wds.WebDataset(str(shard), shardshuffle=False)) < N // SHARDS


def test_a_corrupt_tar_member_header_is_named(written, tmp_path):
    folder = _copy(written["tar"], tmp_path / "tar")
    shard = folder / "shard-002.tar"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 // 512 * 512 + 150] ^= 0xFF  # the checksum field of a member header
    shard.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match="shard-002.tar"):
        check_shards(folder)


def test_a_byte_flipped_in_place_passes_the_size_check_not_the_read(written, tmp_path):
    folder = _copy(written["tar"], tmp_path / "tar")
    shard = folder / "shard-002.tar"
    data = bytearray(shard.read_bytes())
    data[150] ^= 0xFF  # the checksum field of the first member's header
    shard.write_bytes(bytes(data))
    assert check_shards(folder, read=False) == N
    with pytest.raises(DamagedShardError, match="shard-002.tar"):
        check_shards(folder)


def test_a_byte_flipped_in_data_reads_cleanly_from_tar_not_tfrecord_or_arrayrecord(written,
                                                                                   tmp_path):
    # tar and .npy data carry no checksum; TFRecord a CRC per record, ArrayRecord (Riegeli) hashes
    tar = _copy(written["tar"], tmp_path / "tar")
    with tarfile.open(tar / "shard-002.tar") as f:
        member = next(m for m in f.getmembers() if m.name.endswith(".npy"))
    data = bytearray((tar / "shard-002.tar").read_bytes())
    data[member.offset_data + member.size - 1] ^= 0xFF  # the last pixel of a sample's .npy
    (tar / "shard-002.tar").write_bytes(bytes(data))
    assert check_shards(tar) == N
    for fmt, suffix in (("tfrecord", "tfrecord"), ("arrayrecord", "array_record")):
        folder = _copy(written[fmt], tmp_path / fmt)  # records with checksums: reading raises
        data = bytearray((folder / f"shard-002.{suffix}").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / f"shard-002.{suffix}").write_bytes(bytes(data))
        with pytest.raises(DamagedShardError, match=f"shard-002.{suffix}"):
            check_shards(folder)


def test_tf_pipeline_with_cycle_length_1_reads_shard_by_shard(written):
    files = sorted(written["tfrecord"].glob("*.tfrecord"))
    ds = tfrecord_dataset(files, SHAPE, 8, 1, seed=3, with_index=True, cycle_length=1)
    index = np.concatenate([b[2] for b in ds.as_numpy_iterator()])
    assert sorted(index.tolist()) == list(range(N))
    runs = index.reshape(len(files), -1)  # one shard after another, each in stored order
    assert np.all(np.diff(runs, axis=1) == 1) and np.all(runs[:, 0] % runs.shape[1] == 0)


def test_a_missing_shard_is_named(written, tmp_path):
    folder = _copy(written["arrayrecord"], tmp_path / "ar")
    (folder / "shard-003.array_record").unlink()
    with pytest.raises(FileNotFoundError, match="shard-003.array_record"):
        check_shards(folder)
    with pytest.raises(FileNotFoundError, match="shards.json"):
        shard_files(tmp_path)


def test_a_folder_it_did_not_write_is_never_overwritten(data, tmp_path):
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="never overwritten"):
            write_shards(folder, *data, "npy", overwrite=overwrite)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user"]


def test_its_own_folder_is_replaced_only_when_asked(data, tmp_path):
    folder = tmp_path / "own"
    write_shards(folder, *data, "npy", num_shards=2)
    with pytest.raises(FileExistsError):
        write_shards(folder, *data, "npy", num_shards=3)
    write_shards(folder, *data, "npy", num_shards=3, overwrite=True)
    assert len(shard_files(folder)[0]) == 3 and check_shards(folder) == N
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own"]


def _crash_at_shard_2(real):
    def write(fmt, path, *rows):
        if path.name.startswith("shard-002"):
            raise KeyboardInterrupt("interrupted")
        real(fmt, path, *rows)
    return write


def test_an_interrupted_write_leaves_nothing_and_keeps_the_old_folder(data, tmp_path):
    with mock.patch.object(shards, "_write_one", _crash_at_shard_2(shards._write_one)):
        with pytest.raises(KeyboardInterrupt):
            write_shards(tmp_path / "new", *data, "tar")
    assert list(tmp_path.iterdir()) == []
    write_shards(tmp_path / "old", *data, "npy", num_shards=2)
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    with mock.patch.object(shards, "_write_one", _crash_at_shard_2(shards._write_one)):
        with pytest.raises(KeyboardInterrupt):
            write_shards(tmp_path / "old", *data, "npy", num_shards=4, overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


def test_npy_source_gives_random_access_and_pickles_without_maps(written, data):
    files = sorted(written["npy"].glob("shard-???.npy"))
    source = NpyShardSource(files)
    assert len(source) == N
    for i in (0, 11, 12, N - 1):
        x, y, index = source[i]
        assert np.array_equal(x, data[0][i]) and y == data[1][i] and index == i
    assert source._maps
    clone = pickle.loads(pickle.dumps(source))
    assert clone._maps == {} and np.array_equal(clone[5][0], data[0][5])
    with pytest.raises(IndexError):
        source[N]


def test_tf_pipeline_serves_every_sample_once_seeded(written, data):
    files = sorted(written["tfrecord"].glob("*.tfrecord"))
    batches = list(tfrecord_dataset(files, SHAPE, 8, 16, seed=3, with_index=True)
                   .as_numpy_iterator())
    index = np.concatenate([b[2] for b in batches])
    assert sorted(index.tolist()) == list(range(N)) and index.tolist() != list(range(N))
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert np.allclose(x, data[0][index] / 255.0) and np.array_equal(y, data[1][index])
    again = tfrecord_dataset(files, SHAPE, 8, 16, seed=3, with_index=True)
    assert np.array_equal(np.concatenate([b[2] for b in again.as_numpy_iterator()]), index)


def test_webdataset_batches_serve_every_sample_once_seeded(written, data):
    files = sorted(written["tar"].glob("*.tar"))
    batches = list(webdataset_batches(files, 8, 16, seed=3, with_index=True))
    index = np.concatenate([b[2] for b in batches])
    assert sorted(index.tolist()) == list(range(N)) and index.tolist() != list(range(N))
    assert np.allclose(np.concatenate([b[0] for b in batches]), data[0][index] / 255.0)
    again = webdataset_batches(files, 8, 16, seed=3, with_index=True)
    assert np.array_equal(np.concatenate([b[2] for b in again]), index)


def test_neighbour_stats_counts():
    stored = neighbour_stats(np.arange(64), per_shard=16, batch_size=8)
    assert stored == {"distance": 1.0, "same_shard": 60 / 63, "shards_per_batch": 1.0}
    round_robin = np.arange(64).reshape(4, 16).T.ravel()  # one sample of each shard in turn
    counts = neighbour_stats(round_robin, per_shard=16, batch_size=8)
    assert counts["same_shard"] == 0 and counts["shards_per_batch"] == 4


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux only")
def test_open_files_sees_files_held_open_under_its_folder_only(written, tmp_path):
    assert open_files(written["npy"]) == set()
    with open(written["npy"] / "shard-000.npy", "rb"), open(tmp_path / "x.txt", "w"):
        held = open_files(written["npy"])
    assert [Path(path).name for _, path in held] == ["shard-000.npy"]
    assert open_files(written["npy"]) == set()


def test_tar_shards_are_written_and_read_without_torch(tmp_path):
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from helpers.shards import write_shards, webdataset_batches, check_shards\n"
        f"folder = {str(tmp_path / 'tar')!r}\n"
        "files = write_shards(folder, np.zeros((8, 2, 2, 1), np.uint8), np.arange(8), 'tar', 2)\n"
        "assert check_shards(folder) == 8\n"
        "assert sum(len(b[1]) for b in webdataset_batches(files, 3, 4, seed=0)) == 8\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

"""helpers.image_cache: an image folder decoded once, on real JPEG and PNG files written here."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import image_cache
from helpers.image_cache import CachedImageDataset, ImageCache, build_image_cache
from helpers.images import ImageFolderDataset, load_image

SIZE = (20, 24)


def _picture(seed: int, size: tuple[int, int] = (36, 28)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _folder(root: Path) -> Path:
    """Three classes (one listed out of file order), JPEG and PNG, a grayscale JPEG."""
    for k, (name, n) in enumerate((("b", 4), ("a", 3), ("c", 2))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = _picture(10 * k + i, (36 + 4 * i, 28))
            if i == 1:
                img.save(root / name / f"{i}.png")
            elif i == 2:
                img.convert("L").save(root / name / f"{i}.JPEG", quality=90)
            else:
                img.save(root / name / f"{i}.jpg", quality=90)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _folder(tmp_path / "images")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.backend_independent
def test_pixels_order_and_labels_are_those_of_load_image_and_keras(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    assert cache.built and cache.build_seconds > 0
    assert cache.images.dtype == np.uint8 and cache.images.shape == (9, *SIZE, 3)
    assert isinstance(cache.images, np.memmap)
    ours = ImageFolderDataset(folder, image_size=SIZE, shuffle=False)
    assert cache.file_paths == [str(Path(p).resolve()) for p in ours.file_paths]
    assert cache.class_names == ours.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(cache.labels, ours.labels)
    for k, path in enumerate(cache.file_paths):
        np.testing.assert_array_equal(cache.images[k], load_image(path, SIZE))
    assert cache.nbytes == 9 * SIZE[0] * SIZE[1] * 3


def test_order_equals_image_dataset_from_directory(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    keras_ds = keras.utils.image_dataset_from_directory(
        folder, image_size=SIZE, shuffle=False, batch_size=4, verbose=False)
    assert [str(Path(p).resolve()) for p in keras_ds.file_paths] == cache.file_paths
    labels = np.concatenate([np.asarray(y) for _, y in keras_ds])
    np.testing.assert_array_equal(labels, cache.labels)


@pytest.mark.backend_independent
def test_an_up_to_date_cache_is_reused_not_rebuilt(folder, tmp_path):
    first = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    stamp = os.stat(tmp_path / "cache" / "images.npy").st_mtime_ns
    again = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    assert not again.built and again.build_seconds == 0.0
    assert os.stat(tmp_path / "cache" / "images.npy").st_mtime_ns == stamp
    np.testing.assert_array_equal(again.images, first.images)


@pytest.mark.backend_independent
@pytest.mark.parametrize("change", ["added", "removed", "modified"])
def test_a_changed_folder_is_refused_or_rebuilt_never_served_stale(folder, tmp_path, change):
    cache_dir = tmp_path / "cache"
    build_image_cache(folder, cache_dir, SIZE, progress=False)
    target = folder / "a" / "0.jpg"
    if change == "added":
        _picture(99).save(folder / "a" / "new.jpg")
    elif change == "removed":
        target.unlink()
    else:
        _picture(98, (36, 28)).save(target, quality=90)
        os.utime(target, ns=(1, 1))  # a new mtime whatever the clock's resolution
    with pytest.raises(ValueError, match=rf"out of date.*1 {change}"):
        build_image_cache(folder, cache_dir, SIZE, if_changed="raise", progress=False)
    rebuilt = build_image_cache(folder, cache_dir, SIZE, progress=False)
    assert rebuilt.built
    assert len(rebuilt) == {"added": 10, "removed": 8, "modified": 9}[change]
    for k, path in enumerate(rebuilt.file_paths):
        np.testing.assert_array_equal(rebuilt.images[k], load_image(path, SIZE))
    assert _leftovers(tmp_path) == []


@pytest.mark.backend_independent
def test_other_settings_rebuild(folder, tmp_path):
    build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        build_image_cache(folder, tmp_path / "cache", (8, 8), if_changed="raise",
                          progress=False)
    assert build_image_cache(folder, tmp_path / "cache", (8, 8), progress=False
                             ).images.shape[1:3] == (8, 8)


@pytest.mark.backend_independent
def test_a_folder_holding_other_files_is_refused_and_left_alone(folder, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="did not write"):
        build_image_cache(folder, mine, SIZE, progress=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    cache_dir = tmp_path / "cache"
    build_image_cache(folder, cache_dir, SIZE, progress=False)
    (cache_dir / "extra.npy").write_bytes(b"")
    with pytest.raises(FileExistsError, match="did not write"):
        build_image_cache(folder, cache_dir, SIZE, progress=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        build_image_cache(folder, tmp_path / "afile", SIZE, progress=False)


@pytest.mark.backend_independent
def test_a_broken_file_is_named_and_nothing_is_half_written(folder, tmp_path):
    cache_dir = tmp_path / "cache"
    old = build_image_cache(folder, cache_dir, SIZE, progress=False)
    broken = folder / "c" / "broken.jpg"
    broken.write_bytes((folder / "b" / "0.jpg").read_bytes()[:200])
    with pytest.raises(ValueError, match="broken.jpg"):
        build_image_cache(folder, cache_dir, SIZE, progress=False)
    assert _leftovers(tmp_path) == []  # no .part folder
    kept = ImageCache(cache_dir)  # the old cache is intact
    np.testing.assert_array_equal(kept.images, old.images)
    shutil.rmtree(cache_dir)
    with pytest.raises(ValueError, match="broken.jpg"):
        build_image_cache(folder, cache_dir, SIZE, progress=False)
    assert not cache_dir.exists() and _leftovers(tmp_path) == []


@pytest.mark.backend_independent
def test_an_interrupted_build_leaves_nothing(folder, tmp_path, monkeypatch):
    calls = []

    def dies_on_the_fifth(path, size, decoder="pillow"):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return load_image(path, size, decoder=decoder)

    monkeypatch.setattr(image_cache, "load_image", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    assert not (tmp_path / "cache").exists() and _leftovers(tmp_path) == []


@pytest.mark.backend_independent
def test_a_damaged_images_file_is_named(folder, tmp_path):
    build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    path = tmp_path / "cache" / "images.npy"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="images.npy"):
        ImageCache(tmp_path / "cache")


@pytest.mark.backend_independent
def test_bad_arguments_are_named(folder, tmp_path):
    for kwargs, word in (({"decoder": "magick"}, "decoder"), ({"if_changed": "x"}, "if_changed"),
                         ({"image_size": (0, 4)}, "image_size")):
        with pytest.raises(ValueError, match=word):
            build_image_cache(folder, tmp_path / "cache", **{"image_size": SIZE, **kwargs})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_image_cache(tmp_path / "nowhere", tmp_path / "cache")
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    with pytest.raises(TypeError, match="ImageCache"):
        CachedImageDataset(cache.images)
    with pytest.raises(ValueError, match="dtype"):
        CachedImageDataset(cache, dtype="float16")


@pytest.mark.backend_independent
def test_every_image_once_per_epoch_reshuffled_and_seeded(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    ds = CachedImageDataset(cache, batch_size=4, seed=3)
    assert len(ds) == 3
    orders = []
    for _ in range(2):
        rows = np.concatenate([ds.batch_rows(i) for i in range(len(ds))])
        assert sorted(rows.tolist()) == list(range(9))
        for i in range(len(ds)):
            X, y = ds[i]
            assert X.dtype == np.float32 and y.dtype == np.int32
            np.testing.assert_array_equal(X, cache.images[ds.batch_rows(i)])
            np.testing.assert_array_equal(y, cache.labels[ds.batch_rows(i)])
        orders.append(rows)
        ds.on_epoch_end()
    assert not np.array_equal(*orders)
    same_seed = CachedImageDataset(cache, batch_size=4, seed=3)
    np.testing.assert_array_equal(same_seed.batch_rows(0), orders[0][:4])
    assert CachedImageDataset(cache, batch_size=4, dtype="uint8")[0][0].dtype == np.uint8


@pytest.mark.backend_independent
def test_shards_cover_the_epoch_and_resume_mid_epoch(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    shards = [CachedImageDataset(cache, batch_size=2, seed=1, shard=(i, 3)) for i in range(3)]
    assert len({len(s) for s in shards}) == 1
    served = np.concatenate([s.batch_rows(i) for s in shards for i in range(len(s))])
    assert sorted(served.tolist()) == list(range(9))
    whole = CachedImageDataset(cache, batch_size=2, seed=1, epoch=1)
    resumed = CachedImageDataset(cache, batch_size=2, seed=1, epoch=1, start_batch=2)
    np.testing.assert_array_equal(resumed.batch_rows(0), whole.batch_rows(2))


@pytest.mark.backend_independent
def test_pickles_without_the_pixels(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    ds = CachedImageDataset(cache, batch_size=4, seed=0)
    blob = pickle.dumps(ds)
    assert len(blob) < cache.nbytes  # the memory map is re-opened, not copied
    back = pickle.loads(blob)
    assert isinstance(back.cache.images, np.memmap)
    np.testing.assert_array_equal(back[1][0], ds[1][0])


def test_trains_through_fit_with_worker_threads(folder, tmp_path):
    cache = build_image_cache(folder, tmp_path / "cache", SIZE, progress=False)
    ds = CachedImageDataset(cache, batch_size=4, seed=0, dtype="uint8", workers=2)
    model = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()

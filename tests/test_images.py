"""helpers.images: the image-folder PyDataset, on real JPEG and PNG files written here."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers.images import ImageFolderDataset, list_image_files, load_image
from helpers.throughput import fit_batches

S = 24  # image side in the small folders below


def _picture(seed: int, size: tuple[int, int] = (S, S)) -> Image.Image:
    """A smooth RGB picture (compresses well, so JPEG round trips stay close)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    c = rng.uniform(0, 255, (3, 3))
    img = c[0] + np.outer(yy.ravel() / h, c[1]).reshape(h, w, 3) \
        + np.outer(xx.ravel() / w, c[2]).reshape(h, w, 3) * 0.5
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """Three classes as users have them: every image mode, upper-case extensions, junk."""
    root = tmp_path_factory.mktemp("messy")
    cat, dog, empty = root / "cat", root / "Dog", root / "empty"
    for d in (cat, dog, empty, root / ".ipynb_checkpoints", cat / "nested"):
        d.mkdir()
    _picture(1).save(cat / "rgb.jpg", quality=95)
    _picture(2).convert("L").save(cat / "gray.JPEG", quality=95)
    rgba = _picture(3).convert("RGBA")
    rgba.putalpha(77)
    rgba.save(cat / "rgba.png")
    _picture(4).quantize(16).save(cat / "palette.PNG")
    _picture(5).convert("CMYK").save(cat / "cmyk.jpg", quality=95)
    _picture(6).save(cat / "nested" / "deep.jpeg", quality=95)
    _picture(7).save(dog / "UPPER.JPG", quality=95)
    _picture(8, (40, 30)).save(dog / "wide.png")
    _picture(9).save(dog / ".hidden.jpg")  # macOS-style hidden copy: ignored
    _picture(10).save(root / ".ipynb_checkpoints" / "x.jpg")  # hidden folder: ignored
    (dog / "notes.txt").write_text("not an image")
    (dog / "Thumbs.db").write_bytes(b"\0" * 10)
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Eleven PNG/JPEG files in three classes, none hidden or broken: Keras reads it too."""
    root = tmp_path_factory.mktemp("clean")
    k = 0
    for name, n in (("b", 4), ("a", 5), ("c", 2)):
        (root / name).mkdir()
        for i in range(n):
            ext = ".png" if i % 2 else ".JPEG"
            _picture(100 + k).save(root / name / f"img{i:02d}{ext}", quality=95)
            k += 1
    return root


def test_listing_ignores_hidden_and_non_image_files_and_keeps_empty_classes(messy):
    paths, labels, names = list_image_files(messy)
    assert names == ["Dog", "cat", "empty"]  # sorted as Python sorts: upper case first
    rel = [Path(p).relative_to(messy).as_posix() for p in paths]
    assert rel == ["Dog/UPPER.JPG", "Dog/wide.png", "cat/cmyk.jpg", "cat/gray.JPEG",
                   "cat/palette.PNG", "cat/rgb.jpg", "cat/rgba.png", "cat/nested/deep.jpeg"]
    assert labels.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert labels.dtype == np.int32
    ds = ImageFolderDataset(messy, image_size=(S, S), batch_size=3, shuffle=False)
    assert ds.class_names == names and ds.num_classes == 3
    assert ds.file_paths == paths and ds.labels.tolist() == labels.tolist()


def test_every_mode_becomes_rgb(messy):
    def path(name):
        return next(p for p in list_image_files(messy)[0] if p.endswith(name))

    for name in ("rgb.jpg", "gray.JPEG", "rgba.png", "palette.PNG", "cmyk.jpg", "wide.png"):
        x = load_image(path(name), (S, S))
        assert x.shape == (S, S, 3) and x.dtype == np.uint8, name
    gray = load_image(path("gray.JPEG"), (S, S)).astype(int)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    rgba = load_image(path("rgba.png"), (S, S))
    np.testing.assert_array_equal(rgba, np.asarray(_picture(3)))  # alpha dropped, not mixed in
    palette = load_image(path("palette.PNG"), (S, S))
    np.testing.assert_array_equal(palette, np.asarray(_picture(4).quantize(16).convert("RGB")))
    cmyk = load_image(path("cmyk.jpg"), (S, S)).astype(int)
    assert np.abs(cmyk - np.asarray(_picture(5), dtype=int)).mean() < 8
    wide = load_image(path("wide.png"), (S, 2 * S))  # (height, width), as Keras orders it
    assert wide.shape == (S, 2 * S, 3)


def test_batches_shapes_types_and_label_modes(messy):
    ds = ImageFolderDataset(messy, image_size=(S, S + 8), batch_size=3, shuffle=False)
    assert len(ds) == 3  # 8 files, rounded up
    X, y = ds[2]
    assert X.shape == (2, S, S + 8, 3) and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 255 and X.max() > 1  # Keras' range: [0, 255]
    assert y.shape == (2,) and y.dtype == np.int32
    cat = ImageFolderDataset(messy, image_size=(S, S), batch_size=3, shuffle=False,
                             label_mode="categorical")
    X, y = cat[0]
    assert y.shape == (3, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(1), ds[0][1])
    np.testing.assert_array_equal(y.sum(1), 1)
    with pytest.raises(IndexError):
        ds[3]


def test_class_order_and_pixels_match_keras(clean):
    pytest.importorskip("tensorflow")  # image_dataset_from_directory runs on tf.data
    ref = keras.utils.image_dataset_from_directory(
        clean, image_size=(S, S), batch_size=4, shuffle=False, verbose=False)
    ours = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, shuffle=False)
    assert ours.class_names == ref.class_names == ["a", "b", "c"]
    assert ours.file_paths == ref.file_paths
    for i, (X_ref, y_ref) in enumerate(ref):
        X, y = ours[i]
        np.testing.assert_array_equal(y, y_ref.numpy())
        # Same size as the files, so no resize: PNG equal; JPEG within the rounding of two
        # decoders (TensorFlow's default IDCT is a faster, less exact one than Pillow's).
        for j, k in enumerate(ours.batch_rows(i)):
            diff = np.abs(X[j] - X_ref.numpy()[j])
            if ours.file_paths[k].endswith(".png"):
                assert diff.max() == 0, ours.file_paths[k]
            else:
                assert diff.mean() < 1.5 and diff.max() <= 8, ours.file_paths[k]


@pytest.mark.parametrize("damage", ["garbage", "truncated_jpeg", "truncated_png", "empty"])
def test_broken_image_raises_naming_the_file(tmp_path, damage):
    (tmp_path / "a").mkdir()
    for i in range(3):
        _picture(i, (64, 64)).save(tmp_path / "a" / f"ok{i}.jpg")
    if damage == "garbage":
        bad = tmp_path / "a" / "bad.jpg"
        bad.write_bytes(b"this is not a JPEG file at all" * 10)
    elif damage == "empty":
        bad = tmp_path / "a" / "bad.png"
        bad.write_bytes(b"")
    else:
        fmt, ext = ("JPEG", "jpg") if damage == "truncated_jpeg" else ("PNG", "png")
        bad = tmp_path / "a" / f"bad.{ext}"
        noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noisy).save(bad, fmt)
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    ds = ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match=str(bad).replace("\\", "\\\\")):
        ds[0]


def _folder_with_broken(root: Path, n_ok: int = 7) -> tuple[list[Path], list[Path]]:
    """``n_ok`` good images and two broken ones (garbage, truncated) in two classes."""
    for name in ("a", "b"):
        (root / name).mkdir()
    good = []
    for i in range(n_ok):
        good.append(root / "ab"[i % 2] / f"ok{i}.png")
        _picture(i).save(good[-1])
    garbage, cut = root / "a" / "garbage.jpg", root / "b" / "cut.jpg"
    garbage.write_bytes(b"not a JPEG" * 20)
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(cut, "JPEG")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    return good, [garbage, cut]


def test_skip_broken_leaves_out_warns_once_and_lists(tmp_path):
    good, broken = _folder_with_broken(tmp_path)
    strict = ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=9, shuffle=False)
    with pytest.raises(ValueError, match="garbage.jpg"):
        strict[0]
    ds = ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=4, seed=2,
                            skip_broken=True)
    assert ds.skipped_files == []
    for epoch in range(2):
        served = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # so "once" is the dataset's doing, not Python's
            for i in range(len(ds)):
                X, y = ds[i]
                assert len(X) == len(y)
                rows = [k for k in ds.batch_rows(i) if Path(ds.file_paths[k]) not in broken]
                assert len(X) == len(rows)  # broken files left out, the others kept in order
                np.testing.assert_array_equal(y, ds.labels[rows])
                for x, k in zip(X, rows, strict=True):
                    np.testing.assert_array_equal(x, load_image(ds.file_paths[k], (S, S)))
                served += [ds.file_paths[k] for k in rows]
            ds.on_epoch_end()
        assert sorted(served) == sorted(map(str, good))
        messages = [str(w.message) for w in caught if "skip_broken" in str(w.message)]
        if epoch == 0:  # one warning per broken file, naming it
            assert sorted(messages) == sorted(
                next(m for m in messages if str(b) in m) for b in broken)
            assert len(messages) == 2
        else:
            assert messages == []
    assert sorted(ds.skipped_files) == sorted(map(str, broken))


def test_skip_broken_with_thread_workers_through_keras(tmp_path):
    good, broken = _folder_with_broken(tmp_path, n_ok=30)
    ds = ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=3, seed=4,
                            skip_broken=True, workers=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epochs = fit_batches(ds, epochs=2)  # the batches come from 3 worker threads
    messages = [str(w.message) for w in caught if "skip_broken" in str(w.message)]
    assert len(messages) == 2 and all(any(str(b) in m for m in messages) for b in broken)
    for batches in epochs:
        assert sum(len(y) for _, y in batches) == len(good)
    assert sorted(ds.skipped_files) == sorted(map(str, broken))
    only_broken = tmp_path / "c"
    only_broken.mkdir()
    (only_broken / "bad.png").write_bytes(b"")
    lone = ImageFolderDataset(only_broken.parent, image_size=(S, S), batch_size=1,
                              shuffle=False, skip_broken=True)
    last = len(lone) - 1  # class "c" comes last; its batch of one is all broken
    with pytest.raises(ValueError, match="every file is broken.*bad.png"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lone[last]


def test_every_file_once_per_epoch_reshuffled_and_reproducible(clean):
    def epochs(ds, n):
        out = []
        for _ in range(n):
            order = []
            for i in range(len(ds)):
                order += [ds.file_paths[k] for k in ds.batch_rows(i)]
                assert len(ds[i][0]) == len(ds.batch_rows(i))
            out.append(order)
            ds.on_epoch_end()
        return out

    ds = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=7)
    a = epochs(ds, 3)
    for order in a:
        assert sorted(order) == sorted(ds.file_paths)  # each file exactly once
    assert a[0] != a[1] != a[2]  # reshuffled every epoch
    again = epochs(ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=7), 3)
    assert again == a
    other = epochs(ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=8), 1)
    assert other[0] != a[0]
    fixed = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, shuffle=False)
    assert epochs(fixed, 2) == [fixed.file_paths] * 2


def test_labels_follow_their_files_after_shuffling(clean):
    ds = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=1)
    for i in range(len(ds)):
        X, y = ds[i]
        for j, k in enumerate(ds.batch_rows(i)):
            assert y[j] == ds.class_names.index(Path(ds.file_paths[k]).parent.name)
            np.testing.assert_array_equal(X[j], load_image(ds.file_paths[k], (S, S)))


def test_augmentation_is_seeded_per_epoch_and_batch(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(6):
        _picture(i, (48, 40)).save(tmp_path / "a" / f"{i}.png")

    def make(seed=3):
        return ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=3, seed=seed,
                                  augment=True)

    ds = make()
    first = [ds[i][0] for i in (1, 0)]  # any order of computing gives the same batches
    again = make()
    np.testing.assert_array_equal(again[0][0], first[1])
    np.testing.assert_array_equal(again[1][0], first[0])
    plain = ImageFolderDataset(tmp_path, image_size=(S, S), batch_size=3, seed=3)
    assert not np.array_equal(plain[0][0], first[1])  # augmentation changed the pixels
    again.on_epoch_end()
    ds.on_epoch_end()
    np.testing.assert_array_equal(ds[0][0], again[0][0])  # same (seed, epoch, batch)

    def by_file(d):
        return {d.file_paths[k]: x.tobytes() for i in range(len(d))
                for k, x in zip(d.batch_rows(i), d[i][0], strict=True)}

    epoch_1, epoch_0 = by_file(ds), by_file(make())
    assert all(epoch_1[f] != epoch_0[f] for f in epoch_0)  # new draws every epoch
    assert not np.array_equal(make(seed=4)[0][0], first[1])


def test_pickles_and_serves_from_process_workers(clean):
    ds = ImageFolderDataset(clean, image_size=(S, S), batch_size=3, seed=5, augment=True)
    copy = pickle.loads(pickle.dumps(ds))
    for i in range(len(ds)):
        np.testing.assert_array_equal(copy[i][0], ds[i][0])
    served = ImageFolderDataset(clean, image_size=(S, S), batch_size=3, seed=5,
                                workers=2, use_multiprocessing=True, label_mode="categorical")
    batches = fit_batches(served)[0]  # through Keras' adapter, as fit() reads it
    expected = ImageFolderDataset(clean, image_size=(S, S), batch_size=3, seed=5,
                                  label_mode="categorical")
    assert len(batches) == len(expected)
    for i, (X, y) in enumerate(batches):
        X_ref, y_ref = expected[i]
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    """Images with no class folders: five at the top, two in a subfolder, plus junk."""
    root = tmp_path_factory.mktemp("flat")
    (root / "more").mkdir()
    (root / ".cache").mkdir()
    for k in range(5):
        _picture(200 + k).save(root / f"p{k}.png")
    _picture(210).save(root / "more" / "m0.png")
    _picture(211).save(root / "more" / "M1.PNG")
    _picture(212).save(root / ".hidden.png")
    _picture(213).save(root / ".cache" / "c.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_labels_none_serves_every_image_below_the_folder(flat, tmp_path):
    ds = ImageFolderDataset(flat, image_size=(S, S), batch_size=3, shuffle=False, labels=None,
                            label_mode="categorical")  # no labels: label_mode does not apply
    rel = [Path(p).relative_to(flat).as_posix() for p in ds.file_paths]
    assert rel == ["p0.png", "p1.png", "p2.png", "p3.png", "p4.png", "more/M1.PNG",
                   "more/m0.png"]  # Keras' order: folder by folder, sorted; hidden ones skipped
    assert ds.file_paths == list_image_files(flat, labels=None)[0]
    assert (ds.class_names, ds.labels, ds.label_mode, ds.num_classes) == (None,) * 4
    assert ds.num_samples == 7 and len(ds) == 3
    for i in range(len(ds)):
        X = ds[i]
        assert isinstance(X, np.ndarray) and X.dtype == np.float32
        expected = [load_image(ds.file_paths[k], (S, S)) for k in ds.batch_rows(i)]
        np.testing.assert_array_equal(X, np.stack(expected))
    with pytest.raises(FileNotFoundError, match="no class subfolders.*labels=None"):
        ImageFolderDataset(flat / "more")  # files but no class folder: labels are needed
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("no image here")
    with pytest.raises(FileNotFoundError, match="no image files .* in it or below it"):
        ImageFolderDataset(tmp_path, labels=None)


def test_labels_none_lists_what_keras_lists(flat, tmp_path):
    pytest.importorskip("tensorflow")  # image_dataset_from_directory runs on tf.data
    clean = tmp_path / "clean"  # no hidden files: Keras would list those
    clean.mkdir()
    for path in list_image_files(flat, labels=None)[0]:
        (clean / Path(path).relative_to(flat)).parent.mkdir(exist_ok=True)
        (clean / Path(path).relative_to(flat)).write_bytes(Path(path).read_bytes())
    ref = keras.utils.image_dataset_from_directory(
        clean, labels=None, image_size=(S, S), batch_size=4, shuffle=False, verbose=False)
    ours = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, shuffle=False,
                              labels=None)
    assert ours.file_paths == ref.file_paths
    for i, X_ref in enumerate(ref):
        np.testing.assert_array_equal(ours[i], X_ref.numpy())  # PNG: the same pixels


def test_label_mode_none_keeps_the_classes_and_serves_x_alone(clean):
    labelled = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=3, augment=True)
    bare = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, seed=3, augment=True,
                              label_mode=None)
    assert bare.class_names == labelled.class_names and bare.num_classes == 3
    np.testing.assert_array_equal(bare.labels, labelled.labels)
    for i in range(len(bare)):
        X = bare[i]
        assert isinstance(X, np.ndarray)
        np.testing.assert_array_equal(X, labelled[i][0])
        np.testing.assert_array_equal(bare.batch_rows(i), labelled.batch_rows(i))


@pytest.mark.parametrize("kw", [{"labels": None}, {"label_mode": None, "workers": 2}])
def test_predict_rows_follow_file_paths(clean, kw):
    ds = ImageFolderDataset(clean, image_size=(S, S), batch_size=4, shuffle=False, **kw)
    model = keras.Sequential([keras.Input((S, S, 3)), keras.layers.GlobalAveragePooling2D()])
    means = model.predict(ds, verbose=0)  # one row per file: its mean colour
    expected = [load_image(p, (S, S)).astype(np.float32).mean(axis=(0, 1))
                for p in ds.file_paths]
    np.testing.assert_allclose(means, expected, rtol=1e-5)


@pytest.mark.parametrize("bad", ["infered", "int", ["a", "b"], 0])
def test_bad_labels_are_named(clean, bad):
    with pytest.raises(ValueError, match="labels must be 'inferred'.* or None"):
        ImageFolderDataset(clean, labels=bad)


@pytest.mark.parametrize("epoch, start, kw", [
    (0, 1, {}), (2, 3, {}), (1, 1, {"shard": (1, 2), "batch_size": 2}),
])
def test_resumed_epoch_is_the_rest_of_the_uninterrupted_one(clean, epoch, start, kw):
    kw = {"image_size": (S, S), "batch_size": 3, "seed": 4, "augment": True, **kw}
    ref = ImageFolderDataset(clean, **kw)
    for _ in range(epoch):
        ref.on_epoch_end()
    resumed = ImageFolderDataset(clean, **kw, epoch=epoch, start_batch=start)
    moved = ImageFolderDataset(clean, **kw)
    moved.set_epoch(epoch, start)
    for ds in (resumed, moved):
        assert (ds.epoch, ds.start_batch) == (epoch, start)
        assert ds.batches_per_epoch == len(ref) and len(ds) == len(ref) - start
        for i in range(len(ds)):
            np.testing.assert_array_equal(ds.batch_rows(i), ref.batch_rows(start + i))
            X, y = ds[i]
            X_ref, y_ref = ref[start + i]
            np.testing.assert_array_equal(X, X_ref)  # the same crops and flips too
            np.testing.assert_array_equal(y, y_ref)
        with pytest.raises(IndexError):
            ds[len(ds)]
        ds.on_epoch_end()
        whole = ImageFolderDataset(clean, **kw, epoch=epoch + 1)
        assert (ds.start_batch, len(ds)) == (0, len(whole))
        for i in range(len(ds)):
            np.testing.assert_array_equal(ds[i][0], whole[i][0])
    copy = pickle.loads(pickle.dumps(ImageFolderDataset(clean, **kw, epoch=epoch,
                                                        start_batch=start)))
    assert (copy.epoch, copy.start_batch, len(copy)) == (epoch, start, len(ref) - start)
    np.testing.assert_array_equal(copy[0][0], ref[start][0])


@pytest.mark.parametrize("bad", [-1, 4, 2.0, False, "1"])
def test_bad_start_batch_is_named(clean, bad):
    with pytest.raises(ValueError, match=r"start_batch must be an integer in \[0, 4\)"):
        ImageFolderDataset(clean, image_size=(S, S), batch_size=3, start_batch=bad)
    ds = ImageFolderDataset(clean, image_size=(S, S), batch_size=3, seed=0, start_batch=1)
    with pytest.raises(ValueError, match="start_batch"):
        ds.set_epoch(2, bad)
    assert (ds.epoch, ds.start_batch, len(ds)) == (0, 1, 3)
    with pytest.raises(ValueError, match="epoch"):
        ImageFolderDataset(clean, epoch=-1)


def test_draft_decoding_stays_close_to_a_full_decode(tmp_path):
    big = tmp_path / "big.jpg"
    _picture(11, (640, 480)).save(big, quality=95)
    fast = load_image(big, (60, 80)).astype(int)
    full = load_image(big, (60, 80), draft=False).astype(int)
    assert fast.shape == full.shape == (60, 80, 3)
    assert np.abs(fast - full).mean() < 3


def test_bad_arguments_are_named(tmp_path, clean):
    with pytest.raises(FileNotFoundError, match="missing"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ValueError, match="label_mode"):
        ImageFolderDataset(clean, label_mode="binary")
    with pytest.raises(ValueError, match="batch_size"):
        ImageFolderDataset(clean, batch_size=0)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataset(clean, image_size=(0, 10))
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        load_image(tmp_path / "nowhere.jpg")

"""benchmarks/feed_gpu.py: its CPU path end to end at a tiny size; its GPU path where a GPU is."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks import feed_gpu
from helpers.feeding import IndexBatches, ResidentImages, augmentation_layers, loader_cpu_seconds


def test_cpu_path_measures_every_rung_and_computes_the_table(tmp_path):
    out = tmp_path / "feed.json"
    report = feed_gpu.main(["--tiny", "--data-dir", str(tmp_path), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == report["results"]
    results = report["results"]
    for rung in ("folder.decode_augment", "folder.decode", "cache.augment_cpu", "cache.float32",
                 "cache.uint8", "resident.images", "cifar.augment_cpu", "cifar.plain",
                 "cifar.resident"):
        fig = results[f"feed.{rung}.rate"]
        assert fig["rounds"] == 3 and 0 < fig["min"] <= fig["median"] <= fig["max"], rung
    assert results["feed.cache_vs_folder"]["median"] > 1  # decoding costs more than a gather
    assert 0 < results["feed.augment_in_model_cut"]["median"] < 100
    for field in ("cpu", "cores", "memory_gib", "gpus", "backend", "versions", "date", "command"):
        assert field in saved["provenance"]
    assert {row["gpu"] for row in report["table"]} == {"T4", "A100", "H100"}
    for row in report["table"]:
        assert row["cores_needed"] == pytest.approx(row["gpu_rate"] / row["per_core_rate"],
                                                    rel=1e-3)
        assert row["colab_2_vcpu"] in ("fed", "tight", "waits")
        assert row["gpu_rate_kind"] in ("cited", "derived", "EST")
    if not saved["provenance"]["gpus"]:
        assert report["models"] is None  # the model part needs a GPU (or --models)


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no GPU here (nvidia-smi absent)")
def test_gpu_busy_samples_nvidia_smi():
    with feed_gpu.GpuBusy() as busy:
        import time
        time.sleep(0.5)
    assert busy.mean is not None and 0 <= busy.mean <= 100


def test_gpu_busy_without_nvidia_smi_says_none(monkeypatch):
    monkeypatch.setattr(feed_gpu.shutil, "which", lambda name: None)
    with feed_gpu.GpuBusy() as busy:
        pass
    assert busy.mean is None


def test_resident_images_gather_on_the_device_and_train():
    import keras

    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(40, dtype=np.int32) % 2
    layer = ResidentImages(images)
    rows = np.array([3, 0, 39], dtype=np.int32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(rows)), images[rows])
    inputs = keras.Input((), dtype="int32")
    x = augmentation_layers(seed=0)(ResidentImages(images)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(IndexBatches(labels, batch_size=16, seed=0), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="uint8"):
        ResidentImages(images.astype(np.float32))


def test_augmentation_is_identity_outside_training():
    import keras

    x = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    aug = augmentation_layers(seed=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(aug(x, training=True)), x)


def test_index_batches_serve_every_row_once_per_epoch_reshuffled():
    ds = IndexBatches(np.arange(10) % 3, batch_size=4, seed=2)
    assert len(ds) == 3
    epochs = []
    for _ in range(2):
        rows = np.concatenate([ds[i][0] for i in range(len(ds))])
        assert sorted(rows.tolist()) == list(range(10))
        np.testing.assert_array_equal(np.concatenate([ds[i][1] for i in range(3)]), rows % 3)
        epochs.append(rows)
        ds.on_epoch_end()
    assert not np.array_equal(*epochs)
    with pytest.raises(IndexError):
        ds[3]


def test_loader_cpu_seconds_counts_this_thread_only():
    class Busy:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            t = __import__("time")
            end = t.thread_time() + 0.01
            while t.thread_time() < end:
                pass
            return np.zeros((8, 2)), np.zeros(8)

    out = loader_cpu_seconds(Busy(), batches=2, rounds=3)
    assert len(out["cpu"]) == 3 and out["samples"] == 8
    assert all(c >= 0.009 for c in out["cpu"])
    with pytest.raises(ValueError, match="batches"):
        loader_cpu_seconds(Busy(), batches=9)


def test_random_shift_is_a_shifted_crop_maybe_flipped_and_keeps_jit():
    import keras

    from helpers.feeding import RandomShift

    x = np.random.default_rng(3).uniform(0, 255, (6, 10, 12, 3)).astype(np.float32)
    layer = RandomShift(0.2, seed=4)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    for k in range(len(x)):  # some offset (and maybe a flip) reproduces each image
        crops = [padded[k, dy:dy + 10, dx:dx + 12] for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(out[k], c) or np.array_equal(out[k], c[:, ::-1])
                   for c in crops), k
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    again = keras.ops.convert_to_numpy(RandomShift(0.2, seed=4)(x, training=True))
    np.testing.assert_array_equal(again, out)
    model = keras.Sequential([keras.Input((10, 12, 3)), RandomShift(0.1, seed=0),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    if keras.backend.backend() == "jax":  # Keras' RandomZoom would turn this off
        assert model.jit_compile
    model.fit(x, np.zeros((6, 2)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="fraction"):
        RandomShift(0.5)

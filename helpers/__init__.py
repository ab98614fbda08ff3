"""The course's shared code: datasets, generators, probes. Each module reads in one sitting.

Notebooks and benchmarks import what they use from here (``from helpers import
DataGenerator``); each name lives in the module named for its job
(``helpers.generator.DataGenerator``), which is what to open to read it or to lift it into
a project. Names that only modules use among themselves stay in their modules.

The package loads a module only when one of its names is first asked for (PEP 562), so
``from helpers import c_stderr_silenced`` runs before Keras or TensorFlow is imported, and
a notebook that uses two modules does not pay for the other twenty.
"""

from __future__ import annotations

import importlib

# Which module defines each public name.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "article": ("ArticleDataGenerator",),
    "backends": ("installed_backends", "observe", "run_in_backend"),
    "cifar": (
        "CIFAR10Sequence", "build_cifar10_cache", "load_cifar10_pickle", "read_cifar10_batch",
    ),
    "cifar_download": ("get_cifar10",),
    "columns": ("WithColumns",),
    "decode": ("load_image",),
    "distributed": ("free_port", "run_children", "train_job", "train_local", "train_tf_job"),
    "endless": ("EndlessDataset", "waves"),
    "environment": ("data_root", "setup_notebook"),
    "faults": ("FailingBatches", "KeepingBatches"),
    "feeding": (
        "IndexBatches", "RandomShift", "ResidentImages", "augmentation_layers",
        "loader_cpu_seconds",
    ),
    "file_shards": (
        "RECORD_BYTES", "files_of", "lockstep", "record_counts", "steps_per_process",
        "write_record_files",
    ),
    "generator": ("DataGenerator", "shard_rows", "shard_size"),
    "hdf5": ("HDF5Batches", "SharedHandleBatches"),
    "hf_datasets": (
        "HFBatches", "StreamPosition", "load_parquet", "resume_counts", "stream_batches",
        "write_parquet_shards",
    ),
    "image_loaders": (
        "DecodeSample", "close_torch_loader", "epoch_batches", "fit_rate", "grain_loader",
        "keras_image_dataset",
        "loader_rate", "small_image_cnn", "tf_data_loader", "thread_scaling", "torch_loader",
    ),
    "image_cache": ("CachedImageDataset", "ImageCache", "build_image_cache"),
    "imagenette": ("get_imagenette", "write_imagenette_like"),
    "images": ("ImageFolderDataset", "list_image_files"),
    "memory": (
        "MB", "PeakMemory", "anon_bytes", "anon_counter", "rss_bytes", "total_memory_bytes",
    ),
    "memory_study": ("memory_study",),
    "models": ("article_cifar_cnn", "initialize", "volume_cnn"),
    "object_store": ("LocalS3", "ObjectBatches", "download_atomic", "read_object", "read_objects"),
    "packed": ("PACKED_INDEX", "PackedDataGenerator", "pack_volume_dataset"),
    "partition": ("stratified_split", "validate_partition"),
    "progress": ("progress_bar",),
    "quiet": ("c_stderr_silenced",),
    "resume": ("MidEpochCheckpoint", "fit_resumable", "latest_checkpoint"),
    "shards": (
        "DamagedShardError", "NpyShardSource", "check_shards", "neighbour_stats", "open_files",
        "pack_record", "read_shard", "shard_files", "tf_example", "tfrecord_dataset",
        "unpack_record", "webdataset_batches", "write_shards",
    ),
    "tf_multiworker": ("describe_failure", "distributed_ids", "train_replicated"),
    "tfdata": ("volume_tf_data",),
    "throughput": ("fit_batches", "measure_model", "probe", "sweep_workers"),
    "throughput_plots": ("plot_ratios", "plot_sweep"),
    "timeline": ("SleepyBatches", "StepCost", "fit_timeline", "plot_timeline"),
    "timing": ("best_epoch_seconds", "best_rates", "read_files", "serve_all"),
    "training_curves": ("plot_history",),
    "torchdata": ("VolumeFiles", "volume_torch_loader"),
    "volumes": ("VOLUME_SHAPES", "load_partition", "make_volume_dataset"),
    "workloads": ("InMemoryBatches", "SimulatedWork"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    """Import the module that defines ``name`` on first use, then keep the value here."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The course's shared code: datasets, generators, probes. Each module reads in one sitting.

Notebooks and benchmarks import what they use from here (``from helpers import
DataGenerator``); each name lives in the module named for its job
(``helpers.generator.DataGenerator``), which is what to open to read it or to lift it into
a project. Names that only modules use among themselves stay in their modules.
"""

from .article import ArticleDataGenerator
from .backends import installed_backends, observe
from .cifar import CIFAR10Sequence, build_cifar10_cache, load_cifar10_pickle, read_cifar10_batch
from .cifar_download import get_cifar10
from .environment import data_root, setup_notebook
from .generator import DataGenerator
from .image_loaders import (
    DecodeSample,
    PeakAnon,
    c_stderr_silenced,
    fit_rate,
    grain_loader,
    keras_image_dataset,
    loader_rate,
    small_image_cnn,
    tf_data_loader,
    thread_scaling,
    torch_loader,
)
from .imagenette import get_imagenette, write_imagenette_like
from .images import ImageFolderDataset, list_image_files, load_image
from .memory import MB, PeakMemory, rss_bytes, total_memory_bytes
from .memory_study import memory_study
from .models import article_cifar_cnn, volume_cnn
from .packed import PACKED_INDEX, PackedDataGenerator, pack_volume_dataset
from .partition import stratified_split, validate_partition
from .progress import progress_bar
from .tfdata import volume_tf_data
from .throughput import fit_batches, measure_model, probe, sweep_workers
from .throughput_plots import plot_ratios, plot_sweep
from .timing import best_epoch_seconds, best_rates, read_files, serve_all
from .torchdata import VolumeFiles, volume_torch_loader
from .volumes import VOLUME_SHAPES, load_partition, make_volume_dataset
from .workloads import InMemoryBatches, SimulatedWork

__all__ = [
    "MB", "PACKED_INDEX", "VOLUME_SHAPES",
    "ArticleDataGenerator", "CIFAR10Sequence", "DataGenerator", "DecodeSample",
    "ImageFolderDataset", "InMemoryBatches", "PackedDataGenerator", "PeakAnon", "PeakMemory",
    "SimulatedWork", "VolumeFiles",
    "article_cifar_cnn", "best_epoch_seconds", "best_rates", "build_cifar10_cache",
    "c_stderr_silenced", "data_root", "fit_batches", "fit_rate", "get_cifar10",
    "get_imagenette", "grain_loader", "installed_backends", "keras_image_dataset",
    "list_image_files",
    "load_cifar10_pickle", "load_image", "load_partition", "loader_rate",
    "make_volume_dataset", "measure_model", "memory_study", "observe", "pack_volume_dataset",
    "plot_ratios", "plot_sweep", "probe", "progress_bar", "read_cifar10_batch", "read_files",
    "rss_bytes", "serve_all", "setup_notebook", "small_image_cnn", "stratified_split",
    "sweep_workers", "tf_data_loader", "thread_scaling", "torch_loader",
    "total_memory_bytes", "validate_partition", "volume_cnn", "volume_tf_data",
    "volume_torch_loader",
    "write_imagenette_like",
]

"""The course's shared code: datasets, generators, probes. Each module reads in one sitting.

Notebooks import what they use from here (``from helpers import DataGenerator``); each name
also lives in the module named for its job (``helpers.generator.DataGenerator``), which is
what to open to read it or to lift it into a project.
"""

from .archive import check_md5, download_verified, extract_tar_checked, md5_of
from .article import ArticleDataGenerator
from .atomic import atomic_file, atomic_folder, atomic_path, save_npy_atomic, write_text_atomic
from .cifar import (
    CIFAR10Sequence,
    build_cifar10_cache,
    load_cifar10_pickle,
    random_flip_and_crop,
    read_cifar10_batch,
    read_cifar10_label_names,
)
from .cifar_download import CifarData, download_cifar10, extract_cifar10, get_cifar10
from .cifar_standin import STANDIN_SHAPES, write_cifar10_like
from .environment import SetupInfo, data_root, setup_notebook
from .generator import DataGenerator
from .memory import MB, PeakMemory, rss_bytes, total_memory_bytes
from .memory_study import memory_study
from .models import article_cifar_cnn, volume_cnn
from .packed import PACKED_INDEX, PackedDataGenerator, pack_volume_dataset
from .partition import stratified_split, validate_partition
from .progress import progress_bar
from .tfdata import volume_tf_data
from .throughput import ThroughputResult, fit_batches, probe, sweep_workers
from .throughput_plots import plot_ratios, plot_sweep
from .timing import best_epoch_seconds, best_rates, read_files, serve_all
from .volumes import VOLUME_SHAPES, load_partition, make_volume_dataset
from .workloads import InMemoryBatches, SimulatedWork

__all__ = [
    "MB", "PACKED_INDEX", "STANDIN_SHAPES", "VOLUME_SHAPES",
    "ArticleDataGenerator", "CIFAR10Sequence", "CifarData", "DataGenerator",
    "InMemoryBatches", "PackedDataGenerator", "PeakMemory", "SetupInfo", "SimulatedWork",
    "ThroughputResult",
    "article_cifar_cnn", "atomic_file", "atomic_folder", "atomic_path", "best_epoch_seconds",
    "best_rates", "build_cifar10_cache", "check_md5", "data_root", "download_cifar10",
    "download_verified", "extract_cifar10", "extract_tar_checked", "fit_batches",
    "get_cifar10", "load_cifar10_pickle", "load_partition", "make_volume_dataset", "md5_of",
    "memory_study", "pack_volume_dataset", "plot_ratios", "plot_sweep", "probe",
    "progress_bar", "random_flip_and_crop", "read_cifar10_batch", "read_cifar10_label_names",
    "read_files", "rss_bytes", "save_npy_atomic", "serve_all", "setup_notebook",
    "stratified_split", "sweep_workers", "total_memory_bytes", "validate_partition",
    "volume_cnn", "volume_tf_data", "write_cifar10_like", "write_text_atomic",
]

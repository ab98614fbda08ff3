"""The course's shared code: datasets, generators, probes. Each module reads in one sitting.

Notebooks and benchmarks import what they use from here (``from helpers import
DataGenerator``); each name lives in the module named for its job
(``helpers.generator.DataGenerator``), which is what to open to read it or to lift it into
a project. Names that only modules use among themselves stay in their modules.
"""

from .article import ArticleDataGenerator
from .cifar import CIFAR10Sequence, build_cifar10_cache, load_cifar10_pickle, read_cifar10_batch
from .cifar_download import get_cifar10
from .environment import data_root, setup_notebook
from .generator import DataGenerator
from .memory import MB, PeakMemory, rss_bytes, total_memory_bytes
from .memory_study import memory_study
from .models import article_cifar_cnn, volume_cnn
from .packed import PACKED_INDEX, PackedDataGenerator, pack_volume_dataset
from .partition import stratified_split, validate_partition
from .progress import progress_bar
from .tfdata import volume_tf_data
from .throughput import fit_batches, probe, sweep_workers
from .throughput_plots import plot_ratios, plot_sweep
from .timing import best_epoch_seconds, best_rates, read_files, serve_all
from .torchdata import VolumeFiles, volume_torch_loader
from .volumes import VOLUME_SHAPES, load_partition, make_volume_dataset
from .workloads import InMemoryBatches, SimulatedWork

__all__ = [
    "MB", "PACKED_INDEX", "VOLUME_SHAPES",
    "ArticleDataGenerator", "CIFAR10Sequence", "DataGenerator", "InMemoryBatches",
    "PackedDataGenerator", "PeakMemory", "SimulatedWork", "VolumeFiles",
    "article_cifar_cnn", "best_epoch_seconds", "best_rates", "build_cifar10_cache",
    "data_root", "fit_batches", "get_cifar10", "load_cifar10_pickle", "load_partition",
    "make_volume_dataset", "memory_study", "pack_volume_dataset", "plot_ratios", "plot_sweep",
    "probe", "progress_bar", "read_cifar10_batch", "read_files", "rss_bytes", "serve_all",
    "setup_notebook", "stratified_split", "sweep_workers", "total_memory_bytes",
    "validate_partition", "volume_cnn", "volume_tf_data", "volume_torch_loader",
]

"""Shared code of the course: datasets, generators, probes. Each module reads in one sitting."""

from .course import data_root, setup_notebook
from .generator import DataGenerator
from .partition import stratified_split, validate_partition
from .volumes import load_partition, make_volume_dataset

__all__ = [
    "DataGenerator",
    "data_root",
    "load_partition",
    "make_volume_dataset",
    "setup_notebook",
    "stratified_split",
    "validate_partition",
]

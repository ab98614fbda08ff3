"""``ImageFolderDataset``: a ``keras.utils.PyDataset`` over a folder of JPEG/PNG files.

The layout is the one ``keras.utils.image_dataset_from_directory`` reads:
``directory/<class name>/<file>``, one subfolder per class. It needs numpy, keras, Pillow, the
standard library, ``generator.py`` beside it (the epoch order, the sharding rule and the
``start_batch`` check, one copy shared with ``DataGenerator``) and ``decode.py`` (one file
to an array, with Pillow or OpenCV): copy the three files into a package of your project.

Where it overlaps with ``image_dataset_from_directory`` it behaves the same way, so a model
trained with one loader predicts correctly with the other:

- class names are the sorted names of the non-hidden subfolders, and class ``k`` is the
  ``k``-th of them (an empty class folder keeps its index);
- files are found in the class folder and below it (with ``labels=None``: in ``directory``
  and below it, no classes), in sorted order, and the ones ending in ``.jpg``, ``.jpeg`` or
  ``.png`` in any letter case are the images;
- ``X`` holds float32 pixel values in ``[0, 255]``, resized to ``image_size`` without keeping
  the aspect ratio; ``y`` holds int labels, one-hot rows with ``label_mode="categorical"``,
  and is left out (batches are ``X`` alone) with ``labels=None`` or ``label_mode=None``.

Where it differs, on purpose: hidden files (``.DS_Store``, macOS's ``._photo.jpg``) and hidden
folders (``.ipynb_checkpoints``) are ignored; ``label_mode=None`` keeps the class folders'
listing, ``class_names`` and ``labels`` (Keras lists the files as for ``labels=None``); a
file that does not decode raises an error naming it instead of stopping the whole pipeline
with a bare decoder message (or, only with ``skip_broken=True``, is left out of its batch,
warned about and listed); it decodes with Pillow (or, with ``decoder="opencv"``, OpenCV:
``helpers.decode`` says how the two differ), in Python worker threads or processes rather
than tf.data's C++ threads; with Pillow a JPEG much larger than ``image_size`` is decoded
at a reduced size (``Image.draft``); and Pillow's resize antialiases when shrinking
(TensorFlow's default resize does not; OpenCV's, as ``load_image`` uses it, only from 2x).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from .decode import DECODERS, load_image  # noqa: F401  (load_image: also importable from here)
from .generator import check_start_batch, epoch_order, resolve_seed, shard_rows, shard_size

__all__ = ["CROP_SCALE", "IMAGE_EXTENSIONS", "LABEL_MODES", "ImageFolderDataset",
           "list_image_files"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
"""File endings (compared in lower case) that count as images."""

CROP_SCALE = (0.8, 1.0)
"""With ``augment=True``, each crop keeps this fraction range of the image's width and height."""

LABEL_MODES = ("int", "categorical", None)
"""``y`` as int32 labels, float32 one-hot rows, or left out (batches are ``X`` alone)."""


def _images_below(folder: Path, top: Path) -> list[str]:
    """The image files in ``folder`` and its subfolders, sorted as Keras sorts them (folder
    path, then name), skipping anything hidden below ``top``."""
    found = []
    for root, _dirs, files in sorted(os.walk(folder), key=lambda entry: entry[0]):
        if any(part.startswith(".") for part in Path(root).relative_to(top).parts):
            continue  # inside a hidden folder
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def list_image_files(directory: str | Path, labels: str | None = "inferred"
                     ) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """The images of ``directory/<class>/...``: ``(file_paths, labels, class_names)``.

    ``class_names`` are the sorted names of the non-hidden subfolders; ``labels[i]`` (int32)
    is the index in ``class_names`` of the folder holding ``file_paths[i]``. Files are listed
    class by class, then in sorted path order: the order ``image_dataset_from_directory``
    gives with ``shuffle=False``. Hidden files and folders and non-image files are skipped.
    ``labels=None``: every image in ``directory`` and below it, as Keras lists them then,
    and ``(file_paths, None, None)``. Raises FileNotFoundError if ``directory`` is not a
    folder or (``labels="inferred"``) has no class subfolder.
    """
    if not (labels is None or (isinstance(labels, str) and labels == "inferred")):
        raise ValueError(f"labels must be 'inferred' (from the class folders) or None, "
                         f"got {labels!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    if labels is None:
        return _images_below(directory, directory), None, None
    class_names = sorted(e.name for e in os.scandir(directory)
                         if e.is_dir() and not e.name.startswith("."))
    if not class_names:
        raise FileNotFoundError(f"{directory} has no class subfolders (expected "
                                "directory/<class name>/<image file>, or labels=None)")
    file_paths: list[str] = []
    classes: list[int] = []
    for k, name in enumerate(class_names):
        found = _images_below(directory / name, directory)
        file_paths += found
        classes += [k] * len(found)
    return file_paths, np.asarray(classes, dtype=np.int32), class_names


class ImageFolderDataset(keras.utils.PyDataset):
    """Batches ``(X, y)`` decoded on the fly from ``directory/<class>/<image file>``.

    Args:
        directory: the folder holding one subfolder per class (or, with ``labels=None``,
            the images, at any depth).
        image_size: ``(height, width)`` every image is resized to.
        batch_size: images per batch; ``len()`` rounds up, so no image is dropped.
        shuffle: a new order every epoch, a function of ``(seed, epoch)``: every file is
            served exactly once per epoch (across all shards, with ``shard_remainder="pad"``
            at least once).
        seed: makes shuffling and augmentation reproducible; ``None`` draws one.
        augment: a random crop (``CROP_SCALE`` of each side) and a left-right flip per
            image, drawn from a generator seeded by ``(seed, epoch, batch of the epoch)``:
            the same batch whichever worker (thread or process) computes it, resumed or not.
        label_mode: ``"int"`` (int32 labels ``(b,)``, for
            ``sparse_categorical_crossentropy``), ``"categorical"`` (float32 one-hot
            ``(b, num_classes)``) or ``None``: batches are ``X`` alone (inference), while
            ``class_names`` and ``labels`` stay, to score the predictions with.
        shard: ``(index, count)``: serve only this process's share of each epoch, as
            ``DataGenerator`` does: the epoch's order is drawn from ``(seed, epoch)`` over all
            files, then dealt out (``helpers.generator.shard_rows``), so every shard has the
            same ``len()`` and files move between processes from epoch to epoch. ``None``
            serves every file.
        shard_remainder: ``"pad"`` (repeat the fewest files so shards are equal) or
            ``"drop"`` (skip the ``n % count`` left over this epoch); ``samples_repeated``
            and ``samples_dropped`` say how many, per epoch across all shards.
        skip_broken: ``False`` (the default): a file that does not decode raises ValueError
            naming it. ``True``: it is left out of its batch (which is one image shorter),
            warned about once (``UserWarning`` naming it) and recorded in
            ``skipped_files``; a batch whose every file is broken still raises.
        decoder: ``"pillow"`` or ``"opencv"`` (needs ``opencv-python-headless``): the library
            that decodes and resizes (``helpers.decode.load_image``).
        labels: ``"inferred"`` (from the class folders) or ``None``: every image in
            ``directory`` and below it, no classes (``class_names``, ``labels`` and
            ``label_mode`` are None), batches ``X`` alone, as Keras does.
        epoch, start_batch: where to start: batch ``start_batch`` of epoch ``epoch``, with the
            order and augmentation of an uninterrupted run (resuming one); see ``set_epoch``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.

    Attributes: ``class_names``, ``file_paths`` and ``labels`` (aligned, in the stable order
    of ``list_image_files``: with ``shuffle=False`` the rows of ``predict(ds)`` follow
    ``file_paths``, unless ``skip_broken`` left a file out), ``num_classes``, ``seed``,
    ``epoch``, ``start_batch``, ``skipped_files``. The object holds only paths, labels and
    settings, so it pickles cheaply for process workers.
    Worker *processes* decode in their own copy of it: there the warnings still show (from
    the worker), but ``skipped_files`` of the object in your process only lists what your
    process itself decoded (the main thread and thread workers).
    """

    def __init__(
        self,
        directory: str | Path,
        image_size: tuple[int, int] = (160, 160),
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        augment: bool = False,
        label_mode: str = "int",
        skip_broken: bool = False,
        shard: tuple[int, int] | None = None,
        shard_remainder: str = "pad",
        labels: str | None = "inferred",
        epoch: int = 0,
        start_batch: int = 0,
        decoder: str = "pillow",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if (len(image_size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0
                                            for s in image_size)):
            raise ValueError(f"image_size must be (height, width) in positive integers, "
                             f"got {image_size!r}")
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.decoder = decoder
        self.directory = Path(directory)
        self.file_paths, self.labels, self.class_names = list_image_files(self.directory, labels)
        if not self.file_paths:
            where = "it or below it" if labels is None else f"its class folders {self.class_names}"
            raise FileNotFoundError(f"{self.directory}: no image files (.jpg, .jpeg, .png) "
                                    f"in {where}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.label_mode = None if labels is None else label_mode
        self.skip_broken = bool(skip_broken)
        self._skipped: dict[str, str] = {}  # path -> why; filled only with skip_broken
        self.seed = resolve_seed(seed)
        self._shard_size = shard_size(len(self.file_paths), shard, shard_remainder)
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self.shard_remainder = shard_remainder
        self.set_epoch(epoch, start_batch)

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def num_samples(self) -> int:
        return len(self.file_paths)

    @property
    def skipped_files(self) -> list[str]:
        """Paths of the broken files left out so far (``skip_broken=True``), first seen first."""
        return list(self._skipped)

    def _skip(self, path: str, error: ValueError) -> None:
        """Record a broken file; warn the first time only, whichever thread sees it first.

        ``dict.setdefault`` is one atomic step under the GIL, so of two threads decoding the
        same file only the one whose entry went in warns (no lock, which would not pickle).
        """
        reason = str(error)
        if self._skipped.setdefault(path, reason) is reason:
            warnings.warn(f"skipped (skip_broken=True): {reason}", UserWarning, stacklevel=3)

    @property
    def samples_dropped(self) -> int:
        """Files no shard serves in an epoch (``"drop"``; 0 with ``"pad"``)."""
        count = 1 if self.shard is None else self.shard[1]
        return max(self.num_samples - count * self._shard_size, 0)

    @property
    def samples_repeated(self) -> int:
        """Files served twice in an epoch across shards (``"pad"``; 0 with ``"drop"``)."""
        count = 1 if self.shard is None else self.shard[1]
        return max(count * self._shard_size - self.num_samples, 0)

    @property
    def batches_per_epoch(self) -> int:
        """Batches in a whole epoch: ``len()`` unless the epoch was entered mid-way."""
        return math.ceil(self._shard_size / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve epoch ``epoch``'s order and augmentation from its batch ``start_batch`` on;
        ``len()`` and ``[i]`` then count from there (``DataGenerator.set_epoch``)."""
        order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)  # checks epoch
        self.start_batch = check_start_batch(start_batch, self.batches_per_epoch)
        rows = shard_rows(order, self.shard, self.shard_remainder)
        self.indexes = rows[self.start_batch * self.batch_size:]  # batches start_batch, ...
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Move to the start of the next epoch's order (``fit()`` calls it after each epoch)."""
        self.set_epoch(self.epoch + 1)

    def batch_rows(self, index: int) -> np.ndarray:
        """Positions in ``file_paths`` of the images batch ``index`` holds, in the order of X
        (with ``skip_broken=True`` a broken file's row is left out of X)."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self.indexes[index * self.batch_size:(index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        rows = self.batch_rows(index)
        X = np.empty((len(rows), *self.image_size, 3), dtype=np.float32)
        if self.augment:  # seeded by the batch's number in the whole epoch
            rng = np.random.default_rng([self.seed, self.epoch, self.start_batch + index])
            scales = rng.uniform(*CROP_SCALE, size=(len(rows), 2))
            offsets = rng.random((len(rows), 2))
            flips = rng.random(len(rows)) < 0.5
        kept = np.ones(len(rows), dtype=bool)
        for j, k in enumerate(rows.tolist()):
            crop = (*scales[j], *offsets[j]) if self.augment else None
            flip = bool(flips[j]) if self.augment else False
            try:
                X[j] = load_image(self.file_paths[k], self.image_size, crop, flip,
                                  decoder=self.decoder)
            except ValueError as e:  # load_image's "cannot decode", naming the file
                if not self.skip_broken:
                    raise
                self._skip(self.file_paths[k], e)
                kept[j] = False
        if not kept.all():
            if not kept.any():
                raise ValueError(f"batch {index}: every file is broken "
                                 f"({', '.join(self.file_paths[k] for k in rows)})")
            X, rows = X[kept], rows[kept]
        if self.label_mode is None:
            return X
        y = self.labels[rows]
        if self.label_mode == "categorical":
            y = keras.utils.to_categorical(y, self.num_classes).astype(np.float32)
        return X, y


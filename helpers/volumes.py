"""A synthetic 3-D dataset in the layout of the source article: one ``<ID>.npy`` per sample.

Each sample is a ``dim``-shaped uint8 volume holding one class-dependent shape (a ball,
a cube, a hollow shell, a rod or a slab along one axis, ...) at a random place and size,
plus noise, so a small 3-D CNN really learns to tell the classes apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .atomic import save_npy_atomic, write_text_atomic
from .partition import stratified_split
from .progress import progress_bar

__all__ = ["MANIFEST", "VOLUME_SHAPES", "load_partition", "make_volume", "make_volume_dataset"]

MANIFEST = "dataset.json"

Grid = tuple[np.ndarray, np.ndarray, np.ndarray]
Shape = Callable[[Grid, float], np.ndarray]


def _ball(g: Grid, r: float) -> np.ndarray:
    return g[0] ** 2 + g[1] ** 2 + g[2] ** 2 <= r**2


def _cube(g: Grid, r: float) -> np.ndarray:
    return np.maximum(np.maximum(abs(g[0]), abs(g[1])), abs(g[2])) <= 0.8 * r


def _shell(g: Grid, r: float) -> np.ndarray:
    d2 = g[0] ** 2 + g[1] ** 2 + g[2] ** 2
    return (d2 <= r**2) & (d2 >= (0.6 * r) ** 2)


def _rod(axis: int) -> Shape:
    def rod(g: Grid, r: float) -> np.ndarray:
        a, b = (g[i] for i in range(3) if i != axis)
        return (a**2 + b**2 <= (0.35 * r) ** 2) & (abs(g[axis]) <= 1.6 * r)

    return rod


def _slab(axis: int) -> Shape:
    def slab(g: Grid, r: float) -> np.ndarray:
        a, b = (g[i] for i in range(3) if i != axis)
        return (abs(g[axis]) <= 0.25 * r) & (abs(a) <= 1.2 * r) & (abs(b) <= 1.2 * r)

    return slab


def _cross(g: Grid, r: float) -> np.ndarray:
    return _rod(0)(g, r) | _rod(1)(g, r) | _rod(2)(g, r)


VOLUME_SHAPES: tuple[tuple[str, Shape], ...] = (
    ("ball", _ball), ("cube", _cube), ("shell", _shell),
    ("rod-x", _rod(0)), ("rod-y", _rod(1)), ("rod-z", _rod(2)),
    ("slab-x", _slab(0)), ("slab-y", _slab(1)), ("slab-z", _slab(2)),
    ("cross", _cross),
)
"""The class of a sample is the index of its shape here."""


def make_volume(label: int, dim: tuple[int, ...], n_channels: int,
                rng: np.random.Generator) -> np.ndarray:
    """One uint8 sample of class ``label``: its shape, randomly placed and sized, plus noise.

    Returns an array of shape ``dim`` when ``n_channels == 1`` (as in the article), else
    ``(*dim, n_channels)``.
    """
    size = min(dim)
    r = rng.uniform(0.18, 0.28) * size
    centre = [rng.uniform(0.35, 0.65) * d for d in dim]
    grid = np.ogrid[tuple(slice(0, d) for d in dim)]
    g = tuple(axis - c for axis, c in zip(grid, centre, strict=True))
    mask = VOLUME_SHAPES[label][1](g, r)
    shape = (*dim, n_channels) if n_channels > 1 else tuple(dim)
    volume = rng.normal(60.0, 25.0, size=shape)
    gain = rng.uniform(90.0, 140.0, size=n_channels) if n_channels > 1 else rng.uniform(90, 140)
    volume += (mask[..., None] * gain) if n_channels > 1 else mask * gain
    return np.clip(volume, 0, 255).astype(np.uint8)


def _check_args(n_samples: int, dim: tuple[int, ...], n_channels: int, n_classes: int) -> None:
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if len(dim) != 3 or min(dim) < 8:
        raise ValueError(f"dim must be three sizes of at least 8, got {dim}")
    if n_channels < 1:
        raise ValueError(f"n_channels must be at least 1, got {n_channels}")
    if not 2 <= n_classes <= len(VOLUME_SHAPES):
        raise ValueError(
            f"n_classes must be between 2 and {len(VOLUME_SHAPES)}, got {n_classes}")


def make_volume_dataset(
    data_dir: str | Path,
    n_samples: int,
    dim: tuple[int, int, int] = (32, 32, 32),
    n_channels: int = 1,
    n_classes: int = 6,
    seed: int = 0,
    progress: bool = True,
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Write a learnable dataset as ``<data_dir>/id-1.npy`` ... plus its partition and labels.

    Also writes ``partition.json`` (a stratified 80/20 train/validation split),
    ``labels.json`` and ``dataset.json`` (the arguments, so a re-run can tell its own files).
    Running it again with the same arguments reuses what is there and finishes an
    interrupted run; it refuses (``FileExistsError``) to touch a folder holding files it did
    not write, and each file is written whole under a temporary name, then renamed.

    Returns ``(partition, labels)`` as in the article:
    ``{"train": [...], "validation": [...]}`` and ``{ID: class}``.
    """
    dim = tuple(int(d) for d in dim)
    _check_args(n_samples, dim, n_channels, n_classes)
    data_dir = Path(data_dir)
    wanted = {"n_samples": n_samples, "dim": list(dim), "n_channels": n_channels,
              "n_classes": n_classes, "seed": seed, "dtype": "uint8"}
    manifest = data_dir / MANIFEST
    ids = [f"id-{i}" for i in range(1, n_samples + 1)]
    if manifest.exists():
        found = json.loads(manifest.read_text(encoding="utf-8"))
        if found != wanted:
            raise FileExistsError(
                f"{data_dir} already holds a dataset made with {found}, not {wanted}: "
                "pass another data_dir, or delete that folder to rebuild it")
    elif data_dir.exists():
        ours = {f"{i}.npy" for i in ids} | {"partition.json", "labels.json"}
        clash = sorted(p.name for p in data_dir.iterdir() if p.name in ours)
        if clash:
            raise FileExistsError(
                f"{data_dir / clash[0]} exists and was not written by make_volume_dataset "
                f"({len(clash)} such files): refusing to overwrite; pass another data_dir")

    data_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(manifest, json.dumps(wanted, indent=1))
    label_rng = np.random.default_rng([seed, 0])
    classes = label_rng.permutation(np.arange(n_samples) % n_classes)
    labels = {id_: int(c) for id_, c in zip(ids, classes, strict=True)}

    todo = [(i, id_) for i, id_ in enumerate(ids, start=1)
            if not (data_dir / f"{id_}.npy").exists()]
    for i, id_ in progress_bar(todo, progress, desc=f"writing {data_dir.name}", unit="file"):
        volume = make_volume(labels[id_], dim, n_channels, np.random.default_rng([seed, 1, i]))
        save_npy_atomic(data_dir / f"{id_}.npy", volume)

    partition = stratified_split(ids, labels, validation_fraction=0.2, seed=seed)
    write_text_atomic(data_dir / "partition.json", json.dumps(partition))
    write_text_atomic(data_dir / "labels.json", json.dumps(labels))
    return partition, labels


def load_partition(data_dir: str | Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Read ``partition.json`` and ``labels.json`` from ``data_dir``."""
    out = []
    for name in ("partition.json", "labels.json"):
        path = Path(data_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"no {name} in {data_dir} (looked for {path})")
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
    partition, labels = out
    if not isinstance(partition, dict) or not isinstance(labels, dict):
        raise ValueError(f"{data_dir}: partition.json and labels.json must each hold an object")
    return partition, labels

"""An offline stand-in for CIFAR-10, in exactly the real files' format.

``write_cifar10_like`` writes ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta`` as Python 2 wrote them (protocol-2 pickles with bytes keys), holding drawn
shapes instead of photographs: one shape per class (``STANDIN_SHAPES``), so a CNN can learn
it, and every reader of the real files (``helpers.cifar``, Keras' own) reads it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_folder
from .cifar import META_FILE, NUM_CLASSES, TEST_BATCH, TRAIN_BATCHES

__all__ = ["STANDIN_SHAPES", "write_cifar10_like"]

STANDIN_SHAPES = ("disc", "square", "ring", "triangle", "cross",
                  "stripes", "bars", "diagonal", "dots", "frame")
"""What each stand-in class draws; its label names are ``synthetic-<shape>``."""


def _py2_pickle(obj: Any) -> bytes:
    """Pickle ``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` did for the real files.

    Python 3 cannot write those itself: under protocol 2 it stores ``bytes`` through a call
    to ``_codecs.encode``, a global that the restricted readers here and in Keras refuse.
    Python 2 stored its ``str`` with the plain ``BINSTRING`` opcode, which loads as bytes
    with ``encoding="bytes"``. Handles dict, list, tuple, bytes, int, bool, None and
    uint8 arrays: everything a CIFAR batch holds.
    """
    out = bytearray(b"\x80\x02")  # PROTO 2
    _emit(obj, out)
    out += b"."  # STOP
    return bytes(out)


def _emit(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif isinstance(obj, bool):
        out += b"\x88" if obj else b"\x89"  # NEWTRUE / NEWFALSE
    elif isinstance(obj, (int, np.integer)):
        v = int(obj)
        if 0 <= v < 256:
            out += b"K" + v.to_bytes(1, "little")  # BININT1
        elif 0 <= v < 65536:
            out += b"M" + v.to_bytes(2, "little")  # BININT2
        else:
            out += b"J" + v.to_bytes(4, "little", signed=True)  # BININT
    elif isinstance(obj, bytes):
        if len(obj) < 256:
            out += b"U" + len(obj).to_bytes(1, "little") + obj  # SHORT_BINSTRING
        else:
            out += b"T" + len(obj).to_bytes(4, "little") + obj  # BINSTRING
    elif isinstance(obj, tuple):
        out += b"("  # MARK
        for x in obj:
            _emit(x, out)
        out += b"t"  # TUPLE
    elif isinstance(obj, list):
        out += b"]"  # EMPTY_LIST, then APPENDS in chunks of 1000 as pickle does
        for start in range(0, len(obj), 1000):
            out += b"("
            for x in obj[start:start + 1000]:
                _emit(x, out)
            out += b"e"
    elif isinstance(obj, dict):
        out += b"}("  # EMPTY_DICT MARK ... SETITEMS
        for k, v in obj.items():
            _emit(k, out)
            _emit(v, out)
        out += b"u"
    elif isinstance(obj, np.ndarray) and obj.dtype == np.uint8:
        # _reconstruct(ndarray, (0,), 'b') then __setstate__((1, shape, dtype, False, raw))
        out += b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
        _emit((0,), out)
        _emit(b"b", out)
        out += b"\x87R("  # TUPLE3 REDUCE MARK
        _emit(1, out)
        _emit(tuple(obj.shape), out)
        out += b"cnumpy\ndtype\n"
        _emit((b"u1", 0, 1), out)
        out += b"R"
        _emit((3, b"|", None, None, None, -1, -1, 0), out)
        out += b"b"  # BUILD (dtype state)
        _emit(False, out)
        _emit(np.ascontiguousarray(obj).tobytes(), out)
        out += b"tb"  # TUPLE BUILD (array state)
    else:
        raise TypeError(f"cannot write {type(obj).__name__} in a CIFAR-style pickle")


_PALETTE = np.array([[230, 60, 50], [60, 170, 70], [50, 90, 220], [235, 200, 40],
                     [160, 60, 200], [40, 190, 200], [240, 130, 30], [200, 200, 200],
                     [120, 80, 40], [230, 90, 170]], dtype=np.float32)


def _shape_mask(name: str, dy: np.ndarray, dx: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean mask of one stand-in shape, centred at offsets ``dy, dx``, of size ``r``."""
    dist, box = np.hypot(dy, dx), np.maximum(np.abs(dy), np.abs(dx))
    inside = box < r
    if name == "disc":
        return dist < r
    if name == "square":
        return box < 0.8 * r
    if name == "ring":
        return (dist < r) & (dist > 0.55 * r)
    if name == "triangle":
        return (np.abs(dy) < 0.8 * r) & (np.abs(dx) < 0.6 * (dy + 0.8 * r))
    if name == "cross":
        return inside & ((np.abs(dy) < 0.3 * r) | (np.abs(dx) < 0.3 * r))
    if name == "stripes":
        return inside & (np.floor(dy / 2.5) % 2 == 0)
    if name == "bars":
        return inside & (np.floor(dx / 2.5) % 2 == 0)
    if name == "diagonal":
        return inside & (np.abs(dy - dx) < 0.35 * r)
    if name == "dots":
        return np.hypot(np.abs(dy) - 0.5 * r, np.abs(dx) - 0.5 * r) < 0.3 * r
    if name == "frame":
        return inside & (box > 0.55 * r)
    raise ValueError(f"unknown stand-in shape {name!r}")


def _standin_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one image per label: the class's shape at a random place and size, on a random
    background, in the class colour (3 times in 5) or a random one, plus pixel noise."""
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    cy, cx = rng.uniform(11, 21, (2, n, 1, 1)).astype(np.float32)
    r = rng.uniform(6, 10, (n, 1, 1)).astype(np.float32)
    mask = np.zeros((n, 32, 32), dtype=bool)
    for c, name in enumerate(STANDIN_SHAPES):
        sel = labels == c
        mask[sel] = _shape_mask(name, yy - cy[sel], xx - cx[sel], r[sel])
    own = rng.random(n) < 0.6
    fg = np.where(own[:, None], _PALETTE[labels], rng.uniform(0, 255, (n, 3)))
    fg = (fg + rng.normal(0, 20, (n, 3))).astype(np.float32)
    bg = (rng.uniform(0, 255, (n, 3)) * 0.6).astype(np.float32)
    img = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :])
    img += rng.random(img.shape, dtype=np.float32) * 40 - 20  # uniform: cheaper than normal
    return np.clip(img, 0, 255).astype(np.uint8)


def write_cifar10_like(folder: str | Path, n_per_batch: int = 1000, seed: int = 0) -> Path:
    """Write a synthetic stand-in for CIFAR-10 into ``folder`` (a new folder); return it.

    Same layout and pickle format as the real ``cifar-10-batches-py``: ``data_batch_1`` to
    ``data_batch_5`` and ``test_batch`` with ``n_per_batch`` images each (a Python-2
    protocol-2 pickle of a dict with bytes keys ``batch_label``, ``labels``, ``data`` as
    uint8 ``(N, 3072)`` in R, G, B planes, ``filenames``), and ``batches.meta``. Each class
    is a shape (``STANDIN_SHAPES``), so a CNN can learn it; the label names say
    ``synthetic-...``. Written to a temporary folder renamed at the end; an existing
    ``folder`` is never overwritten (FileExistsError).
    """
    folder = Path(folder)
    if not isinstance(n_per_batch, (int, np.integer)) or n_per_batch < 1:
        raise ValueError(f"n_per_batch must be a positive integer, got {n_per_batch!r}")
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; it is never overwritten")
    rng = np.random.default_rng(seed)
    names = [f"synthetic-{s}" for s in STANDIN_SHAPES]
    with atomic_folder(folder) as tmp:
        batches = [(b, f"training batch {i} of 5") for i, b in enumerate(TRAIN_BATCHES, 1)]
        for file_name, title in [*batches, (TEST_BATCH, "testing batch 1 of 1")]:
            labels = rng.permutation(np.arange(n_per_batch) % NUM_CLASSES)
            images = np.concatenate([  # in chunks: a few MB of float32 at a time
                _standin_images(labels[s:s + 2000], rng) for s in range(0, n_per_batch, 2000)])
            batch = {
                b"batch_label": title.encode(),
                b"labels": [int(v) for v in labels],
                b"data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, 3072),
                b"filenames": [f"{names[v]}_s_{k:06d}.png".encode()
                               for k, v in enumerate(labels)],
            }
            (tmp / file_name).write_bytes(_py2_pickle(batch))
        meta = {b"num_cases_per_batch": n_per_batch,
                b"label_names": [n.encode() for n in names], b"num_vis": 3072}
        (tmp / META_FILE).write_bytes(_py2_pickle(meta))
        (tmp / "readme.html").write_text(
            "<p>Synthetic stand-in for CIFAR-10 written by "
            f"helpers.cifar_standin.write_cifar10_like (seed={seed}): same format, drawn "
            "shapes instead of photographs.</p>\n")
    return folder

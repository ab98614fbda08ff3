"""The article's bookkeeping: ``partition`` (IDs per split) and ``labels`` (class per ID).

``stratified_split`` makes a seeded train/validation partition that keeps the class
proportions; ``validate_partition`` catches, before any training, the mistakes that
otherwise show up as a KeyError mid-epoch or as a too-good validation score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["SPLITS", "stratified_split", "validate_partition"]

SPLITS = ("train", "validation")


def stratified_split(
    ids: Sequence[str],
    labels: Mapping[str, int],
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Split ``ids`` into ``{"train": [...], "validation": [...]}``, class by class.

    Every class with at least two samples gets ``round(validation_fraction * n)`` of them
    (at least one) in validation, so both splits see every class. The same ``seed`` gives
    the same split; IDs keep their given order inside each split.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    missing = [i for i in ids if i not in labels]
    if missing:
        raise KeyError(f"ID {missing[0]!r} has no label ({len(missing)} IDs without one)")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[str]] = {}
    for id_ in ids:
        by_class.setdefault(int(labels[id_]), []).append(id_)
    validation: set[str] = set()
    for cls in sorted(by_class):
        members = by_class[cls]
        if len(members) < 2:
            continue
        k = min(len(members) - 1, max(1, round(validation_fraction * len(members))))
        validation.update(rng.choice(members, size=k, replace=False).tolist())
    return {"train": [i for i in ids if i not in validation],
            "validation": [i for i in ids if i in validation]}


def validate_partition(
    partition: Mapping[str, Sequence[str]],
    labels: Mapping[str, int],
    n_classes: int,
) -> None:
    """Raise a clear error if ``partition``/``labels`` cannot be trained on safely.

    Checks: both splits present and non-empty; no ID repeated inside a split; no ID in both
    train and validation (leakage: the validation score would be flattering); every ID
    labelled (``KeyError`` naming it); every label an integer in ``[0, n_classes)``.
    """
    for split in SPLITS:
        if split not in partition:
            raise ValueError(f"partition has no {split!r} list (keys: {sorted(partition)})")
        if len(partition[split]) == 0:
            raise ValueError(f"partition[{split!r}] is empty")
        seen: set[str] = set()
        for id_ in partition[split]:
            if id_ in seen:
                raise ValueError(f"ID {id_!r} appears twice in partition[{split!r}]")
            seen.add(id_)
    leaked = sorted(set(partition["train"]) & set(partition["validation"]))
    if leaked:
        raise ValueError(
            f"{len(leaked)} IDs are in both train and validation (leakage), e.g. {leaked[:5]}")
    for split in SPLITS:
        for id_ in partition[split]:
            if id_ not in labels:
                raise KeyError(f"ID {id_!r} in partition[{split!r}] has no label")
            label = labels[id_]
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
                raise ValueError(f"label of ID {id_!r} is {label!r}, not an integer class")
            if not 0 <= label < n_classes:
                raise ValueError(
                    f"label of ID {id_!r} is {label}, outside [0, {n_classes}) "
                    f"for n_classes={n_classes}")

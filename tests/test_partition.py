"""stratified_split and validate_partition."""

from __future__ import annotations

from collections import Counter

import pytest

from helpers.partition import stratified_split, validate_partition

IDS = [f"id-{i}" for i in range(1, 101)]
LABELS = {id_: i % 4 for i, id_ in enumerate(IDS)}


def test_split_is_stratified_and_complete():
    part = stratified_split(IDS, LABELS, validation_fraction=0.2, seed=3)
    assert sorted(part["train"] + part["validation"]) == sorted(IDS)
    assert not set(part["train"]) & set(part["validation"])
    assert Counter(LABELS[i] for i in part["validation"]) == {0: 5, 1: 5, 2: 5, 3: 5}


def test_split_is_seeded():
    assert stratified_split(IDS, LABELS, seed=1) == stratified_split(IDS, LABELS, seed=1)
    assert stratified_split(IDS, LABELS, seed=1) != stratified_split(IDS, LABELS, seed=2)


def test_split_keeps_rare_classes_in_both_splits():
    labels = {**LABELS, "id-1": 9, "id-2": 9}
    part = stratified_split(IDS, labels, validation_fraction=0.1)
    assert {"id-1", "id-2"} & set(part["train"]) and {"id-1", "id-2"} & set(part["validation"])


def test_split_errors():
    with pytest.raises(ValueError, match="validation_fraction"):
        stratified_split(IDS, LABELS, validation_fraction=1.0)
    with pytest.raises(KeyError, match="id-x"):
        stratified_split(IDS + ["id-x"], LABELS)


def test_the_articles_toy_example_is_valid():
    partition = {"train": ["id-1", "id-2", "id-3"], "validation": ["id-4"]}
    labels = {"id-1": 0, "id-2": 1, "id-3": 2, "id-4": 1}
    validate_partition(partition, labels, n_classes=3)


@pytest.mark.parametrize("partition, labels, error, words", [
    ({"train": ["a", "b"], "validation": ["b"]}, {"a": 0, "b": 1}, ValueError, "leakage"),
    ({"train": ["a", "c"], "validation": ["b"]}, {"a": 0, "b": 1}, KeyError, "'c'"),
    ({"train": ["a"], "validation": ["b"]}, {"a": 0, "b": 3}, ValueError, r"'b' is 3, outside"),
    ({"train": ["a"], "validation": ["b"]}, {"a": -1, "b": 0}, ValueError, "'a'"),
    ({"train": ["a"], "validation": ["b"]}, {"a": 0.5, "b": 0}, ValueError, "not an integer"),
    ({"train": ["a", "a"], "validation": ["b"]}, {"a": 0, "b": 0}, ValueError, "twice"),
    ({"train": ["a"]}, {"a": 0}, ValueError, "'validation'"),
    ({"train": [], "validation": ["b"]}, {"b": 0}, ValueError, "empty"),
])
def test_validation_catches(partition, labels, error, words):
    with pytest.raises(error, match=words):
        validate_partition(partition, labels, n_classes=3)

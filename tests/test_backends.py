"""helpers.backends: what fit() does with a PyDataset, observed in a child process."""

from __future__ import annotations

import keras
import pytest

from helpers.backends import BACKENDS, installed_backends, observe


def test_observe_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        observe("numpy-only")


def test_installed_backends_lists_the_running_one():
    assert keras.backend.backend() in installed_backends()
    assert set(installed_backends()) <= set(BACKENDS)


def test_observe_the_running_backend():
    # "overlap" (timings) is left to notebook 05, which runs it on every backend.
    seen = observe(keras.backend.backend(), parts=("reads", "consumed", "empty"))
    assert seen["backend"] == keras.backend.backend()
    reads = seen["reads"]
    assert reads["fit_epochs"] == 2
    assert reads["outside_epochs"] >= 0
    assert reads["dataset_epoch_begins"] >= 2
    # A model built before fit() consumes every batch of every epoch exactly once.
    for workers in (1, 2):
        assert seen["consumed"][f"workers={workers}, built"] == [True] * 3
    assert all(isinstance(v, str) and v for v in seen["empty"].values())


def test_observe_runs_only_the_parts_asked_for():
    seen = observe(keras.backend.backend(), parts=("empty",))
    assert set(seen) == {"backend", "keras", "empty"}
    with pytest.raises(ValueError, match="parts must be among"):
        observe(keras.backend.backend(), parts=("speed",))


def test_observe_keeps_findings_per_part_and_version(tmp_path, monkeypatch):
    from helpers import backends

    calls = []

    def fake(backend, parts, timeout):
        calls.append(parts)
        return {part: {"seen": part} for part in parts}

    monkeypatch.setattr(backends, "_observe", fake)
    first = backends.observe("jax", ("reads", "consumed"), cache_dir=tmp_path)
    assert first == {"reads": {"seen": "reads"}, "consumed": {"seen": "consumed"}}
    again = backends.observe("jax", ("consumed", "empty"), cache_dir=tmp_path)
    assert again == {"consumed": {"seen": "consumed"}, "empty": {"seen": "empty"}}
    assert calls == [("reads", "consumed"), ("empty",)]  # only the missing part ran
    (tmp_path / "jax" / "reads.json").write_text("{not json")  # damaged: observed again
    monkeypatch.setattr(backends, "_versions", lambda b: {"keras": "9.9"})  # new versions
    backends.observe("jax", ("reads", "empty"), cache_dir=tmp_path)
    assert calls[-1] == ("reads", "empty")
    assert backends.observe("jax", ("empty",)) == {"empty": {"seen": "empty"}}  # no cache
    assert calls[-1] == ("empty",)


def test_run_in_backend_keeps_its_result_for_the_same_script_and_versions(tmp_path):
    from helpers.backends import run_in_backend

    script = "import json, os, time; print(json.dumps([os.environ['KERAS_BACKEND'], time.time()]))"
    first = run_in_backend("jax", script, "clock", cache_dir=tmp_path)
    assert first[0] == "jax"
    assert run_in_backend("jax", script, "clock", cache_dir=tmp_path) == first  # kept
    assert run_in_backend("jax", script + " ", "clock", cache_dir=tmp_path) != first  # new script
    with pytest.raises(RuntimeError, match="boom"):
        run_in_backend("jax", "raise SystemExit('boom')", "fails")

"""helpers.environment: the Setup step and where data goes."""

from __future__ import annotations

from helpers import environment


def test_setup_notebook_seeds_and_reports(capsys):
    import numpy as np

    info = environment.setup_notebook(seed=7)
    first = np.random.rand()
    environment.setup_notebook(seed=7)
    assert np.random.rand() == first
    out = capsys.readouterr().out
    assert "Keras" in out and "seed: 7" in out and "GPU" in out
    assert info.seed == 7 and info.has_gpu == bool(info.gpus)


def test_data_root_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert environment.data_root() == tmp_path

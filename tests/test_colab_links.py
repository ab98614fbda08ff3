"""tools/colab_links.py: one source for the repository address, the badges and Colab cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools import colab_links as course


def test_colab_url_follows_the_path():
    url = course.colab_url("notebooks/03_data_generator.ipynb")
    assert url == (f"https://colab.research.google.com/github/{course.GITHUB_REPO}/blob/"
                   f"{course.BRANCH}/notebooks/03_data_generator.ipynb")
    assert url in course.colab_badge("notebooks/03_data_generator.ipynb")


def test_bootstrap_installs_from_the_same_repository():
    src = course.colab_bootstrap_source()
    assert f"git+https://github.com/{course.GITHUB_REPO}.git" in src
    assert 'if "google.colab" in sys.modules:' in src


def test_bootstrap_does_nothing_outside_colab():
    """Run the cell's Python part here (the %pip line is only reached on Colab)."""
    src = course.colab_bootstrap_source().replace("%pip", "raise AssertionError  #")
    exec(compile(src, "bootstrap", "exec"), {})


def test_sync_rewrites_badges_and_bootstrap(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    nb = next((root / "notebooks").glob("[0-9][0-9]_*.ipynb"), None)
    if nb is None:
        pytest.skip("no notebook yet")
    shutil.copy(nb, nb_dir / nb.name)
    monkeypatch.setattr(course, "GITHUB_REPO", "someone/fork")
    course.sync(nb_dir)
    text = (nb_dir / nb.name).read_text()
    assert f"github/someone/fork/blob/main/notebooks/{nb.name}" in text
    assert "git+https://github.com/someone/fork.git" in text
    cells = json.loads(text)["cells"]
    assert len(cells) == len(json.loads(nb.read_text())["cells"])

"""README lists every notebook with a Colab badge that points at that notebook."""

from __future__ import annotations

import re
from pathlib import Path

from tools.colab_links import colab_url, repo_url

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_notebook_has_its_badge():
    for nb in sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")):
        rel = nb.relative_to(ROOT).as_posix()
        assert f"({colab_url(rel)})" in README, f"README lacks the badge of {rel}"
        assert f"]({rel})" in README, f"README lacks a link to {rel}"


def test_every_badge_points_at_a_notebook():
    for url in re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", README):
        rel = url.split("/blob/main/", 1)[1]
        assert url == colab_url(rel) and (ROOT / rel).is_file(), url


def test_clone_address_is_the_course_repository():
    assert f"git clone {repo_url()}.git" in README


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in README

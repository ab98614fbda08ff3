"""helpers.progress: bars that notebooks' committed outputs can switch off."""

from __future__ import annotations

import os

from helpers.progress import progress_bar


def test_progress_bar_can_be_switched_off(monkeypatch):
    assert progress_bar(range(3), enabled=False).disable
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not progress_bar(range(3), enabled=True, file=open(os.devnull, "w")).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what `make outputs` sets
    assert progress_bar(range(3), enabled=True).disable

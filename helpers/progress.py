"""Progress bars for long loops, that can be switched off for committed notebook outputs."""

from __future__ import annotations

import os

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(iterable=None, enabled: bool = True, **kwargs) -> tqdm:
    """A ``tqdm.auto`` bar (a widget in Jupyter, text elsewhere), or none if not ``enabled``.

    A non-empty ``TQDM_DISABLE`` environment variable also switches bars off: ``make
    outputs`` sets it, so committed notebooks hold no widget that GitHub shows frozen at 0%.
    (tqdm reads that variable too, but its Jupyter bar ignores it.)
    """
    if not enabled or os.environ.get("TQDM_DISABLE"):
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)

"""The course's one training-curve plot: loss and accuracy per epoch, training beside validation.

Notebooks 01, 03 and 04 train models and show how they learned; drawing the curves the
same way everywhere lets a reader compare them at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_history"]


def plot_history(history, chance: float | None = None, val_label: str = "validation",
                 metrics: Sequence[str] = ("loss", "accuracy"), title: str | None = None):
    """Plot each of ``metrics`` per epoch, training beside ``val_<metric>`` when recorded.

    ``history`` is what ``fit()`` returns (a ``keras.callbacks.History``) or its
    ``.history`` dict. ``chance`` draws the accuracy a model guessing would reach (e.g.
    ``1 / n_classes``). Returns the matplotlib figure; raises KeyError naming a metric that
    was not recorded.
    """
    logs: Mapping[str, Sequence[float]] = getattr(history, "history", history)
    missing = [m for m in metrics if m not in logs]
    if missing:
        raise KeyError(f"history has no {missing}; it recorded {sorted(logs)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        epochs = range(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], marker="o", label="train")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], marker="o", label=val_label)
        if chance is not None and "acc" in metric:
            ax.axhline(chance, color="grey", linestyle=":", label="chance")
        if "acc" in metric:
            ax.set_ylim(0, 1)
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

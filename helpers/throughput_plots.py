"""Figures of ``helpers.throughput`` results: samples/s per worker count, pipeline/model ratios."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .throughput import ThroughputResult

__all__ = ["plot_ratios", "plot_sweep"]


def plot_sweep(results: Sequence[ThroughputResult], ax=None, title: str | None = None):
    """Samples/s against the number of workers, one line for threads, one for processes.

    A model's samples/s, if measured, is drawn as a dashed horizontal line. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for mode, marker in (("threads", "o"), ("processes", "s")):
        rows = sorted((r.workers, r.pipeline_samples_per_s) for r in results if r.mode == mode)
        if rows:
            xs, ys = zip(*rows, strict=True)
            ax.plot(xs, ys, marker=marker, label=mode)
    models = [r.model_samples_per_s for r in results if r.model_samples_per_s]
    if models:
        ax.axhline(float(np.median(models)), color="grey", ls="--", label="model")
    ax.set_xticks(sorted({r.workers for r in results}))
    ax.set_xlabel("workers")
    ax.set_ylabel("samples / s")
    ax.set_ylim(bottom=0)
    ax.set_title(title or (results[0].label if results else ""))
    ax.legend()
    return ax


def plot_ratios(results: Sequence[ThroughputResult], ax=None, title: str | None = None):
    """Bar chart of pipeline ÷ model samples/s per result; the line at 1 is the break-even.

    Bars below 1 (red) are pipelines the model would wait for. Returns the axes.
    """
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ratio is not None]
    if not rows:
        raise ValueError("plot_ratios needs results measured with a model")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.5))
    ratios = [r.ratio for r in rows]
    colors = ["tab:red" if x < 1 else "tab:green" for x in ratios]
    ax.bar([r.label for r in rows], ratios, color=colors)
    ax.axhline(1.0, color="black", lw=1)
    for i, x in enumerate(ratios):
        ax.annotate(f"{x:.2f}x", (i, x), ha="center", va="bottom")
    ax.set_yscale("log")
    ax.set_ylabel("pipeline / model samples/s")
    ax.set_title(title or "below 1: the model waits for data")
    return ax

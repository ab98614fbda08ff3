"""plot_history draws one panel per metric, training beside validation, from fit()'s history."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers.training_curves import plot_history  # noqa: E402


def test_one_panel_per_metric_with_train_validation_and_chance():
    logs = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.6],
            "accuracy": [0.4, 0.7, 0.8], "val_accuracy": [0.3, 0.6, 0.7]}
    fig = plot_history(logs, chance=0.25)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "validation"]
    assert [line.get_label() for line in acc_ax.lines] == ["train", "validation", "chance"]
    assert list(acc_ax.lines[1].get_ydata()) == [0.3, 0.6, 0.7]
    assert list(acc_ax.lines[0].get_xdata()) == [1, 2, 3]
    plt.close(fig)


def test_a_history_object_and_a_missing_metric():
    class History:  # what fit() returns: the logs are in .history
        history = {"loss": [1.0, 0.9]}

    fig = plot_history(History(), metrics=("loss",))
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1
    plt.close(fig)
    with pytest.raises(KeyError, match="accuracy"):
        plot_history(History())

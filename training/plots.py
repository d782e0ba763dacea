"""Figures of a training run: gains chart, reliability curve, SHAP beeswarm and bar.

Figures are built as :class:`matplotlib.figure.Figure` objects directly (no ``pyplot`` state, so
no GUI backend is needed and nothing global changes); save them with ``fig.savefig(path)``.
SHAP values come from the booster's exact ``pred_contribs`` (the same TreeSHAP values
:class:`shap.TreeExplainer` computes) on a sample of the held-out rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shap
from matplotlib.figure import Figure

from models.registry import model_title

__all__ = ["gains_figure", "reliability_figure", "shap_figures"]


def gains_figure(
    tables: dict[str, pd.DataFrame], title: str = "Cumulative gains", task: str | None = None
) -> Figure:
    """Cumulative share of positives captured against the share of rows contacted.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        :func:`training.evaluation.gains_table` per model's metrics key; the legend names each
        as :func:`models.registry.model_title` does for ``task``.
    title : str, default "Cumulative gains"
        Axes title.
    task : str, optional
        The task, whose spec names its baselines (``Recency rule``).

    Returns
    -------
    matplotlib.figure.Figure
        The chart, with the random-targeting diagonal.
    """
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    for name, table in tables.items():
        x = np.concatenate([[0.0], table["cum_rows_share"].to_numpy(dtype=float)])
        y = np.concatenate([[0.0], table["cum_positives_share"].to_numpy(dtype=float)])
        ax.plot(x, y, marker="o", markersize=3, label=model_title(name, task))
    ax.set_xlabel("share of customers, highest score first")
    ax.set_ylabel("share of positives captured")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def reliability_figure(
    curves: dict[str, pd.DataFrame], title: str = "Reliability", task: str | None = None
) -> Figure:
    """Observed positive rate against mean predicted probability.

    Parameters
    ----------
    curves : dict of str to pandas.DataFrame
        :func:`training.evaluation.reliability_curve` per model's metrics key (and qualifier);
        the legend names each as :func:`models.registry.model_title` does for ``task``.
    title : str, default "Reliability"
        Axes title.
    task : str, optional
        The task, whose spec names its baselines (``Recency rule``).

    Returns
    -------
    matplotlib.figure.Figure
        The curves, with the diagonal of perfect calibration.
    """
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, curve in curves.items():
        ax.plot(
            curve["mean_predicted"],
            curve["observed_rate"],
            marker="o",
            label=model_title(name, task),
        )
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def shap_figures(
    contributions: np.ndarray,
    X: pd.DataFrame,  # noqa: N803
    max_display: int = 15,
) -> dict[str, Figure]:
    """SHAP beeswarm and mean-absolute bar chart.

    Parameters
    ----------
    contributions : numpy.ndarray
        ``pred_contribs`` of the rows, shape ``(n, p + 1)``, last column the bias.
    X : pandas.DataFrame
        The same rows' model inputs (``p`` columns).
    max_display : int, default 15
        Features shown.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``"shap_beeswarm"`` and ``"shap_bar"``.
    """
    explanation = shap.Explanation(
        values=contributions[:, :-1],
        base_values=contributions[:, -1],
        data=X.to_numpy(dtype=np.float64, na_value=np.nan),
        feature_names=list(X.columns),
    )
    size = (8, 0.4 * max_display + 1.5)
    beeswarm, bar = Figure(figsize=size), Figure(figsize=size)
    shap.plots.beeswarm(
        explanation, max_display=max_display, show=False, ax=beeswarm.add_subplot(), plot_size=None
    )
    shap.plots.bar(explanation, max_display=max_display, show=False, ax=bar.add_subplot())
    for fig in (beeswarm, bar):
        fig.tight_layout()
    return {"shap_beeswarm": beeswarm, "shap_bar": bar}

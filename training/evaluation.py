"""Held-out evaluation tables: gains by decile and the reliability curve.

The metrics and the grade live in :mod:`models.metrics` (a task's spec names them); this module
builds the tables a training run logs and the model card and the reviewer pages draw. Deciles are
:func:`models.ranking.rank_bins` (highest score first, ties keep row order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from models.ranking import rank_bins

__all__ = ["gains_table", "reliability_curve"]


def gains_table(y: np.ndarray, score: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by score decile.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Scores, higher means likelier positive.
    n_bins : int, default 10
        Number of equal-sized rank bins.

    Returns
    -------
    pandas.DataFrame
        One row per bin (1 = highest scores): ``decile``, ``rows``, ``positives``, ``rate``,
        ``lift`` (rate / overall rate), ``cum_rows_share``, ``cum_positives_share`` (the gain) and
        ``cum_lift``.
    """
    yv = np.asarray(y, dtype=np.float64)
    frame = pd.DataFrame({"decile": rank_bins(score, n_bins), "y": yv})
    table = (
        frame.groupby("decile", sort=True)
        .agg(rows=("y", "size"), positives=("y", "sum"))
        .reindex(range(1, n_bins + 1), fill_value=0)
        .reset_index()
    )
    total_rows, total_pos = max(len(yv), 1), yv.sum()
    overall = total_pos / total_rows if total_pos > 0 else np.nan
    table["rate"] = table["positives"] / table["rows"].where(table["rows"] > 0)
    table["lift"] = table["rate"] / overall
    table["cum_rows_share"] = table["rows"].cumsum() / total_rows
    table["cum_positives_share"] = table["positives"].cumsum() / (total_pos or np.nan)
    table["cum_lift"] = table["cum_positives_share"] / table["cum_rows_share"]
    return table


def reliability_curve(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed positive rate against mean predicted probability in equal-width bins.

    The curve is :func:`sklearn.calibration.calibration_curve` (``strategy="uniform"``); the
    rows per bin, which it does not return, are counted with the same bin edges.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    proba : numpy.ndarray
        Predicted probabilities in [0, 1].
    n_bins : int, default 10
        Number of bins of width ``1 / n_bins``; empty bins are left out.

    Returns
    -------
    pandas.DataFrame
        ``bin_lower``, ``bin_upper``, ``rows``, ``mean_predicted``, ``observed_rate``.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    yv = np.asarray(y, dtype=np.float64)
    observed, predicted = calibration_curve(yv, p, n_bins=n_bins, strategy="uniform")
    # calibration_curve's bins: edges linspace(0, 1, n_bins + 1), a value on an inner edge in the
    # lower bin (searchsorted, side "left"); counted the same way to report the rows per bin
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)
    kept = np.flatnonzero(counts)
    return pd.DataFrame(
        {
            "bin_lower": edges[kept],
            "bin_upper": edges[kept + 1],
            "rows": counts[kept],
            "mean_predicted": predicted,
            "observed_rate": observed,
        }
    )

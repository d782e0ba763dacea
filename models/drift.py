"""Drift between a reference sample (the training snapshot) and a current one, per column.

Three measures per column, and a flag that needs both a *material* and a *real* change:

PSI (population stability index)
    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins, ``r_i`` and ``c_i`` the shares of the
    reference and current rows in bin ``i``. Numeric bins come from the reference alone: the
    distinct values among its ``1/B, 2/B, ..., (B-1)/B`` quantiles (the inverse of its
    empirical distribution function, so every edge is a value it holds) are the right edges
    of right-closed bins ``(-inf, e_1], (e_1, e_2], ...,
    (e_k, inf)``, so a value the reference holds for many rows (the 0 of a count) gets a bin of
    its own instead of being split. Categorical bins are the reference's ``max_categories`` most
    frequent values (ties by value) plus one ``other`` bin for every other value, including
    values the reference never saw. Missing values (null, and NaN for numbers) are one bin of
    their own. A share of 0 is floored at :data:`PSI_FLOOR` so that an emptied bin counts
    (strongly) instead of being infinite.
KS
    The two-sample Kolmogorov-Smirnov statistic ``D`` (largest gap between the two empirical
    distribution functions, in [0, 1]) on the non-missing values, and its p-value
    (:func:`scipy.stats.ks_2samp`); numeric columns only.
Wasserstein
    The earth mover's distance between the non-missing values
    (:func:`scipy.stats.wasserstein_distance`), in the column's unit, and the same divided by
    the reference's standard deviation, so that ``0.1`` reads "a tenth of a standard deviation"
    whatever the unit (for a pure shift by ``d`` the distance is ``|d|``); numeric columns only.

Sample size
-----------
A p-value alone flags everything at scale: with a million rows a side, KS rejects a shift of a
few thousandths of a standard deviation that no model notices. A fixed PSI threshold alone
false-alarms the other way: PSI is biased upwards by sampling noise (with no change at all,
``PSI / (1/n + 1/m)`` is approximately chi-square with ``bins - 1`` degrees of freedom: PSI is
the Jeffreys divergence, whose second-order expansion is the chi-square statistic; Yurdakul,
*Statistical properties of the population stability index*, 2018), so 100 rows a side over 10
bins give PSI around 0.18 by chance. Hence a column *drifts* only when the change is
**material**, at least one effect size passing its threshold
(:class:`DriftThresholds`: PSI 0.1, KS ``D`` 0.1, Wasserstein 0.1 reference standard
deviations), **and real**, unlikely to be sampling noise at level ``alpha``: the smaller of the
p-value of Pearson's chi-square test of homogeneity over the PSI bins and the KS p-value is
below ``alpha / 2`` (Bonferroni over the two tests; the chi-square test alone for categories,
at ``alpha``). The effect thresholds do not move with the sample size; the
noise test is what adapts to it. With 100 rows a side and no change, PSI >= 0.1 alone flagged
83 % of 1,000 pairs of normal samples here, and this rule 0.4 % (``alpha = 0.01``).

Scores
------
:func:`score_drift` applies the numeric measures to the ``score`` column of two score tables
(:mod:`models.scoring` layout), once per task.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import polars as pl
from scipy import stats

from features.formatting import MINUS, format_number

__all__ = [
    "DRIFT_COLUMNS",
    "PSI_FLOOR",
    "ColumnDrift",
    "DriftThresholds",
    "categorical_drift",
    "drifted_first",
    "feature_drift",
    "format_measure",
    "numeric_drift",
    "psi",
    "psi_p_value",
    "quantile_edges",
    "score_drift",
]

PSI_FLOOR: Final = 1e-4
"""Smallest share a bin counts with in :func:`psi` (an empty bin would make PSI infinite)."""


@dataclass(frozen=True)
class DriftThresholds:
    """Effect sizes a change must reach, and the noise level it must beat, to count as drift.

    Parameters
    ----------
    psi : float
        PSI at or above which a column's distribution has moved materially (0.1 is the usual
        "moderate shift"; 0.25 the usual "major shift").
    ks : float
        KS statistic ``D`` at or above which the distribution functions differ materially.
    wasserstein : float
        Wasserstein distance, in reference standard deviations, at or above which the values
        have moved materially.
    alpha : float
        Significance level: a column drifts only when its change is this unlikely under no
        drift (see the module docstring).
    bins : int
        Quantile bins of numeric columns (at least 2).
    max_categories : int
        Reference categories that get a bin of their own; the rest share one.
    """

    psi: float = 0.1
    ks: float = 0.1
    wasserstein: float = 0.1
    alpha: float = 0.01
    bins: int = 10
    max_categories: int = 20

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.max_categories < 1:
            raise ValueError(f"max_categories must be at least 1, got {self.max_categories}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        # a negative or nan threshold was taken, and every (or no) column counted as moved
        for name, most in (("psi", math.inf), ("ks", 1.0), ("wasserstein", math.inf)):
            value = getattr(self, name)
            if not 0 <= value <= most or math.isinf(value):
                bounds = "in [0, 1]" if most == 1.0 else "a non-negative number"
                raise ValueError(f"{name} must be {bounds}, got {value}")


@dataclass(frozen=True)
class ColumnDrift:
    """Drift measures of one column (one row of :func:`feature_drift`'s table).

    Parameters
    ----------
    column : str
        Column name (the task name in :func:`score_drift`).
    kind : {"numeric", "categorical"}
        How the column was compared.
    n_reference, n_current : int
        Rows compared, missing values included.
    missing_reference, missing_current : float
        Share of missing values (null, or NaN for numbers); NaN for an empty sample.
    bins : int
        PSI bins, the missing-value bin included when either side has missing values.
    psi : float
        Population stability index.
    psi_p_value : float
        Chance of bin shares this different with no drift (:func:`psi_p_value`).
    ks : float
        KS statistic ``D`` of the non-missing values; NaN for categorical columns or when a
        side has none.
    ks_p_value : float
        Its p-value; NaN likewise.
    wasserstein : float
        Wasserstein distance of the non-missing values, in the column's unit; NaN likewise.
    wasserstein_std : float
        ``wasserstein`` divided by the reference's standard deviation (``inf`` when the
        reference is constant and the values moved); NaN likewise.
    drifted : bool
        Whether the change is material and not noise (see the module docstring).
    fired : str
        The measures whose effect size passed its threshold, comma-separated
        (``"psi,ks"``), empty when none did; set even when the change is not significant.
    """

    column: str
    kind: Literal["numeric", "categorical"]
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    bins: int
    psi: float
    psi_p_value: float
    ks: float
    ks_p_value: float
    wasserstein: float
    wasserstein_std: float
    drifted: bool
    fired: str


DRIFT_COLUMNS: Final = tuple(ColumnDrift.__dataclass_fields__)
"""Columns of the tables of :func:`feature_drift` and :func:`score_drift`, in order."""

_SCHEMA: Final = {
    "column": pl.String,
    "kind": pl.String,
    "n_reference": pl.Int64,
    "n_current": pl.Int64,
    "missing_reference": pl.Float64,
    "missing_current": pl.Float64,
    "bins": pl.Int64,
    "psi": pl.Float64,
    "psi_p_value": pl.Float64,
    "ks": pl.Float64,
    "ks_p_value": pl.Float64,
    "wasserstein": pl.Float64,
    "wasserstein_std": pl.Float64,
    "drifted": pl.Boolean,
    "fired": pl.String,
}


def drifted_first(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Order a report's drift rows as its tables and charts show them: drifted, then by PSI.

    The printed table and the page's PSI chart listed the drifted features first, the page's
    table by PSI alone: a feature flagged by KS or Wasserstein with a small PSI sat among the
    undrifted ones, below the chart that showed it first.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`feature_drift` as a report keeps them (``drifted`` and ``psi`` read).

    Returns
    -------
    list of mapping
        The drifted rows first, each part by descending PSI (a stable sort: ties keep their
        order).
    """
    return sorted(rows, key=lambda r: (not r["drifted"], -r["psi"]))


def format_measure(value: float | None, digits: int = 3) -> str:
    """Write a drift measure as the report's tables show it, printed by the CLI and on the page.

    The Wasserstein distance of a column constant in the reference that moved is infinitely many
    reference standard deviations (:func:`numeric_drift`): ``guanxi drift`` printed ``inf`` and
    the page the missing mark, read "not available", beside a "fired" that named the measure.

    Parameters
    ----------
    value : float or None
        A PSI, KS statistic, Wasserstein distance or live figure; None or NaN when not measured.
    digits : int, default 3
        Decimals.

    Returns
    -------
    str
        :func:`features.formatting.format_number`'s text (None or NaN give
        :data:`~features.contracts.MISSING`), an infinite value ``"∞"`` (``"−∞"`` below zero).
    """
    if value is not None and math.isinf(value):
        return "∞" if value > 0 else f"{MINUS}∞"
    return format_number(value, digits)


def quantile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Right edges of the PSI bins of a numeric column, from the reference's quantiles.

    Parameters
    ----------
    reference : numpy.ndarray
        Reference values; NaN (missing) values are ignored.
    bins : int
        Number of quantile bins asked for (at least 2).

    Returns
    -------
    numpy.ndarray
        The distinct values among the ``k / bins`` quantiles, ``k = 1 .. bins - 1`` (numpy's
        ``inverted_cdf``: the smallest value whose empirical distribution reaches ``k / bins``),
        ascending;
        value ``x`` falls in bin ``searchsorted(edges, x, side="left")``, i.e. the bins are
        ``(-inf, e_1], (e_1, e_2], ..., (e_last, inf)``. Empty when the reference has no values.
    """
    values = np.asarray(reference, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf"))


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Compute the population stability index of two histograms over the same bins.

    Parameters
    ----------
    reference_counts, current_counts : numpy.ndarray
        Rows per bin, same length; each side must hold at least one row.

    Returns
    -------
    float
        ``sum_i (c_i - r_i) * ln(c_i / r_i)`` with ``r_i``, ``c_i`` the shares per bin, each
        floored at :data:`PSI_FLOOR`; 0 for identical shares, never negative.

    Raises
    ------
    ValueError
        If the lengths differ or a side is empty.
    """
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    if r.shape != c.shape:
        raise ValueError(f"histograms differ in length: {r.shape} and {c.shape}")
    if r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("PSI needs at least one row on each side")
    r = np.maximum(r / r.sum(), PSI_FLOOR)
    c = np.maximum(c / c.sum(), PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Return the chance of histograms this different from one distribution (no drift).

    Parameters
    ----------
    reference_counts, current_counts : numpy.ndarray
        Rows per bin, as given to :func:`psi`.

    Returns
    -------
    float
        The p-value of Pearson's chi-square test of homogeneity over the bins that hold a row
        on either side (:func:`scipy.stats.chi2_contingency`, no continuity correction); 1 when
        there is only one such bin.
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


def _measured(
    name: str,
    kind: Literal["numeric", "categorical"],
    thresholds: DriftThresholds,
    counts: tuple[np.ndarray, np.ndarray],
    missing: tuple[np.ndarray, np.ndarray],
    ks: tuple[float, float] = (float("nan"), float("nan")),
    wasserstein: tuple[float, float] = (float("nan"), float("nan")),
) -> ColumnDrift:
    """Add PSI and its test to the other measures, decide whether the column drifted."""
    psi_value, psi_p = psi(*counts), psi_p_value(*counts)
    effects = (
        ("psi", psi_value, thresholds.psi),
        ("ks", ks[0], thresholds.ks),
        ("wasserstein", wasserstein[1], thresholds.wasserstein),
    )
    passed = [effect for effect, value, limit in effects if value >= limit]  # NaN never passes
    p_values = [p for p in (psi_p, ks[1]) if not np.isnan(p)]
    significant = min(p_values) < thresholds.alpha / len(p_values)  # Bonferroni over the tests
    return ColumnDrift(
        column=name,
        kind=kind,
        n_reference=len(missing[0]),
        n_current=len(missing[1]),
        missing_reference=_share(missing[0]),
        missing_current=_share(missing[1]),
        bins=len(counts[0]),
        psi=psi_value,
        psi_p_value=psi_p,
        ks=ks[0],
        ks_p_value=ks[1],
        wasserstein=wasserstein[0],
        wasserstein_std=wasserstein[1],
        drifted=bool(passed) and significant,
        fired=",".join(passed),
    )


def _check_sizes(name: str, n_reference: int, n_current: int) -> None:
    if n_reference == 0 or n_current == 0:
        raise ValueError(
            f"column {name!r}: cannot measure drift with {n_reference} reference and "
            f"{n_current} current rows"
        )


def numeric_drift(
    reference: np.ndarray,
    current: np.ndarray,
    name: str = "value",
    thresholds: DriftThresholds | None = None,
) -> ColumnDrift:
    """Drift of one numeric column.

    Parameters
    ----------
    reference, current : numpy.ndarray
        The column's values in the reference and current samples; NaN means missing.
    name : str
        Column name, for the result and error messages.
    thresholds : DriftThresholds, optional
        Defaults to ``DriftThresholds()``.

    Returns
    -------
    ColumnDrift
        PSI over the reference's quantile bins (plus a missing-value bin when either side has
        missing values), KS and Wasserstein on the non-missing values (NaN when a side has
        none).

    Raises
    ------
    ValueError
        If either sample is empty.
    """
    t = thresholds or DriftThresholds()
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    _check_sizes(name, len(ref), len(cur))
    ref_missing, cur_missing = np.isnan(ref), np.isnan(cur)
    ref_values, cur_values = ref[~ref_missing], cur[~cur_missing]
    edges = quantile_edges(ref_values, t.bins)
    n_bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref_values, side="left"), minlength=n_bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur_values, side="left"), minlength=n_bins)
    if ref_missing.any() or cur_missing.any():
        ref_counts = np.append(ref_counts, ref_missing.sum())
        cur_counts = np.append(cur_counts, cur_missing.sum())
    ks = ks_p = w = w_std = float("nan")
    if len(ref_values) and len(cur_values):
        with warnings.catch_warnings():
            # scipy says when the exact p-value fails and it falls back to the asymptotic one
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            result = stats.ks_2samp(ref_values, cur_values)
        ks, ks_p = float(result.statistic), float(result.pvalue)
        w = float(stats.wasserstein_distance(ref_values, cur_values))
        sd = float(np.std(ref_values))
        w_std = w / sd if sd > 0 else (float("inf") if w > 0 else 0.0)
    return _measured(
        name,
        "numeric",
        t,
        (ref_counts, cur_counts),
        (ref_missing, cur_missing),
        (ks, ks_p),
        (w, w_std),
    )


def categorical_drift(
    reference: Sequence[str | None] | pl.Series,
    current: Sequence[str | None] | pl.Series,
    name: str = "value",
    thresholds: DriftThresholds | None = None,
) -> ColumnDrift:
    """Drift of one categorical column, by PSI over its categories.

    Parameters
    ----------
    reference, current : sequence of str or polars.Series
        The column's values; ``None`` means missing.
    name : str
        Column name, for the result and error messages.
    thresholds : DriftThresholds, optional
        Defaults to ``DriftThresholds()``.

    Returns
    -------
    ColumnDrift
        PSI over the reference's ``max_categories`` most frequent values, one ``other`` bin
        (when either side has another value) and a missing-value bin (when either side has
        missing values); KS and Wasserstein are NaN.

    Raises
    ------
    ValueError
        If either sample is empty.
    """
    t = thresholds or DriftThresholds()
    ref, cur = (pl.Series("value", values).cast(pl.String) for values in (reference, current))
    _check_sizes(name, len(ref), len(cur))
    top = (
        ref.drop_nulls()
        .value_counts(name="n")
        .sort(["n", "value"], descending=[True, False])
        .head(t.max_categories)["value"]
    )
    other, missing = len(top), len(top) + 1

    def codes(values: pl.Series) -> np.ndarray:
        index = pl.Series(range(len(top)), dtype=pl.Int64)
        coded = values.replace_strict(top, index, default=other, return_dtype=pl.Int64)
        return coded.fill_null(missing).to_numpy()

    ref_counts = np.bincount(codes(ref), minlength=missing + 1)
    cur_counts = np.bincount(codes(cur), minlength=missing + 1)
    keep = np.ones(missing + 1, dtype=bool)
    keep[other] = ref_counts[other] + cur_counts[other] > 0
    keep[missing] = ref_counts[missing] + cur_counts[missing] > 0
    missing_rows = (ref.is_null().to_numpy(), cur.is_null().to_numpy())
    return _measured(name, "categorical", t, (ref_counts[keep], cur_counts[keep]), missing_rows)


def _table(rows: list[ColumnDrift]) -> pl.DataFrame:
    return pl.DataFrame([asdict(r) for r in rows], schema=_SCHEMA, orient="row")


def _as_numbers(column: pl.Series) -> np.ndarray:
    return column.cast(pl.Float64).to_numpy()


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Sequence[str] | None = None,
    thresholds: DriftThresholds | None = None,
) -> pl.DataFrame:
    """Drift of each column between a reference snapshot and a current one.

    Parameters
    ----------
    reference, current : polars.DataFrame
        E.g. the training snapshot and the newest one (:func:`features.snapshot.build_snapshot`).
    columns : sequence of str, optional
        Columns to compare; defaults to every numeric, boolean or string column both frames
        hold except ``customer_id`` and ``as_of``, in the reference's order. Numeric and
        boolean columns are compared as numbers, string and categorical ones as categories.
    thresholds : DriftThresholds, optional
        Defaults to ``DriftThresholds()``.

    Returns
    -------
    polars.DataFrame
        One row per column with :data:`DRIFT_COLUMNS` (see :class:`ColumnDrift`).

    Raises
    ------
    ValueError
        If a named column is missing from either frame or has another type, or a frame has no
        rows.
    """
    if columns is None:
        columns = [
            c
            for c, dtype in reference.schema.items()
            if c not in ("customer_id", "as_of")
            and c in current.columns
            and (dtype.is_numeric() or dtype in (pl.Boolean, pl.String, pl.Categorical))
        ]
    rows = []
    for column in columns:
        for side, frame in (("reference", reference), ("current", current)):
            if column not in frame.columns:
                raise ValueError(f"column {column!r} is missing from the {side} frame")
        dtype = reference.schema[column]
        if dtype.is_numeric() or dtype == pl.Boolean:
            rows.append(
                numeric_drift(
                    _as_numbers(reference[column]), _as_numbers(current[column]), column, thresholds
                )
            )
        elif dtype in (pl.String, pl.Categorical):
            rows.append(
                categorical_drift(
                    reference[column].cast(pl.String),
                    current[column].cast(pl.String),
                    column,
                    thresholds,
                )
            )
        else:
            raise ValueError(f"column {column!r} has type {dtype}, neither numeric nor text")
    return _table(rows)


def score_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    thresholds: DriftThresholds | None = None,
) -> pl.DataFrame:
    """Drift of the score distribution of each task between two score tables.

    Parameters
    ----------
    reference, current : polars.DataFrame
        Score tables with ``task`` and ``score`` columns (:func:`models.scoring.score_snapshot`),
        e.g. the held-out scores of the model and today's batch scores.
    thresholds : DriftThresholds, optional
        Defaults to ``DriftThresholds()``.

    Returns
    -------
    polars.DataFrame
        One row per task present on both sides, sorted by task, with :data:`DRIFT_COLUMNS`
        (``column`` holds the task).
    """
    tasks = sorted(set(reference["task"].unique()) & set(current["task"].unique()))
    rows = [
        numeric_drift(
            _as_numbers(reference.filter(pl.col("task") == task)["score"]),
            _as_numbers(current.filter(pl.col("task") == task)["score"]),
            task,
            thresholds,
        )
        for task in tasks
    ]
    return _table(rows)

"""Reasons behind a score, from exact TreeSHAP contributions and the feature registry.

For each row the top-K features by absolute contribution become reasons: the feature, its group,
its value, its contribution in log-odds, the same contribution in *probability points* and a
sentence built from the feature's registered description, e.g. ``"3 unresolved complaints in the
last 90 days: raises churn risk by 4.1 points"``.

Probability points
------------------
Contributions are additive in log-odds, not in probability. To express them in probability we take
the row's calibrated probability ``p = cal(margin)`` and the calibrated probability of the bias
alone, ``p_base = cal(bias)``, and share the difference ``p - p_base`` among the features in
proportion to their log-odds contributions::

    points_j = 100 * (p - p_base) * c_j / sum_i c_i        (0 when sum_i c_i == 0)

so a row's points sum exactly to ``100 * (p - p_base)`` (percentage points) and each point keeps the
sign of its contribution (calibration maps are non-decreasing). Numbers are vectorised over rows;
values are worded by the registry (:meth:`features.contracts.Feature.describe`) once per distinct
(feature, value) pair and joined back.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import Feature, feature_info
from models.artifact import ModelBundle, apply_calibration
from models.tasks import TARGET_PREFIX, get_task

__all__ = [
    "MAX_REASONS",
    "OTHER_GROUP",
    "REASON_COLUMNS",
    "explain",
    "probability_points",
    "reason_sentences",
    "reason_tuples",
]

MAX_REASONS: Final = 20
"""Most reasons per task a request may ask for, and the reasons a served score table keeps."""

OTHER_GROUP: Final = "other"
"""Group given to model inputs that are not registered features (e.g. target-category flags)."""

REASON_COLUMNS: Final = (
    "row",
    "rank",
    "feature",
    "group",
    "value",
    "contribution",
    "points",
    "sentence",
)
"""Columns of :func:`explain`'s result, in order."""


def probability_points(contributions: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Share each row's calibrated probability change among features (percentage points).

    Parameters
    ----------
    contributions : numpy.ndarray
        Shape ``(n, p + 1)``: log-odds contributions with the bias last (``pred_contribs``).
    calibration : dict
        The bundle's calibration (see :func:`models.artifact.apply_calibration`).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, p)``: ``100 * (cal(margin) - cal(bias)) * c_j / sum_i c_i`` per feature ``j``,
        0 where the features' contributions sum to 0. Rows sum to ``100 * (p - p_base)``.
    """
    c = np.asarray(contributions, dtype=np.float64)
    feats, bias = c[:, :-1], c[:, -1]
    total = feats.sum(axis=1)
    delta = apply_calibration(calibration, bias + total) - apply_calibration(calibration, bias)
    ratio = np.divide(100.0 * delta, total, out=np.zeros_like(total), where=total != 0)
    return feats * ratio[:, None]


@functools.lru_cache(maxsize=4096)
def _describer(name: str) -> tuple[str, Feature]:
    """Group and registry entry used to word a reason for one model input.

    Registered features use the registry; cross-sell ``target_{category}`` indicators and any
    other unregistered input get a plain stand-in whose group is :data:`OTHER_GROUP`.
    """
    try:
        info = feature_info(name)
        return str(info.group), info
    except KeyError:
        if name.startswith(TARGET_PREFIX):
            category = name.removeprefix(TARGET_PREFIX)
            return OTHER_GROUP, Feature(
                name, "products", f"target category {category} ({{value}})", unit="flag"
            )
        return OTHER_GROUP, Feature(name, "profile", f"{name} = {{value}}", dtype="float")


def _sentences(long: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """``feature``, ``group`` and the described value per distinct (feature, value) pair."""
    describers = [_describer(n) for n in names]
    pairs = long.select("feature_idx", "value").unique(maintain_order=True)
    described = [
        describers[i][1].describe(v)
        for i, v in zip(pairs["feature_idx"].to_list(), pairs["value"].to_list(), strict=True)
    ]
    return pairs.with_columns(
        feature=pl.col("feature_idx").replace_strict(
            range(len(names)), names, return_dtype=pl.String
        ),
        group=pl.col("feature_idx").replace_strict(
            range(len(names)), [g for g, _ in describers], return_dtype=pl.String
        ),
        described=pl.Series(described, dtype=pl.String),
    )


def explain(
    bundle: ModelBundle,
    X: pd.DataFrame,  # noqa: N803
    k: int,
    contributions: np.ndarray | None = None,
) -> pl.DataFrame:
    """Top-``k`` reasons per row of ``X``, in long format.

    Parameters
    ----------
    bundle : ModelBundle
        The model that scored the rows.
    X : pandas.DataFrame
        Model input rows (e.g. from :func:`models.tasks.model_frame`).
    k : int
        Reasons per row (at most the number of model inputs); ``k >= 1``.
    contributions : numpy.ndarray, optional
        ``bundle.contributions(X)`` if already computed.

    Returns
    -------
    polars.DataFrame
        ``n * min(k, p)`` rows with :data:`REASON_COLUMNS`: ``row`` (0-based position in ``X``),
        ``rank`` (1 = largest absolute contribution), ``feature``, ``group`` (the registry's group,
        :data:`OTHER_GROUP` for unregistered inputs), ``value`` (the input, float), ``contribution``
        (log-odds), ``points`` (percentage points, see the module docstring) and ``sentence``.
        Sorted by ``row`` then ``rank``; ties keep feature order.

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    top = _top_reasons(bundle, X, k, contributions)
    long = pl.DataFrame(
        {
            "row": top.rows,
            "rank": np.tile(np.arange(1, top.k + 1, dtype=np.int64), len(X)),
            "feature_idx": top.idx.astype(np.int64),
            "value": top.value,
            "contribution": top.contribution,
            "points": top.points,
        }
    ).with_columns(pl.col("value").fill_nan(None))
    return _worded(long, bundle.feature_names, bundle.task).select(REASON_COLUMNS)


class _TopReasons(NamedTuple):
    """The numbers of the top-``k`` reasons of each row, one entry per reason, rows in order."""

    k: int
    rows: np.ndarray
    idx: np.ndarray
    value: np.ndarray
    contribution: np.ndarray
    points: np.ndarray


def _top_reasons(
    bundle: ModelBundle,
    X: pd.DataFrame,  # noqa: N803
    k: int,
    contributions: np.ndarray | None,
) -> _TopReasons:
    """Rank each row's inputs by absolute contribution and keep the top ``k`` (the one ranking)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    c = bundle.contributions(X) if contributions is None else np.asarray(contributions)
    n, p = len(X), len(bundle.feature_names)
    k = min(k, p)
    points = probability_points(c, bundle.calibration)
    values = X.loc[:, bundle.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    order = np.argsort(-np.abs(c[:, :-1]), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    idx = order.reshape(-1)
    return _TopReasons(k, rows, idx, values[rows, idx], c[rows, idx], points[rows, idx])


def reason_tuples(
    bundle: ModelBundle,
    X: pd.DataFrame,  # noqa: N803
    k: int,
    contributions: np.ndarray | None = None,
) -> list[list[tuple[str, str, float | None, float, float, str]]]:
    """Give :func:`explain`'s reasons as tuples per row, worded in Python: no DataFrame built.

    What a request needs for one customer: :func:`explain` builds and joins a few small polars
    frames, about 2.5 ms of fixed cost a call, where wording five or twenty reasons directly takes
    a few microseconds each. The values, numbers and sentences are exactly :func:`explain`'s (its
    ranking is shared, and :func:`_effects` rounds as polars does).

    Parameters
    ----------
    bundle : ModelBundle
        The model that scored the rows.
    X : pandas.DataFrame
        Model input rows.
    k : int
        Reasons per row (at most the number of model inputs); ``k >= 1``.
    contributions : numpy.ndarray, optional
        ``bundle.contributions(X)`` if already computed.

    Returns
    -------
    list of list of tuple
        Per row, its reasons as ``(feature, group, value, points, contribution, sentence)``.

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    top = _top_reasons(bundle, X, k, contributions)
    names = bundle.feature_names
    points = top.points.tolist()
    effects = _effects(get_task(bundle.task).outcome, top.points)
    contribution = top.contribution.tolist()
    reasons = []
    for j, (i, value) in enumerate(zip(top.idx.tolist(), top.value.tolist(), strict=True)):
        kept, name = _kept(value), names[i]
        sentence = _sentence(name, kept, effects[j])
        reasons.append((name, _describer(name)[0], kept, points[j], contribution[j], sentence))
    return [reasons[r * top.k : (r + 1) * top.k] for r in range(len(X))]


def _effects(outcome: str, points: np.ndarray) -> list[str]:
    """Word each reason's effect (``"raises churn risk by 4.1 points"``) as polars rounds it."""
    size = np.round(np.abs(np.asarray(points, dtype=np.float64)), 1).tolist()
    return [
        f"{'lowers' if p < 0 else 'raises'} {outcome} by {v!r} points"
        for p, v in zip(np.asarray(points).tolist(), size, strict=True)
    ]


def _worded(long: pl.DataFrame, names: list[str], task: str) -> pl.DataFrame:
    """Word reasons: add ``feature``, ``group`` and ``sentence`` to a long frame.

    ``long`` has ``feature_idx``, ``value`` and ``points``. This is the one place reasons are
    worded, for :func:`explain` and :func:`reason_sentences` alike.
    """
    # -0.0 (e.g. a mean of zero scores) equals 0.0, so the pairs below would word both alike,
    # as "-0" or "0" depending on which one a batch holds first: every zero is worded as 0.0
    value = pl.col("value")
    long = long.with_columns(pl.when(value == 0).then(pl.lit(0.0)).otherwise(value).alias("value"))
    outcome = get_task(task).outcome
    effect = (
        pl.when(pl.col("points") < 0).then(pl.lit("lowers ")).otherwise(pl.lit("raises "))
        + pl.lit(outcome)
        + pl.lit(" by ")
        + pl.col("points").abs().round(1).cast(pl.String)
        + pl.lit(" points")
    )
    return long.join(
        _sentences(long, names),
        on=["feature_idx", "value"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    ).with_columns(sentence=pl.col("described") + pl.lit(": ") + effect)


def reason_sentences(
    bundle: ModelBundle,
    features: Sequence[str],
    values: Sequence[float | None],
    points: Sequence[float],
) -> list[str]:
    """Word reasons kept as numbers, exactly as :func:`explain` words them.

    Parameters
    ----------
    bundle : ModelBundle
        The model whose inputs the features are.
    features, values, points : sequence
        One entry per reason: model input name, its value (None or NaN when missing) and its
        contribution in percentage points.

    Returns
    -------
    list of str
        The sentence of each reason, e.g. ``"3 unresolved complaints in the last 90 days: raises
        churn risk by 4.1 points"``.
    """
    effects = _effects(get_task(bundle.task).outcome, np.asarray(points, dtype=np.float64))
    return [
        _sentence(name, _kept(value), effect)
        for name, value, effect in zip(features, values, effects, strict=True)
    ]


def _kept(value: float | None) -> float | None:
    """Return a reason's value as worded: None for missing (None or NaN), 0.0 for -0.0."""
    return None if value is None or value != value else float(value) + 0.0


def _sentence(name: str, value: float | None, effect: str) -> str:
    """One reason's sentence: the input's registered description, then its effect."""
    return f"{_describer(name)[1].describe(value)}: {effect}"

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

Reconciling
-----------
A response shows the top reasons and one remainder line, "N other inputs together"
(:func:`other_inputs`): the reasons' points plus the remainder's are exactly
``100 * (probability - base_probability)``, where ``base_probability = cal(bias)`` is the
calibrated probability of the average customer; likewise their log-odds plus the remainder's are
exactly ``log_odds - base_log_odds``, the uncalibrated margin the booster adds to its bias.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import CATEGORY_FEATURE_PREFIX, Feature, feature_info
from models.artifact import ModelBundle, apply_calibration
from models.tasks import BOUGHT_SUFFIX, CANDIDATE_INPUTS, TARGET_PREFIX, get_task

__all__ = [
    "LIFT_SHOWN",
    "MAX_REASONS",
    "OTHER_GROUP",
    "REASON_COLUMNS",
    "OtherInputs",
    "base_log_odds",
    "explain",
    "other_inputs",
    "other_sentence",
    "probability_points",
    "reason_sentences",
    "reason_tuples",
]

MAX_REASONS: Final = 20
"""Most reasons per task a request may ask for, and the reasons a served score table keeps."""

OTHER_GROUP: Final = "other"
"""Group given to model inputs that are neither registered features nor a ranked category."""

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


def base_log_odds(bundle: ModelBundle) -> float:
    """Return the model's bias: TreeSHAP's expected margin, the same for every row.

    Parameters
    ----------
    bundle : ModelBundle
        The model.

    Returns
    -------
    float
        The last column of :meth:`~models.artifact.ModelBundle.contributions` (of any row; a row
        of missing values is used), the uncalibrated margin of the average customer.
    """
    row = pd.DataFrame([[np.nan] * len(bundle.feature_names)], columns=bundle.feature_names)
    return float(bundle.contributions(row)[0, -1])


class OtherInputs(NamedTuple):
    """The remainder of each row's score beyond the reasons shown (see :func:`other_inputs`)."""

    inputs: np.ndarray
    points: np.ndarray
    log_odds: np.ndarray


def other_inputs(
    n_inputs: int,
    margin: np.ndarray,
    base_log_odds: np.ndarray,
    calibration: dict[str, Any],
    shown_points: np.ndarray,
    shown_log_odds: np.ndarray,
    shown: np.ndarray,
) -> OtherInputs:
    """Compute what the inputs not shown as reasons add, so that each row reconciles exactly.

    Parameters
    ----------
    n_inputs : int
        The model's inputs.
    margin, base_log_odds : numpy.ndarray
        Per row: the booster's margin (log-odds) and its bias (TreeSHAP's expected margin).
    calibration : dict
        The bundle's calibration (:func:`models.artifact.apply_calibration`).
    shown_points, shown_log_odds : numpy.ndarray
        Per row: the sums of the points and of the log-odds of the reasons shown.
    shown : numpy.ndarray
        Per row: how many reasons are shown.

    Returns
    -------
    OtherInputs
        ``inputs = n_inputs - shown``; ``points = 100 * (cal(margin) - cal(bias)) -
        shown_points``, so reasons and remainder sum to ``100 * (probability -
        base_probability)``; ``log_odds = margin - bias - shown_log_odds``.
    """
    m = np.asarray(margin, dtype=np.float64)
    base = np.asarray(base_log_odds, dtype=np.float64)
    delta = apply_calibration(calibration, m) - apply_calibration(calibration, base)
    return OtherInputs(
        inputs=n_inputs - np.asarray(shown, dtype=np.int64),
        points=100.0 * delta - np.asarray(shown_points, dtype=np.float64),
        log_odds=m - base - np.asarray(shown_log_odds, dtype=np.float64),
    )


def other_sentence(task: str, inputs: int, points: float) -> str:
    """Word the remainder line, e.g. ``"31 other inputs together: raise churn risk by 1.2 points"``.

    Parameters
    ----------
    task : str
        The task (its spec's outcome phrase is used).
    inputs : int
        How many inputs the line stands for.
    points : float
        Their contribution in percentage points.

    Returns
    -------
    str
        The sentence; ``"no other input: the reasons are every input"`` when none is left over
        (a one-input rule), whose points are nothing to raise or lower.
    """
    if inputs == 0:
        return "no other input: the reasons are every input"
    one = inputs == 1
    subject = "1 other input" if one else f"{inputs} other inputs together"
    verb = ("lower" if points < 0 else "raise") + ("s" if one else "")
    return f"{subject}: {verb} {get_task(task).outcome} by {abs(points):.1f} points"


@dataclass(frozen=True)
class _RankedCategory:
    """Words the indicator ``target_{category}`` of a ranked task as a product reason."""

    category: str

    def describe(self, value: float | None) -> str:
        """``"apparel: not bought yet"`` on the category's own row, else what the row is not."""
        if value is None or math.isnan(value):
            return f"{self.category}: not known whether it is the category ranked"
        if value >= 0.5:
            return f"{self.category}: not bought yet"
        return f"the category ranked is not {self.category}"


@functools.lru_cache(maxsize=4096)
def _describer(name: str) -> tuple[str, Feature | _RankedCategory]:
    """Group and wording used for one model input's reasons.

    Registered features use the registry; a ranked task's candidate inputs
    (:data:`~models.tasks.CANDIDATE_INPUTS`) their own descriptions; its ``target_{category}``
    indicator is a product reason (the category being ranked); any other unregistered input gets a
    plain
    stand-in whose group is :data:`OTHER_GROUP`.
    """
    try:
        info = feature_info(name)
        return str(info.group), info
    except KeyError:
        candidate = _CANDIDATES.get(name)
        if candidate is not None:
            return str(candidate.group), candidate
        if name.startswith(TARGET_PREFIX):
            return "products", _RankedCategory(name.removeprefix(TARGET_PREFIX))
        return OTHER_GROUP, Feature(name, "profile", f"{name} = {{value}}", dtype="float")


_CANDIDATES: Final = {f.name: f for f in CANDIDATE_INPUTS}

LIFT_SHOWN: Final = 1.5
"""Smallest lift worded beside a ranked category ("3x more likely after shoes")."""


def _inputs(bundle: ModelBundle, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
    """``X``'s model inputs in ``feature_names`` order as float64 (NaN for missing).

    An array is taken as those columns already (the rows a server keeps); a frame is converted,
    without a copy when it holds just those columns (``model_frame``'s rows).
    """
    if isinstance(X, np.ndarray):
        return np.asarray(X, dtype=np.float64)
    inputs = X if X.columns.tolist() == bundle.feature_names else X.loc[:, bundle.feature_names]
    return inputs.to_numpy(dtype=np.float64, na_value=np.nan)


def _bought(
    bundle: ModelBundle,
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    rows: np.ndarray,
    columns: list[str],
) -> np.ndarray:
    """Whether each of ``rows`` has ``column > 0``, per column (False where ``X`` lacks it)."""
    if isinstance(X, np.ndarray):
        where = {name: i for i, name in enumerate(bundle.feature_names)}
        picked = X[rows]
        found = [picked[:, where[c]] > 0 if c in where else None for c in columns]
    else:
        found = [
            X[c].to_numpy(dtype=np.float64, na_value=0.0)[rows] > 0 if c in X.columns else None
            for c in columns
        ]
    none = np.zeros(len(rows), dtype=bool)
    return np.column_stack([none if f is None else f for f in found])


def _after(
    bundle: ModelBundle,
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    rows: np.ndarray,
    feature_idx: np.ndarray,
    values: np.ndarray,
) -> list[str | None] | None:
    """Per reason, the lift clause of a ranked category on its own row.

    E.g. ``", 3x more likely after shoes"``: among the categories the customer bought
    (``cat_{b}_orders > 0`` in ``X``), the one whose buyers bought the ranked category most often
    against all buyers (the model's ``category_lift``, recorded at training by
    :func:`models.rules.category_lift`). None (no clause at all) for a model without categories
    or lifts; a None entry for any other reason and for lifts under :data:`LIFT_SHOWN`.
    """
    lift = bundle.metadata.get("category_lift") or {}
    cats = list(bundle.categories)
    if not lift or not cats:
        return None
    index = {f"{TARGET_PREFIX}{c}": a for a, c in enumerate(cats)}
    target = np.array([index.get(n, -1) for n in bundle.feature_names], dtype=np.int64)
    target = target[feature_idx]
    hit = np.flatnonzero((target >= 0) & (np.nan_to_num(values) >= 0.5))
    out: list[str | None] = [None] * len(feature_idx)
    if len(hit) == 0:
        return out
    columns = [f"{CATEGORY_FEATURE_PREFIX}{c}{BOUGHT_SUFFIX}" for c in cats]
    bought = _bought(bundle, X, rows[hit], columns)
    ratio = np.array([[lift.get(b, {}).get(a, 0.0) for a in cats] for b in cats])
    scores = bought * ratio[:, target[hit]].T
    best = scores.argmax(axis=1)
    for h, b, v in zip(hit, best, scores[np.arange(len(hit)), best], strict=True):
        if v >= LIFT_SHOWN:
            times = f"{v:.0f}" if v >= 3 else f"{v:.1f}"
            out[h] = f", {times}x more likely after {cats[b]}"
    return out


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
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    k: int,
    contributions: np.ndarray | None = None,
    exclude: Collection[str] = (),
) -> pl.DataFrame:
    """Top-``k`` reasons per row of ``X``, in long format.

    Parameters
    ----------
    bundle : ModelBundle
        The model that scored the rows.
    X : pandas.DataFrame or numpy.ndarray
        Model input rows (e.g. from :func:`models.tasks.model_frame`); an array holds the
        model's inputs in ``feature_names`` order.
    k : int
        Reasons per row (at most the number of model inputs); ``k >= 1``.
    contributions : numpy.ndarray, optional
        ``bundle.contributions(X)`` if already computed.
    exclude : collection of str, optional
        Model inputs that are never a reason (e.g. inputs a caller did not send): their
        contributions stay in the points of the others' remainder, not among the reasons.

    Returns
    -------
    polars.DataFrame
        ``n * min(k, p')`` rows (``p'`` the inputs not excluded) with :data:`REASON_COLUMNS`:
        ``row`` (0-based position in ``X``), ``rank`` (1 = largest absolute contribution),
        ``feature``, ``group`` (the registry's group, :data:`OTHER_GROUP` for unregistered
        inputs), ``value`` (the input, float), ``contribution`` (log-odds), ``points``
        (percentage points, see the module docstring) and ``sentence``.
        Sorted by ``row`` then ``rank``; ties keep feature order.

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    top = _top_reasons(bundle, X, k, contributions, exclude)
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
    after = _after(bundle, X, top.rows, top.idx, top.value)
    return _worded(long, bundle.feature_names, bundle.task, after).select(REASON_COLUMNS)


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
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    k: int,
    contributions: np.ndarray | None,
    exclude: Collection[str] = (),
) -> _TopReasons:
    """Rank each row's inputs by absolute contribution and keep the top ``k`` (the one ranking).

    Inputs in ``exclude`` are never kept.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    c = bundle.contributions(X) if contributions is None else np.asarray(contributions)
    n = len(X)
    allowed = np.array([name not in exclude for name in bundle.feature_names])
    k = min(k, int(allowed.sum()))
    points = probability_points(c, bundle.calibration)
    values = _inputs(bundle, X)
    strength = np.where(allowed, np.abs(c[:, :-1]), -1.0)  # excluded inputs rank last
    order = np.argsort(-strength, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    idx = order.reshape(-1)
    return _TopReasons(k, rows, idx, values[rows, idx], c[rows, idx], points[rows, idx])


def reason_tuples(
    bundle: ModelBundle,
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    k: int,
    contributions: np.ndarray | None = None,
    exclude: Collection[str] = (),
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
    X : pandas.DataFrame or numpy.ndarray
        Model input rows (an array: the model's inputs in ``feature_names`` order).
    k : int
        Reasons per row (at most the number of model inputs); ``k >= 1``.
    contributions : numpy.ndarray, optional
        ``bundle.contributions(X)`` if already computed.
    exclude : collection of str, optional
        Model inputs that are never a reason (:func:`explain`).

    Returns
    -------
    list of list of tuple
        Per row, its reasons as ``(feature, group, value, points, contribution, sentence)``.

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    top = _top_reasons(bundle, X, k, contributions, exclude)
    after = _after(bundle, X, top.rows, top.idx, top.value) or [None] * len(top.idx)
    names = bundle.feature_names
    points = top.points.tolist()
    effects = _effects(get_task(bundle.task).outcome, top.points)
    contribution = top.contribution.tolist()
    reasons = []
    for j, (i, value) in enumerate(zip(top.idx.tolist(), top.value.tolist(), strict=True)):
        kept, name = _kept(value), names[i]
        sentence = _sentence(name, kept, effects[j], after[j])
        reasons.append((name, _describer(name)[0], kept, points[j], contribution[j], sentence))
    return [reasons[r * top.k : (r + 1) * top.k] for r in range(len(X))]


def _effects(outcome: str, points: np.ndarray) -> list[str]:
    """Word each reason's effect (``"raises churn risk by 4.1 points"``) as polars rounds it."""
    size = np.round(np.abs(np.asarray(points, dtype=np.float64)), 1).tolist()
    return [
        f"{'lowers' if p < 0 else 'raises'} {outcome} by {v!r} points"
        for p, v in zip(np.asarray(points).tolist(), size, strict=True)
    ]


def _worded(
    long: pl.DataFrame, names: list[str], task: str, after: list[str | None] | None = None
) -> pl.DataFrame:
    """Word reasons: add ``feature``, ``group`` and ``sentence`` to a long frame.

    ``long`` has ``feature_idx``, ``value`` and ``points``; ``after``, per row, a clause added
    to the described value (:func:`_after`). This is the one place reasons are worded, for
    :func:`explain` and :func:`reason_sentences` alike.
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
    clause = pl.Series("_after", after or [None] * long.height, dtype=pl.String)
    return (
        long.join(
            _sentences(long, names),
            on=["feature_idx", "value"],
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        .with_columns(clause)
        .with_columns(
            sentence=pl.col("described") + pl.col("_after").fill_null("") + pl.lit(": ") + effect
        )
        .drop("_after")
    )


def reason_sentences(
    bundle: ModelBundle,
    features: Sequence[str],
    values: Sequence[float | None],
    points: Sequence[float],
    X: pd.DataFrame | np.ndarray | None = None,  # noqa: N803
    rows: Sequence[int] | None = None,
) -> list[str]:
    """Word reasons kept as numbers, exactly as :func:`explain` words them.

    Parameters
    ----------
    bundle : ModelBundle
        The model whose inputs the features are.
    features, values, points : sequence
        One entry per reason: model input name, its value (None or NaN when missing) and its
        contribution in percentage points.
    X : pandas.DataFrame or numpy.ndarray, optional
        Model input rows the reasons belong to, with ``rows`` (one position in ``X`` per
        reason): a ranked category's reason then says what the customer bought that makes it
        likelier, as :func:`explain` does.
    rows : sequence of int, optional
        See ``X``.

    Returns
    -------
    list of str
        The sentence of each reason, e.g. ``"3 unresolved complaints in the last 90 days: raises
        churn risk by 4.1 points"``.
    """
    effects = _effects(get_task(bundle.task).outcome, np.asarray(points, dtype=np.float64))
    after: list[str | None] = [None] * len(effects)
    if X is not None and rows is not None:
        index = {name: i for i, name in enumerate(bundle.feature_names)}
        idx = np.array([index[f] for f in features], dtype=np.int64)
        value = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        after = _after(bundle, X, np.asarray(rows, dtype=np.int64), idx, value) or after
    return [
        _sentence(name, _kept(value), effect, clause)
        for name, value, effect, clause in zip(features, values, effects, after, strict=True)
    ]


def _kept(value: float | None) -> float | None:
    """Return a reason's value as worded: None for missing (None or NaN), 0.0 for -0.0."""
    return None if value is None or value != value else float(value) + 0.0


def _sentence(name: str, value: float | None, effect: str, after: str | None = None) -> str:
    """One reason's sentence: the input's description (and lift clause), then its effect."""
    return f"{_describer(name)[1].describe(value)}{after or ''}: {effect}"

"""Pure batch scoring: a snapshot and a model bundle in, one scored row per customer (and category).

Output layout
-------------
One row per customer for a binary task and one per (customer, category not bought yet) for a
ranked task, with columns :data:`SCORE_COLUMNS`: ``customer_id``, ``category`` (null except for a
ranked task), ``task``, ``score`` (calibrated probability), ``decile`` (1 = the 10 % highest
scores of the task's population, 10 = the lowest; ties broken by row order; for a ranked task the
customers are ranked by their best category's probability and every row is placed on that scale,
:func:`models.ranking.ranked_deciles`), ``margin``
(log-odds), ``model_name``, ``model_version``, ``feature_set_version`` and ``status``.

Only the task's population is scored (:func:`models.tasks.population_status`, with the activity
window the model recorded at training): its rows have ``status`` ``eligible``. Every other
snapshot customer has one row with a null ``category``, ``score``, ``decile`` and ``margin`` and
the status that says why (for churn ``lapsed``: no order in the active window, a win-back
candidate; ``prospect``: never ordered); an eligible customer a ranked task has nothing to rank
for (every category bought) has one such row with ``no_candidates``. Rows follow snapshot order,
then the model's category order. Deciles rank the population only.

With ``explain_k = K`` the top-K reasons (see :func:`models.explain.explain`) are added as *wide*
columns so the file stays one row per scored entity and works as CSV as well as Parquet:
``base_logodds`` (the row's bias, the uncalibrated margin before any input) and
``base_probability`` (its calibrated probability, that of the average customer), then
``reason_{i}_feature``, ``reason_{i}_group``, ``reason_{i}_value``, ``reason_{i}_logodds``,
``reason_{i}_points`` and ``reason_{i}_sentence`` for ``i = 1..K`` (``i = 1`` is the largest
absolute contribution), then the remainder line of the inputs not shown: ``other_inputs`` (how
many), ``other_points`` and ``other_logodds``. The reasons' points plus ``other_points`` are
``100 * (score - base_probability)`` and their log-odds plus ``other_logodds`` are
``margin - base_logodds`` (:func:`models.explain.other_inputs`). A ranked task explains only each
customer's :data:`EXPLAINED_CATEGORIES` highest-scoring rows (the categories the API and the
reviewer pages put first); its other rows have null reasons, so a million customers cost three
explained rows each, not one per category not bought yet. :func:`score_rows`,
:func:`reason_columns`, :func:`with_reasons` and :func:`with_unscored` build the parts from scores
and contributions computed elsewhere (serving writes its tables with them), so every producer
writes the same layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import FEATURE_SET_VERSION
from models.artifact import ModelBundle, apply_calibration
from models.explain import explain, other_inputs
from models.ranking import deciles, ranked_deciles
from models.tasks import (
    CATEGORY_INPUTS_KEY,
    ELIGIBLE,
    NO_CANDIDATES,
    get_task,
    model_frame,
    population_status,
    snapshot_categories,
)

__all__ = [
    "BATCH_CUSTOMERS",
    "EXPLAINED_CATEGORIES",
    "REASON_FIELDS",
    "SCORE_COLUMNS",
    "BatchScores",
    "FeatureSetMismatchError",
    "batch_scores",
    "check_feature_set",
    "model_categories",
    "model_rows",
    "reason_columns",
    "score_batches",
    "score_rows",
    "score_schema",
    "score_snapshot",
    "top_rows",
    "with_reasons",
    "with_unscored",
]

EXPLAINED_CATEGORIES: Final = 3
"""Rows a ranked task explains per customer in batch: its three highest-scoring categories."""

BATCH_CUSTOMERS: Final = 50_000
"""Customers :func:`score_snapshot` scores, explains and orders at a time (a 1M-customer snapshot
in 20 batches: for cross-sell about 375k model rows a batch instead of 7.5M at once)."""


SCORE_COLUMNS: Final = (
    "customer_id",
    "category",
    "task",
    "score",
    "decile",
    "margin",
    "model_name",
    "model_version",
    "feature_set_version",
    "status",
)

REASON_FIELDS: Final[dict[str, str]] = {
    "feature": "feature",
    "group": "group",
    "value": "value",
    "contribution": "logodds",
    "points": "points",
    "sentence": "sentence",
}
"""Reason column of :func:`models.explain.explain` -> suffix of the wide ``reason_{i}_*`` column."""


class FeatureSetMismatchError(ValueError):
    """A model was trained on a different feature-set version than this code builds."""


def check_feature_set(bundle: ModelBundle, name: str) -> None:
    """Refuse a model whose feature-set version differs from the code's (the one check).

    Batch scoring, the registry's loader and the server all call it; the server checks its
    snapshot against the code first, so a model that passes fits the snapshot too.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    name : str
        How to name the model in the message (e.g. ``"churn@champion (version 3)"``).

    Raises
    ------
    FeatureSetMismatchError
        If ``bundle.feature_set_version != features.contracts.FEATURE_SET_VERSION``.
    """
    if bundle.feature_set_version != FEATURE_SET_VERSION:
        raise FeatureSetMismatchError(
            f"model {name} was trained on feature set version {bundle.feature_set_version}, "
            f"but this guanxi builds feature set version {FEATURE_SET_VERSION}; retrain it "
            "(`guanxi train`) and promote the new version before scoring"
        )


def _wide_reasons(long: pl.DataFrame, k: int) -> pl.DataFrame:
    """Turn :func:`explain`'s long rows (k per row, sorted) into ``reason_{i}_*`` columns."""
    parts = [
        long.gather_every(k, offset=i - 1).select(
            pl.col(src).alias(f"reason_{i}_{dst}") for src, dst in REASON_FIELDS.items()
        )
        for i in range(1, k + 1)
    ]
    return pl.concat(parts, how="horizontal")


def model_categories(bundles: Iterable[ModelBundle]) -> list[str]:
    """Return the product categories some model reads a ``cat_{category}_orders`` column of.

    Parameters
    ----------
    bundles : iterable of ModelBundle
        The models.

    Returns
    -------
    list of str
        The categories, sorted (:func:`models.tasks.snapshot_categories` of the models' inputs).
    """
    names = {name for bundle in bundles for name in bundle.feature_names}
    return snapshot_categories(pl.DataFrame(schema=dict.fromkeys(sorted(names), pl.Float64)))


def model_rows(bundle: ModelBundle, snapshot: pl.DataFrame) -> pd.DataFrame:
    """Turn snapshot rows into a model's input rows, as training built them.

    Parameters
    ----------
    bundle : ModelBundle
        The model: its inputs, categories and (ranked) category statistics.
    snapshot : polars.DataFrame
        Snapshot rows to score.

    Returns
    -------
    pandas.DataFrame
        :func:`models.tasks.model_frame` of ``snapshot`` with the model's ``feature_names``,
        ``categories`` and ``metadata["category_inputs"]``.
    """
    return model_frame(
        bundle.task,
        snapshot,
        bundle.feature_names,
        bundle.categories or None,
        bundle.metadata.get(CATEGORY_INPUTS_KEY),
    )


def score_rows(
    bundle: ModelBundle,
    x: pd.DataFrame,
    margin: np.ndarray,
    score: np.ndarray,
    model_name: str,
    model_version: str | None,
) -> pl.DataFrame:
    """Build the :data:`SCORE_COLUMNS` of scored model input rows.

    Parameters
    ----------
    bundle : ModelBundle
        The model that scored the rows.
    x : pandas.DataFrame
        Model input rows (from :func:`models.tasks.model_frame`), in the order deciles break ties.
    margin, score : numpy.ndarray
        ``bundle.predict_margin(x)`` and ``bundle.predict_proba(x)``.
    model_name, model_version : str
        Registry identity written to every row.

    Returns
    -------
    polars.DataFrame
        One row per row of ``x`` with :data:`SCORE_COLUMNS`.
    """
    index = x.index.to_frame(index=False)
    ranked = "category" in index.columns
    category = (
        pl.Series("category", index["category"].astype(str).to_numpy(), dtype=pl.String)
        if ranked
        else pl.Series("category", [None] * len(x), dtype=pl.String)
    )
    decile = ranked_deciles(score, index["customer_id"].to_numpy())[0] if ranked else deciles(score)
    return pl.DataFrame(
        {
            "customer_id": pl.Series(index["customer_id"].astype(str).to_numpy(), dtype=pl.String),
            "category": category,
            "task": pl.Series([bundle.task] * len(x), dtype=pl.String),
            "score": score,
            "decile": decile,
            "margin": margin,
        }
    ).with_columns(
        model_name=pl.lit(model_name, dtype=pl.String),
        model_version=pl.lit(
            None if model_version is None else str(model_version), dtype=pl.String
        ),
        feature_set_version=pl.lit(bundle.feature_set_version, dtype=pl.String),
        status=pl.lit(ELIGIBLE, dtype=pl.String),
    )


def with_unscored(
    scored: pl.DataFrame,
    statuses: pl.DataFrame,
    bundle: ModelBundle,
    model_name: str,
    model_version: str | None,
) -> pl.DataFrame:
    """Add a row for every customer without a scored row, with the status that says why.

    Parameters
    ----------
    scored : polars.DataFrame
        :func:`score_rows` (and :func:`reason_columns`) of the population's model rows.
    statuses : polars.DataFrame
        ``customer_id`` and ``status`` of every snapshot customer, in snapshot order
        (:func:`models.tasks.population_status`).
    bundle : ModelBundle
        The model.
    model_name, model_version : str
        Registry identity written to every row.

    Returns
    -------
    polars.DataFrame
        ``scored`` with one more row per customer it lacks (status as given, or
        :data:`~models.tasks.NO_CANDIDATES` for an eligible one), null scores and reasons,
        rows in snapshot order (a customer's scored rows keep their order).
    """
    positions = statuses.select("customer_id", pl.int_range(pl.len()).alias("_pos"))
    unscored = (
        statuses.join(scored.select("customer_id").unique(), on="customer_id", how="anti")
        .with_columns(
            pl.when(pl.col("status") == ELIGIBLE)
            .then(pl.lit(NO_CANDIDATES))
            .otherwise(pl.col("status"))
            .alias("status")
        )
        .select(
            "customer_id",
            pl.lit(None, dtype=pl.String).alias("category"),
            pl.lit(bundle.task, dtype=pl.String).alias("task"),
            pl.lit(None, dtype=pl.Float64).alias("score"),
            pl.lit(None, dtype=scored.schema.get("decile", pl.Int8)).alias("decile"),
            pl.lit(None, dtype=pl.Float64).alias("margin"),
            pl.lit(model_name, dtype=pl.String).alias("model_name"),
            pl.lit(model_version, dtype=pl.String).alias("model_version"),
            pl.lit(bundle.feature_set_version, dtype=pl.String).alias("feature_set_version"),
            "status",
        )
    )
    return (
        pl.concat([scored, unscored], how="diagonal_relaxed")
        .join(positions, on="customer_id", how="left", maintain_order="left")
        .sort("_pos", maintain_order=True)
        .drop("_pos")
    )


def reason_columns(
    bundle: ModelBundle,
    x: pd.DataFrame,
    k: int,
    contributions: np.ndarray | None = None,
    margin: np.ndarray | None = None,
) -> pl.DataFrame:
    """Compute the base, the wide ``reason_{i}_*`` columns and the remainder of model input rows.

    Parameters
    ----------
    bundle : ModelBundle
        The model that scored the rows.
    x : pandas.DataFrame
        Model input rows.
    k : int
        Reasons per row, ``k >= 1`` (at most the number of model inputs are given).
    contributions : numpy.ndarray, optional
        ``bundle.contributions(x)`` if already computed (float32 values give the same result).
    margin : numpy.ndarray, optional
        ``bundle.predict_margin(x)`` if already computed (the remainder reconciles with it).

    Returns
    -------
    polars.DataFrame
        One row per row of ``x``: ``base_logodds``, ``base_probability``, then ``reason_{i}_*``
        for ``i = 1..min(k, p)``, then ``other_inputs``, ``other_points`` and ``other_logodds``
        (see the module docstring).
    """
    c = np.asarray(
        bundle.contributions(x) if contributions is None else contributions, dtype=np.float64
    )
    m = bundle.predict_margin(x) if margin is None else np.asarray(margin, dtype=np.float64)
    k = min(k, len(bundle.feature_names))
    wide = _wide_reasons(explain(bundle, x, k, contributions=c), k)
    points = wide.select(pl.sum_horizontal(f"reason_{i}_points" for i in range(1, k + 1)))
    log_odds = wide.select(pl.sum_horizontal(f"reason_{i}_logodds" for i in range(1, k + 1)))
    rest = other_inputs(
        len(bundle.feature_names),
        m,
        c[:, -1],
        bundle.calibration,
        points.to_series().to_numpy(),
        log_odds.to_series().to_numpy(),
        np.full(len(x), k),
    )
    return wide.select(
        pl.Series("base_logodds", c[:, -1], dtype=pl.Float64),
        pl.Series("base_probability", apply_calibration(bundle.calibration, c[:, -1])),
        pl.all(),
        pl.Series("other_inputs", rest.inputs, dtype=pl.Int64),
        pl.Series("other_points", rest.points, dtype=pl.Float64),
        pl.Series("other_logodds", rest.log_odds, dtype=pl.Float64),
    )


def top_rows(customer_ids: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Positions of each customer's ``n`` highest-scoring rows, in row order.

    Parameters
    ----------
    customer_ids : numpy.ndarray
        The customer of each row (a customer's rows need not be contiguous).
    score : numpy.ndarray
        The rows' scores.
    n : int
        Rows kept per customer, ``n >= 1``; ties keep the earlier row (as ``numpy.argmax`` does,
        so the first of them is the customer's top row the server explains).

    Returns
    -------
    numpy.ndarray
        int64 row positions, ascending.
    """
    frame = pl.DataFrame({"customer": customer_ids, "score": score}).with_row_index("_row")
    kept = frame.filter(
        pl.col("score").rank("ordinal", descending=True).over("customer") <= n
    ).get_column("_row")
    return kept.to_numpy().astype(np.int64)


def with_reasons(rows: pl.DataFrame, reasons: pl.DataFrame, positions: np.ndarray) -> pl.DataFrame:
    """Join reason columns computed for some rows back onto every row (null on the others).

    Parameters
    ----------
    rows : polars.DataFrame
        Scored rows (:func:`score_rows`).
    reasons : polars.DataFrame
        :func:`reason_columns` of the rows at ``positions``, in that order.
    positions : numpy.ndarray
        Positions in ``rows`` of the explained rows.

    Returns
    -------
    polars.DataFrame
        ``rows`` in their order, with the reason columns.
    """
    found = reasons.with_columns(pl.Series("_row", positions, dtype=pl.UInt32))
    return (
        rows.with_row_index("_row")
        .join(found, on="_row", how="left", maintain_order="left")
        .drop("_row")
    )


class BatchScores(NamedTuple):
    """A task's margins and deciles, batch by batch: the first pass of :func:`score_batches`."""

    margins: list[np.ndarray]
    """Each batch's model rows' margins, in row order."""
    deciles: list[np.ndarray]
    """Each batch's model rows' Int8 deciles, ranked over every batch's rows together."""

    @property
    def rows(self) -> int:
        """Model rows scored, every batch together (the rows with status ``eligible``)."""
        return sum(len(m) for m in self.margins)


def score_schema(bundle: ModelBundle, explain_k: int, scored: bool = True) -> pl.Schema:
    """Give the columns and types of :func:`score_snapshot`'s table, known before scoring.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    explain_k : int
        Reasons per row; 0 for none.
    scored : bool
        Whether any row is scored (a table without scored rows has no reason columns).

    Returns
    -------
    polars.Schema
        :data:`SCORE_COLUMNS`, then the base, ``reason_{i}_*`` (``i = 1..min(explain_k, p)``)
        and remainder columns when ``explain_k > 0`` and ``scored``.
    """
    text, real = pl.String(), pl.Float64()
    schema: dict[str, pl.DataType] = dict.fromkeys(SCORE_COLUMNS, text)
    schema |= {"score": real, "decile": pl.Int8(), "margin": real}
    if explain_k > 0 and scored:
        schema |= {"base_logodds": real, "base_probability": real}
        kinds = {"value": real, "logodds": real, "points": real}  # the others are text
        for i in range(1, min(explain_k, len(bundle.feature_names)) + 1):
            schema |= {
                f"reason_{i}_{field}": kinds.get(field, text) for field in REASON_FIELDS.values()
            }
        schema |= {"other_inputs": pl.Int64(), "other_points": real, "other_logodds": real}
    return pl.Schema(schema)


def batch_scores(
    bundle: ModelBundle, snapshot: pl.DataFrame, batch_customers: int = BATCH_CUSTOMERS
) -> BatchScores:
    """Score every batch of a snapshot's population and rank the deciles over all of them.

    Only the model input rows of one batch are held at a time; what is kept is a margin and a
    decile per scored row (for a ranked task a row per category not bought yet), so
    :func:`score_batches` can then write each batch's final rows as it makes them.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    snapshot : polars.DataFrame
        A feature snapshot (one row per customer).
    batch_customers : int
        Snapshot customers scored at a time, ``>= 1`` (the same as :func:`score_batches`').

    Returns
    -------
    BatchScores
        The margins and the task-wide deciles of each batch's model rows.
    """
    ranked = get_task(bundle.task).kind == "ranked"
    margins, groups, seen = [], [], 0
    for customers, _ in _batches(bundle, snapshot, batch_customers):
        x = model_rows(bundle, customers)
        margins.append(bundle.predict_margin(x))
        if ranked:  # customers as numbers: each batch's own, after the earlier batches'
            groups.append(pd.factorize(x.index.get_level_values("customer_id"))[0] + seen)
            seen += customers.height
    score = apply_calibration(bundle.calibration, np.concatenate(margins))
    together = ranked_deciles(score, np.concatenate(groups))[0] if ranked else deciles(score)
    return BatchScores(margins, np.split(together, np.cumsum([len(m) for m in margins])[:-1]))


def score_batches(
    bundle: ModelBundle,
    snapshot: pl.DataFrame,
    explain_k: int = 0,
    model_name: str | None = None,
    model_version: str | None = None,
    explain_categories: int = EXPLAINED_CATEGORIES,
    batch_customers: int = BATCH_CUSTOMERS,
    scores: BatchScores | None = None,
) -> Iterator[pl.DataFrame]:
    """Score every customer of a snapshot with one model, ``batch_customers`` customers at a time.

    The rows come batch by batch, each batch's final: in snapshot order, with the deciles of
    the whole population (:func:`batch_scores`, a first pass, when there is more than one
    batch) and the reasons of its rows. Only one batch's model input rows and reasons are held,
    so a caller that writes each batch away never holds the table; concatenated
    (``how="diagonal_relaxed"``: a batch without scored rows has no reason columns) they are
    :func:`score_snapshot`.

    Parameters
    ----------
    bundle, snapshot, explain_k, model_name, model_version, explain_categories, batch_customers
        As for :func:`score_snapshot`.
    scores : BatchScores, optional
        :func:`batch_scores` of ``bundle`` on ``snapshot`` with ``batch_customers``, if already
        computed.

    Returns
    -------
    iterator of polars.DataFrame
        Each batch's rows (see :func:`score_snapshot`).

    Raises
    ------
    ValueError
        If ``batch_customers < 1``.
    """
    if batch_customers < 1:
        raise ValueError(f"batch_customers must be >= 1, got {batch_customers}")
    registry = bundle.metadata.get("registry", {})
    name = model_name if model_name is not None else registry.get("name", bundle.task)
    version = model_version if model_version is not None else registry.get("version")
    version = None if version is None else str(version)
    if scores is None and snapshot.height > batch_customers:  # one batch ranks its own rows
        scores = batch_scores(bundle, snapshot, batch_customers)
    return _score_batches(
        bundle, snapshot, explain_k, name, version, explain_categories, batch_customers, scores
    )


def _score_batches(
    bundle: ModelBundle,
    snapshot: pl.DataFrame,
    explain_k: int,
    name: str,
    version: str | None,
    explain_categories: int,
    batch_customers: int,
    scores: BatchScores | None,
) -> Iterator[pl.DataFrame]:
    """:func:`score_batches`' rows, made as they are asked for."""
    for i, (customers, status) in enumerate(_batches(bundle, snapshot, batch_customers)):
        known = None if scores is None else (scores.margins[i], scores.deciles[i])
        scored = _scored_batch(
            bundle, customers, explain_k, name, version, explain_categories, known
        )
        yield with_unscored(scored, status, bundle, name, version)  # in snapshot order


def score_snapshot(
    bundle: ModelBundle,
    snapshot: pl.DataFrame,
    explain_k: int = 0,
    model_name: str | None = None,
    model_version: str | None = None,
    explain_categories: int = EXPLAINED_CATEGORIES,
    batch_customers: int = BATCH_CUSTOMERS,
) -> pl.DataFrame:
    """Score every customer of a snapshot with one model.

    The snapshot is scored and explained ``batch_customers`` customers at a time, each batch's
    rows put in snapshot order on their own, so the model input rows, the reasons being worded
    and the reordering stay bounded however large the snapshot (a ranked task has a row per
    category not bought yet); deciles are ranked over every scored row first
    (:func:`batch_scores`). The table is the same for every batch size; :func:`score_batches`
    gives it a batch at a time.

    Parameters
    ----------
    bundle : ModelBundle
        The model; its ``task`` decides the rows (see :func:`models.tasks.model_frame`).
    snapshot : polars.DataFrame
        A feature snapshot (one row per customer).
    explain_k : int
        Reasons per row; 0 for none.
    model_name, model_version : str, optional
        Registry identity written to every row; default to ``bundle.metadata["registry"]``.
    explain_categories : int
        For a ranked task, rows explained per customer: its highest-scoring ones (the other rows
        get null reasons), ``explain_categories >= 1``.
    batch_customers : int
        Snapshot customers scored and explained at a time, ``>= 1``.

    Returns
    -------
    polars.DataFrame
        :data:`SCORE_COLUMNS` (see the module docstring), then the base, reason and remainder
        columns when ``explain_k > 0`` (:func:`score_schema`); a row for every snapshot customer
        outside the population, with its status.

    Raises
    ------
    ValueError
        If ``batch_customers < 1``.
    """
    batches = score_batches(
        bundle, snapshot, explain_k, model_name, model_version, explain_categories, batch_customers
    )
    return pl.concat(list(batches), how="diagonal_relaxed")


def _batches(
    bundle: ModelBundle, snapshot: pl.DataFrame, batch_customers: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Each batch's population customers and every customer's status, in snapshot order."""
    statuses = population_status(bundle.task, snapshot, bundle.metadata)
    for lo in range(0, max(snapshot.height, 1), batch_customers):
        status = statuses.slice(lo, batch_customers)
        yield snapshot.slice(lo, batch_customers).filter(status["status"] == ELIGIBLE), status


def _scored_batch(
    bundle: ModelBundle,
    customers: pl.DataFrame,
    explain_k: int,
    name: str,
    version: str | None,
    explain_categories: int,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> pl.DataFrame:
    """Score (and explain) some customers of the population: :func:`score_snapshot`'s rows.

    ``known`` is the rows' margins and task-wide deciles from :func:`batch_scores`; without it
    the margins are predicted here and the deciles rank these rows only.
    """
    x = model_rows(bundle, customers)
    margin = bundle.predict_margin(x) if known is None else known[0]
    score = apply_calibration(bundle.calibration, margin)  # the margin is predicted once
    out = score_rows(bundle, x, margin, score, name, version)
    if known is not None:
        out = out.with_columns(decile=pl.Series(known[1]))
    if explain_k > 0 and len(x) > 0:
        if get_task(bundle.task).kind == "ranked":
            rows = top_rows(
                out.get_column("customer_id").to_numpy(),
                out.get_column("score").to_numpy(),
                explain_categories,
            )
            reasons = reason_columns(bundle, x.iloc[rows], explain_k, margin=margin[rows])
            out = with_reasons(out, reasons, rows)
        else:
            reasons = reason_columns(bundle, x, explain_k, margin=margin)
            out = pl.concat([out, reasons], how="horizontal")
    return out

"""Training sets over several cutoffs, the time split and the data checks.

Only events dated on or before the training day ``D`` (``as_of``) are ever used; they are
filtered first (:func:`events_up_to`).

Cutoffs and the time split
--------------------------
With horizon ``H``, step ``s`` (``cutoff_step_days``, 30 by default) and the gap
``g = s * ceil(H / s)`` (the horizon rounded up to whole steps):

* **test** (held out for evaluation): ``t = D - H``, the latest cutoff whose label window
  ``(t, t + H]`` is fully observed. Nothing fitted ever sees it.
* **validation**: ``v = t - g``, so its labels end on or before ``t``. It is used for early
  stopping, as the Optuna objective and to fit and choose the calibration (see
  :mod:`training.calibration`): calibration is fitted on held-out *time*, never on training rows.
* **train**: ``v - g, v - g - s, v - g - 2s, ...``, at most ``n_cutoffs`` of them, each with at
  least ``min_history_days`` of events before it; their labels end on or before ``v``.

Each stage's labels end before the next stage's cutoff, as they would for a model trained on that
day. Without the gap, a training cutoff one month before the validation cutoff shares most of its
label window and customers with it, so validation scores (and so early stopping, tuning and
calibration) reward memorising those customers; on the sample data that made the validation
ROC-AUC 0.79 against 0.68 on the test cutoff. The price is history: this **time split** needs at
least ``H + 2g + min_history_days`` days (360 for a 90-day horizon).

Short histories: the customer-grouped hold-out
----------------------------------------------
With less history than that but at least ``2H + min_history_days`` days (e.g. 39 weeks of events
and a 13-week horizon), the plan falls back to the **customer** split: the training cutoffs are
``t - H, t - H - s, ...`` (their labels end by ``t``), and the last cutoff ``t = D - H`` is split
by customer (:func:`holdout_groups`): half of its customers are the validation rows, the other
half the test rows. Validation and test then share a cutoff and a season, so the held-out metrics
say how the model does on customers it never saw, not on a later month; the plan's
:meth:`CutoffPlan.describe` says so, and training prints it and writes it on the model card.

Rows
----
At each cutoff ``c`` the snapshot :func:`features.snapshot.build_snapshot` sees the events dated
on or before ``c`` (and, for a task that reads the ``value`` family, BG/NBD fitted on them alone
adds P(alive) and expected purchases); :func:`models.tasks.model_frame` turns it into model rows,
which are joined (inner) with the task's labels (:attr:`models.tasks.TaskSpec.labels`) of the
snapshot's customers the task's population admits (:attr:`models.tasks.TaskSpec.population`).
Rows are indexed by ``cutoff`` and then the task's index (``customer_id`` or
``(customer_id, category)``).

Data checks
-----------
:func:`plan_cutoffs` and :func:`check_split` raise :class:`InsufficientDataError` with a message
saying what to change from the command line (a shorter horizon, more history, more customers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import CHANNELS, EVENT_TYPES, counted
from features.rfm import RFM_SCORES, scores_among
from features.snapshot import build_snapshot
from models.clv.family import add_value_features
from models.labels import LABEL, order_categories
from models.rules import category_inputs
from models.tasks import FRAME_ROWS, get_task, model_feature_names, model_frame

__all__ = [
    "CutoffPlan",
    "InsufficientDataError",
    "SplitMode",
    "TaskData",
    "build_task_data",
    "check_split",
    "compact_events",
    "eligible_customers",
    "events_up_to",
    "holdout_groups",
    "label_rate",
    "missing_summary",
    "plan_cutoffs",
    "population_batches",
    "population_snapshot",
    "sample_customers",
]


SplitMode = Literal["time", "customer"]
"""``time``: validation and test are later cutoffs; ``customer``: the last one split by customer."""


class InsufficientDataError(ValueError):
    """The data cannot support the requested training; the message says what to change."""


def events_up_to(events: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Keep the events dated on or before ``as_of`` (UTC).

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    as_of : datetime.date
        The last day that may be used.

    Returns
    -------
    polars.DataFrame
        The events with ``date(ts) <= as_of``: ``events`` itself when none is later, so a
        training day at the end of the data does not copy every event.
    """
    last = events.select(pl.col("ts").max().dt.date()).item()
    if last is None or last <= as_of:
        return events
    return events.filter(pl.col("ts").dt.date() <= as_of)


def compact_events(events: pl.DataFrame) -> pl.DataFrame:
    """Hold ``event_type`` and ``channel`` as enums of the contract's values, one byte a row.

    As text every row of each costs 16 bytes (about 1 GB a column at 60M events, a million
    customers); the features, labels and rules only compare them with the contract's values,
    which an enum does alike. The other columns are shared, not copied.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events (their values are the contract's).

    Returns
    -------
    polars.DataFrame
        The same rows; ``event_type`` as ``Enum(EVENT_TYPES)``, ``channel`` as
        ``Enum(CHANNELS)``.
    """
    return events.with_columns(
        pl.col("event_type").cast(pl.Enum(list(EVENT_TYPES))),
        pl.col("channel").cast(pl.Enum(list(CHANNELS))),
    )


@dataclass(frozen=True)
class CutoffPlan:
    """The cutoffs of one training run (see the module docstring).

    Parameters
    ----------
    train : tuple of datetime.date
        Training cutoffs, oldest first.
    validation : datetime.date
        The validation cutoff.
    test : datetime.date
        The held-out test cutoff (the validation cutoff too in the ``customer`` mode).
    mode : {"time", "customer"}, default "time"
        The split: later cutoffs held out, or the last cutoff's customers split in two.
    history_days : int, default 0
        Days of events from the first event to the training day.
    time_split_days : int, default 0
        Least history the time split needs (``H + 2g + min_history_days``).
    """

    train: tuple[date, ...]
    validation: date
    test: date
    mode: SplitMode = "time"
    history_days: int = 0
    time_split_days: int = 0

    @property
    def all(self) -> tuple[date, ...]:
        """Every distinct cutoff, oldest first."""
        return tuple(dict.fromkeys((*self.train, self.validation, self.test)))

    def describe(self) -> str:
        """Say in one sentence which split is used and why.

        Returns
        -------
        str
            The mode, the history and the minimum history of the full time split.
        """
        if self.mode == "time":
            return (
                f"time split: validation cutoff {self.validation}, held-out test cutoff "
                f"{self.test} ({self.history_days:,} days of history; the time split needs "
                f"{self.time_split_days:,})"
            )
        return (
            f"customer-grouped hold-out: {self.history_days:,} days of history is less than the "
            f"{self.time_split_days:,} days the full time split needs, so validation and test are "
            f"two halves of the customers at the last cutoff {self.test}, not a later month"
        )


def plan_cutoffs(
    first_day: date,
    as_of: date,
    horizon: int,
    *,
    step_days: int = 30,
    n_cutoffs: int = 6,
    min_history_days: int = 90,
) -> CutoffPlan:
    """Place the test, validation and training cutoffs.

    Parameters
    ----------
    first_day : datetime.date
        Day of the first event.
    as_of : datetime.date
        Training day ``D``; labels may use events up to it.
    horizon : int
        Label window ``H`` in days.
    step_days : int, default 30
        Days between cutoffs.
    n_cutoffs : int, default 6
        Most training cutoffs to use.
    min_history_days : int, default 90
        Days of events a cutoff needs before it.

    Returns
    -------
    CutoffPlan
        The cutoffs: the time split when the history allows it, else the customer-grouped
        hold-out (see the module docstring).

    Raises
    ------
    InsufficientDataError
        If the history is shorter than ``2H + min_history_days`` days (one training cutoff and
        the last cutoff need it); the message names both minimums.
    ValueError
        If an argument is out of range.
    """
    if horizon < 1 or step_days < 1 or n_cutoffs < 1 or min_history_days < 0:
        raise ValueError("horizon, step_days and n_cutoffs must be positive")
    history = (as_of - first_day).days
    gap = step_days * math.ceil(horizon / step_days)
    time_split = horizon + 2 * gap + min_history_days
    least = 2 * horizon + min_history_days
    test = as_of - timedelta(days=horizon)
    earliest = first_day + timedelta(days=min_history_days)

    def train_before(latest: date) -> tuple[date, ...]:
        back = (latest - timedelta(days=step_days * k) for k in range(n_cutoffs - 1, -1, -1))
        return tuple(c for c in back if c >= earliest)

    validation = test - timedelta(days=gap)
    train = train_before(validation - timedelta(days=gap))
    if train:
        return CutoffPlan(train, validation, test, "time", history, time_split)
    train = train_before(test - timedelta(days=horizon))
    if train:
        return CutoffPlan(train, test, test, "customer", history, time_split)
    raise InsufficientDataError(
        f"history is {history} days ({first_day} to {as_of}); training needs at least {least} "
        f"days = 2 x horizon {horizon} (the training labels, then the held-out labels) + "
        f"{min_history_days} (history before the first training cutoff), with validation and "
        f"test two halves of the customers at the last cutoff; the full time split needs "
        f"{time_split} days = horizon {horizon} (test labels) + {gap} (validation labels, "
        f"ending by the test cutoff) + {gap} (training labels, ending by the validation cutoff) "
        f"+ {min_history_days}: {_shorter_horizon(history, min_history_days, least)}"
    )


def _shorter_horizon(history: int, min_history_days: int, least: int) -> str:
    """Say what fits ``history`` days: the largest horizon that does, or more history alone.

    A horizon ``H`` fits when ``2H + min_history_days`` days do (:func:`plan_cutoffs`); with
    ``min_history_days`` or less of history none does, and "a shorter --horizon" could not help.
    """
    fits = (history - min_history_days) // 2
    if fits < 1:
        return f"no horizon fits {history:,} days: use more history (at least {least:,} days)"
    return f"use --horizon {fits:,} or shorter, or more history"


def holdout_groups(customer_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Split customers in two halves for the customer-grouped hold-out.

    Parameters
    ----------
    customer_ids : numpy.ndarray
        The customer of each row; all of a customer's rows fall in the same half.
    seed : int, default 0
        Seed of the random assignment.

    Returns
    -------
    numpy.ndarray
        Boolean, true for the rows of the test half (the others validate).
    """
    unique, codes = np.unique(np.asarray(customer_ids), return_inverse=True)
    halves = np.random.default_rng(seed).permutation(len(unique)) % 2 == 1
    return halves[codes]


@dataclass
class TaskData:
    """Model rows and labels of one task over some cutoffs.

    Parameters
    ----------
    X : pandas.DataFrame
        Model inputs (float), indexed by ``cutoff`` then the task's index.
    y : numpy.ndarray
        0/1 labels, aligned with ``X``.
    weight : numpy.ndarray
        Row weights: 1, or ``1 / rate`` for negatives kept at a sampling ``rate``.
    rates : dict of datetime.date to float, optional
        The rate each cutoff's population was sampled at (:func:`sample_customers`, 1.0 when
        whole; :func:`build_task_data` fills it): a row weighing more than ``1 / rate`` was
        sampled by the row cap (:meth:`subsample`) as well.
    """

    X: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray
    rates: dict[date, float] = field(default_factory=dict)

    @property
    def cutoffs(self) -> np.ndarray:
        """The cutoff (``datetime.date``) of every row."""
        return self.X.index.get_level_values("cutoff").to_numpy()

    def at(self, cutoffs: tuple[date, ...] | list[date]) -> TaskData:
        """Return the rows of the given cutoffs.

        Parameters
        ----------
        cutoffs : sequence of datetime.date
            Cutoffs to keep.

        Returns
        -------
        TaskData
            The subset.
        """
        return self.where(np.isin(self.cutoffs, np.asarray(list(cutoffs), dtype=object)))

    def where(self, mask: np.ndarray) -> TaskData:
        """Return the rows where ``mask`` is true.

        Parameters
        ----------
        mask : numpy.ndarray
            Boolean, one per row.

        Returns
        -------
        TaskData
            The subset.
        """
        return TaskData(
            X=self.X.loc[mask], y=self.y[mask], weight=self.weight[mask], rates=self.rates
        )

    def subsample(self, max_rows: int, seed: int = 0) -> TaskData:
        """Keep about ``max_rows`` rows, sampling whole customers stratified by label, weighted.

        Customers are the unit: a kept customer keeps every row (for cross-sell, each of its
        candidate categories), so a sampled cutoff still ranks categories within a customer.
        Customers are split in two strata, those with a positive row and those without; the
        stratum with fewer rows is kept whole and the other's customers are sampled to fill
        ``max_rows``. When even the smaller stratum fills half of ``max_rows`` (churn among
        lapsing customers), every customer is sampled at one rate.

        Parameters
        ----------
        max_rows : int
            Rows to keep about; nothing is sampled when there are no more rows than that.
        seed : int, default 0
            Seed of the sample.

        Returns
        -------
        TaskData
            The subset; a sampled customer's rows are weighted ``1 / rate`` (times their weight)
            so weighted sums (losses, positive rates) estimate those of all rows.
        """
        n = len(self.y)
        if n <= max_rows:
            return self
        codes, uniques = pd.factorize(self.X.index.get_level_values("customer_id"))
        rows = np.bincount(codes, minlength=len(uniques))
        positive = np.bincount(codes, weights=self.y, minlength=len(uniques)) > 0
        positive_rows = int(rows[positive].sum())
        rare = positive if positive_rows <= n - positive_rows else ~positive
        n_rare = int(rows[rare].sum())
        if n_rare >= max_rows // 2:
            rate = np.full(len(uniques), max_rows / n)
        else:
            rate = np.where(rare, 1.0, (max_rows - n_rare) / (n - n_rare))
        kept = np.random.default_rng(seed).random(len(uniques)) < rate
        keep, row_rate = kept[codes], rate[codes]
        weight = (self.weight / row_rate)[keep]
        return TaskData(X=self.X.loc[keep], y=self.y[keep], weight=weight, rates=self.rates)


def sample_customers(
    population: pl.DataFrame, max_customers: int | None, seed: int = 0
) -> tuple[pl.DataFrame, float]:
    """Keep a uniform random sample of about ``max_customers`` customers of a population.

    Parameters
    ----------
    population : polars.DataFrame
        One row per customer (``customer_id`` first).
    max_customers : int, optional
        Customers to keep about; ``None`` (or a population no larger) keeps everyone.
    seed : int, default 0
        Seed of the sample.

    Returns
    -------
    population : polars.DataFrame
        The kept rows, in their order.
    rate : float
        The sampling rate (1.0 when nothing was sampled). Every customer is kept with the same
        probability whatever its label, so unweighted metrics and calibration on the sample
        estimate those of the whole population; weights ``1 / rate`` keep weighted sums on the
        whole population's scale.
    """
    n = population.height
    if max_customers is None or n <= max_customers:
        return population, 1.0
    rate = max_customers / n
    keep = np.random.default_rng(seed).random(n) < rate
    return population.filter(pl.Series(keep)), rate


_RFM_MEASURES: tuple[str, ...] = tuple(
    dict.fromkeys(
        ["orders_total"] + [c for m, _ in RFM_SCORES.values() for c in m.meta.root_names()]
    )
)
"""Snapshot columns the RFM scores rank every customer on (:func:`features.rfm.scores_among`)."""


def _seen_customers(events: pl.DataFrame, cutoff: date) -> int:
    """Count the customers with an event on or before ``cutoff`` (its snapshot's rows)."""
    seen = events.lazy().filter(pl.col("ts").dt.date() <= cutoff)
    return int(seen.select(pl.col("customer_id").n_unique()).collect().item())


def eligible_customers(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    cutoff: date,
    categories: list[str],
    active_days: int,
    buckets: int = 1,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Find a task's population at a cutoff, snapshotting the customers a bucket at a time.

    Every customer's snapshot is built, but only ``1 / buckets`` of them at once (customers
    split by a hash of ``customer_id``, all of a customer's events in one bucket), and only the
    population and the RFM measures are kept: the memory of one snapshot build falls with the
    number of buckets, while the population is the one :attr:`models.tasks.Population.select`
    takes from the whole snapshot.

    Parameters
    ----------
    events, customers, task, cutoff, categories, active_days
        As for :func:`population_snapshot`.
    buckets : int, default 1
        Pieces the customers are built in.

    Returns
    -------
    population : polars.DataFrame
        ``customer_id`` of the eligible customers, sorted (the snapshot's order).
    measures : polars.DataFrame
        ``customer_id`` and the measures the RFM scores rank (:data:`features.rfm.RFM_SCORES`)
        of every customer of the snapshot, for :func:`features.rfm.scores_among`.
    """
    spec = get_task(task)
    # the bucket of each event hashed again by every filter, not held beside the events (a
    # UInt64 a row: 480 MB at 60M events)
    code = pl.col("customer_id").hash() % max(buckets, 1)
    population, measures = [], []
    for bucket in range(max(buckets, 1)):
        part = events.filter(code == bucket) if buckets > 1 else events
        snapshot = build_snapshot(part, customers, cutoff, categories=categories)
        population.append(spec.population.select(snapshot, active_days))
        measures.append(snapshot.select("customer_id", *_RFM_MEASURES))
        del part, snapshot
    return pl.concat(population).sort("customer_id"), pl.concat(measures)


def population_snapshot(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    cutoff: date,
    categories: list[str],
    active_days: int,
    max_customers: int | None = None,
    seed: int = 0,
) -> tuple[pl.DataFrame, float]:
    """Snapshot a task's population at a cutoff, sampled before its features are built.

    With more customers seen by the cutoff than ``max_customers``, the population is found a
    bucket of about ``max_customers`` customers at a time (:func:`eligible_customers`), sampled
    (:func:`sample_customers`, the same sample as from the whole snapshot), and the snapshot is
    built from the sampled customers' events alone; their RFM scores are then ranked among every
    customer (:func:`features.rfm.scores_among`). So no snapshot of every customer is ever held
    and the rows are those of the whole snapshot's sampled customers. Otherwise the whole
    snapshot is built and its population kept.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    customers : polars.DataFrame, optional
        The customers table.
    task : str
        A registered task.
    cutoff : datetime.date
        The cutoff.
    categories : list of str
        Sanitised categories of the snapshot's per-category columns.
    active_days : int
        Activity window of the population.
    max_customers : int, optional
        Customers to keep about (``None``: everyone).
    seed : int, default 0
        Seed of the sample.

    Returns
    -------
    snapshot : polars.DataFrame
        :func:`features.snapshot.build_snapshot` rows of the kept customers, in its order.
    rate : float
        The sampling rate (:func:`sample_customers`).
    """
    spec = get_task(task)
    seen = _seen_customers(events, cutoff) if max_customers is not None else 0
    if max_customers is None or seen <= max_customers:
        snapshot = build_snapshot(events, customers, cutoff, categories=categories)
        population, rate = sample_customers(
            spec.population.select(snapshot, active_days), max_customers, seed
        )
        return snapshot.join(population, on="customer_id", how="semi", maintain_order="left"), rate
    population, measures = eligible_customers(
        events, customers, task, cutoff, categories, active_days, math.ceil(seen / max_customers)
    )
    population, rate = sample_customers(population, max_customers, seed)
    kept = events.filter(pl.col("customer_id").is_in(population["customer_id"].implode()))
    snapshot = build_snapshot(kept, customers, cutoff, categories=categories)
    del kept
    return scores_among(snapshot, measures), rate


def _labelled(
    X: pd.DataFrame,  # noqa: N803
    labels: pd.DataFrame,
    cutoff: date,
    weight: float | pd.Series,
) -> TaskData:
    """Join a cutoff's model rows with their labels (inner) and weights, under a ``cutoff`` level.

    ``weight`` is one weight for every row, or the weights of (at least) the rows indexed like
    the result.
    """
    label = labels.set_index(list(X.index.names))[LABEL]
    labelled = X.index.isin(label.index)
    if not labelled.all():  # a copy of the rows only when some are dropped
        X = X.loc[labelled]  # noqa: N806
    y = label.reindex(X.index).to_numpy(dtype=np.int8)
    # the cutoff put in front of the index without copying the inputs (pd.concat would)
    levels = [X.index.get_level_values(i) for i in range(X.index.nlevels)]
    cutoffs = pd.Index(np.full(len(X), cutoff, dtype=object), dtype=object)
    index = pd.MultiIndex.from_arrays([cutoffs, *levels], names=["cutoff", *X.index.names])
    X = X.set_axis(index)  # noqa: N806
    weights = (
        weight.reindex(X.index).to_numpy()
        if isinstance(weight, pd.Series)
        else np.full(len(X), weight)
    )
    return TaskData(X=X, y=y, weight=weights)


def build_task_data(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    cutoffs: tuple[date, ...] | list[date],
    horizon: int,
    *,
    categories: list[str] | None = None,
    active_days: int = 365,
    feature_names: list[str] | None = None,
    max_rows_per_cutoff: int | None = None,
    max_customers: int | None = None,
    seed: int = 0,
    value_inputs: bool | None = None,
) -> tuple[TaskData, list[str]]:
    """Snapshot every cutoff, turn it into model rows and join the labels.

    Cutoffs are built one at a time (the latest first when the feature names come from it): only
    one cutoff's snapshot is in memory at once, cut to the task's population (and to the sampled
    customers) before it becomes model rows, so memory grows with the rows kept, not with the
    number of cutoffs.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events, already restricted to the training day (:func:`events_up_to`).
    customers : polars.DataFrame, optional
        The customers table.
    task : str
        A registered task (:func:`models.tasks.get_task`).
    cutoffs : sequence of datetime.date
        Cutoff days.
    horizon : int
        Label window in days.
    categories : list of str, optional
        Sanitised categories: the snapshot's per-category columns and the cross-sell targets;
        defaults to :func:`models.labels.order_categories` of ``events``.
    active_days : int, default 365
        Activity window of the task's population (:class:`models.tasks.Population`).
    feature_names : list of str, optional
        Model inputs; defaults to :func:`models.tasks.model_feature_names` of the latest cutoff's
        snapshot.
    max_rows_per_cutoff : int, optional
        Cap on the rows of one cutoff (:meth:`TaskData.subsample`: whole customers, stratified
        by whether they have a positive row, weighted; for cross-sell a cutoff has a row per
        customer and candidate category), drawn from the rows' keys and labels before their
        inputs are made, so only the kept customers' rows are. ``None`` keeps every row.
    max_customers : int, optional
        Cap on the customers of one cutoff's population, applied first (:func:`sample_customers`:
        uniform, all rows of a kept customer, weights ``1 / rate``). ``None`` keeps everyone.
    seed : int, default 0
        Seed of that sampling (cutoff ``i`` uses ``seed + i``).
    value_inputs : bool, optional
        Whether the model reads the ``value`` family; defaults to the spec's. When it does, each
        cutoff's snapshot gets BG/NBD's P(alive) and expected purchases fitted on the events up
        to that cutoff only (:func:`models.clv.family.add_value_features`).

    Returns
    -------
    data : TaskData
        Rows of every cutoff (in the order of ``cutoffs``), with each cutoff's population
        sampling rate (:attr:`TaskData.rates`).
    feature_names : list of str
        The model inputs, in column order.
    """
    spec = get_task(task)
    cats = order_categories(events) if categories is None else categories
    reads_value = spec.value_inputs if value_inputs is None else value_inputs
    latest = max(cutoffs)
    order = sorted(range(len(cutoffs)), key=lambda i: cutoffs[i] != latest)  # latest first
    names = feature_names
    parts: dict[int, TaskData] = {}
    for i in order:
        cutoff = cutoffs[i]
        snapshot, rate = population_snapshot(
            events, customers, task, cutoff, cats, active_days, max_customers, seed + i
        )
        if reads_value:
            snapshot = add_value_features(snapshot, events, cutoff)[0]
        if names is None:
            names = model_feature_names(task, snapshot, cats, reads_value)
        population = snapshot.select("customer_id")
        labels_frame = spec.labels(events, cutoff, horizon, population, cats).to_pandas()
        weight: float | pd.Series = 1 / rate
        if max_rows_per_cutoff is not None:
            # the cap draws whole customers from the rows' keys and labels alone, so only the kept
            # customers' rows are made (cross-sell: a row per customer and candidate category)
            keys = _labelled(model_frame(task, snapshot, [], cats), labels_frame, cutoff, weight)
            kept = keys.subsample(max_rows_per_cutoff, seed=seed + i)
            if kept is not keys:
                ids = kept.X.index.get_level_values("customer_id").unique().to_list()
                snapshot = snapshot.filter(pl.col("customer_id").is_in(pl.Series(ids).implode()))
                weight = pd.Series(kept.weight, index=kept.X.index)
            del keys, kept
        stats = (
            category_inputs(events, cutoff, cats, horizon, spec.popularity_window_days)
            if spec.kind == "ranked"
            else None
        )
        X = model_frame(task, snapshot, names, cats, stats)  # noqa: N806
        del snapshot  # the next cutoff's snapshot is built without this one in memory
        part = _labelled(X, labels_frame, cutoff, weight)
        part.rates = {cutoff: rate}
        del X, labels_frame
        parts[i] = part
    ordered = [parts[i] for i in range(len(cutoffs))]
    if len(ordered) == 1:  # one cutoff (a held-out one): its rows, not a copy of them
        return ordered[0], names or []
    data = TaskData(
        X=pd.concat([p.X for p in ordered]),
        y=np.concatenate([p.y for p in ordered]),
        weight=np.concatenate([p.weight for p in ordered]),
        rates={c: r for p in ordered for c, r in p.rates.items()},
    )
    return data, names or []


def label_rate(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    cutoff: date,
    horizon: int,
    categories: list[str],
    active_days: int,
    bucket_customers: int | None = None,
) -> float:
    """Positive rate of a task's labels at one cutoff, over its population.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; the label window ``(cutoff, cutoff + horizon]`` must be observed.
    customers : polars.DataFrame, optional
        The customers table.
    task : str
        A registered task.
    cutoff : datetime.date
        The cutoff.
    horizon : int
        Label window in days.
    categories : list of str
        Candidate categories (ranked tasks).
    active_days : int
        Activity window of the population.
    bucket_customers : int, optional
        Snapshot about that many customers at a time (:func:`eligible_customers`); ``None``:
        all at once. The population, and so the rate, is the same.

    Returns
    -------
    float
        Mean label (NaN when the population is empty).
    """
    spec = get_task(task)
    seen = _seen_customers(events, cutoff) if bucket_customers is not None else 0
    buckets = math.ceil(seen / bucket_customers) if bucket_customers is not None else 1
    population, _ = eligible_customers(
        events, customers, task, cutoff, categories, active_days, buckets
    )
    labels = spec.labels(events, cutoff, horizon, population, categories)[LABEL]
    return float(labels.mean()) if len(labels) else float("nan")  # type: ignore[arg-type]


def population_batches(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    cutoff: date,
    feature_names: list[str],
    categories: list[str],
    active_days: int,
    max_customers: int | None = None,
    seed: int = 0,
    horizon: int | None = None,
    batch_rows: int = FRAME_ROWS,
) -> Iterator[pd.DataFrame]:
    """Model rows of a task's population at a cutoff whose labels are not known yet, in batches.

    The population's snapshot is built once; its model rows are made about ``batch_rows`` at a
    time (whole customers: for a ranked task one row per customer and candidate category), so
    only one batch of rows is held beside it. A ranked task's category statistics are computed
    once, over every customer's events, and read by every batch: the batches are the rows of one
    :func:`models.tasks.model_frame` call on the whole snapshot, cut by customer, in its order.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events (only those up to ``cutoff`` are read).
    customers : polars.DataFrame, optional
        The customers table.
    task : str
        A registered task.
    cutoff : datetime.date
        The cutoff (e.g. the training day, the first cutoff the model scores).
    feature_names : list of str
        The model's inputs.
    categories : list of str
        Candidate categories (ranked tasks).
    active_days : int
        Activity window of the population.
    max_customers : int, optional
        Keep a uniform random sample of about that many eligible customers
        (:func:`population_snapshot`: sampled before their features are built); ``None`` keeps
        everyone.
    seed : int, default 0
        Seed of that sample.
    horizon : int, optional
        Label window in days: a ranked task's category statistics at ``cutoff``
        (:func:`models.rules.category_inputs`) need it; without it their inputs are missing.
    batch_rows : int, default :data:`models.tasks.FRAME_ROWS`
        Rows of a batch, about: ``batch_rows // len(categories)`` customers for a ranked task,
        ``batch_rows`` customers otherwise.

    Yields
    ------
    pandas.DataFrame
        :func:`models.tasks.model_frame` rows of the next customers of the eligible (sampled)
        population; at least one batch, empty when the population is.
    """
    spec = get_task(task)
    ranked = spec.kind == "ranked"
    snapshot, _ = population_snapshot(
        events, customers, task, cutoff, categories, active_days, max_customers, seed
    )
    stats = (
        category_inputs(events, cutoff, categories, horizon, spec.popularity_window_days)
        if ranked and horizon is not None
        else None
    )
    step = max(1, batch_rows // max(1, len(categories)) if ranked else batch_rows)
    for lo in range(0, max(snapshot.height, 1), step):
        yield model_frame(task, snapshot.slice(lo, step), feature_names, categories, stats)


def check_split(
    name: str,
    y: np.ndarray,
    cutoffs: tuple[date, ...] | list[date],
    *,
    min_rows: int,
    min_positives: int,
    max_cutoffs: int | None = None,
    more_customers: Callable[[int | None], str] | None = None,
) -> None:
    """Stop when a split has too few rows, positives or negatives.

    The message says what ``guanxi train`` lets a user change: more customers (``more_customers``
    says how), more history, the ``--horizon`` for too few positives or negatives; never the
    minimums, which no option sets.

    Parameters
    ----------
    name : str
        Split name used in the message (``"train"``, ``"validation"``, ``"test"``).
    y : numpy.ndarray
        The split's labels.
    cutoffs : sequence of datetime.date
        The split's cutoffs (for the message).
    min_rows : int
        Least number of rows.
    min_positives : int
        Least number of positive and of negative labels.
    max_cutoffs : int, optional
        The most cutoffs the split takes (the training split's ``n_cutoffs``): with fewer, more
        history adds cutoffs, and the message on too few rows says so.
    more_customers : callable, optional
        Says how the split gets more customers, as the caller knows it: e.g. a higher
        ``--max-customers`` when that option sampled them (:func:`training.train.train_task`).
        Called only for a refusal, with the shortage it explains: None for too few rows, the
        label (1 or 0) for too few positives or negatives. None: "use the events of more
        customers".

    Raises
    ------
    InsufficientDataError
        Naming the split, its cutoffs, the count and the threshold.
    """
    days = ", ".join(str(c) for c in cutoffs)
    positives = int(np.sum(y))
    negatives = len(y) - positives

    def more_of(label: int | None) -> str:
        if more_customers is None:
            return "use the events of more customers"
        return more_customers(label)

    if len(y) < min_rows:
        more = more_of(None)
        if max_cutoffs is not None and len(cutoffs) < max_cutoffs:
            more += (
                f", or more history ({counted(len(cutoffs), 'cutoffs')} of up to {max_cutoffs:,})"
            )
        raise InsufficientDataError(
            f"the {name} split (cutoff {days}) has {counted(len(y), 'labelled rows')}; need at "
            f"least {min_rows:,}: {more}"
        )
    for label, kind, count in ((1, "positive", positives), (0, "negative", negatives)):
        if count < min_positives:
            raise InsufficientDataError(
                f"the {name} split (cutoff {days}) has {counted(count, f'{kind} labels')} among "
                f"{counted(len(y), 'rows')}; need at least {min_positives:,}: use a different "
                f"--horizon, or {more_of(label)}"
            )


def missing_summary(X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
    """Share of missing values per feature, for features with any.

    Parameters
    ----------
    X : pandas.DataFrame
        Model inputs.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``missing`` (count), ``missing_share``, most missing first.
    """
    counts = X.isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    return pd.DataFrame(
        {
            "feature": counts.index.to_list(),
            "missing": counts.to_numpy(),
            "missing_share": counts.to_numpy() / max(len(X), 1),
        }
    )

"""Task specifications: one declaration per task, the registry, and the rows every model reads.

A task is declared once, by a :class:`TaskSpec` in its own module of :mod:`models.specs` (the
module also holds the task's label function). The spec carries everything that differs between
tasks: its name and title, its :data:`Kind`, who is eligible to be scored (:class:`Population`),
the label function, the baseline rules it is graded against, how it is evaluated and graded, the
phrase a reason uses and its intended use. Training, scoring, explanation, the API and the reviewer
pages iterate over :func:`task_specs` and read these fields; none of them branches on a task's
name. Adding a task is adding one module to :mod:`models.specs`.

The registry imports :mod:`models.specs` lazily, on the first call of :func:`get_task`,
:func:`task_specs` or :func:`task_names`, so this module and the spec modules can import each
other's names without a cycle.

Kinds
-----
``binary``
    One row per customer; the model scores a probability.
``ranked``
    One row per (customer, candidate category) for every category the customer has *not* bought
    yet (``cat_{category}_orders`` is 0 or missing); the model scores a probability per category
    and ranks them per customer.
``regression``
    One row per customer; the model predicts a value (e.g. customer value), not a probability.

Model inputs
------------
The customer part of a row is :func:`features.snapshot.model_input_columns`: the registered
features with ``model_input=True``, then the numeric columns the customers table passes through,
in snapshot order (identifiers, ``as_of`` and strings such as ``rfm_segment`` are not inputs).
Ranked rows add :data:`CANDIDATE_INPUTS`, what is known of the candidate category itself and of
its affinity with what the customer bought, from the statistics of all customers up to the
cutoff (:func:`models.rules.category_inputs`): its popularity, the affinity rule's own score (the
best share of a bought category's buyers who also bought it; for a customer who bought nothing,
the rule's popularity over its window, :func:`models.rules.affinity_fallback`), the sum of those
shares over the categories bought, the customer's spend share in the categories bought with it
(each weighted by that share), and the category's season (its share of orders in last year's
label window against the year); then one indicator column per candidate category,
``target_{category}`` (1.0 for the row's category, else 0.0). Training computes the statistics
at each cutoff; a model carries those of its training day in ``metadata["category_inputs"]`` for
scoring.

:func:`model_frame` is what training, batch scoring and serving all call, so the model sees the
same columns everywhere. It never imports :mod:`training`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal, Protocol, get_args

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import (
    CATEGORY_FEATURE_PREFIX,
    Feature,
    feature_info,
    is_feature,
    quoted_near,
)
from features.snapshot import completion_columns, lacking_categories, model_input_columns
from models.estimators import BINARY_OBJECTIVE, OBJECTIVES, is_ranking
from models.metrics import BINARY_METRICS, GRADE_RULES, Evaluator, binary_evaluation, grade
from models.rules import (
    POPULARITY_WINDOW_DAYS,
    BaselineRule,
    CategoryAffinityRule,
    affinity_fallback,
)

__all__ = [
    "ACTIVE_BUYERS",
    "BOUGHT_SUFFIX",
    "CANDIDATE_FROM_PURCHASES",
    "CANDIDATE_INPUTS",
    "CATEGORY_INPUTS_KEY",
    "DEFAULT_ACTIVE_DAYS",
    "ELIGIBLE",
    "EVERY_CUSTOMER",
    "GRADED_BASELINE",
    "KINDS",
    "NO_CANDIDATES",
    "OUTSIDE",
    "TARGET_PREFIX",
    "VALUE_GROUP",
    "Baseline",
    "Kind",
    "LabelFunction",
    "Population",
    "RuleBacking",
    "TaskSpec",
    "completed_categories",
    "get_task",
    "model_feature_names",
    "model_frame",
    "population_status",
    "register",
    "retention_task",
    "snapshot_categories",
    "task_names",
    "task_specs",
]

Kind = Literal["binary", "ranked", "regression"]
"""What a task's model outputs, and so which rows it reads (see the module docstring)."""

KINDS: Final[tuple[str, ...]] = get_args(Kind)

BOUGHT_SUFFIX: Final = "_orders"
"""A customer has bought category ``c`` when ``cat_{c}_orders`` is positive."""

TARGET_PREFIX: Final = "target_"
"""Ranked tasks' indicator columns are named ``target_{category}``."""

CANDIDATE_INPUTS: Final[tuple[Feature, ...]] = (
    Feature(
        "candidate_popularity",
        "products",
        "buyers who bought the category ranked: {value}",
        unit="ratio",
    ),
    Feature(
        "candidate_affinity",
        "products",
        # the rule's score: for a customer who bought none, its popularity over the rule's window
        # (models.rules.affinity_fallback), which "buyers of a category this customer bought"
        # misdescribed, the only reason of a rule-backed version
        "buyers of a category this customer bought who also bought the one ranked (for a "
        "customer who bought none: recent buyers who bought it): {value}",
        unit="ratio",
    ),
    Feature(
        "candidate_affinity_sum",
        "products",
        "affinity of the category ranked with everything the customer bought: {value}",
        unit="score",
    ),
    Feature(
        "candidate_related_spend",
        "products",
        "spend in categories bought with the one ranked (share-weighted): {value}",
        unit="score",
    ),
    Feature(
        "candidate_season",
        "products",
        "season index of the category ranked (1 = its usual share of orders): {value}",
        unit="score",
    ),
)
"""Inputs of a ranked task's row about the candidate category (see the module docstring); the
explanation words them with these descriptions."""

CANDIDATE_FROM_PURCHASES: Final[tuple[str, ...]] = (
    "candidate_affinity",
    "candidate_affinity_sum",
    "candidate_related_spend",
)
"""The :data:`CANDIDATE_INPUTS` worked out from the customer's ``cat_{category}_*`` columns (the
others describe the candidate category alone)."""

CATEGORY_INPUTS_KEY: Final = "category_inputs"
"""Key of a ranked model's metadata holding :func:`models.rules.category_inputs` of its training
day (what :func:`model_frame` turns into :data:`CANDIDATE_INPUTS` when scoring)."""

ELIGIBLE: Final = "eligible"
"""Status of a customer a task scores (see :meth:`Population.status`)."""

VALUE_GROUP: Final = "value"
"""Feature group of the value family, which a model reads only where its spec says so."""

NO_CANDIDATES: Final = "no_candidates"
"""Status of an eligible customer a ranked task has nothing to rank for (every category bought)."""

OUTSIDE: Final = "outside"
"""Status of a customer outside the population whom none of its ``outside`` statuses names."""

DEFAULT_ACTIVE_DAYS: Final = 365
"""Activity window of a population when a model records none."""

_NO_CANDIDATES_NOTE: Final = "has bought every category already: nothing left to rank"

GRADED_BASELINE: Final = "rule"
"""Metrics key of the baseline a model is graded against (a spec's first baseline)."""


class LabelFunction(Protocol):
    """Labels of one task at one cutoff: pure Polars, events in, labels out."""

    def __call__(
        self,
        events: pl.DataFrame,
        cutoff: date,
        horizon: int,
        population: pl.DataFrame,
        categories: Sequence[str],
    ) -> pl.DataFrame:
        """Return ``customer_id`` (and ``category`` for ranked tasks) and the Int8 ``label``."""
        ...


@dataclass(frozen=True, eq=False)
class Population:
    """Who a task scores at a cutoff, as an expression on the snapshot, and what the others are.

    Parameters
    ----------
    eligible : callable
        ``eligible(active_days)`` returns a boolean expression on snapshot columns, true for the
        customers the task scores.
    outside : tuple of (str, callable)
        Statuses of the customers outside, checked in order: ``(status, condition)`` where
        ``condition(active_days)`` is a boolean expression on snapshot columns.
    description : str
        Who is eligible, in words; ``{active_days}`` is filled in.
    notes : tuple of (str, str)
        ``(status, sentence)``: why a customer with that status is not scored, and what they are
        instead, as pages and the API say it; ``{active_days}`` is filled in.
    default_active_days : int, default :data:`DEFAULT_ACTIVE_DAYS`
        The activity window used for a model that recorded none (see :meth:`active_days_of`).
    """

    eligible: Callable[[int], pl.Expr]
    outside: tuple[tuple[str, Callable[[int], pl.Expr]], ...] = ()
    description: str = "every customer with an event on or before the cutoff"
    notes: tuple[tuple[str, str], ...] = ()
    default_active_days: int = DEFAULT_ACTIVE_DAYS

    @property
    def uses_active_days(self) -> bool:
        """Whether the activity window narrows the population: its filter reads ``active_days``.

        Read from the expression itself (its text at two windows), not from
        :attr:`description`, which may name the window or not.
        """
        return str(self.eligible(1)) != str(self.eligible(2))

    def select(self, snapshot: pl.DataFrame, active_days: int) -> pl.DataFrame:
        """Return the eligible customers of a snapshot.

        Parameters
        ----------
        snapshot : polars.DataFrame
            A feature snapshot with ``customer_id``.
        active_days : int
            The activity window (``TrainConfig.active_days``).

        Returns
        -------
        polars.DataFrame
            One column ``customer_id``, in snapshot order.
        """
        return snapshot.filter(self.eligible(active_days)).select("customer_id")

    def status(self, active_days: int) -> pl.Expr:
        """Status of each snapshot row: :data:`ELIGIBLE` or the first ``outside`` that holds.

        Parameters
        ----------
        active_days : int
            The activity window.

        Returns
        -------
        polars.Expr
            A String expression named ``status`` (:data:`OUTSIDE` when no status applies).
        """
        statuses = ((ELIGIBLE, self.eligible), *self.outside)
        return pl.coalesce(
            *(pl.when(condition(active_days)).then(pl.lit(name)) for name, condition in statuses),
            pl.lit(OUTSIDE),
        ).alias("status")

    def note(self, status: str, active_days: int) -> str | None:
        """Say why a customer with ``status`` is not scored (None for :data:`ELIGIBLE`).

        Parameters
        ----------
        status : str
            A status of :meth:`status`, or :data:`NO_CANDIDATES`.
        active_days : int
            The activity window.

        Returns
        -------
        str or None
            E.g. ``"no order in the last 365 days: a win-back candidate"``.
        """
        if status == ELIGIBLE:
            return None
        if status == NO_CANDIDATES:
            return _NO_CANDIDATES_NOTE
        found = dict(self.notes).get(status, f"outside the population ({self.description})")
        return found.format(active_days=active_days)

    def active_days_of(self, metadata: Mapping[str, Any] | None) -> int:
        """Return the activity window a model recorded at training, or the default.

        Parameters
        ----------
        metadata : mapping or None
            A model's metadata (``ModelBundle.metadata``); training records
            ``{"population": {"active_days": ...}}`` (:meth:`describe`).

        Returns
        -------
        int
            The recorded ``active_days``, else :attr:`default_active_days`.
        """
        recorded = ((metadata or {}).get("population") or {}).get("active_days")
        return self.default_active_days if recorded is None else int(recorded)

    def describe(self, active_days: int) -> dict[str, Any]:
        """Describe the population as recorded in a model's metadata.

        Parameters
        ----------
        active_days : int
            The activity window the model was trained with.

        Returns
        -------
        dict
            ``description``, ``active_days``, ``eligible`` (the expression as text) and
            ``outside`` (status to expression text), so serving can apply the same population.
        """
        return {
            "description": self.description.format(active_days=active_days),
            "active_days": active_days,
            "eligible": str(self.eligible(active_days)),
            "outside": {name: str(cond(active_days)) for name, cond in self.outside},
        }


EVERY_CUSTOMER: Final = Population(eligible=lambda _days: pl.lit(True))
"""Every customer of the snapshot (an event on or before the cutoff)."""

ACTIVE_BUYERS: Final = Population(
    eligible=lambda days: pl.col("recency_days") < days,
    outside=(
        ("prospect", lambda _days: pl.col("recency_days").is_null()),
        ("lapsed", lambda days: pl.col("recency_days") >= days),
    ),
    description="customers with an order in the last {active_days} days",
    notes=(
        ("prospect", "no order yet: a prospect, not an active customer"),
        ("lapsed", "no order in the last {active_days} days: lapsed, a win-back candidate"),
    ),
)
"""Customers with an order in the days ``(c - active_days, c]``; never ordered: ``prospect``;
ordered before that: ``lapsed``."""


@dataclass(frozen=True, eq=False)
class Baseline:
    """A baseline rule and the key its held-out metrics are kept under.

    Parameters
    ----------
    key : str
        Metrics key (``"rule"`` for the graded baseline, e.g. ``"popularity"`` for others).
    rule : models.rules.BaselineRule
        The unfitted rule; training fits a clone on the training cutoffs.
    title : str, optional
        How charts and tables name it (``"Recency rule"``, :func:`models.registry.model_title`
        given the task); None: the key's title (``Popularity``).
    """

    key: str
    rule: BaselineRule
    title: str | None = None


@dataclass(frozen=True)
class RuleBacking:
    """How a task's graded rule is served as a model version when its model does not beat it.

    Training fits a one-input booster on the rule's own score, a column of the model rows
    (monotone, so it ranks as the rule does), calibrated like the model
    (:func:`training.train.train_task`); ``guanxi promote`` makes it champion when the model
    fails the gate and there is no other champion (:mod:`pipelines.promote`).

    Parameters
    ----------
    input : str
        The model input that is the rule's score, e.g. ``"candidate_affinity"``.
    name : str
        How the card, the API and the pages name the version, e.g. ``"affinity rule"``.
    """

    input: str
    name: str


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """Everything that differs between tasks.

    Parameters
    ----------
    name : str
        The task's name: registered model name, API and CLI value (letters, digits, ``_``).
    title : str
        How pages name it, e.g. ``"Cross-sell"``.
    kind : {"binary", "ranked", "regression"}
        What the model outputs and which rows it reads (:func:`model_frame`).
    order : int
        Display order (pages, listings, the demo); ties broken by name.
    labels : LabelFunction
        Labels at a cutoff for the eligible customers.
    rules : tuple of Baseline
        Baseline rules; the first is the one the model is graded against and must have the key
        :data:`GRADED_BASELINE`.
    outcome : str
        What a positive contribution raises, as a reason sentence says it (``"churn risk"``).
    purpose : str
        Intended use for the model card; ``{horizon}`` and ``{active_days}`` are filled in.
    population : Population
        Who is eligible to be scored at a cutoff.
    evaluate : callable
        ``evaluate(y, score, proba, index)`` returns the held-out metrics of one model
        (:func:`models.metrics.binary_evaluation` or :func:`models.metrics.ranked_evaluation`).
    metrics : tuple of str
        The metrics the model card and listings show, in order.
    grade : callable
        ``grade(model_metrics, baseline_metrics)`` returns ``"A"``, ``"B"`` or ``"C"``.
    grade_rule : str
        The grade's thresholds in words (the model card prints them).
    season_link : {"logit", "cloglog", "loglog"}, default "logit"
        Scale of the season correction (:func:`models.artifact.shift_probability`): ``loglog``
        for a label that is the absence of events (churn: no order in the window).
    gate : tuple of (str, str), default ("roc_auc", "pr_auc")
        ``guanxi promote``'s comparison with the champion on the challenger's held-out rows:
        the first metric must be higher, the second no lower.
    retention_risk : bool, default False
        Whether the task's calibrated probability is the chance of losing a customer within the
        horizon: customer value reads it as the churn probability (textbook CLV's retention,
        equity at risk). At most one task sets it (:func:`retention_task`).
    value_inputs : bool, default False
        Whether the model reads the ``value`` feature family (BG/NBD's P(alive) and expected
        purchases at the cutoff, :mod:`models.clv.family`): set where adding them measurably
        helps on held-out data (``python -m bench.value_features``).
    objective : str, default "binary:logistic"
        XGBoost objective of the task's model (:data:`models.estimators.OBJECTIVES`); a ranking
        objective (``rank:ndcg``, ``rank:pairwise``) groups a ranked task's rows by customer and
        cutoff, and its score becomes a probability only through the calibration fitted on the
        validation cutoff.
    rule_backing : RuleBacking, optional
        The graded rule served as a model version when the model does not pass the gate
        (cross-sell: the category-affinity rule); None: the task has no rule-backed version.
    """

    name: str
    title: str
    kind: Kind
    order: int
    labels: LabelFunction
    rules: tuple[Baseline, ...]
    outcome: str
    purpose: str
    population: Population = EVERY_CUSTOMER
    evaluate: Evaluator = binary_evaluation
    metrics: tuple[str, ...] = BINARY_METRICS
    grade: Callable[[Mapping[str, float], Mapping[str, float]], str] = grade
    grade_rule: str = GRADE_RULES["binary"]
    gate: tuple[str, str] = ("roc_auc", "pr_auc")
    season_link: str = "logit"
    retention_risk: bool = False
    value_inputs: bool = False
    objective: str = BINARY_OBJECTIVE
    rule_backing: RuleBacking | None = None

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum() or not self.name.islower():
            raise ValueError(f"task name {self.name!r}: use lower-case letters, digits and '_'")
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if not self.rules or self.rules[0].key != GRADED_BASELINE:
            raise ValueError(
                f"task {self.name}: the first baseline is the graded one, keyed {GRADED_BASELINE!r}"
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(f"task {self.name}: objective {self.objective!r} not in {OBJECTIVES}")
        if is_ranking(self.objective) and self.kind != "ranked":
            raise ValueError(f"task {self.name}: a ranking objective needs a ranked task")

    @property
    def popularity_window_days(self) -> int:
        """The popularity window of the task's category statistics (``recent_popularity``).

        :func:`models.rules.category_inputs` takes it, so the model input that is the graded
        affinity rule's score (``candidate_affinity``, and so the rule-backed version) falls back,
        for a customer who bought nothing, on the rule's own popularity, whatever window the
        spec builds the rule with.

        Returns
        -------
        int
            The graded rule's ``window_days`` when it is a
            :class:`models.rules.CategoryAffinityRule`, else
            :data:`models.rules.POPULARITY_WINDOW_DAYS`.
        """
        rule = self.rules[0].rule
        if isinstance(rule, CategoryAffinityRule):
            return int(rule.window_days)
        return POPULARITY_WINDOW_DAYS


_REGISTRY: dict[str, TaskSpec] = {}


@functools.cache
def _load_specs() -> None:
    """Import :mod:`models.specs` once; it registers every spec module of the package."""
    importlib.import_module("models.specs")


def register(spec: TaskSpec) -> TaskSpec:
    """Add a task to the registry.

    Parameters
    ----------
    spec : TaskSpec
        The task.

    Returns
    -------
    TaskSpec
        ``spec``.

    Raises
    ------
    ValueError
        If another spec already has the name.
    """
    found = _REGISTRY.get(spec.name)
    if found is not None and found is not spec:
        raise ValueError(f"task {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def task_specs() -> tuple[TaskSpec, ...]:
    """Return every registered task, in display order.

    Returns
    -------
    tuple of TaskSpec
        Sorted by ``order``, then name.
    """
    _load_specs()
    return tuple(sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name)))


def task_names() -> tuple[str, ...]:
    """Return the names of every registered task, in display order.

    Returns
    -------
    tuple of str
        The names of :func:`task_specs`.
    """
    return tuple(spec.name for spec in task_specs())


def get_task(name: str) -> TaskSpec:
    """Return a registered task by name.

    Parameters
    ----------
    name : str
        The task's name.

    Returns
    -------
    TaskSpec
        Its spec.

    Raises
    ------
    ValueError
        If no task has that name: the message names the registered one it may be meant for
        (``"unknown task 'chrun' (is it 'churn'?)"``, as ``--task`` says it) and lists them.
    """
    _load_specs()
    spec = _REGISTRY.get(name)
    if spec is None:
        known = task_names()
        raise ValueError(
            f"unknown task {quoted_near(name, known)}; expected one of {', '.join(known)}"
        )
    return spec


def retention_task() -> TaskSpec | None:
    """Return the task whose probability is the churn probability customer value reads.

    Returns
    -------
    TaskSpec or None
        The spec with ``retention_risk``; None when no task declares it.

    Raises
    ------
    ValueError
        If several tasks declare it.
    """
    found = [spec for spec in task_specs() if spec.retention_risk]
    if len(found) > 1:
        names = ", ".join(spec.name for spec in found)
        raise ValueError(f"tasks {names} all declare retention_risk; at most one may")
    return found[0] if found else None


def population_status(
    task: str, snapshot: pl.DataFrame, metadata: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Status of every snapshot customer for a task's model: scored, or why not.

    Parameters
    ----------
    task : str
        A registered task.
    snapshot : polars.DataFrame
        A feature snapshot with ``customer_id`` (and the columns the population reads).
    metadata : mapping, optional
        The model's metadata: its recorded activity window
        (:meth:`Population.active_days_of`); without it the population's default.

    Returns
    -------
    polars.DataFrame
        ``customer_id`` and ``status`` (:data:`ELIGIBLE` or the population's ``outside``
        statuses), one row per snapshot customer in snapshot order. A column the population
        reads that the snapshot lacks counts as null (missing).
    """
    population = get_task(task).population
    expression = population.status(population.active_days_of(metadata))
    # root_names repeats a column the expression reads twice (churn reads recency_days twice)
    absent = list(
        dict.fromkeys(c for c in expression.meta.root_names() if c not in snapshot.columns)
    )
    frame = snapshot.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent)
    return frame.select("customer_id", expression)


def snapshot_categories(snapshot: pl.DataFrame) -> list[str]:
    """Return the product categories that have a ``cat_{category}_orders`` column, sorted.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A feature snapshot.

    Returns
    -------
    list of str
        Category names.
    """
    found = []
    for column in snapshot.columns:
        if column.startswith(CATEGORY_FEATURE_PREFIX) and column.endswith(BOUGHT_SUFFIX):
            try:
                category = feature_info(column).extra.get("category")
            except KeyError:
                continue
            if category is not None and column == _bought_column(category):
                found.append(category)
    return sorted(found)


def _bought_column(category: str) -> str:
    return f"{CATEGORY_FEATURE_PREFIX}{category}{BOUGHT_SUFFIX}"


def model_feature_names(
    task: str,
    snapshot: pl.DataFrame,
    categories: list[str] | None = None,
    value_inputs: bool | None = None,
) -> list[str]:
    """Return the model's input columns for a task, in order.

    Parameters
    ----------
    task : str
        A registered task.
    snapshot : polars.DataFrame
        A feature snapshot (only its columns are read).
    categories : list of str, optional
        Candidate categories of a ranked task; defaults to :func:`snapshot_categories`. Ignored
        for the other kinds.
    value_inputs : bool, optional
        Whether the ``value`` feature family is read; defaults to the spec's
        :attr:`TaskSpec.value_inputs` (an override measures the family's effect).

    Returns
    -------
    list of str
        Customer features (:func:`features.snapshot.model_input_columns`, without the ``value``
        family unless it is read), then for a ranked task :data:`CANDIDATE_INPUTS` and one
        ``target_{category}`` indicator per category.

    Raises
    ------
    ValueError
        If the task is unknown.
    """
    spec = get_task(task)
    reads_value = spec.value_inputs if value_inputs is None else value_inputs
    names = [
        n
        for n in model_input_columns(snapshot)
        if reads_value or not (is_feature(n) and feature_info(n).group == VALUE_GROUP)
    ]
    if spec.kind == "ranked":
        cats = snapshot_categories(snapshot) if categories is None else categories
        names += [f.name for f in CANDIDATE_INPUTS]
        names += [f"{TARGET_PREFIX}{c}" for c in cats]
    return names


def completed_categories(
    snapshot: pl.DataFrame, feature_names: Sequence[str], build: bool | None = None
) -> list[str]:
    """Return the categories :func:`model_frame` completes for a model reading these features.

    A snapshot is built from every order up to its day, with a column of each of their
    categories (:func:`features.snapshot.build_snapshot`), so a category it has no column of
    had no order by anyone: a ``cat_{category}_*`` input of it is 0 orders and a 0 share
    (:func:`features.snapshot.completion_columns`), not unknown. The store's snapshot, the
    server's, the cycle's and drift's are all read so. Only a build's snapshot is completed
    (it has ``as_of`` and ``spend_total``): a row of features sent to ``POST /v1/score`` has no
    ``as_of``, and an input it lacks stays unknown, as its ``missing_inputs`` say. A snapshot
    built with fewer ``categories=`` than a model reads must not be given to it.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A snapshot (only its column names are read).
    feature_names : sequence of str
        A model's inputs.
    build : bool, optional
        Whether the frame holds a build's rows; defaults to whether it has ``as_of`` and
        ``spend_total``. ``guanxi promote`` says so of a challenger's held-out rows
        (:func:`pipelines.promote.champion_rows`).

    Returns
    -------
    list of str
        The categories of the ``cat_{category}_*`` inputs without a column whose
        ``cat_{category}_orders`` column the snapshot lacks, in input order; empty for a frame
        that is no build. A score table's digest names them
        (:func:`features.store.scores_digest`).
    """
    if build is None:
        build = "as_of" in snapshot.columns and "spend_total" in snapshot.columns
    if not build:
        return []
    columns = set(snapshot.columns)
    read = [
        category
        for name in feature_names
        if name.startswith(CATEGORY_FEATURE_PREFIX)
        and name not in columns
        and is_feature(name)
        and (category := feature_info(name).extra.get("category")) is not None
    ]
    if not read:  # nothing lacking: no query (a request's snapshot is scored per task)
        return []
    return lacking_categories(snapshot, read)


def model_frame(
    task: str,
    snapshot: pl.DataFrame,
    feature_names: list[str] | None = None,
    categories: list[str] | None = None,
    category_inputs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Turn a snapshot into the model's input rows.

    Parameters
    ----------
    task : str
        A registered task; its kind decides the rows.
    snapshot : polars.DataFrame
        A feature snapshot with a ``customer_id`` column, one row per customer.
    feature_names : list of str, optional
        Columns to return, in order (a model's ``feature_names``); defaults to
        :func:`model_feature_names`. A feature the snapshot lacks is filled with NaN (the model
        treats it as missing), but for a ``cat_{category}_*`` feature of a category the snapshot
        has no column of (:func:`completed_categories`): 0 orders and a 0 share, as a build
        given that category makes them; a ``target_{category}`` column is always computed from
        the row's category (0.0 for categories not in ``categories``). Extra snapshot columns
        are ignored.
    categories : list of str, optional
        Candidate categories of a ranked task (a model's ``categories``); defaults to
        :func:`snapshot_categories`. A category without a ``cat_{category}_orders`` column in the
        snapshot counts as not bought by anyone.
    category_inputs : mapping, optional
        A ranked task's category statistics at the snapshot's cutoff
        (:func:`models.rules.category_inputs`; a model's ``metadata["category_inputs"]``), from
        which the rows' :data:`CANDIDATE_INPUTS` are computed; without them those columns are
        NaN (missing).

    Returns
    -------
    pandas.DataFrame
        Float64 columns in ``feature_names`` order. Index ``customer_id`` for binary and
        regression tasks (snapshot row order); for a ranked task a ``(customer_id, category)``
        MultiIndex with one row per category the customer has not bought yet (snapshot row
        order, then ``categories`` order).

    Raises
    ------
    ValueError
        If the task is unknown or the snapshot has no ``customer_id`` column.
    """
    ranked = get_task(task).kind == "ranked"
    if "customer_id" not in snapshot.columns:
        raise ValueError("snapshot has no 'customer_id' column")
    cats = snapshot_categories(snapshot) if categories is None else list(categories)
    names = (
        model_feature_names(task, snapshot, cats) if feature_names is None else list(feature_names)
    )
    completed = {
        expr.meta.output_name(): expr
        for expr in completion_columns(completed_categories(snapshot, names))
    }
    customer_cols = [
        (pl.col(n) if n in snapshot.columns else completed.get(n, pl.lit(None)))
        .cast(pl.Float64)
        .alias(n)
        for n in names
        if not n.startswith(TARGET_PREFIX)
    ]
    if not ranked:
        frame = snapshot.select("customer_id", *customer_cols)
        return frame.to_pandas().set_index("customer_id")

    bought = [
        pl.col(_bought_column(c)).fill_null(0) > 0
        if _bought_column(c) in snapshot.columns
        else pl.lit(False)
        for c in cats
    ]
    # a row per customer and category not bought yet, made a slice of customers at a time into
    # one float64 block: the rows are held once, not as polars columns beside their pandas copy
    # (1.4 GB each for cross-sell's held-out cutoff at a million customers)
    n_rows = (
        int(snapshot.select(pl.sum_horizontal((~b).cast(pl.Int64) for b in bought).sum()).item())
        if cats
        else 0
    )
    values = np.empty((n_rows, len(names)), order="F")
    keys, done = [], 0
    step = max(1, FRAME_ROWS // max(len(cats), 1))
    for lo in range(0, max(snapshot.height, 1), step):
        part = _candidate_rows(
            snapshot.slice(lo, step), names, cats, bought, customer_cols, category_inputs
        )
        for j, name in enumerate(names):
            values[done : done + part.height, j] = part.get_column(name).to_numpy()
        keys.append(part.select("customer_id", "category"))
        done += part.height
    if done != n_rows:  # pragma: no cover - the count and the rows are the same filter
        raise AssertionError(f"model_frame: {done} rows made, {n_rows} counted")
    index = pd.MultiIndex.from_frame(pl.concat(keys).to_pandas())
    return pd.DataFrame(values, index=index, columns=names, copy=False)


FRAME_ROWS = 200_000
"""Rows of a ranked task's :func:`model_frame` made at a time (whole customers)."""


def _candidate_rows(
    snapshot: pl.DataFrame,
    names: list[str],
    cats: list[str],
    bought: list[pl.Expr],
    customer_cols: list[pl.Expr],
    stats: Mapping[str, Any] | None,
) -> pl.DataFrame:
    """Make a ranked task's rows of some customers: ``customer_id``, ``category``, ``names``."""
    target_of = {f"{TARGET_PREFIX}{c}": c for c in cats}
    candidate = {f.name for f in CANDIDATE_INPUTS}
    pairs = (
        snapshot.select(
            "customer_id",
            *(c for c in customer_cols if c.meta.output_name() not in candidate),
            (pl.concat_list(bought) if cats else pl.lit([], pl.List(pl.Boolean))).alias("_bought"),
            pl.lit(cats, dtype=pl.List(pl.String)).alias("category"),
            pl.lit(list(range(len(cats))), dtype=pl.List(pl.Int64)).alias("_cat"),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_pos"),
        )
        .explode("_bought", "category", "_cat")
        .filter(pl.col("category").is_not_null() & ~pl.col("_bought"))
        .with_columns(
            (pl.col("category") == target_of.get(n, "")).cast(pl.Float64).alias(n)
            for n in names
            if n.startswith(TARGET_PREFIX)
        )
    )
    wanted = [n for n in names if n in candidate]
    if wanted:
        values = _candidate_values(snapshot, cats, stats)
        who, what = pairs["_pos"].to_numpy(), pairs["_cat"].to_numpy()
        pairs = pairs.with_columns(pl.Series(n, values[n][who, what]) for n in wanted)
    return pairs.select("customer_id", "category", *names)


def _candidate_values(
    snapshot: pl.DataFrame, cats: list[str], stats: Mapping[str, Any] | None
) -> dict[str, np.ndarray]:
    """Each :data:`CANDIDATE_INPUTS` column as a (customer, category) matrix (NaN without stats)."""
    n, c = snapshot.height, len(cats)
    if stats is None:
        return {f.name: np.full((n, c), np.nan) for f in CANDIDATE_INPUTS}

    def matrix(prefix: str, suffix: str) -> np.ndarray:
        columns = [f"{prefix}{k}{suffix}" for k in cats]
        return (
            np.column_stack(
                [
                    snapshot[col].fill_null(0).cast(pl.Float64).to_numpy()
                    if col in snapshot.columns
                    else np.zeros(n)
                    for col in columns
                ]
            )
            if c
            else np.zeros((n, 0))
        )

    owned = matrix(CATEGORY_FEATURE_PREFIX, BOUGHT_SUFFIX) > 0
    share = matrix(CATEGORY_FEATURE_PREFIX, "_share")
    co = stats.get("co_bought", {})
    with_ = np.array([[co.get(a, {}).get(b, 0.0) if a != b else 0.0 for b in cats] for a in cats])
    with_ = with_.reshape(c, c)
    popularity = np.array([stats.get("popularity", {}).get(k, 0.0) for k in cats])
    fallback = affinity_fallback(stats)
    best = np.zeros((n, c))
    for a in range(c):
        best = np.maximum(best, owned[:, a : a + 1] * with_[a])
    # the rule: who bought nothing gets the category's popularity over the rule's window
    best = np.where(
        owned.any(axis=1, keepdims=True), best, np.array([fallback.get(k, 0.0) for k in cats])
    )
    return {
        "candidate_popularity": np.broadcast_to(popularity, (n, c)),
        "candidate_affinity": best,
        "candidate_affinity_sum": owned.astype(np.float64) @ with_,
        "candidate_related_spend": share @ with_,
        "candidate_season": np.broadcast_to(
            np.array([stats.get("season", {}).get(k, 1.0) for k in cats]), (n, c)
        ),
    }

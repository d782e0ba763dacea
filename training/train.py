"""Train one task end to end: data, baselines, tuned XGBoost, calibration, evaluation, card.

:func:`train_task` follows :mod:`training.datasets` for the cutoffs and the time split:

1. keep the events dated on or before ``as_of``; place the test, validation and training cutoffs
   and check the data (:class:`~training.datasets.InsufficientDataError` says what to change);
2. build the rows of every cutoff (snapshot as of the cutoff + labels after it);
3. fit the task's baseline rules on the training cutoffs (:attr:`models.tasks.TaskSpec.rules`,
   e.g. "no order in the last X days" with X searched, or "bought A, also bought B") and a
   logistic regression (:class:`models.estimators.LogisticBaseline`);
4. tune XGBoost with Optuna on the training cutoffs, early stopping and the objective on the
   validation cutoff (:mod:`training.tuning`), under the task's XGBoost objective
   (:attr:`models.tasks.TaskSpec.objective`; a ranking objective groups the rows by customer and
   cutoff);
5. calibrate the booster's margin on the validation cutoff (:mod:`training.calibration`): a
   ranking objective's margin is a score, and this is what makes it a probability;
6. evaluate everything on the held-out test cutoff with the task's metrics
   (:attr:`models.tasks.TaskSpec.evaluate`), grade the model against its first rule, draw the
   figures and write the model card;
7. for a task whose spec names a :attr:`~models.tasks.TaskSpec.rule_backing` (cross-sell: the
   category-affinity rule), also build the *rule-backed* bundle: a booster on the one input that
   is the rule's own score (``candidate_affinity``), whose margin is that score
   (:func:`fit_rule_booster`), calibrated on the validation cutoff by an isotonic map kept
   strictly increasing (:func:`training.calibration.strict_isotonic`), so it ranks as the rule
   does, with the season correction, and evaluated on the test cutoff as the model is (its gains
   and reliability curve recorded beside the model's, under ``rule_backed``). It is
   what ``guanxi promote`` serves when the model does not beat the rule; being a one-input
   booster, it is saved, explained and served like any model.

Nothing here branches on a task's name: the task's spec (:func:`models.tasks.get_task`) says who
is labelled, how, against which rules and on which metrics.

The result carries the :class:`models.artifact.ModelBundle` and everything a tracker logs; this
module never imports MLflow.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Final, NamedTuple

import numpy as np
import optuna
import pandas as pd
import polars as pl
import xgboost as xgb
from matplotlib.figure import Figure
from sklearn.base import clone

from features.contracts import FEATURE_SET_VERSION, counted
from features.freshness import BEYOND_A_WEEK, STALE_EVENTS_DAYS, EventsEnd
from models.artifact import (
    BACKING_KEY,
    MODEL_METRICS,
    RULE_BACKED,
    RULE_BACKING,
    ModelBundle,
    apply_calibration,
)
from models.estimators import LogisticBaseline, is_ranking
from models.labels import order_categories
from models.metrics import calibration_error
from models.registry import metric_title
from models.rules import affinity_fallback, category_inputs, category_lift
from models.tasks import (
    CATEGORY_INPUTS_KEY,
    FRAME_ROWS,
    GRADED_BASELINE,
    RuleBacking,
    TaskSpec,
    get_task,
)
from training.calibration import (
    SEASON_DAYS,
    choose_calibration,
    expected_rate,
    season_shift,
    strict_isotonic,
)
from training.card import model_card, rule_card
from training.datasets import (
    CutoffPlan,
    InsufficientDataError,
    TaskData,
    build_task_data,
    check_split,
    events_up_to,
    holdout_groups,
    label_rate,
    missing_summary,
    plan_cutoffs,
    population_batches,
)
from training.evaluation import gains_table, reliability_curve
from training.plots import gains_figure, reliability_figure, shap_figures
from training.tuning import tune

__all__ = [
    "RULE_BOOSTER_PARAMS",
    "RULE_GRID",
    "RULE_ROUNDS",
    "STALE_EVENTS_DAYS",
    "STALE_HORIZON_SHARE",
    "BoosterFit",
    "Holdout",
    "TrainConfig",
    "TrainResult",
    "check_events_end",
    "fit_rule_booster",
    "train_task",
]

BoosterFit = Callable[[TaskData, TaskData, dict[str, Any], str], tuple[xgb.Booster, str]]
"""A final fit of the tuned booster elsewhere (``final_fit`` of :func:`train_task`), e.g. on Spark
(:class:`training.spark.SparkFit`): called with the training rows, the validation rows of early
stopping, the best trial's hyper-parameters (``n_estimators`` its cap on rounds) and the objective;
returns the booster and a sentence for the model card."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Parameters
    ----------
    trials : int, default 20
        Optuna trials.
    timeout : float, optional
        Seconds after which Optuna starts no new trial.
    seed : int, default 0
        Seed of Optuna's sampler, XGBoost, the logistic regression and row sampling.
    cutoff_step_days : int, default 30
        Days between cutoffs.
    n_cutoffs : int, default 6
        Most training cutoffs (the validation and test cutoffs come on top).
    active_days : int, default 365
        Activity window of the task's population (e.g. churn: customers with an order in the last
        ``active_days`` days); recorded in the model's metadata.
    prune : bool, default True
        Prune unpromising Optuna trials.
    min_customers : int, default 200
        Least labelled rows per split.
    min_positives : int, default 20
        Least positive (and negative) labels per split.
    min_history_days : int, default 90
        Days of events a training cutoff needs before it.
    nthread : int, default 2
        XGBoost threads.
    max_rows_per_cutoff : int, optional, default 200_000
        Cap on the rows of one training cutoff, and of the validation rows XGBoost evaluates every
        boosting round (early stopping, pruning, the Optuna objective): above it whole customers
        are sampled, those with a positive row kept and the others sampled and weighted
        (:meth:`training.datasets.TaskData.subsample`; matters for cross-sell, one row per
        customer and candidate category). Calibration uses every validation row and the test
        rows are never sampled by it.
    max_customers : int, optional, default 250_000
        Cap on the customers of every cutoff (training, validation and test), applied before
        the row cap: above it a uniform random sample of the task's population is kept, all rows
        of a kept customer (:func:`training.datasets.sample_customers`), so training memory stops
        growing with the customer base. A uniform sample needs no weights for the held-out
        metrics and the calibration; the training rows carry ``1 / rate``.
    shap_rows : int, default 1000
        Held-out rows sampled for the SHAP figures.
    value_inputs : bool, optional
        Read the ``value`` feature family or not, whatever the task's spec says (None: the spec's
        :attr:`models.tasks.TaskSpec.value_inputs`); ``bench.value_features`` measures both.
    objective : str, optional
        XGBoost objective, whatever the task's spec says (None: the spec's
        :attr:`models.tasks.TaskSpec.objective`); a ranking objective needs a ranked task.
    trained_by : str, optional
        The command that trains with the defaults of ``max_customers``, ``max_rows_per_cutoff``
        and ``active_days``, taking none of them as options (``"guanxi cycle"``,
        ``"guanxi demo"``): a refusal for too few rows or labels says the defaults it trained
        with, under its name, and no option of ``guanxi train``. None (``guanxi train``, which
        sets them): the refusal names the options that narrowed the split.
    """

    trials: int = 20
    timeout: float | None = None
    seed: int = 0
    cutoff_step_days: int = 30
    n_cutoffs: int = 6
    active_days: int = 365
    prune: bool = True
    min_customers: int = 200
    min_positives: int = 20
    min_history_days: int = 90
    nthread: int = 2
    max_rows_per_cutoff: int | None = 200_000
    max_customers: int | None = 250_000
    shap_rows: int = 1000
    value_inputs: bool | None = None
    objective: str | None = None
    trained_by: str | None = None


class Holdout(NamedTuple):
    """The held-out test rows (unpacks as ``X, y``).

    Parameters
    ----------
    X : pandas.DataFrame
        Model inputs indexed by ``cutoff`` and the task's index.
    y : numpy.ndarray
        0/1 labels.
    """

    X: pd.DataFrame
    y: np.ndarray


@dataclass
class TrainResult:
    """Everything one training run produced.

    Parameters
    ----------
    bundle : models.artifact.ModelBundle
        The calibrated model, with metrics, grade and provenance in ``metadata``.
    metrics : dict
        Held-out metrics per model: one per baseline of the task (``rule``, the graded one, and
        e.g. ``popularity``), ``logistic`` and ``xgboost`` (calibrated).
    grade : str
        ``"A"``, ``"B"`` or ``"C"`` against ``rule`` (the task's ``grade``,
        :func:`models.metrics.grade` by default).
    rule : dict
        The graded rule: ``name`` and settings (``threshold_days`` for the recency rule).
    tables : dict of str to pandas.DataFrame
        ``gains`` (by decile, one block per model, column ``model``), ``reliability`` (column
        ``model``), ``missing`` (missing values on the test cutoff) and ``trials`` (Optuna).
        With a rule-backed bundle, its own gains and reliability curve are the blocks
        ``model == "rule_backed"`` (of the test probabilities its metrics come from).
    figures : dict of str to matplotlib.figure.Figure
        ``gains``, ``reliability`` (with the rule-backed bundle's curve when there is one),
        ``shap_beeswarm``, ``shap_bar``.
    model_card : str
        Markdown.
    params : dict
        ``task``, ``as_of``, ``horizon``, ``active_days``, ``objective``, ``cutoffs``, ``seed``,
        ``feature_set_version``, ``best_params``, ``config``.
    holdout : Holdout
        The held-out test rows and labels.
    rule_bundle : models.artifact.ModelBundle, optional
        The rule-backed bundle of a task with a :attr:`~models.tasks.TaskSpec.rule_backing`
        (``metadata["backing"] == "rule"``; its held-out metrics are ``metrics["rule_backed"]``);
        None for the other tasks.
    rule_card : str, optional
        The rule-backed bundle's card (Markdown).
    events_warning : str, optional
        The warning of events that end 2 to :data:`STALE_EVENTS_DAYS` days before ``as_of``
        (:func:`check_events_end`), also in the card's caveats and the bundle's metadata
        (``data``); ``guanxi train`` tags the run and the version with it, ``guanxi cycle``
        records it. None when the events reach ``as_of`` (or a day short).
    """

    bundle: ModelBundle
    metrics: dict[str, dict[str, float]]
    grade: str
    rule: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    model_card: str
    params: dict[str, Any]
    holdout: Holdout
    rule_bundle: ModelBundle | None = None
    rule_card: str | None = None
    events_warning: str | None = None


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


PREDICT_ROWS = FRAME_ROWS
"""Rows predicted at a time on the held-out and population rows (:func:`_batched`): the bound
:func:`models.tasks.model_frame` makes rows with, so a batch is held once in each form."""


def _batched(predict: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame) -> np.ndarray:  # noqa: N803
    """Predict :data:`PREDICT_ROWS` rows at a time and concatenate, for a row-wise ``predict``.

    The values are those of one call on every row; the predictor's own copies of its input
    (XGBoost's float32 matrix, the logistic baseline's design matrix) are made of a
    batch at a time, not of millions of held-out rows at once.
    """
    if len(X) <= PREDICT_ROWS:
        return predict(X)
    return np.concatenate(
        [predict(X.iloc[lo : lo + PREDICT_ROWS]) for lo in range(0, len(X), PREDICT_ROWS)]
    )


def _matrix(data: TaskData, ranking: bool = False) -> xgb.DMatrix:
    """XGBoost matrix of a split; for a ranking objective one query per (cutoff, customer).

    A ranking objective weighs query groups, not rows, so the rows' sampling weights are left
    out; the rows are sorted by query, as XGBoost needs (a stable sort keeps their order).
    """
    x = data.X.to_numpy(dtype=np.float32, na_value=np.nan)
    if not ranking:
        return xgb.DMatrix(x, label=data.y, weight=data.weight, missing=np.nan)
    index = data.X.index
    qid, _ = pd.MultiIndex.from_arrays(
        [index.get_level_values("cutoff"), index.get_level_values("customer_id")]
    ).factorize()
    order = np.argsort(qid, kind="stable")
    return xgb.DMatrix(x[order], label=data.y[order], qid=qid[order], missing=np.nan)


RULE_ROUNDS: Final = 8
"""Boosting rounds of the rule-backed booster (:func:`fit_rule_booster`)."""

RULE_BOOSTER_PARAMS: Final[dict[str, Any]] = {
    "objective": "reg:squarederror",
    "tree_method": "exact",
    "monotone_constraints": "(1)",
    "max_depth": 14,
    "eta": 1.0,
    "min_child_weight": 0.0,
    "reg_lambda": 0.0,
    "base_score": 0.0,
}
"""Settings of the rule-backed booster: one input, non-decreasing in it, exact splits, no floor on
a leaf's weight, full steps, deep enough for a leaf per point it is fitted on."""

RULE_GRID: Final = 10_001
"""Evenly spaced scores the rule-backed booster is fitted on besides the ones it has seen, so that
scores it never saw get steps of their own too. XGBoost's exact splits separate neighbouring
points about 1e-3 apart and most 5e-4 apart, not all closer ones (measured: 1,001 evenly spaced
scores on [0, 1] get 1,001 steps, 2,001 get 1,936, 10,001 about 4,800): two rule scores closer
than that may share a step and be ordered by category."""

_POINT_WEIGHT: Final = 1e6
"""Weight of every point of the rule-backed fit: XGBoost ignores a split that gains less than
1e-6, which at weight 1 neighbouring scores 1e-4 apart do not reach."""


class _RuleColumn(NamedTuple):
    """The distinct scores of the rule on the training rows, kept when the training matrix goes."""

    backing: RuleBacking
    x: np.ndarray


def fit_rule_booster(
    x: np.ndarray, *, seed: int = 0, nthread: int = 2, points: np.ndarray | None = None
) -> xgb.Booster:
    """Fit a booster on one input, the rule's score, whose margin is that score.

    The booster regresses the score on itself at every distinct score of ``x`` and ``points``
    and at :data:`RULE_GRID` evenly spaced scores between the lowest and the highest
    (:data:`RULE_BOOSTER_PARAMS`, :data:`RULE_ROUNDS` rounds, monotone in its input): its margin
    is the score, as a step function with a step per point down to about 1e-3 apart (see
    :data:`RULE_GRID`). So it orders two scores as the rule does unless they are that close;
    labels play no part (the calibration maps the margin to a probability, see
    :func:`training.calibration.strict_isotonic`). A logistic booster on the labels would
    instead pool neighbouring scores whose positive rates do not rise (its monotone constraint at
    work) and tie categories the rule ranks apart.

    Parameters
    ----------
    x : numpy.ndarray
        The rule's scores of the training rows (NaN left out; distinct values suffice).
    seed : int, default 0
        XGBoost's seed.
    nthread : int, default 2
        XGBoost threads.
    points : numpy.ndarray, optional
        Scores to fit exactly besides ``x``, e.g. those the model will serve.

    Returns
    -------
    xgboost.Booster
        A booster on one feature whose margin is its input, up to the step between points.

    Raises
    ------
    ValueError
        If there is no finite score.
    """
    seen = np.asarray(x, dtype=np.float64)
    if points is not None:
        seen = np.concatenate([seen, np.asarray(points, dtype=np.float64)])
    seen = seen[np.isfinite(seen)]
    if seen.size == 0:
        raise ValueError("the rule has no finite score to fit")
    grid = np.unique(
        np.concatenate([seen, np.linspace(seen.min(), seen.max(), RULE_GRID)]).astype(np.float32)
    )
    matrix = xgb.DMatrix(
        grid.reshape(-1, 1),
        label=grid,
        weight=np.full(grid.size, _POINT_WEIGHT, dtype=np.float32),
        missing=np.nan,
    )
    params = {**RULE_BOOSTER_PARAMS, "seed": seed, "nthread": nthread}
    return xgb.train(params, matrix, num_boost_round=RULE_ROUNDS)


def _early_stopping_rows(valid: TaskData, cfg: TrainConfig) -> TaskData:
    """Return the validation rows XGBoost evaluates every round (at most the row cap)."""
    if cfg.max_rows_per_cutoff is None:
        return valid
    return valid.subsample(cfg.max_rows_per_cutoff, cfg.seed)


def _baselines(
    spec: TaskSpec, events: pl.DataFrame, train: TaskData, test: TaskData
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Fit the task's rules on ``train``; return their test (score, proba) and the graded rule."""
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    described: dict[str, dict[str, Any]] = {}
    for baseline in spec.rules:
        rule = clone(baseline.rule).fit(train.X, train.y, sample_weight=train.weight, events=events)
        scored[baseline.key] = (
            rule.decision_function(test.X, events=events),
            rule.predict_proba(test.X, events=events)[:, 1],
        )
        described[baseline.key] = rule.describe()
    return scored, described[GRADED_BASELINE]


class _SeasonInputs(NamedTuple):
    events: pl.DataFrame
    customers: pl.DataFrame | None
    task: str
    horizon: int
    categories: list[str]
    config: TrainConfig
    first_day: date
    plan: CutoffPlan
    as_of: date


def _season_pairs(inputs: _SeasonInputs) -> dict[str, tuple[date, date] | None]:
    """Return the (target, anchor) of each season shift, None when it has none (it is 0).

    ``test``: the test cutoff anchored on the validation cutoff; ``shipped``: the training day
    ``as_of`` (the shipped model's first scoring day) on the test cutoff, whose labels are known
    by then. A shift needs the anchor a year back within the events' history.
    """
    plan = inputs.plan
    earliest = inputs.first_day + timedelta(days=inputs.config.min_history_days)
    pairs = {"test": (plan.test, plan.validation), "shipped": (inputs.as_of, plan.test)}
    back = timedelta(days=SEASON_DAYS)
    return {
        name: None if target == anchor or anchor - back < earliest else (target, anchor)
        for name, (target, anchor) in pairs.items()
    }


def _year_ago_rates(inputs: _SeasonInputs) -> dict[date, float]:
    """Last year's positive rates at the cutoffs the season shifts read (:func:`_season_pairs`).

    They need no model, and each builds the labels of a whole population: training computes them
    first, before any rows are held.
    """
    back = timedelta(days=SEASON_DAYS)
    cutoffs = {d - back for pair in _season_pairs(inputs).values() if pair for d in pair}
    cfg = inputs.config
    return {
        cutoff: label_rate(
            inputs.events,
            inputs.customers,
            inputs.task,
            cutoff,
            inputs.horizon,
            inputs.categories,
            cfg.active_days,
            cfg.max_customers,
        )
        for cutoff in sorted(cutoffs)
    }


def _season_correction(
    inputs: _SeasonInputs,
    rates: dict[date, float],
    test_p: np.ndarray,
    validation_rate: float,
    test_rate: float,
    shipped_p: Callable[[], np.ndarray],
) -> dict[str, Any]:
    """Prior shifts for the test cutoff and for the model that ships (training.calibration).

    ``rates`` are :func:`_year_ago_rates`; ``shipped_p`` predicts the population at ``as_of``.
    """
    link = get_task(inputs.task).season_link
    back = timedelta(days=SEASON_DAYS)
    pairs = _season_pairs(inputs)

    def shift(name: str, anchor_rate: float, p: Callable[[], np.ndarray]) -> float:
        pair = pairs[name]
        if pair is None:
            return 0.0
        target, anchor = pair
        expected = expected_rate(anchor_rate, rates[target - back], rates[anchor - back])
        return 0.0 if expected is None else season_shift(p(), expected, link)

    test_shift = shift("test", validation_rate, lambda: test_p)
    ship_shift = shift("shipped", test_rate, shipped_p)
    plan, earliest = inputs.plan, inputs.first_day + timedelta(days=inputs.config.min_history_days)
    if plan.test - back < earliest:
        note = (
            f"no season correction: it needs labelled history from {plan.test - back} "
            f"({SEASON_DAYS} days before the test cutoff), the events start {inputs.first_day}"
        )
    else:
        year_ago = ", ".join(f"{c}: {r:.3f}" for c, r in sorted(rates.items()))
        note = (
            f"season shift {test_shift:+.3f} ({link} scale) at the test cutoff, "
            f"{ship_shift:+.3f} at "
            f"{inputs.as_of} (last year's positive rates {year_ago})"
        )
    return {
        "test_shift": test_shift,
        "shift": ship_shift,
        "link": link,
        "year_ago_rates": {c.isoformat(): r for c, r in sorted(rates.items())},
        "note": note,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _present(values: np.ndarray | None) -> np.ndarray:
    if values is None:  # pragma: no cover - asked for only when there is a rule-backed bundle
        raise AssertionError("no rule-backed predictions")
    return values


def _served_scores(stats: dict[str, Any] | None) -> np.ndarray | None:
    """Every affinity score the category statistics of the training day can give a row.

    The best "bought A, also bought B" share of any pair, or a category's popularity over the
    rule's window (who bought nothing, :func:`models.rules.affinity_fallback`), or 0
    (:func:`models.tasks.model_frame`); None without statistics.
    """
    if not stats:
        return None
    shares = [v for row in stats.get("co_bought", {}).values() for v in row.values()]
    return np.array([0.0, *shares, *affinity_fallback(stats).values()], dtype=np.float64)


def _fit_rule_bundle(
    rows: _RuleColumn,
    model: ModelBundle,
    valid: TaskData,
    cfg: TrainConfig,
    points: np.ndarray | None = None,
) -> tuple[ModelBundle, dict[str, Any], dict[str, float]]:
    """Fit the rule-backed booster and calibrate it on the validation rows.

    Returns the bundle (calibration "none" until the season shift is known), the calibration
    (:func:`training.calibration.strict_isotonic`) and its Brier on the validation rows.
    ``points``: the scores the bundle will serve, fitted exactly.
    """
    booster = fit_rule_booster(rows.x, seed=cfg.seed, nthread=cfg.nthread, points=points)
    bundle = ModelBundle(
        task=model.task,
        booster=booster,
        feature_names=[rows.backing.input],
        calibration={"method": "none"},
        feature_set_version=model.feature_set_version,
        categories=list(model.categories),
        kind=model.kind,
    )
    margin = _batched(bundle.predict_margin, valid.X)
    # isotonic with its steps joined at their centres: strictly increasing, where the plain
    # steps would tie categories the rule ranks apart
    calibration = strict_isotonic(margin, valid.y)
    p = apply_calibration(calibration, margin)
    brier = {"isotonic (centred)": float(np.mean((p - valid.y) ** 2))}
    return bundle, calibration, brier


def _evaluate_rule_bundle(
    bundle: ModelBundle,
    calibration: dict[str, Any],
    test: TaskData,
    validation_rate: float,
    inputs: _SeasonInputs,
    year_ago: dict[date, float],
    shipped_p: Callable[[], np.ndarray],
) -> tuple[dict[str, Any], dict[str, float], dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Season-correct the rule-backed bundle as the model is and evaluate it on the test rows.

    Sets the bundle's calibration (with the shipped shift); returns the season correction, the
    calibration error without it, the held-out metrics (``spec.evaluate``) and, of the same test
    probabilities, the gains table and the reliability curve (the probabilities are not kept).
    """
    margin = _batched(bundle.predict_margin, test.X)
    fitted = apply_calibration(calibration, margin)
    season = _season_correction(
        inputs, year_ago, fitted, validation_rate, float(test.y.mean()), shipped_p
    )
    link = {"shift_link": season["link"]}
    bundle.calibration = {**calibration, "shift": season["shift"], **link}
    test_p = apply_calibration({**calibration, "shift": season["test_shift"], **link}, margin)
    metrics = get_task(bundle.task).evaluate(test.y, test_p, None, test.X.index)
    return (
        season,
        calibration_error(test.y, fitted),
        metrics,
        gains_table(test.y, test_p),
        reliability_curve(test.y, test_p),
    )


STALE_HORIZON_SHARE: Final = 0.25
"""Largest share of the held-out horizon that may be without events and still train.

Beyond a day short (an export of the day before), events that end ``behind`` days before
``--as-of`` are refused when ``behind > STALE_HORIZON_SHARE * horizon``, as well as beyond
:data:`features.freshness.STALE_EVENTS_DAYS`: for churn a held-out window missing most of its
days makes nearly every customer a positive, and the grade (and a promotion by it) rests on
labels that are artefacts. A week is 8 % of the 90-day default; a Monday-morning export, 3 days
short, trains from ``--horizon 12`` up, a week short from 28."""


def check_events_end(
    events: pl.DataFrame, as_of: date, horizon: int, *, min_history_days: int
) -> str | None:
    """Refuse events that end too long before ``as_of``; say it when they end a few days before.

    The held-out labels read ``(as_of - horizon, as_of]`` (:mod:`models.labels`): the days the
    events lack count as no order (a churner of every customer who would have ordered then, the
    other tasks' positives missed) and the model is graded on them. Where the events end is read
    from all of them (:class:`features.freshness.EventsEnd`), not from those up to ``as_of``: an
    ``as_of`` on a day without events, inside events that go on, lacks nothing. They may end up
    to :data:`features.freshness.STALE_EVENTS_DAYS` days before ``as_of`` (a weekend or holidays,
    the bound every command that reads events takes). A short horizon takes fewer
    (:data:`STALE_HORIZON_SHARE`).

    Parameters
    ----------
    events : polars.DataFrame
        Validated events, every one (not only those up to ``as_of``).
    as_of : datetime.date
        Training day.
    horizon : int
        Label window in days.
    min_history_days : int
        History before the first training cutoff (:attr:`TrainConfig.min_history_days`): an
        alternative the refusal offers must leave the ``2 x horizon + min_history_days`` days
        of history :func:`training.datasets.plan_cutoffs` asks for, counted from the first
        event.

    Returns
    -------
    str or None
        For events that end 2 to :data:`STALE_EVENTS_DAYS` days before ``as_of``, and no more
        than :data:`STALE_HORIZON_SHARE` of the horizon, a warning naming their last day, the
        days of the held-out horizon without events and the ``--as-of`` to pass if the export
        is early; None when they end a day before (an export of the morning of ``as_of``) or
        later, or there is no event (:func:`train_task` says so).

    Raises
    ------
    InsufficientDataError
        If they end more than :data:`STALE_EVENTS_DAYS` days before ``as_of``, or more than a
        day and more than :data:`STALE_HORIZON_SHARE` of the horizon, or the held-out horizon
        would see none of its days (``--horizon 1`` and events a day short); the message names
        the bound that refused, if one did; the ``--as-of`` of their last day and the
        shortest ``--horizon`` that would take the days short, each only when the history
        allows it; and, when a horizon would take them but none fits the history, says so.
    """
    end = EventsEnd.of(events, as_of)
    if end is None or end.behind <= 0:  # no event: train_task says so
        return None
    through, behind = end.through, end.behind
    test_day = as_of - timedelta(days=horizon)
    seen = min(max((through - test_day).days, 0), horizon)
    too_much = behind > 1 and behind > STALE_HORIZON_SHARE * horizon
    if end.stale or too_much or seen == 0:
        first: date = events["ts"].min().date()  # type: ignore[union-attr]
        history = (as_of - first).days  # as plan_cutoffs counts it: an event precedes as_of
        ways = [f"the events up to {as_of}"]
        if (through - first).days >= 2 * horizon + min_history_days:
            ways.append(f"--as-of {through}")
        bound, unfit = "", ""  # the bound that refused, if one did (a day short: neither)
        if end.stale:  # no horizon takes more
            bound = f" ({counted(behind, 'days')}, {BEYOND_A_WEEK})"
        else:  # the shortest horizon that takes them (a day short: any that sees a day)
            if too_much and seen > 0:
                bound = (
                    f" ({behind:,} of the {counted(horizon, 'days')}, more than the quarter of the "
                    "horizon taken for a weekend or holidays)"
                )
            fits = math.ceil(behind / STALE_HORIZON_SHARE) if behind > 1 else behind + 1
            most = (history - min_history_days) // 2  # the longest the history allows
            if fits < most:
                ways.append(f"--horizon {fits:,} to {most:,}")
            elif fits == most:
                ways.append(f"--horizon {fits:,}")
            else:
                unfit = (
                    f" (no --horizon takes {counted(behind, 'days')} short and fits the "
                    f"{history:,} days of history: {fits:,} or longer would need "
                    f"{2 * fits + min_history_days:,})"
                )
        offered = ", or ".join([", ".join(ways[:-1]), ways[-1]] if len(ways) > 1 else ways)
        raise InsufficientDataError(
            f"{end.ended()}: the labels of the horizon after the held-out cutoff {test_day} "
            f"would see {seen:,} of its {counted(horizon, 'days')}, the days without events read "
            f"as no order{bound}; "
            f"pass {offered}{unfit}"
        )
    if not end.short:  # an export of the morning of as_of
        return None
    return end.warning(
        f"the held-out labels' {horizon:,}-day horizon has no events on its last {behind:,} days "
        f"({through + timedelta(days=1)} to {as_of}) and reads them as no order",
        also=", and no more than a quarter of the horizon",
    )


def _more_customers(spec: TaskSpec, cfg: TrainConfig, data: TaskData, label: int | None) -> str:
    """Say how a split short of rows or labels gets more customers, by the options that apply.

    What narrowed the split is read from its data: ``max_customers`` sampled a cutoff whose
    population rate is below 1 (:attr:`training.datasets.TaskData.rates`), whatever the labels
    of its customers; the row cap one with a row weighing more than ``1 / rate``
    (:meth:`training.datasets.TaskData.subsample`; not the weights alone, which the row cap
    raises above 1 when it samples every customer at one rate). The row cap keeps the rarer
    label's customers whole, so it explains a shortage of rows, or of ``label`` when it sampled
    a row of that label, never of the label it kept whole. ``active_days`` narrows a population
    whose filter reads it (:attr:`models.tasks.Population.uses_active_days`). For
    ``guanxi train`` (no :attr:`TrainConfig.trained_by`), a higher ``--max-customers`` or
    ``--max-rows-per-cutoff`` and a longer ``--active-days`` are named; for a command that
    takes none of them, the defaults it trains with. Called only for a refusal
    (:func:`training.datasets.check_split`), with None for too few rows and the label short
    for too few positives (1) or negatives (0).
    """
    rates = data.rates
    customers = cfg.max_customers is not None and any(r < 1 for r in rates.values())
    floor = pd.Series(data.cutoffs).map(lambda c: 1 / rates.get(c, 1.0)).to_numpy(np.float64)
    sampled = data.weight > floor
    if label is not None:
        sampled &= data.y == label
    rows = cfg.max_rows_per_cutoff is not None and bool(sampled.any())
    window = spec.population.uses_active_days
    if cfg.trained_by is None:
        raised = [
            f"--max-customers ({cfg.max_customers:,}; 0 keeps every customer)" if customers else "",
            f"--max-rows-per-cutoff ({cfg.max_rows_per_cutoff:,}; 0 keeps every row)"
            if rows
            else "",
        ]
        named = " or ".join(r for r in raised if r)
        more = f"raise {named}" if named else "use the events of more customers"
        return more + (f", or a longer --active-days ({cfg.active_days:,})" if window else "")
    defaults = [
        f"a sample of {cfg.max_customers:,} customers of a cutoff" if customers else "",
        f"{cfg.max_rows_per_cutoff:,} rows of a training cutoff" if rows else "",
        spec.population.description.format(active_days=cfg.active_days) if window else "",
    ]
    said = ", ".join(d for d in defaults if d)
    return "use the events of more customers" + (
        f" ({cfg.trained_by} trains with the defaults: {said}; guanxi train sets others)"
        if said
        else ""
    )


def train_task(
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    task: str,
    as_of: date,
    horizon: int,
    config: TrainConfig | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial, dict[str, Any]], None] | None = None,
    progress: Callable[[str], None] | None = None,
    final_fit: BoosterFit | None = None,
) -> TrainResult:
    """Train, calibrate and evaluate one task's model.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events (only those dated on or before ``as_of`` are used).
    customers : polars.DataFrame, optional
        The customers table.
    task : str
        A registered classification task (:func:`models.tasks.task_names`).
    as_of : datetime.date
        Training day ``D``: the last day whose events may be read.
    horizon : int
        Label window ``H`` in days.
    config : TrainConfig, optional
        Settings; defaults to ``TrainConfig()``.
    on_trial : callable, optional
        Called after each Optuna trial with the frozen trial and an info dict (see
        :func:`training.tuning.tune`).
    progress : callable, optional
        Receives one-line progress messages.
    final_fit : callable, optional
        Refits the booster with the best trial's parameters after tuning (:data:`BoosterFit`,
        e.g. :class:`training.spark.SparkFit`); None ships the best trial's own booster.

    Returns
    -------
    TrainResult
        The model bundle, metrics, grade, tables, figures, card and held-out rows.

    Raises
    ------
    ValueError
        If the task is unknown or not a classifier (``binary`` or ``ranked``).
    InsufficientDataError
        If the data cannot support the split (the message says what to change), or the events
        end too long before ``as_of`` (:func:`check_events_end`; from 2 days short,
        ``progress`` receives its warning and the result carries it, ``events_warning``).
    """
    spec = get_task(task)
    if spec.kind not in ("binary", "ranked"):
        raise ValueError(
            f"train_task trains classifiers; {task} is a {spec.kind} task (train it with its own "
            "estimator)"
        )
    cfg = config or TrainConfig()
    objective = cfg.objective or spec.objective
    ranking = is_ranking(objective)
    if ranking and spec.kind != "ranked":
        raise ValueError(f"objective {objective} ranks a customer's categories; {task} is not")
    # before the events are cut to as_of
    short = check_events_end(events, as_of, horizon, min_history_days=cfg.min_history_days)
    if short is not None:
        _say(progress, f"{task}: warning: {short}")
    events = events_up_to(events, as_of)
    if events.is_empty():
        raise InsufficientDataError(f"no events on or before {as_of}: pass a later --as-of")
    first_day: date = events["ts"].min().date()  # type: ignore[union-attr]
    plan: CutoffPlan = plan_cutoffs(
        first_day,
        as_of,
        horizon,
        step_days=cfg.cutoff_step_days,
        n_cutoffs=cfg.n_cutoffs,
        min_history_days=cfg.min_history_days,
    )
    categories = order_categories(events)
    _say(
        progress,
        f"{task}: {plan.describe()}; training cutoffs {plan.train[0]}..{plan.train[-1]} "
        f"({len(plan.train):,})",
    )
    held_out = plan.all[len(plan.train) :]
    season_inputs = _SeasonInputs(
        events, customers, task, horizon, categories, cfg, first_day, plan, as_of
    )
    # last year's label rates of the season correction: whole populations labelled, so before
    # any rows are held
    year_ago = _year_ago_rates(season_inputs)
    # how much likelier a category is after another, for reasons that say so, and the category
    # statistics the model serves with (the rule-backed booster fits their scores): read from
    # the events alone, so before any rows are held too
    category_meta = (
        {
            "category_lift": category_lift(events, as_of, categories),
            CATEGORY_INPUTS_KEY: category_inputs(
                events, as_of, categories, horizon, spec.popularity_window_days
            ),
        }
        if spec.kind == "ranked"
        else {}
    )

    def rows(
        cutoffs: tuple[date, ...], names: list[str] | None, seed: int, cap: int | None = None
    ) -> tuple[TaskData, list[str]]:
        return build_task_data(
            events,
            customers,
            task,
            cutoffs,
            horizon,
            categories=categories,
            active_days=cfg.active_days,
            feature_names=names,
            max_rows_per_cutoff=cap,
            max_customers=cfg.max_customers,
            seed=seed,
            value_inputs=cfg.value_inputs,
        )

    # each held-out cutoff built on its own, seeded as in one build over ``held_out``: never
    # both beside their concatenation or its split
    test, names = rows((plan.test,), None, cfg.seed + held_out.index(plan.test))
    valid: TaskData | None = None
    if plan.mode == "customer":
        in_test = holdout_groups(test.X.index.get_level_values("customer_id").to_numpy(), cfg.seed)
        valid, test = test.where(~in_test), test.where(in_test)
    train, _ = rows(plan.train, names, cfg.seed, cfg.max_rows_per_cutoff)
    # more history adds training cutoffs (up to n_cutoffs), never held-out ones
    for split, data, days, most in (
        ("train", train, plan.train, cfg.n_cutoffs),
        ("test", test, (plan.test,), None),
    ):
        check_split(
            split,
            data.y,
            days,
            min_rows=cfg.min_customers,
            min_positives=cfg.min_positives,
            max_cutoffs=most,
            more_customers=functools.partial(_more_customers, spec, cfg, data),
        )

    scored, rule = _baselines(spec, events, train, test)
    logistic = LogisticBaseline(seed=cfg.seed).fit(train.X, train.y, sample_weight=train.weight)
    logistic_p = _batched(lambda rows: logistic.predict_proba(rows)[:, 1], test.X)
    if valid is None:  # the time split's validation cutoff: not held beside the logistic fit
        valid, _ = rows((plan.validation,), names, cfg.seed + held_out.index(plan.validation))
    check_split(
        "validation",
        valid.y,
        (plan.validation,),
        min_rows=cfg.min_customers,
        min_positives=cfg.min_positives,
        more_customers=functools.partial(_more_customers, spec, cfg, valid),
    )
    missing = missing_summary(test.X)
    _say(
        progress,
        f"{task}: rows train {len(train.y):,}, validation {len(valid.y):,}, "
        f"test {len(test.y):,}; {len(names):,} features, {len(missing):,} with missing values "
        "on the test cutoff",
    )
    metrics = {
        name: spec.evaluate(test.y, score, proba, test.X.index)
        for name, (score, proba) in scored.items()
    }
    metrics["logistic"] = spec.evaluate(test.y, logistic_p, None, test.X.index)
    auc = metric_title("roc_auc")
    _say(
        progress,
        f"{task}: baselines rule {auc} {metrics['rule']['roc_auc']:.3f}, "
        f"logistic {auc} {metrics['logistic']['roc_auc']:.3f}; "
        f"tuning XGBoost ({counted(cfg.trials, 'trials')}, {objective})",
    )

    train_matrix = _matrix(train, ranking)
    train_y, train_weight = train.y, train.weight
    backing = spec.rule_backing
    # the rule's one column, taken before the training inputs go (a copy of one column only)
    rule_rows = (
        None
        if backing is None
        else _RuleColumn(backing, np.unique(train.X[backing.input].to_numpy(np.float64)))
    )
    refit = train if final_fit is not None else None
    # the boosters read the matrix: the inputs are held through tuning only for a final refit
    del train
    tuned = tune(
        train_matrix,
        _matrix(_early_stopping_rows(valid, cfg), ranking),
        trials=cfg.trials,
        timeout=cfg.timeout,
        seed=cfg.seed,
        prune=cfg.prune,
        nthread=cfg.nthread,
        on_trial=on_trial,
        objective=objective,
    )
    del train_matrix
    booster, best_params, fit_note = tuned.booster, tuned.params, None
    if final_fit is not None and refit is not None:
        _say(progress, f"{task}: final fit of the best trial's parameters")
        trial = tuned.study.best_trial.params
        booster, fit_note = final_fit(refit, _early_stopping_rows(valid, cfg), trial, objective)
        best_params = {**tuned.params, "n_estimators": booster.num_boosted_rounds()}
    del refit  # nor are its inputs read again
    bundle = ModelBundle(
        task=task,
        booster=booster,
        feature_names=names,
        calibration={"method": "none"},
        feature_set_version=FEATURE_SET_VERSION,
        categories=categories if spec.kind == "ranked" else [],
        kind=spec.kind,
    )
    calibration, calibration_brier = choose_calibration(
        _batched(bundle.predict_margin, valid.X),
        valid.y,
        valid.X.index.get_level_values("customer_id").to_numpy(),
    )
    valid_y = valid.y
    rule_fit = None
    if rule_rows is not None:
        served = _served_scores(category_meta.get(CATEGORY_INPUTS_KEY))
        rule_fit = _fit_rule_bundle(rule_rows, bundle, valid, cfg, served)
        del rule_rows
    del valid  # nor are the validation inputs
    test_margin = _batched(bundle.predict_margin, test.X)
    fitted_p = apply_calibration(calibration, test_margin)

    @functools.cache
    def shipped() -> tuple[np.ndarray, np.ndarray | None]:
        """Predict the population at ``as_of`` (calibrated), a batch of rows at a time.

        One pass for the model and, when there is one, the rule-backed bundle (before its
        season shift): the population's rows are made once.
        """
        batches = population_batches(
            events,
            customers,
            task,
            as_of,
            names,
            categories,
            cfg.active_days,
            cfg.max_customers,
            cfg.seed,
            horizon,
            batch_rows=PREDICT_ROWS,
        )
        model_p, rule_p = [], []
        for rows in batches:
            model_p.append(apply_calibration(calibration, bundle.predict_margin(rows)))
            if rule_fit is not None:
                rule_p.append(apply_calibration(rule_fit[1], rule_fit[0].predict_margin(rows)))
        return np.concatenate(model_p), (np.concatenate(rule_p) if rule_fit else None)

    def shipped_p() -> np.ndarray:
        return shipped()[0]

    season = _season_correction(
        season_inputs, year_ago, fitted_p, float(valid_y.mean()), float(test.y.mean()), shipped_p
    )
    link = {"shift_link": season["link"]}
    bundle.calibration = {**calibration, "shift": season["shift"], **link}
    test_p = apply_calibration({**calibration, "shift": season["test_shift"], **link}, test_margin)
    metrics["xgboost"] = spec.evaluate(test.y, test_p, None, test.X.index)
    raw_p = apply_calibration({"method": "none"}, test_margin)
    rank_scores = {"xgboost": test_p, "logistic": logistic_p} | {
        name: s for name, (s, _) in scored.items()
    }
    model_grade = spec.grade(metrics[MODEL_METRICS], metrics[GRADED_BASELINE])
    rule_season: dict[str, Any] | None = None
    rule_unshifted: dict[str, float] = {}
    # the rule-backed version's own curves, recorded beside the model's under its metrics' key
    rule_gains: dict[str, pd.DataFrame] = {}
    rule_curve: dict[str, pd.DataFrame] = {}
    if rule_fit is not None:
        (
            rule_season,
            rule_unshifted,
            metrics[RULE_BACKED],
            rule_gains[RULE_BACKED],
            rule_curve[RULE_BACKED],
        ) = _evaluate_rule_bundle(
            rule_fit[0],
            rule_fit[1],
            test,
            float(valid_y.mean()),
            season_inputs,
            year_ago,
            lambda: _present(shipped()[1]),
        )
    _say(
        progress,
        f"{task}: XGBoost {spec.gate[0]} {metrics['xgboost'][spec.gate[0]]:.3f} "
        f"(rule {metrics['rule'][spec.gate[0]]:.3f}), calibration {calibration['method']} "
        f"(held-out ECE {metrics['xgboost']['ece']:.3f}, {season['note']}), "
        f"grade {model_grade}",
    )

    gains = {name: gains_table(test.y, score) for name, score in rank_scores.items()}
    curves = {
        "xgboost": reliability_curve(test.y, test_p),
        "xgboost (no season shift)": reliability_curve(test.y, fitted_p),
        "xgboost (uncalibrated)": reliability_curve(test.y, raw_p),
        "logistic": reliability_curve(test.y, logistic_p),
    } | rule_curve
    rng = np.random.default_rng(cfg.seed)
    sample = test.X.iloc[
        np.sort(rng.choice(len(test.y), size=min(cfg.shap_rows, len(test.y)), replace=False))
    ]
    figures = {
        "gains": gains_figure(
            gains, title=f"{task}: cumulative gains, test cutoff {plan.test}", task=task
        ),
        "reliability": reliability_figure(
            curves, title=f"{task}: reliability, {plan.test}", task=task
        ),
        **shap_figures(bundle.contributions(sample), sample),
    }
    tables = {
        "gains": pd.concat(gains | rule_gains, names=["model"]).reset_index(level=0),
        "reliability": pd.concat(curves, names=["model"]).reset_index(level=0),
        "missing": missing,
        "trials": tuned.study.trials_dataframe(),
    }

    cutoffs = {
        "train": list(plan.train),
        "validation": plan.validation,
        "test": plan.test,
        "split": plan.mode,
        "split_note": plan.describe(),
    }
    params: dict[str, Any] = {
        "task": task,
        "as_of": as_of,
        "horizon": horizon,
        "active_days": cfg.active_days,
        "objective": objective,
        "cutoffs": cutoffs,
        "seed": cfg.seed,
        "feature_set_version": FEATURE_SET_VERSION,
        "best_params": best_params,
        "config": asdict(cfg),
    } | ({} if fit_note is None else {"final_fit": fit_note})
    calibration_info = {
        "method": calibration["method"],
        "brier": calibration_brier,
        "season": season,
        "held_out_unshifted": calibration_error(test.y, fitted_p),
    }
    data_info = {
        "first_day": first_day,
        "rows": [len(train_y), len(valid_y), len(test.y)],
        "positive_rate": [
            float(np.average(train_y, weights=train_weight)),
            float(valid_y.mean()),
            float(test.y.mean()),
        ],
        "n_features": len(names),
        "missing": list(
            zip(missing["feature"].head(5), missing["missing_share"].head(5), strict=True)
        ),
    } | ({} if short is None else {"events_warning": short})
    card = model_card(
        params, metrics, model_grade, rule, gains["xgboost"], calibration_info, data_info
    )
    bundle.metadata = _jsonable(
        {
            "metrics": metrics,
            "grade": model_grade,
            "rule": rule,
            "population": spec.population.describe(cfg.active_days),
            "params": params,
            "calibration": calibration_info,
            "data": data_info,
        }
        | category_meta
    )
    rule_bundle, rule_text = None, None
    if rule_fit is not None and backing is not None and rule_season is not None:
        rule_bundle, rule_calibration, rule_brier = rule_fit
        rule_grade = spec.grade(metrics[RULE_BACKED], metrics[GRADED_BASELINE])
        rule_info = {
            "method": rule_calibration["method"],
            "brier": rule_brier,
            "season": rule_season,
            "held_out_unshifted": rule_unshifted,
        }
        rule_data = {**data_info, "n_features": 1, "missing": []}
        rule_params = {
            **params,
            "best_params": {**RULE_BOOSTER_PARAMS, "n_estimators": RULE_ROUNDS},
            "objective": RULE_BOOSTER_PARAMS["objective"],
        }
        rule_text = rule_card(
            rule_params, metrics, rule_grade, model_grade, rule, backing, rule_info, rule_data
        )
        rule_bundle.metadata = _jsonable(
            {
                BACKING_KEY: RULE_BACKING,
                "backing_name": backing.name,
                "backing_input": backing.input,
                "model_grade": model_grade,
                "metrics": metrics,
                "grade": rule_grade,
                "rule": rule,
                "population": spec.population.describe(cfg.active_days),
                "params": rule_params,
                "calibration": rule_info,
                "data": rule_data,
            }
            | category_meta
        )
    return TrainResult(
        bundle=bundle,
        metrics=metrics,
        grade=model_grade,
        rule=rule,
        tables=tables,
        figures=figures,
        model_card=card,
        params=params,
        holdout=Holdout(X=test.X, y=test.y),
        rule_bundle=rule_bundle,
        rule_card=rule_text,
        events_warning=short,
    )

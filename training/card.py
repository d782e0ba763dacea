"""The model card: a Markdown page that travels with every trained model.

It states the intended use, the data window and cutoffs, the held-out metrics of the model and
its baselines, the grade and the caveats, so a reviewer can judge the model without the code.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from models.artifact import MODEL_METRICS, RULE_BACKED
from models.estimators import BINARY_OBJECTIVE, is_ranking
from models.metrics import MIN_BIN_ROWS
from models.registry import metric_title
from models.tasks import GRADED_BASELINE, RuleBacking, get_task

__all__ = ["model_card", "rule_card"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _short(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in values.items()
    )


def _against_rule(model: dict[str, Any], rule: dict[str, Any], gate: tuple[str, str]) -> str:
    """Word the gate's two metrics of a model against the rule's."""
    first, second = gate
    return (
        f"{metric_title(first)} {_fmt(model.get(first))} against the rule's "
        f"{_fmt(rule.get(first))}, {metric_title(second)} {_fmt(model.get(second))} against "
        f"{_fmt(rule.get(second))}"
    )


def _table(metrics: dict[str, dict[str, float]], columns: tuple[str, ...]) -> str:
    header = " | ".join(metric_title(c) for c in columns)
    lines = [f"| model | {header} |", "|---" * (len(columns) + 1) + "|"]
    for name, values in metrics.items():
        cells = [_fmt(values.get(c, float("nan"))) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(
    params: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    grade: str,
    rule: dict[str, Any],
    gains: pd.DataFrame,
    calibration: dict[str, Any],
    data: dict[str, Any],
) -> str:
    """Render the model card.

    Parameters
    ----------
    params : dict
        Run parameters: ``task``, ``as_of``, ``horizon``, ``active_days``, ``cutoffs`` (dict with
        ``train``, ``validation``, ``test``), ``seed``, ``feature_set_version``, ``best_params``.
    metrics : dict
        Held-out metrics per model (``xgboost``, ``logistic`` and the task's baselines: ``rule``,
        e.g. ``popularity``); the columns are the task's ``metrics``.
    grade : str
        ``"A"``, ``"B"`` or ``"C"``.
    rule : dict
        The baseline: ``name`` and its settings (e.g. ``threshold_days``).
    gains : pandas.DataFrame
        The model's gains table on the held-out cutoff.
    calibration : dict
        ``method``, the cross-fitted Brier per method (``brier``), optionally ``season`` (the
        season correction of :mod:`training.calibration`, with its ``note``) and
        ``held_out_unshifted`` (``ece`` and ``max_bin_gap`` without it).
    data : dict
        ``first_day``, ``rows`` per split, ``positive_rate`` per split, ``n_features``,
        ``missing`` (top missing features as ``(name, share)`` pairs), optionally
        ``events_warning`` (events that end days before the training day: a caveat).

    Returns
    -------
    str
        Markdown.
    """
    task = params["task"]
    spec = get_task(task)
    cutoffs = params["cutoffs"]
    purpose = spec.purpose.format(horizon=params["horizon"], active_days=params["active_days"])
    columns = spec.metrics
    top = gains.head(3)[["decile", "rows", "rate", "lift", "cum_positives_share"]]
    gains_lines = "\n".join(
        f"| {decile:.0f} | {rows:.0f} | {_fmt(rate)} | {_fmt(lift)} | {_fmt(gain)} |"
        for decile, rows, rate, lift, gain in top.to_numpy(dtype=float).tolist()
    )
    rule_settings = _short({k: v for k, v in rule.items() if k != "name"})
    caveats = [
        "Metrics come from one held-out cutoff; they move from month to month.",
        f"The model learned from labels that end on or before {cutoffs['test']}; behaviour after "
        "that (new products, campaigns, seasonality) may differ. Retrain regularly and watch "
        "drift.",
        "Customers with little history get scores driven by defaults and missing values.",
        "Features describe behaviour, not causes: a high score says who to look at, not why.",
    ]
    verdict = ""
    if grade == "C":
        verdict = (
            f'\n\n**Not promoted: the model does not beat the rule "{rule["name"]}"** where it '
            f"matters ({_against_rule(metrics['xgboost'], metrics['rule'], spec.gate)}); use "
            "the rule."
        )
    if data.get("events_warning"):
        caveats.append(f"Trained on events short of the training day: {data['events_warning']}.")
    if metrics["logistic"]["roc_auc"] >= metrics["xgboost"]["roc_auc"]:
        caveats.append(
            "The logistic baseline ranks as well as XGBoost on the test cutoff: the simpler "
            "model is an option."
        )
    season = calibration.get("season") or {}
    season_line = (
        f"Season correction (the positive rate moves with the month the label window covers): "
        f"{season['note']}."
        if season
        else ""
    )
    model = metrics["xgboost"]
    unshifted = calibration.get("held_out_unshifted") or {}
    calibration_line = (
        f"Calibration on the held-out cutoff: expected calibration error {_fmt(model.get('ece'))}, "
        f"largest gap among probability bins of at least {MIN_BIN_ROWS} rows "
        f"{_fmt(model.get('max_bin_gap'))}"
        + (
            f" (without the season correction: {_fmt(unshifted.get('ece'))} and "
            f"{_fmt(unshifted.get('max_bin_gap'))})."
            if unshifted
            else "."
        )
    )
    grouped = cutoffs.get("split") == "customer"
    split_note = cutoffs.get("split_note") or "time split"
    held_validation = ": half of the customers at the cutoff" if grouped else " cutoff"
    held_test = ": the other half, never seen in fitting, at the cutoff" if grouped else " cutoff"
    if grouped:
        caveats.insert(
            0,
            "The history was too short for a later held-out month: the metrics below are for "
            "customers the model never saw, at the same cutoff and season as the validation rows; "
            "they do not show how the model ages.",
        )
    objective = params.get("objective", BINARY_OBJECTIVE)
    objective_note = (
        " A ranking objective scores the order of a customer's categories, not a probability: "
        "the probabilities below are that score calibrated on the validation cutoff."
        if is_ranking(objective)
        else ""
    )
    final_fit = f"\n\nBooster: {params['final_fit']}." if params.get("final_fit") else ""
    caveat_lines = "\n".join(f"- {c}" for c in caveats)
    missing = ", ".join(f"{n} ({s:.0%})" for n, s in data.get("missing", [])) or "none"
    return f"""# Model card: {task}

## Intended use
{purpose} Scores are calibrated probabilities; use them to rank and to size campaigns, not as
individual verdicts. Not for decisions with legal or similarly significant effects on a person
without human review.

## Data
- Events from {data["first_day"]} to {params["as_of"]} (training day); nothing later is read.
- Horizon: {params["horizon"]} days; label window of a cutoff c: days (c, c + {params["horizon"]}].
- Split: {split_note}.
- Training cutoffs: {", ".join(str(c) for c in cutoffs["train"])}.
- Validation{held_validation} (early stopping, tuning, calibration): {cutoffs["validation"]}.
- Held-out test{held_test} (all metrics below): {cutoffs["test"]}.
- Rows (train / validation / test): {" / ".join(str(n) for n in data["rows"])}; positive rate:
  {" / ".join(_fmt(float(p)) for p in data["positive_rate"])}.
- {data["n_features"]} input features, feature set version {params["feature_set_version"]}.
  Most missing on the test cutoff: {missing}.

## Model
XGBoost (hist trees, objective {objective}) tuned with Optuna (TPE, seed {params["seed"]});
best parameters: {_short(params["best_params"])}.{objective_note}{final_fit}

Calibration: {calibration["method"]} on the booster's margin, fitted on the validation cutoff
(Brier per method, cross-fitted on the validation cutoff: {_short(calibration["brier"])}).
{season_line}

## Held-out metrics (test cutoff {cutoffs["test"]})
{_table(metrics, columns)}

Graded against the rule "{rule["name"]}" ({rule_settings}).

{calibration_line}

Top deciles of the model:

| decile | rows | rate | lift | cumulative gain |
|---|---|---|---|---|
{gains_lines}

## Grade: {grade}
{spec.grade_rule}{verdict}

## Caveats
{caveat_lines}
"""


def rule_card(
    params: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    grade: str,
    model_grade: str,
    rule: dict[str, Any],
    backing: RuleBacking,
    calibration: dict[str, Any],
    data: dict[str, Any],
) -> str:
    """Render the card of a rule-backed version: what it is and why it is served.

    Parameters
    ----------
    params : dict
        Run parameters, as for :func:`model_card` (``best_params`` the rule booster's settings).
    metrics : dict
        Held-out metrics per model, with the rule-backed version's under ``"rule_backed"``.
    grade : str
        The rule-backed version's grade against the rule (it is the rule: normally ``"C"``).
    model_grade : str
        The grade of the XGBoost model trained in the same run.
    rule : dict
        The graded rule: ``name`` and its settings.
    backing : models.tasks.RuleBacking
        The rule's input and name.
    calibration : dict
        ``method``, ``brier``, ``season`` (with its ``note``) and ``held_out_unshifted``.
    data : dict
        ``first_day``, ``rows`` and ``positive_rate`` per split, optionally ``events_warning``
        (a caveat, as in :func:`model_card`).

    Returns
    -------
    str
        Markdown.
    """
    task = params["task"]
    spec = get_task(task)
    cutoffs = params["cutoffs"]
    purpose = spec.purpose.format(horizon=params["horizon"], active_days=params["active_days"])
    served, ruled, model = metrics[RULE_BACKED], metrics[GRADED_BASELINE], metrics[MODEL_METRICS]
    first_keys: tuple[str, ...] = (RULE_BACKED, GRADED_BASELINE, MODEL_METRICS)
    shown = {k: metrics[k] for k in first_keys if k in metrics}
    shown |= {k: v for k, v in metrics.items() if k not in shown}
    checks = ", ".join(
        f"{metric_title(m)} {_fmt(served.get(m))} against the rule's {_fmt(ruled.get(m))}"
        for m in ("precision@1", "precision@3", "ndcg@3")
        if m in served
    )
    window = rule.get("popularity_window_days")  # the affinity rule's fallback
    fallback = (
        ", a customer who bought nothing too (by the categories' popularity over the last "
        f"{window} days, the rule's own)"
        if window is not None
        else ""
    )
    season = calibration.get("season") or {}
    season_line = f" Season correction: {season['note']}." if season else ""
    short = (
        f"\n- Trained on events short of the training day: {data['events_warning']}."
        if data.get("events_warning")
        else ""
    )
    unshifted = calibration.get("held_out_unshifted") or {}
    passing = model_grade in ("A", "B")
    why = (
        f"The XGBoost model trained in the same run is graded {model_grade}: it does not beat "
        f"the rule where it matters ({_against_rule(model, ruled, spec.gate)}), so it is not "
        "promoted. This version serves the rule "
        "instead: `guanxi promote` makes it champion when the model fails the gate and no "
        "model is champion, and a model that passes the gate later replaces it."
        if not passing
        else f"The XGBoost model trained in the same run is graded {model_grade} and is the "
        "one to promote; this version is kept for comparison."
    )
    return f"""# Model card: {task}, the {backing.name} (rule-backed version)

## What this version is
Not a trained model: the rule "{rule["name"]}" itself, served as a model version. Its score is
the model input `{backing.input}` (the rule's own score of each candidate). A one-input XGBoost
booster passes it on as its margin (a step per distinct score, monotone, no labels involved), and
an isotonic map fitted on the validation cutoff {cutoffs["validation"]} turns it into a probability,
its steps joined at their centres so that it rises strictly and ties nothing the rule ranks
apart.{season_line} It ranks every customer's categories as the rule does{fallback}: on the
held-out cutoff {checks}. Every reason it gives is that one input.

## Why it is served
{why}

## Intended use
{purpose} Scores are calibrated probabilities; use them to rank and to size campaigns, not as
individual verdicts.

## Data
- Events from {data["first_day"]} to {params["as_of"]} (training day); nothing later is read.
- Horizon: {params["horizon"]} days. Training cutoffs (the booster's fit):
  {", ".join(str(c) for c in cutoffs["train"])}; held-out test cutoff: {cutoffs["test"]}.
- Rows (train / validation / test): {" / ".join(str(n) for n in data["rows"])}.

## Held-out metrics (test cutoff {cutoffs["test"]})
{_table(shown, spec.metrics)}

`rule_backed` is this version; `rule` the rule scored directly; `xgboost` the model of the same
run. Calibration on the held-out cutoff: expected calibration error {_fmt(served.get("ece"))},
largest gap among probability bins of at least {MIN_BIN_ROWS} rows
{_fmt(served.get("max_bin_gap"))} (without the season correction: {_fmt(unshifted.get("ece"))} and
{_fmt(unshifted.get("max_bin_gap"))}).

## Grade: {grade}
This version is the rule, so it does not beat it: the grade says nothing about it and is not
what promotes it. {spec.grade_rule}

## Caveats
- The rule's statistics (who bought what with what) are those of the training day; retrain to
  refresh them.
- Metrics come from one held-out cutoff; they move from month to month.{short}
"""

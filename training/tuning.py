"""XGBoost hyper-parameter search with Optuna.

:func:`suggest_params` is the search space (model size included: ``n_estimators`` is the cap on
boosting rounds and ``max_depth`` the tree depth); :func:`fit_booster` is the pure objective: it
trains one booster on the training matrix with early stopping on the validation matrix and returns
the best validation metric: log loss under the binary objective, NDCG@3 under a ranking one
(:func:`models.estimators.eval_metric`; the matrices then carry a ``qid``). :func:`tune` runs a
seeded TPE study over them, minimising log loss or maximising NDCG@3. With pruning on, a
:class:`PruningCallback` reports the validation metric to Optuna every few boosting rounds and
stops a trial the :class:`optuna.pruners.MedianPruner` judges worse than the median of earlier
trials at the same round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import optuna
import xgboost as xgb

from models.estimators import BINARY_OBJECTIVE, EVAL_METRIC, eval_metric, xgb_params

__all__ = [
    "EARLY_STOPPING_ROUNDS",
    "NoTrialCompletedError",
    "PruningCallback",
    "TuneResult",
    "fit_booster",
    "suggest_params",
    "tune",
]

EARLY_STOPPING_ROUNDS: Final = 30
_VALID: Final = "valid"


class NoTrialCompletedError(RuntimeError):
    """No Optuna trial of a search completed (:func:`tune`).

    None started before the timeout (a trial that starts runs to its end: the pruner spares the
    first three, and an error goes out of the search); ``guanxi train`` says it as a refusal.
    """


def suggest_params(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """Draw one set of XGBoost hyper-parameters.

    Parameters
    ----------
    trial : optuna.trial.BaseTrial
        The trial to draw from (a live ``Trial`` or a ``FixedTrial``).

    Returns
    -------
    dict
        ``n_estimators`` (50-300, the cap on boosting rounds), ``max_depth`` (2-7),
        ``learning_rate`` (0.02-0.3, log), ``min_child_weight`` (1-50, log), ``subsample``
        (0.6-1), ``colsample_bytree`` (0.5-1), ``reg_lambda`` and ``reg_alpha`` (1e-3-10, log).
    """
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
        "max_depth": trial.suggest_int("max_depth", 2, 7),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }


class PruningCallback(xgb.callback.TrainingCallback):
    """Report the validation metric to an Optuna trial and prune it when told to.

    Parameters
    ----------
    trial : optuna.Trial
        The running trial.
    every : int, default 10
        Report every ``every`` boosting rounds (the step is the round number).
    metric : str, default "logloss"
        The validation metric reported (the objective's, :func:`models.estimators.eval_metric`).
    """

    def __init__(self, trial: optuna.Trial, every: int = 10, metric: str = EVAL_METRIC) -> None:
        super().__init__()
        self.trial = trial
        self.every = every
        self.metric = metric

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        """Report on every ``every``-th round; raise :class:`optuna.TrialPruned` to stop.

        Parameters
        ----------
        model : xgboost.Booster
            The booster being trained (unused).
        epoch : int
            The boosting round just finished (0-based).
        evals_log : dict
            XGBoost's evaluation history.

        Returns
        -------
        bool
            ``False`` (training goes on unless pruned).

        Raises
        ------
        optuna.TrialPruned
            If the pruner stops the trial.
        """
        if (epoch + 1) % self.every == 0:
            self.trial.report(float(evals_log[_VALID][self.metric][-1]), step=epoch + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at boosting round {epoch + 1}")
        return False


def fit_booster(
    params: dict[str, Any],
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix,
    *,
    seed: int = 0,
    nthread: int = 2,
    callbacks: list[xgb.callback.TrainingCallback] | None = None,
    objective: str = BINARY_OBJECTIVE,
) -> tuple[float, xgb.Booster]:
    """Train one booster with early stopping and return its validation metric.

    Parameters
    ----------
    params : dict
        Hyper-parameters from :func:`suggest_params` (``n_estimators`` caps the rounds).
    dtrain, dvalid : xgboost.DMatrix
        Training and validation matrices (labels set).
    seed : int, default 0
        XGBoost seed.
    nthread : int, default 2
        Threads.
    callbacks : list of xgboost.callback.TrainingCallback, optional
        Extra callbacks (e.g. :class:`PruningCallback`).
    objective : str, default "binary:logistic"
        One of :data:`models.estimators.OBJECTIVES`; a ranking objective needs matrices with a
        ``qid`` (rows sorted by it).

    Returns
    -------
    value : float
        Validation metric at the best round (log loss, or NDCG@3 under a ranking objective).
    booster : xgboost.Booster
        The booster cut to its best round.
    """
    booster = xgb.train(
        xgb_params(params, seed=seed, nthread=nthread, objective=objective),
        dtrain,
        num_boost_round=int(params["n_estimators"]),
        evals=[(dvalid, _VALID)],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        callbacks=callbacks,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    return float(booster.best_score), booster[: best + 1]


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Parameters
    ----------
    params : dict
        Best hyper-parameters, ``n_estimators`` set to the rounds the best booster kept.
    value : float
        Best validation metric (log loss, or NDCG@3 under a ranking objective).
    booster : xgboost.Booster
        The best trial's booster (cut to its best round).
    study : optuna.Study
        The study, with every trial.
    """

    params: dict[str, Any]
    value: float
    booster: xgb.Booster
    study: optuna.Study


def tune(
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix,
    *,
    trials: int = 20,
    timeout: float | None = None,
    seed: int = 0,
    prune: bool = True,
    nthread: int = 2,
    on_trial: Callable[[optuna.trial.FrozenTrial, dict[str, Any]], None] | None = None,
    objective: str = BINARY_OBJECTIVE,
) -> TuneResult:
    """Search XGBoost hyper-parameters with a seeded TPE sampler.

    Parameters
    ----------
    dtrain, dvalid : xgboost.DMatrix
        Training and validation matrices (labels set).
    trials : int, default 20
        Number of trials (the search also stops at ``timeout``).
    timeout : float, optional
        Seconds after which no new trial starts.
    seed : int, default 0
        Seed of the TPE sampler and of XGBoost.
    prune : bool, default True
        Stop unpromising trials early (median pruner, reports every 10 rounds).
    nthread : int, default 2
        XGBoost threads.
    on_trial : callable, optional
        Called after each finished trial with the frozen trial and ``info``: ``number``,
        ``params``, ``value`` (None unless complete), ``state`` (``"COMPLETE"``, ``"PRUNED"``,
        ``"FAIL"``), ``duration`` (seconds), ``best_iteration``, ``metric`` (the validation
        metric's name) and ``best_value`` (the best value so far, None before a trial completes).
    objective : str, default "binary:logistic"
        The booster's objective (:func:`fit_booster`); it decides the metric and its direction.

    Returns
    -------
    TuneResult
        Best parameters, value, booster and the study.

    Raises
    ------
    NoTrialCompletedError
        If no trial completed.
    """
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=20)
        if prune
        else optuna.pruners.NopPruner()
    )
    metric, higher = eval_metric(objective)
    study = optuna.create_study(
        direction="maximize" if higher else "minimize", sampler=sampler, pruner=pruner
    )
    best: dict[str, Any] = {}

    def trial_value(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        callbacks: list[xgb.callback.TrainingCallback] = (
            [PruningCallback(trial, metric=metric)] if prune else []
        )
        value, booster = fit_booster(
            params,
            dtrain,
            dvalid,
            seed=seed,
            nthread=nthread,
            callbacks=callbacks,
            objective=objective,
        )
        rounds = booster.num_boosted_rounds()
        trial.set_user_attr("best_iteration", rounds)
        if not best or (value > best["value"] if higher else value < best["value"]):
            best.update(value=value, booster=booster, params={**params, "n_estimators": rounds})
        return value

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is None:
            return
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        on_trial(
            trial,
            {
                "number": trial.number,
                "params": dict(trial.params),
                "value": trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
                "state": trial.state.name,
                "duration": duration,
                "best_iteration": trial.user_attrs.get("best_iteration"),
                "metric": metric,
                "best_value": best.get("value"),
            },
        )

    started = time.monotonic()
    study.optimize(trial_value, n_trials=trials, timeout=timeout, callbacks=[report])
    if not best:
        elapsed = time.monotonic() - started
        # a trial that starts runs to its end (the pruner spares the first 3, an error goes
        # out of optimize): only a timeout passed before the first one leaves none
        raise NoTrialCompletedError(
            f"no Optuna trial completed in {elapsed:.0f} s ({len(study.trials)} tried): "
            "raise --timeout, or leave it out to run every --trials"
        )
    return TuneResult(
        params=best["params"], value=best["value"], booster=best["booster"], study=study
    )

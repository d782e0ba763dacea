"""Uplift models: who responds *because* they were contacted.

A recorded campaign with a random control group (:mod:`models.campaigns`) shows, per customer,
the outcome with or without contact, never both. An uplift model estimates the difference,
``tau(x) = P(y = 1 | x, contacted) - P(y = 1 | x, not contacted)``, from the features ``x``:
positive for persuadables, about zero for sure things and lost causes, negative for customers whom
contact pushes away.

Learners
--------
:class:`TwoModelUplift`
    Two gradient-boosted classifiers, one on the treated and one on the control customers;
    the uplift is the difference of their probabilities (scikit-uplift's ``TwoModels``, vanilla
    method, with XGBoost estimators).
:class:`XLearnerUplift`
    Kuenzel et al. (2019): the two outcome models as above, then each group's imputed effects
    (``y - mu0(x)`` for the treated, ``mu1(x) - y`` for the control) are regressed on ``x`` and
    the two effect models are blended by the propensity ``g`` (the treated share in a randomised
    campaign): ``tau(x) = g tau0(x) + (1 - g) tau1(x)``. It uses the larger group to help the
    smaller one, which matters when the control group is small. Written here on XGBoost:
    scikit-uplift has no X-learner, and causalml, which has one and installs on the project's
    pins, would add 19 packages (LightGBM, numba, statsmodels, black among them) for this one
    estimator.

Both follow scikit-learn's estimator conventions (parameters in ``__init__``, fitted state in
attributes ending in ``_``, ``fit`` returns ``self``) and take a numeric feature matrix; NaN is
missing (XGBoost routes it).

Evaluation
----------
Every campaign row can be held out once: :func:`cross_fit` splits the rows into folds (stratified
by treatment and outcome), fits a learner on all folds but one and predicts the one left out, so
each row's estimate comes from a model that never saw it. Against a single half/half split this
trains on more rows and evaluates on all of them, which matters because the realised effect of a
selection of customers is a difference of two noisy means.

On held-out campaign rows, customers are ranked by predicted uplift. The Qini curve at the top
``k`` customers is ``Y_t(k) - Y_c(k) N_t(k) / N_c(k)`` (the incremental responders among them);
the Qini coefficient is the area between that curve and the random-targeting line, divided by the
same area for the perfect ranking (so random targeting scores 0 in expectation and the best
possible ranking 1). AUUC is the same normalised area for the uplift curve
``(Y_t/N_t - Y_c/N_c)(k) x k``. Both come from scikit-uplift's ``qini_auc_score`` and
``uplift_auc_score``; :func:`evaluate_ranking` compares any number of rankings on the same rows.

What a response is worth
------------------------
A plan values a contact by the estimated uplift times what one response is worth. The campaign
records the margin of every customer's orders in its horizon, so :class:`ResponseMargin` learns the
margin of a response from the customers who responded (treated and control alike: contact changes
whether a customer orders, not what an order is worth). On the 10,000-customer sample campaign the
uplift estimates are calibrated (per decile of estimated uplift, out of fold, the mean estimate is
within a few points of the realised treated-minus-control response), but the CLV the plans used as
the worth of a response correlated 0.45 with the margin a responder actually brought, against 0.79
for :class:`ResponseMargin` out of fold; see ``tests/models/test_uplift.py``.

The registered model
--------------------
:func:`fit_uplift` judges both learners out of fold against ranking by churn score, refits the
better one and :class:`ResponseMargin` on every row and returns an :class:`UpliftBundle`: a
directory of XGBoost JSON boosters and ``bundle.json`` (learner, propensity, feature names, the
Qini/AUUC table, each booster's SHA-256 and their combined digest), read back without pickle.
:mod:`models.registry` registers it in MLflow as ``uplift_<offer>`` (:func:`uplift_model_name`)
with the combined digest pinned as a version tag, like the other models' boosters.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb
from sklearn.model_selection import StratifiedKFold
from sklift.metrics import qini_auc_score, qini_curve, uplift_auc_score
from sklift.models import TwoModels
from xgboost import XGBClassifier, XGBRegressor

from features.contracts import FEATURE_SET_VERSION
from features.snapshot import model_input_columns

__all__ = [
    "DEFAULT_PARAMS",
    "UPLIFT_BUNDLE_KIND",
    "UPLIFT_MODEL_PREFIX",
    "ResponseMargin",
    "TwoModelUplift",
    "UpliftBundle",
    "UpliftLearner",
    "XLearnerUplift",
    "best_ranking",
    "campaign_training_frame",
    "cross_fit",
    "evaluate_ranking",
    "fit_uplift",
    "fold_of",
    "qini",
    "uplift_frame",
    "uplift_model_name",
]

DEFAULT_PARAMS: Final[dict[str, Any]] = {
    "n_estimators": 100,
    "max_depth": 2,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 20.0,
    "n_jobs": 1,
}
"""XGBoost parameters of every inner model: stumps of depth 2 with at least 20 rows' weight per
leaf, as campaign data are small and the effect is a difference of two noisy probabilities. On
the 10,000-customer sample campaign (9,094 rows, five folds) deeper trees (depth 3, 200 rounds,
leaf weight 5) fitted the noise of each arm: their out-of-fold uplift correlated 0.37 (two-model)
and 0.40 (X-learner) with the true uplift, against 0.41 and 0.43 with these. One thread: on a few
thousand rows a second thread only adds waiting."""


@contextmanager
def _sklift_quiet() -> Iterator[None]:
    """Silence scikit-learn's deprecation of ``stable_cumsum``, which scikit-uplift 0.5.1 calls."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*stable_cumsum", category=FutureWarning)
        yield


class UpliftLearner(Protocol):
    """What :func:`cross_fit` needs of a learner: ``fit(x, treatment, y)`` and ``predict(x)``."""

    def fit(self, x: Any, treatment: Any, y: Any) -> Any:
        """Fit on features, treatment flags and outcomes."""

    def predict(self, x: Any) -> np.ndarray:
        """Return the estimated uplift of each row."""


def _check(x: np.ndarray, treatment: np.ndarray, y: np.ndarray) -> None:
    if not len(x) == len(treatment) == len(y):
        raise ValueError(
            f"x, treatment and y differ in length ({len(x)}, {len(treatment)}, {len(y)})"
        )
    for name, values in (("treatment", treatment), ("y", y)):
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{name} must be 0 or 1")
    if treatment.min() == treatment.max():
        raise ValueError("uplift needs both treated and control customers")


def _as_arrays(x: Any, treatment: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=np.float64)
    ta = np.asarray(treatment).astype(np.int64)
    ya = np.asarray(y).astype(np.int64)
    _check(xa, ta, ya)
    return xa, ta, ya


class _Boosted:
    """Parameters shared by the estimators fitted on XGBoost.

    Parameters
    ----------
    params : mapping, optional
        XGBoost parameters (default :data:`DEFAULT_PARAMS`).
    random_state : int, default 0
        Seed of the trees' subsampling.
    """

    def __init__(self, params: Mapping[str, Any] | None = None, random_state: int = 0) -> None:
        self.params = params
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        return dict(DEFAULT_PARAMS if self.params is None else self.params)


class TwoModelUplift(_Boosted):
    """Uplift as the difference of a treated and a control classifier.

    Parameters
    ----------
    params : mapping, optional
        XGBoost parameters of both classifiers (default :data:`DEFAULT_PARAMS`).
    random_state : int, default 0
        Seed of the trees' subsampling.
    """

    def _classifier(self) -> XGBClassifier:
        return XGBClassifier(**self._params(), random_state=self.random_state)

    def fit(self, x: Any, treatment: Any, y: Any) -> TwoModelUplift:
        """Fit the two outcome models.

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.
        treatment : array-like
            1 for contacted, 0 for control.
        y : array-like
            The 0/1 outcome.

        Returns
        -------
        TwoModelUplift
            ``self``.
        """
        xa, ta, ya = _as_arrays(x, treatment, y)
        self.model_ = TwoModels(
            estimator_trmnt=self._classifier(),
            estimator_ctrl=self._classifier(),
            method="vanilla",
        )
        self.model_.fit(xa, ya, ta)
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Return the estimated uplift of each row.

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.

        Returns
        -------
        numpy.ndarray
            ``P(y | contacted) - P(y | control)``.
        """
        return np.asarray(self.model_.predict(np.asarray(x, dtype=np.float64)), dtype=np.float64)


class XLearnerUplift(_Boosted):
    """The X-learner on XGBoost (see the module docstring).

    Parameters
    ----------
    params : mapping, optional
        XGBoost parameters of all four models (default :data:`DEFAULT_PARAMS`).
    propensity : float, optional
        Probability of being contacted; defaults to the treated share of the training rows
        (right for a randomised campaign).
    random_state : int, default 0
        Seed of the trees' subsampling.
    """

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        propensity: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.params = params
        self.propensity = propensity
        self.random_state = random_state

    def fit(self, x: Any, treatment: Any, y: Any) -> XLearnerUplift:
        """Fit the outcome models, then the effect models on the imputed effects.

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.
        treatment : array-like
            1 for contacted, 0 for control.
        y : array-like
            The 0/1 outcome.

        Returns
        -------
        XLearnerUplift
            ``self``.
        """
        xa, ta, ya = _as_arrays(x, treatment, y)
        params, seed = self._params(), self.random_state
        on, off = ta == 1, ta == 0
        mu1 = XGBClassifier(**params, random_state=seed).fit(xa[on], ya[on])
        mu0 = XGBClassifier(**params, random_state=seed).fit(xa[off], ya[off])
        d1 = ya[on] - mu0.predict_proba(xa[on])[:, 1]
        d0 = mu1.predict_proba(xa[off])[:, 1] - ya[off]
        self.tau1_ = XGBRegressor(**params, random_state=seed).fit(xa[on], d1)
        self.tau0_ = XGBRegressor(**params, random_state=seed).fit(xa[off], d0)
        self.propensity_ = float(on.mean()) if self.propensity is None else self.propensity
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Return the estimated uplift of each row.

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.

        Returns
        -------
        numpy.ndarray
            ``g tau0(x) + (1 - g) tau1(x)``.
        """
        xa = np.asarray(x, dtype=np.float64)
        g = self.propensity_
        return g * self.tau0_.predict(xa) + (1.0 - g) * self.tau1_.predict(xa)


def campaign_training_frame(
    snapshot: pl.DataFrame, outcomes: pl.DataFrame, offer: str, outcome: str = "responded"
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Join one offer's campaign outcomes to the feature snapshot taken when it was planned.

    Parameters
    ----------
    snapshot : polars.DataFrame
        Feature snapshot as of the campaign's planning day.
    outcomes : polars.DataFrame
        Validated outcomes (:func:`models.campaigns.validate_outcomes`).
    offer : str
        The offer to model.
    outcome : str, default "responded"
        The 0/1 outcome column.

    Returns
    -------
    ids : polars.DataFrame
        ``customer_id`` of each row, then the outcome columns as given.
    x : numpy.ndarray
        The snapshot's model input columns (:func:`features.snapshot.model_input_columns`).
    treatment : numpy.ndarray
        1 for contacted, 0 for control.
    y : numpy.ndarray
        The outcome.

    Raises
    ------
    ValueError
        If no customer of the offer is in the snapshot.
    """
    rows = outcomes.filter(pl.col("offer") == offer).join(
        snapshot.select("customer_id"), on="customer_id", how="semi"
    )
    if rows.height == 0:
        raise ValueError(f"no customer of offer {offer!r} is in the snapshot")
    x = uplift_frame(snapshot, rows.select("customer_id"))
    treatment = (~rows["control"]).cast(pl.Int64).to_numpy()
    y = rows[outcome].cast(pl.Int64).to_numpy()
    return rows, x, treatment, y


def uplift_frame(snapshot: pl.DataFrame, customers: pl.DataFrame) -> np.ndarray:
    """Return the model inputs of ``customers`` (in their order) from the snapshot.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A feature snapshot.
    customers : polars.DataFrame
        ``customer_id`` of the rows wanted; customers missing from the snapshot get NaN.

    Returns
    -------
    numpy.ndarray
        Float64 matrix of :func:`features.snapshot.model_input_columns`.
    """
    columns = model_input_columns(snapshot)
    joined = customers.select("customer_id").join(
        snapshot.select("customer_id", *columns),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    return joined.select(pl.col(columns).cast(pl.Float64)).to_numpy()


def qini(y: Any, score: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the Qini curve of a ranking: customers targeted and incremental responders.

    Parameters
    ----------
    y : array-like
        The 0/1 outcome.
    score : array-like
        Higher is targeted first.
    treatment : array-like
        1 for contacted, 0 for control.

    Returns
    -------
    tuple of numpy.ndarray
        ``(customers targeted, incremental responders)``, starting at ``(0, 0)``.
    """
    with _sklift_quiet():
        x, curve = qini_curve(np.asarray(y), np.asarray(score), np.asarray(treatment))
    return np.asarray(x, dtype=np.float64), np.asarray(curve, dtype=np.float64)


def evaluate_ranking(
    y: Any, treatment: Any, scores: Mapping[str, Any], random_seeds: int = 20
) -> pd.DataFrame:
    """Compare rankings of the same held-out campaign rows by Qini coefficient and AUUC.

    Parameters
    ----------
    y : array-like
        The 0/1 outcome.
    treatment : array-like
        1 for contacted, 0 for control.
    scores : mapping of str to array-like
        One score per ranking (an uplift estimate, a churn probability, ...).
    random_seeds : int, default 20
        A ``random`` row averages this many seeded random rankings.

    Returns
    -------
    pandas.DataFrame
        Index: the ranking names and ``random``; columns ``qini`` and ``auuc``, sorted by
        descending Qini coefficient.
    """
    with _sklift_quiet():
        return _evaluate(y, treatment, scores, random_seeds)


def _evaluate(y: Any, treatment: Any, scores: Mapping[str, Any], random_seeds: int) -> pd.DataFrame:
    ya, ta = np.asarray(y).astype(np.int64), np.asarray(treatment).astype(np.int64)
    rows = {
        name: (
            qini_auc_score(ya, np.asarray(s, dtype=np.float64), ta),
            uplift_auc_score(ya, np.asarray(s, dtype=np.float64), ta),
        )
        for name, s in scores.items()
    }
    rng = np.random.default_rng(0)
    draws = [rng.random(len(ya)) for _ in range(random_seeds)]
    rows["random"] = (
        float(np.mean([qini_auc_score(ya, d, ta) for d in draws])),
        float(np.mean([uplift_auc_score(ya, d, ta) for d in draws])),
    )
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["qini", "auuc"])
    return frame.sort_values("qini", ascending=False)


def cross_fit(
    learner: Callable[[], UpliftLearner],
    x: Any,
    treatment: Any,
    y: Any,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Return out-of-fold uplift estimates: each row predicted by a model fitted without it.

    Parameters
    ----------
    learner : callable
        Makes a fresh, unfitted learner (e.g. ``TwoModelUplift``).
    x : array-like
        Features, shape ``(n, p)``.
    treatment : array-like
        1 for contacted, 0 for control.
    y : array-like
        The 0/1 outcome.
    folds : int, default 5
        Number of folds (scikit-learn's ``StratifiedKFold`` on treatment and outcome).
    seed : int, default 0
        Seed of the fold assignment.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``: the out-of-fold uplift of every row.
    """
    xa, ta, ya = _as_arrays(x, treatment, y)
    out = np.empty(len(ya), dtype=np.float64)
    fold = fold_of(ta, ya, folds, seed)
    for k in range(folds):
        model = learner()
        model.fit(xa[fold != k], ta[fold != k], ya[fold != k])
        out[fold == k] = model.predict(xa[fold == k])
    return out


def fold_of(treatment: Any, y: Any, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Assign each campaign row to a fold, stratified by treatment and outcome.

    Parameters
    ----------
    treatment : array-like
        1 for contacted, 0 for control.
    y : array-like
        The 0/1 outcome.
    folds : int, default 5
        Number of folds.
    seed : int, default 0
        Seed of scikit-learn's ``StratifiedKFold``.

    Returns
    -------
    numpy.ndarray
        The fold (``0 .. folds - 1``) of each row; :func:`cross_fit` uses the same assignment.
    """
    strata = 2 * np.asarray(treatment).astype(np.int64) + np.asarray(y).astype(np.int64)
    fold = np.empty(len(strata), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros((len(strata), 1)), strata)):
        fold[test] = k
    return fold


def best_ranking(table: pd.DataFrame, baseline: str = "churn_score") -> str | None:
    """Return the uplift ranking plans should use, or None when none beats the baseline.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`evaluate_ranking`'s table with the uplift learners, the baseline and ``random``.
    baseline : str, default "churn_score"
        The ranking an uplift model must beat on the Qini coefficient.

    Returns
    -------
    str or None
        The learner with the largest Qini coefficient when it is larger than the baseline's.
    """
    learners = table.drop(index=[baseline, "random"], errors="ignore")
    if learners.empty:
        return None
    qini = learners["qini"].astype(float)
    best = str(qini.idxmax())
    return best if float(qini[best]) > float(table["qini"].astype(float)[baseline]) else None


UPLIFT_MODEL_PREFIX: Final = "uplift_"
"""Registered name of an offer's uplift model: ``uplift_<offer>``."""

UPLIFT_BUNDLE_KIND: Final = "uplift"
"""``kind`` of an uplift bundle's ``bundle.json`` (the other bundles are a task's kinds)."""

_BUNDLE_FILE: Final = "bundle.json"
_LEARNER_BOOSTERS: Final[dict[str, tuple[str, ...]]] = {
    "two_model": ("treated", "control"),
    "x_learner": ("tau0", "tau1"),
}


def uplift_model_name(offer: str) -> str:
    """Return the registered model name of an offer's uplift model.

    Parameters
    ----------
    offer : str
        The offer's name.

    Returns
    -------
    str
        ``uplift_<offer>``.
    """
    return f"{UPLIFT_MODEL_PREFIX}{offer}"


class ResponseMargin(_Boosted):
    """What one response is worth: the margin of a responder, regressed on the features.

    Parameters
    ----------
    params : mapping, optional
        XGBoost parameters of the regressor (default :data:`DEFAULT_PARAMS`).
    random_state : int, default 0
        Seed of the trees' subsampling.
    """

    def fit(self, x: Any, y: Any, margin: Any) -> ResponseMargin:
        """Fit on the rows that responded (treated and control).

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.
        y : array-like
            The 0/1 outcome; only rows with ``y == 1`` are used.
        margin : array-like
            Each row's margin in the campaign's horizon.

        Returns
        -------
        ResponseMargin
            ``self``.

        Raises
        ------
        ValueError
            If no row responded.
        """
        xa = np.asarray(x, dtype=np.float64)
        hit = np.asarray(y).astype(bool)
        if not hit.any():
            raise ValueError("no campaign row responded: the margin of a response is unknown")
        self.model_ = XGBRegressor(**self._params(), random_state=self.random_state).fit(
            xa[hit], np.asarray(margin, dtype=np.float64)[hit]
        )
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Return the expected margin of a response of each row (floored at 0).

        Parameters
        ----------
        x : array-like
            Features, shape ``(n, p)``.

        Returns
        -------
        numpy.ndarray
            Margin per response.
        """
        out = self.model_.predict(np.asarray(x, dtype=np.float64))
        return np.maximum(np.asarray(out, dtype=np.float64), 0.0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _combined(digests: Mapping[str, str]) -> str:
    return _sha256(json.dumps(dict(sorted(digests.items()))).encode())


@dataclass
class UpliftBundle:
    """A fitted uplift model of one offer, saved as XGBoost JSON boosters and ``bundle.json``.

    Parameters
    ----------
    offer : str
        The offer.
    learner : {"two_model", "x_learner"}
        Which learner the boosters are: ``treated``/``control`` classifiers, or the X-learner's
        ``tau0``/``tau1`` effect regressors blended by ``propensity``.
    boosters : dict of str to xgboost.Booster
        The learner's boosters and ``margin`` (:class:`ResponseMargin`).
    feature_names : list of str
        Input columns, in order.
    propensity : float
        Treated share of the campaign (the X-learner's blend).
    metrics : dict
        Nested ``{ranking: {"qini": ..., "auuc": ...}}`` on held-out campaign rows.
    feature_set_version : str
        Feature-set version of the snapshot it was fitted on.
    metadata : dict
        JSON-able provenance (rows, treated, control, folds, seed).
    """

    offer: str
    learner: str
    boosters: dict[str, xgb.Booster]
    feature_names: list[str]
    propensity: float
    metrics: dict[str, dict[str, float]]
    feature_set_version: str = FEATURE_SET_VERSION
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def beats_churn_score(self) -> bool:
        """True when the learner's Qini coefficient is above ranking by churn score."""
        churn = self.metrics.get("churn_score", {}).get("qini", -np.inf)
        return bool(self.metrics[self.learner]["qini"] > churn)

    def _predict(self, name: str, x: np.ndarray) -> np.ndarray:
        out = self.boosters[name].inplace_predict(np.asarray(x, np.float32), missing=np.nan)
        return np.asarray(out, dtype=np.float64).reshape(len(x))

    def predict_uplift(self, x: Any) -> np.ndarray:
        """Return the estimated uplift (incremental probability of a response) of each row.

        Parameters
        ----------
        x : array-like
            Features in :attr:`feature_names` order, shape ``(n, p)``.

        Returns
        -------
        numpy.ndarray
            The uplift.
        """
        xa = np.asarray(x, dtype=np.float64)
        if self.learner == "two_model":
            return self._predict("treated", xa) - self._predict("control", xa)
        g = self.propensity
        return g * self._predict("tau0", xa) + (1.0 - g) * self._predict("tau1", xa)

    def predict_margin(self, x: Any) -> np.ndarray:
        """Return the expected margin of a response of each row (floored at 0).

        Parameters
        ----------
        x : array-like
            Features in :attr:`feature_names` order, shape ``(n, p)``.

        Returns
        -------
        numpy.ndarray
            Margin per response.
        """
        return np.maximum(self._predict("margin", np.asarray(x, dtype=np.float64)), 0.0)

    def save(self, path: Path) -> None:
        """Write the boosters as XGBoost JSON and ``bundle.json`` with their SHA-256 digests.

        Parameters
        ----------
        path : pathlib.Path
            Directory to create (or fill).
        """
        path.mkdir(parents=True, exist_ok=True)
        digests = {}
        for name, booster in self.boosters.items():
            file = path / f"{name}.json"
            booster.save_model(str(file))
            digests[name] = _sha256(file.read_bytes())
        meta = {
            "kind": UPLIFT_BUNDLE_KIND,
            "offer": self.offer,
            "learner": self.learner,
            "feature_names": self.feature_names,
            "propensity": self.propensity,
            "metrics": self.metrics,
            "feature_set_version": self.feature_set_version,
            "metadata": self.metadata,
            "boosters": digests,
            "booster_sha256": _combined(digests),
        }
        (path / _BUNDLE_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> UpliftBundle:
        """Read a saved bundle, checking every booster's digest before XGBoost reads it.

        Parameters
        ----------
        path : pathlib.Path
            Directory written by :meth:`save`.

        Returns
        -------
        UpliftBundle
            The bundle.

        Raises
        ------
        ValueError
            If ``bundle.json`` is not an uplift bundle, a booster is missing, or a booster's
            digest (or the combined digest) differs from the recorded one.
        """
        meta = json.loads((path / _BUNDLE_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("kind") != UPLIFT_BUNDLE_KIND:
            raise ValueError(f"{path}: not an uplift bundle")
        learner = str(meta["learner"])
        if learner not in _LEARNER_BOOSTERS:
            raise ValueError(f"{path}: unknown uplift learner {learner!r}")
        digests: dict[str, str] = dict(meta["boosters"])
        expected = {*_LEARNER_BOOSTERS[learner], "margin"}
        if set(digests) != expected or _combined(digests) != meta.get("booster_sha256"):
            raise ValueError(f"{path}: the booster digests do not match bundle.json")
        boosters = {}
        for name, digest in digests.items():
            raw = (path / f"{name}.json").read_bytes()
            if _sha256(raw) != digest:
                raise ValueError(f"{path}: booster {name!r} differs from its recorded digest")
            booster = xgb.Booster()
            booster.load_model(bytearray(raw))
            boosters[name] = booster
        return cls(
            offer=str(meta["offer"]),
            learner=learner,
            boosters=boosters,
            feature_names=list(meta["feature_names"]),
            propensity=float(meta["propensity"]),
            metrics={k: dict(v) for k, v in meta["metrics"].items()},
            feature_set_version=str(meta["feature_set_version"]),
            metadata=dict(meta.get("metadata", {})),
        )


def _learner_boosters(learner: UpliftLearner) -> dict[str, xgb.Booster]:
    if isinstance(learner, TwoModelUplift):
        model = learner.model_
        return {
            "treated": model.estimator_trmnt.get_booster(),
            "control": model.estimator_ctrl.get_booster(),
        }
    if isinstance(learner, XLearnerUplift):
        return {"tau0": learner.tau0_.get_booster(), "tau1": learner.tau1_.get_booster()}
    raise TypeError(f"cannot save a {type(learner).__name__} as an uplift bundle")


def fit_uplift(
    offer: str,
    x: np.ndarray,
    treatment: np.ndarray,
    y: np.ndarray,
    margin: np.ndarray,
    churn: np.ndarray,
    feature_names: list[str],
    folds: int = 5,
    seed: int = 0,
) -> tuple[UpliftBundle, pd.DataFrame]:
    """Judge the learners on held-out campaign rows, then fit the better one on every row.

    Parameters
    ----------
    offer : str
        The offer.
    x, treatment, y : numpy.ndarray
        From :func:`campaign_training_frame`.
    margin : numpy.ndarray
        Each row's margin in the campaign's horizon (for :class:`ResponseMargin`).
    churn : numpy.ndarray
        Each row's churn probability (the ranking to beat; 0 outside the churn population).
    feature_names : list of str
        The columns of ``x``.
    folds : int, default 5
        Folds of :func:`cross_fit`.
    seed : int, default 0
        Seed of the folds.

    Returns
    -------
    tuple
        The bundle (its ``metrics`` hold the Qini and AUUC of every ranking, out of fold) and
        :func:`evaluate_ranking`'s table.
    """
    learners: dict[str, Callable[[], UpliftLearner]] = {
        "two_model": TwoModelUplift,
        "x_learner": XLearnerUplift,
    }
    oof = {name: cross_fit(make, x, treatment, y, folds, seed) for name, make in learners.items()}
    table = evaluate_ranking(y, treatment, oof | {"churn_score": churn})
    best = str(table.loc[list(learners), "qini"].astype(float).idxmax())
    fitted = learners[best]().fit(x, treatment, y)
    worth = ResponseMargin().fit(x, y, margin)
    bundle = UpliftBundle(
        offer=offer,
        learner=best,
        boosters={**_learner_boosters(fitted), "margin": worth.model_.get_booster()},
        feature_names=list(feature_names),
        propensity=float(np.mean(treatment)),
        metrics={
            str(name): {"qini": float(row["qini"]), "auuc": float(row["auuc"])}
            for name, row in table.iterrows()
        },
        metadata={
            "rows": len(y),
            "treated": int(np.sum(treatment)),
            "control": int(len(y) - np.sum(treatment)),
            "folds": folds,
            "seed": seed,
        },
    )
    return bundle, table

"""The model artifact: an XGBoost booster with its calibration, inputs and provenance.

A :class:`ModelBundle` is saved as a directory holding ``model.ubj`` (the booster in XGBoost's own
UBJSON format) and ``bundle.json`` (everything else, plain JSON). Loading reads those two files and
never unpickles anything, so a bundle from an untrusted place cannot run code when it is opened.

Scores are computed from the booster's *margin* (log-odds): :meth:`ModelBundle.predict_margin`,
then the fitted calibration maps the margin to a probability (:meth:`ModelBundle.predict_proba`).
:meth:`ModelBundle.predict` gives what the task outputs: the calibrated probability of a
classifier (``binary`` and ``ranked`` tasks), the raw prediction of a ``regression`` task.
:meth:`ModelBundle.contributions` returns exact TreeSHAP values, the matrix XGBoost's
``pred_contribs`` gives, from the compiled kernels of :mod:`models.treeshap` (the booster is parsed
once and kept); each row sums to the margin (last column = bias).
"""

from __future__ import annotations

import errno
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb

from features.contracts import counted
from models.treeshap import tree_shap

__all__ = [
    "BACKING_KEY",
    "BOOSTER_FILE",
    "BUNDLE_FILE",
    "BUNDLE_FORMAT_VERSION",
    "MAX_INPUT",
    "MODEL_METRICS",
    "RULE_BACKED",
    "RULE_BACKING",
    "SHIFT_LINKS",
    "ModelBundle",
    "apply_calibration",
    "shift_probability",
]

BOOSTER_FILE: Final = "model.ubj"
BUNDLE_FILE: Final = "bundle.json"
BUNDLE_FORMAT_VERSION: Final = 1
"""Version of the ``bundle.json`` layout; bumped when its keys change meaning."""

_CALIBRATION_METHODS: Final = ("isotonic", "sigmoid", "none")

BACKING_KEY: Final = "backing"
"""Key of ``metadata`` (and version tag) saying what a bundle's booster is: :data:`RULE_BACKING`
for a task's graded rule fitted as a one-input booster (:class:`models.tasks.RuleBacking`);
absent for a trained model."""
RULE_BACKING: Final = "rule"
"""``metadata["backing"]`` of a rule-backed bundle."""
RULE_BACKED: Final = "rule_backed"
"""Key of a rule-backed version's held-out metrics among training's metrics (beside ``xgboost``,
``logistic`` and the baselines)."""
MODEL_METRICS: Final = "xgboost"
"""Key of a trained model's held-out metrics among training's metrics."""

MAX_INPUT: Final = float(np.finfo(np.float32).max)
"""The largest input size a booster reads as itself: float32's largest, about 3.4e38.

A larger value (a feature worked out from huge amounts) reaches the booster as infinite, which
it orders as the value itself: every split threshold is a finite float32, so the row takes the
branch the value would.
"""


def apply_calibration(calibration: dict[str, Any], margin: np.ndarray) -> np.ndarray:
    """Map booster margins (log-odds) to calibrated probabilities.

    Parameters
    ----------
    calibration : dict
        ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear interpolation of the
        fitted isotonic steps, ``np.interp``, flat beyond the ends), ``{"method": "sigmoid",
        "a": a, "b": b}`` (``1 / (1 + exp(-(a * margin + b)))``) or ``{"method": "none"}`` (the
        plain logistic of the margin). An optional ``"shift"`` (default 0) moves the mapped
        probability on the ``"shift_link"`` scale (default ``"logit"``, see
        :func:`shift_probability`): the season correction of :mod:`training.calibration`, so the
        ranking never changes.
    margin : numpy.ndarray
        Raw margins, any shape.

    Returns
    -------
    numpy.ndarray
        Probabilities in [0, 1], float64, same shape as ``margin``.

    Raises
    ------
    ValueError
        If the method is unknown or its parameters are missing.
    """
    p = _calibrated(calibration, np.asarray(margin, dtype=np.float64))
    return shift_probability(
        p, float(calibration.get("shift", 0.0)), calibration.get("shift_link", "logit")
    )


SHIFT_LINKS: Final[tuple[str, ...]] = ("logit", "cloglog", "loglog")
"""Scales a season shift moves probabilities on (see :func:`shift_probability`)."""


def shift_probability(p: np.ndarray, shift: float, link: str = "logit") -> np.ndarray:
    """Move probabilities by a constant on a link scale (a season's prior shift).

    Parameters
    ----------
    p : numpy.ndarray
        Probabilities in [0, 1].
    shift : float
        The constant added on the link scale.
    link : {"logit", "cloglog", "loglog"}, default "logit"
        ``logit``: ``log(p / (1 - p))`` (a change of prior odds); ``cloglog``:
        ``log(-log(1 - p))``, for the chance of at least one event of a Poisson process: the
        shift multiplies its rate by ``exp(shift)``; ``loglog``: ``log(-log(p))``, for the chance
        of *no* event (churn: no order), the same rate change.

    Returns
    -------
    numpy.ndarray
        The moved probabilities (the order of ``p`` is kept); ``p`` itself when ``shift`` is 0.

    Raises
    ------
    ValueError
        If the link is unknown.
    """
    if link not in SHIFT_LINKS:
        raise ValueError(f"unknown shift link {link!r}; expected one of {SHIFT_LINKS}")
    if shift == 0.0:
        return p
    with np.errstate(divide="ignore", over="ignore"):
        if link == "logit":
            return np.asarray(1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p) + shift))))
        if link == "cloglog":
            return np.asarray(-np.expm1(-np.exp(np.log(-np.log1p(-p)) + shift)))
        return np.asarray(np.exp(-np.exp(np.log(-np.log(p)) + shift)))


def _calibrated(calibration: dict[str, Any], m: np.ndarray) -> np.ndarray:
    method = calibration.get("method")
    if method == "isotonic":
        x = np.asarray(calibration["x"], dtype=np.float64)
        y = np.asarray(calibration["y"], dtype=np.float64)
        if x.size == 0 or x.shape != y.shape:
            raise ValueError("isotonic calibration needs non-empty 'x' and 'y' of equal length")
        return np.asarray(np.interp(m, x, y), dtype=np.float64)
    if method == "sigmoid":
        return np.asarray(
            1.0 / (1.0 + np.exp(-(float(calibration["a"]) * m + float(calibration["b"])))),
            dtype=np.float64,
        )
    if method == "none":
        return np.asarray(1.0 / (1.0 + np.exp(-m)), dtype=np.float64)
    raise ValueError(
        f"unknown calibration method {method!r}; expected one of {_CALIBRATION_METHODS}"
    )


def _json_default(obj: object) -> object:
    """Turn NumPy scalars/arrays and dates into JSON values (used by :func:`json.dumps`)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, date | datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable in a model bundle: {obj!r}")


@dataclass
class ModelBundle:
    """An XGBoost model with its calibration, input columns and provenance.

    Parameters
    ----------
    task : str
        The task the model scores (a name of :func:`models.tasks.task_names`).
    booster : xgboost.Booster
        The trained booster (binary logistic objective for a classifier).
    feature_names : list of str
        Input columns, in the order the booster expects them.
    calibration : dict
        Margin-to-probability map fitted on held-out time; see :func:`apply_calibration`.
    feature_set_version : str
        ``features.contracts.FEATURE_SET_VERSION`` at training time.
    categories : list of str
        Cross-sell target categories (empty for the other tasks).
    metadata : dict
        JSON-able provenance: metrics, grade, baselines, data window, cutoffs, seed, params.
    kind : {"binary", "ranked", "regression"}, default "binary"
        The task's kind (:data:`models.tasks.Kind`): what :meth:`predict` returns.
    """

    task: str
    booster: xgb.Booster
    feature_names: list[str]
    calibration: dict[str, Any]
    feature_set_version: str
    categories: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "binary"

    @property
    def rule_backed(self) -> bool:
        """Whether the booster is the task's rule (``metadata["backing"] == "rule"``)."""
        return self.metadata.get(BACKING_KEY) == RULE_BACKING

    @property
    def served_by(self) -> str:
        """What scores for this bundle, in words: the rule's name (``affinity rule``) or XGBoost."""
        if self.rule_backed:
            return str(self.metadata.get("backing_name") or "rule")
        return "XGBoost"

    @property
    def metrics_key(self) -> str:
        """Key of this bundle's own held-out metrics in ``metadata["metrics"]``.

        :data:`RULE_BACKED` for a rule-backed bundle, :data:`MODEL_METRICS` otherwise.
        """
        return RULE_BACKED if self.rule_backed else MODEL_METRICS

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Return ``X``'s model columns, in order, as a float32 array (names any missing).

        An array is taken as the model's columns already in order (a serving table's ``values``).
        A value beyond :data:`MAX_INPUT` becomes infinite with its sign, on purpose: the booster
        then takes the branch the value itself would, so numpy's overflow report is turned off
        for this cast, and only for it.
        """
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(self.feature_names):
                raise ValueError(
                    f"{self.task} model input array has shape {X.shape}, "
                    f"expected (rows, {len(self.feature_names)})"
                )
            with np.errstate(over="ignore"):
                return np.ascontiguousarray(X, dtype=np.float32)
        if X.columns.tolist() != self.feature_names:  # model_frame's rows need no selection
            missing = [c for c in self.feature_names if c not in X.columns]
            if missing:
                raise KeyError(
                    f"{self.task} model input lacks {counted(len(missing), 'feature columns')}: "
                    f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
                )
            X = X.loc[:, self.feature_names]  # noqa: N806
        with np.errstate(over="ignore"):
            return X.to_numpy(dtype=np.float32, na_value=np.nan)

    def predict_margin(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Raw log-odds from the booster.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Model input rows; a frame must hold every column of ``feature_names`` (extra ones
            are ignored), an array holds exactly those columns in that order.

        Returns
        -------
        numpy.ndarray
            Margins, float64, shape ``(n,)``.
        """
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        out = self.booster.inplace_predict(self._matrix(X), predict_type="margin", missing=np.nan)
        return np.asarray(out, dtype=np.float64).reshape(len(X))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Calibrated probability of the positive class.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Model input rows, as for :meth:`predict_margin`.

        Returns
        -------
        numpy.ndarray
            Probabilities, float64, shape ``(n,)``.
        """
        return apply_calibration(self.calibration, self.predict_margin(X))

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Predict what the task outputs: a calibrated probability, or a regression's value.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Model input rows, as for :meth:`predict_margin`.

        Returns
        -------
        numpy.ndarray
            :meth:`predict_proba` for a classifier, :meth:`predict_margin` (the booster's raw
            output) for a ``regression`` task; float64, shape ``(n,)``.
        """
        if self.kind == "regression":
            return self.predict_margin(X)
        return self.predict_proba(X)

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Exact TreeSHAP contributions in log-odds, as XGBoost's ``pred_contribs`` gives them.

        Computed by :func:`models.treeshap.tree_shap` (parsed once per booster, then cached) and
        rounded to float32 precision, as ``pred_contribs`` gives them: serving keeps them as
        float32, so the values it keeps are the ones batch scoring writes.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Model input rows, as for :meth:`predict_margin`.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, p + 1)``, float64: one column per ``feature_names`` entry, then the bias;
            each row sums to the row's margin (up to float32 rounding).
        """
        if len(X) == 0:
            return np.zeros((0, len(self.feature_names) + 1), dtype=np.float64)
        values = tree_shap(self.booster).contributions(self._matrix(X))
        return values.astype(np.float32).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the booster, as written to ``bundle.json``.

        Returns
        -------
        dict
            JSON-able description of the bundle.
        """
        return {
            "format_version": BUNDLE_FORMAT_VERSION,
            "task": self.task,
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "calibration": self.calibration,
            "feature_set_version": self.feature_set_version,
            "categories": list(self.categories),
            "metadata": self.metadata,
        }

    def save(self, path: Path) -> None:
        """Write the bundle into directory ``path`` (created if needed).

        Parameters
        ----------
        path : pathlib.Path
            Target directory; receives ``model.ubj`` and ``bundle.json``.

        Raises
        ------
        TypeError
            If ``metadata`` or ``calibration`` holds a value JSON cannot represent.
        """
        meta = self.to_dict()
        json.dumps(meta, default=_json_default)  # fail before writing anything
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / BOOSTER_FILE))
        # XGBoost can crash the process on a damaged model file: load() checks this digest first
        meta["booster_sha256"] = hashlib.sha256((path / BOOSTER_FILE).read_bytes()).hexdigest()
        text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
        (path / BUNDLE_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ModelBundle:
        """Read a bundle written by :meth:`save` (no unpickling).

        Parameters
        ----------
        path : pathlib.Path
            Directory holding ``model.ubj`` and ``bundle.json``.

        Returns
        -------
        ModelBundle
            The bundle.

        Raises
        ------
        FileNotFoundError
            If either file is missing (``filename``: its path).
        ValueError
            If ``bundle.json`` is malformed or from a newer format, or ``model.ubj`` does not
            match the SHA-256 digest recorded in ``bundle.json`` (checked before XGBoost reads it).
        """
        path = Path(path)
        meta_path, booster_path = path / BUNDLE_FILE, path / BOOSTER_FILE
        for p in (meta_path, booster_path):
            if not p.is_file():
                raise FileNotFoundError(errno.ENOENT, f"model bundle file {p} is missing", str(p))
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc})") from exc
        version = meta.get("format_version")
        if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: format_version {version!r} is not supported "
                f"(this guanxi reads up to {BUNDLE_FORMAT_VERSION})"
            )
        required = ("task", "feature_names", "calibration", "feature_set_version")
        absent = [k for k in required if k not in meta]
        if absent:
            raise ValueError(
                f"{meta_path}: missing {counted(len(absent), 'keys')}: {', '.join(absent)}"
            )
        raw = booster_path.read_bytes()
        expected = meta.get("booster_sha256")
        if expected is not None and hashlib.sha256(raw).hexdigest() != expected:
            raise ValueError(
                f"{booster_path}: the booster file does not match its checksum in {BUNDLE_FILE} "
                f"(corrupt or truncated, {len(raw):,} bytes); refusing to load it"
            )
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        n_booster = booster.num_features()
        if n_booster != len(meta["feature_names"]):
            raise ValueError(
                f"{path}: booster has {n_booster} features but bundle.json lists "
                f"{len(meta['feature_names'])}"
            )
        return cls(
            task=str(meta["task"]),
            booster=booster,
            feature_names=[str(c) for c in meta["feature_names"]],
            calibration=dict(meta["calibration"]),
            feature_set_version=str(meta["feature_set_version"]),
            categories=[str(c) for c in meta.get("categories", [])],
            metadata=dict(meta.get("metadata", {})),
            kind=str(meta.get("kind", "binary")),
        )

"""Maximum likelihood on log-parameters, input checks and the one error the value models raise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Final, Self

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

__all__ = [
    "ModelIdentificationError",
    "ValueModel",
    "as_array",
    "check",
    "maximize",
    "weights_or_ones",
]

FloatArray = npt.NDArray[np.float64]

LOG_BOUND: Final = 18.0
"""Log-parameters are kept in ``[-LOG_BOUND, LOG_BOUND]`` (about 1.5e-8 to 6.6e7)."""
_AT_BOUND: Final = 1.0
"""A log-parameter within this of a bound has run off: the likelihood is flat towards the edge."""


class ModelIdentificationError(ValueError):
    """The data cannot identify the model's parameters, or the fit did not converge.

    The message says which model, what in the data is missing, and what to try.
    """


def as_array(values: npt.ArrayLike, name: str, n: int | None = None) -> FloatArray:
    """Return ``values`` as a finite 1-d float array, or raise naming the field.

    Parameters
    ----------
    values : array_like
        The values.
    name : str
        The field name used in error messages.
    n : int, optional
        Required length.

    Returns
    -------
    numpy.ndarray
        Float64 copy or view.

    Raises
    ------
    ValueError
        If the values are not 1-d, have the wrong length, or are not finite (the message gives
        the first offending positions).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name} has {array.size} values, expected {n}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} is missing or not finite at {_positions(bad)}")
    return array


def _positions(index: npt.NDArray[np.intp]) -> str:
    """``"rows 3, 7 and 12 more"`` for the first offending positions (0-based)."""
    shown = ", ".join(str(i) for i in index[:5])
    more = f" and {index.size - 5:,} more" if index.size > 5 else ""
    return f"row {shown}{more}" if index.size == 1 else f"rows {shown}{more}"


def check(condition: npt.NDArray[np.bool_], message: str) -> None:
    """Raise ``ValueError(message + positions)`` where ``condition`` is False.

    Parameters
    ----------
    condition : numpy.ndarray of bool
        What must hold for every row.
    message : str
        What is wrong, e.g. ``"frequency must be a whole number >= 0"``.

    Raises
    ------
    ValueError
        If any row breaks the condition.
    """
    bad = np.flatnonzero(~condition)
    if bad.size:
        raise ValueError(f"{message}; it is not at {_positions(bad)} (0-based)")


def weights_or_ones(weights: npt.ArrayLike | None, n: int) -> FloatArray:
    """Return the row weights (counts of identical customers), ones when none are given.

    Parameters
    ----------
    weights : array_like or None
        Non-negative weights, one per row.
    n : int
        Number of rows.

    Returns
    -------
    numpy.ndarray
        Float64 weights.

    Raises
    ------
    ValueError
        If a weight is negative or not finite, or all are zero.
    """
    if weights is None:
        return np.ones(n)
    w = as_array(weights, "weights", n)
    check(w >= 0, "weights must be >= 0")
    if not w.sum() > 0:
        raise ValueError("weights are all zero: there is no customer to fit")
    return w


def maximize(
    model: str,
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    names: Sequence[str],
    *,
    max_iterations: int = 1000,
) -> tuple[FloatArray, float, int]:
    """Maximise a log-likelihood over log-parameters with L-BFGS-B and an analytic gradient.

    Parameters
    ----------
    model : str
        Model name for error messages (``"BG/NBD"``).
    objective : callable
        ``objective(log_params) -> (log_likelihood, gradient wrt log_params)``, both scaled as
        the caller likes (a mean per customer keeps the tolerances meaningful).
    start : numpy.ndarray
        Starting log-parameters.
    names : sequence of str
        Parameter names, for messages.
    max_iterations : int, default 1000
        Iteration limit.

    Returns
    -------
    log_params : numpy.ndarray
        The maximising log-parameters.
    value : float
        The objective there.
    iterations : int
        L-BFGS-B iterations used.

    Raises
    ------
    ModelIdentificationError
        If the optimiser fails, the likelihood is not finite, or a parameter runs to the edge of
        its range (``exp(+-LOG_BOUND)``): the data cannot pin it down.
    """

    def negative(theta: FloatArray) -> tuple[float, FloatArray]:
        value, gradient = objective(theta)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return np.inf, np.zeros_like(theta)
        return -value, -gradient

    with np.errstate(all="ignore"):
        result = minimize(
            negative,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
            options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
        )
    theta = np.asarray(result.x, dtype=np.float64)
    if not np.isfinite(result.fun):
        raise ModelIdentificationError(
            f"{model}: the log-likelihood is not finite at any parameter the fit tried; "
            "check the summaries for impossible values"
        )
    edge = [n for n, v in zip(names, theta, strict=True) if abs(v) > LOG_BOUND - _AT_BOUND]
    if edge:
        values = ", ".join(f"{n}={np.exp(v):.3g}" for n, v in zip(names, theta, strict=True))
        raise ModelIdentificationError(
            f"{model}: the data cannot identify {', '.join(edge)} (the fit ran to the edge of "
            f"the parameter range: {values}); more customers or a longer history are needed"
        )
    if not result.success and result.nit >= max_iterations:
        raise ModelIdentificationError(
            f"{model}: the fit did not converge in {max_iterations} iterations ({result.message})"
        )
    return theta, float(-result.fun), int(result.nit)


class ValueModel:
    """What the value models share: their settings, their parameters by name, rebuilding.

    A subclass names itself (``NAME``) and its parameters (``PARAMS``); fitted parameter
    ``name`` is stored as the attribute ``name_``.

    Parameters
    ----------
    max_iterations : int, default 1000
        Iteration limit of the optimiser.
    """

    NAME: ClassVar[str]
    PARAMS: ClassVar[tuple[str, ...]]

    def __init__(self, max_iterations: int = 1000) -> None:
        self.max_iterations = max_iterations

    @property
    def params_(self) -> dict[str, float]:
        """The fitted parameters by name."""
        return dict(zip(self.PARAMS, self._params(), strict=True))

    def _params(self) -> tuple[float, ...]:
        try:
            return tuple(float(getattr(self, f"{name}_")) for name in self.PARAMS)
        except AttributeError:
            raise RuntimeError(
                f"this {self.NAME} model is not fitted yet: call fit first"
            ) from None

    def _set_params(self, values: Sequence[float]) -> None:
        for name, value in zip(self.PARAMS, values, strict=True):
            setattr(self, f"{name}_", float(value))

    @classmethod
    def _from_values(cls, values: Sequence[float]) -> Self:
        array = as_array(values, "parameters")
        check(array > 0, f"{cls.NAME} parameters {', '.join(cls.PARAMS)} must be > 0")
        model = cls()
        model._set_params(array.tolist())
        return model

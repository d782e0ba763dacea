"""The budgeted multiple-choice knapsack behind a targeting plan.

Each customer ``i`` can receive at most one of ``m`` offers; giving offer ``j`` earns the expected
value ``v[i, j]`` and uses ``a_k[i, j]`` of each shared resource ``k`` (the budget, a channel's
contacts, an offer's contact cap), whose capacity is ``b_k``::

    maximise    sum_ij v[i, j] x[i, j]
    subject to  sum_j x[i, j] <= 1                 for every customer i
                sum_ij a_k[i, j] x[i, j] <= b_k    for every resource k
                x[i, j] in {0, 1}

Two methods, one answer format (:class:`Solution`):

``exact``
    The MILP above, solved by HiGHS through :func:`scipy.optimize.milp`. Its dual bound proves
    optimality (gap 0 when HiGHS finishes).
``lagrangian``
    Relax the ``K`` resource constraints with prices ``lambda_k >= 0``. For given prices each
    customer independently takes the offer with the largest reduced value
    ``v[i, j] - sum_k lambda_k a_k[i, j]`` when it is positive, and

        L(lambda) = sum_i max(0, max_j reduced value) + sum_k lambda_k b_k

    is an upper bound on the optimum for *every* ``lambda``. ``L`` is convex and piecewise linear
    in ``K`` (a handful of) variables; it is minimised by Kelley's cutting-plane method (one
    :func:`scipy.optimize.linprog` over ``K + 1`` variables a step, one vectorised pass over the
    customers per cut). Because each customer's sub-problem has an integral LP, the minimum of
    ``L`` equals the LP relaxation's optimum: the bound is the LP bound. The plan is the
    customers' choices at the best prices, repaired where a resource is over-used (dropping the
    choices that earn least per unit of that resource) and then filled greedily by value per
    priced unit of resource while anything fits. The optimality gap ``(bound - value) / bound``
    is reported, never assumed.

``auto`` (the default) runs ``exact`` when the problem has at most ``exact_limit`` candidate
pairs and ``lagrangian`` otherwise: HiGHS's time to prove optimality grows quickly with the number
of pairs, while the Lagrangian gap shrinks as customers are added (a few fractional customers in
the LP bound weigh less); ``bench/target.py`` measures both. Pairs with a non-positive or missing
value, or that alone exceed a capacity, are dropped before either method runs: no optimal plan
contains them. The prices are returned as shadow prices (per unit of each resource): the budget's
is what one more unit of budget would return at the margin, a phone channel's what one more call
would.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

__all__ = [
    "DEFAULT_EXACT_LIMIT",
    "Method",
    "Resource",
    "Solution",
    "solve",
]

Method = Literal["auto", "exact", "lagrangian"]
DEFAULT_EXACT_LIMIT: Final = 10_000
"""``auto`` solves exactly up to this many candidate (customer, offer) pairs."""

_DUAL_TOL: Final = 1e-9
_DUAL_ITERATIONS: Final = 300
_FILL_ROUNDS: Final = 60


@dataclass(frozen=True)
class Resource:
    """A shared limit: the budget, a channel's capacity, an offer's contact cap.

    Parameters
    ----------
    name : str
        Shown in shadow prices and usage (``budget``, ``channel:phone``, ``offer:x``).
    capacity : float
        The most that may be used (``b_k``, >= 0).
    usage : numpy.ndarray
        What giving an offer uses: shape ``(m,)`` (the same for every customer, e.g. 1 contact
        of the offer's channel) or ``(n, m)``.
    """

    name: str
    capacity: float
    usage: np.ndarray

    def used(self, choice: np.ndarray) -> float:
        """Return how much of this limit a choice uses.

        Parameters
        ----------
        choice : numpy.ndarray
            The offer index per customer, -1 for none (:attr:`Solution.choice`).

        Returns
        -------
        float
            The usage of the chosen offers, summed.
        """
        on = np.flatnonzero(choice >= 0)
        u = np.asarray(self.usage, dtype=np.float64)
        return float(u[choice[on]].sum() if u.ndim == 1 else u[on, choice[on]].sum())


@dataclass(frozen=True)
class Solution:
    """A plan: which offer each customer gets, its value, and how far from optimal it can be.

    Parameters
    ----------
    choice : numpy.ndarray
        Offer index per customer, ``-1`` for none (shape ``(n,)``).
    objective : float
        Total value of the plan.
    bound : float
        An upper bound on the best possible total (the MILP dual bound, or the LP bound).
    gap : float
        ``(bound - objective) / bound`` (0 when the bound is 0).
    method : {"exact", "lagrangian"}
        How the plan was found.
    shadow_prices : dict of str to float
        Lagrange multiplier of each resource at the best prices found.
    usage : dict of str to float
        How much of each resource the plan uses.
    """

    choice: np.ndarray
    objective: float
    bound: float
    gap: float
    method: Literal["exact", "lagrangian"]
    shadow_prices: dict[str, float] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)


@dataclass
class _Problem:
    """The reduced problem: customers with a candidate pair, resources that can bind."""

    rows: np.ndarray  # index of each kept customer in the original problem
    value: np.ndarray  # (n', m), -inf where the pair is not a candidate
    names: list[str]
    usage: list[np.ndarray]  # each (m,) or (n', m), divided by capacity
    capacity: np.ndarray  # original capacities of the kept resources


def _full(usage: np.ndarray, n: int, m: int) -> np.ndarray:
    return np.broadcast_to(usage, (n, m)) if usage.ndim == 1 else usage


def _reduce(value: np.ndarray, resources: Sequence[Resource]) -> _Problem:
    n, m = value.shape
    allowed = np.isfinite(value) & (value > 0)
    kept_names, kept_usage, kept_caps = [], [], []
    for res in resources:
        usage = np.asarray(res.usage, dtype=np.float64)
        if usage.shape not in ((m,), (n, m)):
            raise ValueError(f"resource {res.name!r}: usage has shape {usage.shape}, not ({m},)")
        if np.any(~(usage >= 0)) or not res.capacity >= 0:
            raise ValueError(f"resource {res.name!r}: usage and capacity must be non-negative")
        allowed &= _full(usage, n, m) <= res.capacity
        if np.isfinite(res.capacity):
            kept_names.append(res.name)
            kept_usage.append(usage)
            kept_caps.append(float(res.capacity))
    rows = np.flatnonzero(allowed.any(axis=1))
    allowed = allowed[rows]
    names, usage_scaled, caps = [], [], []
    for name, usage, cap in zip(kept_names, kept_usage, kept_caps, strict=True):
        sub = usage if usage.ndim == 1 else usage[rows]
        total = float(np.where(allowed, _full(sub, len(rows), m), 0.0).max(axis=1).sum())
        if total <= cap:  # cannot bind even if every customer took its heaviest offer
            continue
        names.append(name)
        usage_scaled.append(sub / cap)
        caps.append(cap)
    return _Problem(
        rows=rows,
        value=np.where(allowed, value[rows], -np.inf),
        names=names,
        usage=usage_scaled,
        capacity=np.array(caps),
    )


def _reduced(p: _Problem, prices: np.ndarray) -> np.ndarray:
    r = p.value.copy()
    for k, lam in enumerate(prices):
        if lam != 0.0:
            r -= lam * p.usage[k]
    return r


def _used(p: _Problem, choice: np.ndarray) -> np.ndarray:
    """Scaled use of each kept resource (1.0 = capacity) by ``choice``."""
    on = np.flatnonzero(choice >= 0)
    out = np.zeros(len(p.usage))
    for k, u in enumerate(p.usage):
        out[k] = u[choice[on]].sum() if u.ndim == 1 else u[on, choice[on]].sum()
    return out


def _pair_usage(p: _Problem, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Scaled usage of pairs, shape ``(len(rows), K)``."""
    out = np.empty((len(rows), len(p.usage)))
    for k, u in enumerate(p.usage):
        out[:, k] = u[cols] if u.ndim == 1 else u[rows, cols]
    return out


def _dual(p: _Problem) -> tuple[np.ndarray, float]:
    """Minimise the Lagrangian dual by Kelley's cutting planes; return (prices, bound)."""
    k = len(p.usage)
    n, m = p.value.shape

    def evaluate(prices: np.ndarray) -> tuple[float, np.ndarray]:
        r = _reduced(p, prices)
        j = np.argmax(r, axis=1)
        best = r[np.arange(n), j]
        on = best > 0
        value = float(best[on].sum() + prices.sum())
        choice = np.where(on, j, -1)
        return value, 1.0 - _used(p, choice)

    if k == 0:
        return np.zeros(0), evaluate(np.zeros(0))[0]
    upper = np.zeros(k)
    finite = np.isfinite(p.value)
    for idx, u in enumerate(p.usage):
        full = _full(u, n, m)
        ratio = np.divide(p.value, full, out=np.zeros_like(p.value), where=finite & (full > 0))
        upper[idx] = max(float(ratio.max(initial=0.0)), 0.0)
    prices = np.zeros(k)
    best_value, grad = evaluate(prices)
    best_prices = prices
    cuts_a: list[np.ndarray] = []
    cuts_b: list[float] = []
    for _ in range(_DUAL_ITERATIONS):
        value, grad = evaluate(prices)
        if value < best_value:
            best_value, best_prices = value, prices
        # cut: value + grad . (x - prices) <= t   ->   grad . x - t <= grad . prices - value
        cuts_a.append(np.r_[grad, -1.0])
        cuts_b.append(float(grad @ prices - value))
        lp = linprog(
            c=np.r_[np.zeros(k), 1.0],
            A_ub=np.array(cuts_a),
            b_ub=np.array(cuts_b),
            bounds=[(0.0, u) for u in upper] + [(None, None)],
            method="highs",
        )
        if lp.status != 0:
            break
        lower = float(lp.fun)
        if best_value - lower <= _DUAL_TOL * max(abs(best_value), 1.0):
            break
        prices = np.clip(lp.x[:k], 0.0, upper)
    return best_prices, best_value


def _repair(p: _Problem, choice: np.ndarray) -> np.ndarray:
    """Drop choices until no resource is over-used, least value per unit of it first."""
    choice = choice.copy()
    for _ in range(len(p.usage) + 1):
        used = _used(p, choice)
        over = np.flatnonzero(used > 1.0 + 1e-12)
        if len(over) == 0:
            break
        k = over[np.argmax(used[over])]
        on = np.flatnonzero(choice >= 0)
        u = _pair_usage(p, on, choice[on])[:, k]
        users = on[u > 0]
        u = u[u > 0]
        value = p.value[users, choice[users]]
        order = np.argsort(value / u, kind="stable")
        excess = used[k] - 1.0
        drop = int(np.searchsorted(np.cumsum(u[order]), excess - 1e-12)) + 1
        choice[users[order[:drop]]] = -1
    return choice


def _fill(p: _Problem, choice: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Give unserved customers offers while they fit, best value per priced resource first."""
    choice = choice.copy()
    if not p.usage:
        return choice
    weight = prices + 1e-9 * max(float(prices.max(initial=0.0)), 1.0)
    for _ in range(_FILL_ROUNDS):
        slack = 1.0 - _used(p, choice)
        free = np.flatnonzero(choice < 0)
        rows, cols = np.nonzero(np.isfinite(p.value[free]))
        rows = free[rows]
        if len(rows) == 0:
            break
        use = _pair_usage(p, rows, cols)
        fits = (use <= slack + 1e-12).all(axis=1)
        rows, cols, use = rows[fits], cols[fits], use[fits]
        if len(rows) == 0:
            break
        value = p.value[rows, cols]
        ratio = value / (use @ weight + 1e-300)
        order = np.lexsort((-value, -ratio))
        rows, cols, use = rows[order], cols[order], use[order]
        first = np.unique(rows, return_index=True)[1]  # each customer's best candidate
        first.sort()
        rows, cols, use = rows[first], cols[first], use[first]
        over = (np.cumsum(use, axis=0) > slack + 1e-12).any(axis=1)
        take = len(rows) if not over.any() else int(np.argmax(over))
        if take == 0:  # only by rounding: every candidate fits on its own
            break
        choice[rows[:take]] = cols[:take]
    return choice


_LIBC: Final = ctypes.CDLL(None) if os.name == "posix" else None
"""The C library, whose ``fflush`` empties HiGHS's buffered ``printf`` output."""


@contextlib.contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """Send what native code writes to standard output (file descriptor 1) to the null device.

    The HiGHS that SciPy 1.17 bundles prints a debug line with ``printf``
    (``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``) whenever it
    repairs an integer solution, whatever its ``output_flag`` (ERGO-Code/HiGHS removed it in
    October 2025, commit 710aaa3); during ``guanxi demo`` and ``guanxi target`` those lines
    fell among the plan's tables. Only the main thread (the commands) redirects: file descriptor
    1 belongs to the whole process, and the service plans in worker threads while other threads
    write its access log to standard output, which must not be lost; there the stray line stays.
    Standard error is untouched, and Python's pending output is written out before the redirect.

    Yields
    ------
    None
        Nothing; call the solver inside the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if sys.stdout is not None:
        sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        if _LIBC is not None:
            _LIBC.fflush(None)  # HiGHS's buffered lines go to the null device too
        os.dup2(saved, 1)
        os.close(saved)


def _exact(p: _Problem, time_limit: float) -> tuple[np.ndarray | None, float]:
    """Solve the reduced problem with HiGHS; return (choice or None, dual bound)."""
    n, _ = p.value.shape
    rows, cols = np.nonzero(np.isfinite(p.value))
    count = len(rows)
    value = p.value[rows, cols]
    one = sparse.csr_array((np.ones(count), (rows, np.arange(count))), shape=(n, count))
    use = _pair_usage(p, rows, cols).T * p.capacity[:, None]  # back to original units
    constraints = [LinearConstraint(one, -np.inf, 1.0)]
    if len(p.usage):
        constraints.append(LinearConstraint(sparse.csr_array(use), -np.inf, p.capacity))
    with _native_stdout_silenced():
        res = milp(
            c=-value,
            integrality=np.ones(count),
            bounds=Bounds(0.0, 1.0),
            constraints=constraints,
            options={"time_limit": time_limit, "mip_rel_gap": 1e-9, "disp": False},
        )
    bound = -float(res.mip_dual_bound) if res.mip_dual_bound is not None else np.inf
    if res.x is None:
        return None, bound
    chosen = res.x > 0.5
    choice = np.full(n, -1)
    choice[rows[chosen]] = cols[chosen]
    return choice, bound


def _lagrangian(p: _Problem, prices: np.ndarray) -> np.ndarray:
    """Return the customers' choices at ``prices``, repaired and filled."""
    r = _reduced(p, prices)
    if r.size == 0:
        return np.full(len(p.rows), -1)
    j = np.argmax(r, axis=1)
    best = r[np.arange(len(p.rows)), j]
    return _fill(p, _repair(p, np.where(best > 0, j, -1)), prices)


def _total(p: _Problem, choice: np.ndarray) -> float:
    on = np.flatnonzero(choice >= 0)
    return float(p.value[on, choice[on]].sum())


def solve(
    value: np.ndarray,
    resources: Sequence[Resource] = (),
    method: Method = "auto",
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    time_limit: float = 30.0,
) -> Solution:
    """Choose at most one offer per customer to maximise total value within the resources.

    Parameters
    ----------
    value : numpy.ndarray
        Shape ``(n, m)``: the value of offer ``j`` to customer ``i``; NaN or ``-inf`` where the
        customer may not receive it.
    resources : sequence of Resource
        The shared limits; an infinite capacity is no limit.
    method : {"auto", "exact", "lagrangian"}, default "auto"
        See the module docstring. With no candidate pair left, the empty plan is reported as
        ``"exact"`` (it is the only plan), unless ``"lagrangian"`` was asked for.
    exact_limit : int, default :data:`DEFAULT_EXACT_LIMIT`
        Largest number of candidate pairs ``auto`` solves exactly.
    time_limit : float, default 30.0
        Seconds HiGHS may take. A solve stopped by the limit keeps the better of its best plan
        and the Lagrangian plan (``method`` says which), and the better of the two bounds.

    Returns
    -------
    Solution
        The plan, its value, the bound and gap, and the shadow prices.

    Raises
    ------
    ValueError
        If ``value`` is not two-dimensional, or a resource does not match it.
    """
    value = np.asarray(value, dtype=np.float64)
    if value.ndim != 2:
        raise ValueError(f"value must be a 2-d array (customers x offers), got shape {value.shape}")
    n = value.shape[0]
    p = _reduce(np.where(np.isnan(value), -np.inf, value), resources)
    prices, bound = _dual(p)
    sub = _lagrangian(p, prices)
    pairs = int(np.isfinite(p.value).sum())
    # No pair left (a budget of 0, every offer unaffordable or worth nothing): the empty plan is
    # the only one, so it is exact; "lagrangian" here told a caller who asked for "exact" that
    # the approximation had run.
    chosen: Literal["exact", "lagrangian"] = (
        "exact" if not pairs and method != "lagrangian" else "lagrangian"
    )
    if pairs and (method == "exact" or (method == "auto" and pairs <= exact_limit)):
        exact, exact_bound = _exact(p, time_limit)
        bound = min(bound, exact_bound)
        if exact is not None and _total(p, exact) >= _total(p, sub):
            sub, chosen = exact, "exact"
    choice = np.full(n, -1, dtype=np.int64)
    choice[p.rows] = sub
    on = np.flatnonzero(choice >= 0)
    objective = float(value[on, choice[on]].sum())
    bound = max(bound, objective)
    usage = {res.name: res.used(choice) for res in resources}
    shadow = {name: 0.0 for name in (r.name for r in resources)}
    for name, lam, cap in zip(p.names, prices, p.capacity, strict=True):
        shadow[name] = float(lam / cap)
    gap = (bound - objective) / bound if bound > 0 else 0.0
    return Solution(
        choice=choice,
        objective=objective,
        bound=bound,
        gap=max(gap, 0.0),
        method=chosen,
        shadow_prices=shadow,
        usage=usage,
    )

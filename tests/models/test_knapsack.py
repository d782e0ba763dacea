"""The knapsack solver against exhaustive search on random small cases."""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.target import customers
from models.knapsack import Resource, _native_stdout_silenced, solve
from models.offers import parse_offers
from models.targeting import offer_values, plan_resources

SHIPPED_OFFERS = Path(__file__).parents[2] / "docs" / "examples" / "offers.yaml"


def _enumerate(value: np.ndarray, resources: list[Resource]) -> tuple[np.ndarray, np.ndarray]:
    """Every assignment of a few customers: (total value, usage per resource)."""
    n, m = value.shape
    combos = np.array(list(itertools.product(range(m + 1), repeat=n)), dtype=np.int64)
    padded = np.c_[np.where(np.isfinite(value), value, -np.inf), np.zeros(n)]
    total = padded[np.arange(n), combos].sum(axis=1)
    use = np.stack(
        [
            np.c_[np.broadcast_to(r.usage, (n, m)), np.zeros(n)][np.arange(n), combos].sum(axis=1)
            for r in resources
        ],
        axis=1,
    )
    return total, use


def brute_force(value: np.ndarray, resources: list[Resource]) -> float:
    """The best total value over all assignments (meet in the middle, chunked)."""
    n = value.shape[0]
    half = n // 2
    cap = np.array([r.capacity for r in resources]) + 1e-9
    left_v, left_u = _enumerate(value[:half], [_rows(r, slice(0, half)) for r in resources])
    right_v, right_u = _enumerate(value[half:], [_rows(r, slice(half, n)) for r in resources])
    best = 0.0
    for start in range(0, len(left_v), 256):
        v = left_v[start : start + 256, None] + right_v[None, :]
        ok = ((left_u[start : start + 256, None, :] + right_u[None, :, :]) <= cap).all(axis=2)
        best = max(best, float(np.where(ok, v, -np.inf).max()))
    return best


def _rows(res: Resource, rows: slice) -> Resource:
    usage = res.usage if res.usage.ndim == 1 else res.usage[rows]
    return Resource(res.name, res.capacity, usage)


def random_case(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, list[Resource]]:
    value = rng.normal(4, 6, (n, m)).round(2)
    value[rng.random((n, m)) < 0.2] = np.nan  # not eligible
    cost = rng.uniform(0.5, 10, m).round(2)
    channel = rng.integers(0, 2, m)
    resources = [
        Resource("budget", float(rng.uniform(0, 6 * n)), cost),
        Resource("channel:phone", float(rng.integers(0, n + 1)), (channel == 0).astype(float)),
        Resource("offer:0", float(rng.integers(0, n + 1)), np.eye(m)[0]),
    ]
    if rng.random() < 0.3:  # a budget whose cost differs by customer
        resources[0] = Resource("budget", resources[0].capacity, rng.uniform(0.5, 10, (n, m)))
    return value, resources


def check(value: np.ndarray, resources: list[Resource]) -> None:
    optimum = brute_force(value, resources)
    for method in ("exact", "lagrangian"):
        s = solve(value, resources, method=method)  # type: ignore[arg-type]
        on = np.flatnonzero(s.choice >= 0)
        assert np.isfinite(value[on, s.choice[on]]).all(), "offer to an ineligible customer"
        for r in resources:
            used = np.broadcast_to(r.usage, value.shape)[on, s.choice[on]].sum()
            assert used <= r.capacity + 1e-9, (method, r.name)
            assert s.usage[r.name] == pytest.approx(used)
        assert s.objective == pytest.approx(value[on, s.choice[on]].sum())
        assert s.objective <= optimum + 1e-6
        assert s.bound >= optimum - 1e-6, "the bound must never be below the optimum"
        assert s.gap == pytest.approx((s.bound - s.objective) / s.bound if s.bound > 0 else 0.0)
        if method == "exact":
            assert s.objective == pytest.approx(optimum, abs=1e-6)
            assert s.gap == pytest.approx(0.0, abs=1e-6)


def test_against_exhaustive_search_small() -> None:
    rng = np.random.default_rng(20240612)
    for _ in range(100):
        check(*random_case(rng, int(rng.integers(1, 8)), int(rng.integers(1, 4))))


@pytest.mark.slow
def test_against_exhaustive_search_twelve_customers_three_offers() -> None:
    rng = np.random.default_rng(12)
    for _ in range(25):
        check(*random_case(rng, 12, 3))


def test_hand_computed_case() -> None:
    # Two customers, two offers; budget 10 buys one expensive or two cheap contacts.
    value = np.array([[9.0, 5.0], [8.0, 4.5]])
    cost = np.array([10.0, 5.0])
    s = solve(value, [Resource("budget", 10.0, cost)], method="exact")
    assert s.choice.tolist() == [1, 1]  # 9.5 beats 9.0
    assert s.objective == pytest.approx(9.5)
    phone = Resource("channel:phone", 1.0, np.array([0.0, 1.0]))
    s = solve(value, [Resource("budget", 10.0, cost), phone], method="exact")
    assert s.objective == pytest.approx(9.0)


def test_non_positive_values_are_never_chosen() -> None:
    s = solve(np.array([[-1.0, 0.0], [np.nan, 2.0]]), [])
    assert s.choice.tolist() == [-1, 1]
    assert s.objective == 2.0
    assert s.gap == 0.0


def test_an_empty_plan_reports_the_method_asked_for() -> None:
    """serve28b: with no offer left (a budget of 0, every offer unaffordable) the plan said
    "lagrangian" though "exact" was asked for and nothing approximate ran. The empty plan is the
    only one: exact for "exact" and "auto", and "lagrangian" when that was asked for."""
    value = np.array([[5.0, 3.0], [4.0, 2.0]])
    for capacity in (0.0, 0.5):  # a budget of 0; a budget below every offer's cost
        budget = [Resource("budget", capacity, np.array([1.0, 1.0]))]
        for method, reported in (
            ("exact", "exact"),
            ("auto", "exact"),
            ("lagrangian", "lagrangian"),
        ):
            s = solve(value, budget, method=method)  # type: ignore[arg-type]
            assert s.choice.tolist() == [-1, -1] and s.objective == 0.0
            assert (s.method, s.gap) == (reported, 0.0), (capacity, method)


def test_shadow_price_of_the_budget() -> None:
    # Many customers, one offer costing 1 with values 1..1000: a budget of 500 buys the best
    # 500, the next unit of budget is worth about the 501st value.
    value = np.arange(1.0, 1001.0)[:, None]
    s = solve(value, [Resource("budget", 500.0, np.array([1.0]))], method="lagrangian")
    assert s.objective == pytest.approx(sum(range(501, 1001)))
    assert 499.0 <= s.shadow_prices["budget"] <= 501.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="2-d"):
        solve(np.ones(3), [])
    with pytest.raises(ValueError, match="resource 'b': usage has shape"):
        solve(np.ones((2, 2)), [Resource("b", 1.0, np.ones(3))])
    with pytest.raises(ValueError, match="non-negative"):
        solve(np.ones((2, 2)), [Resource("b", -1.0, np.ones(2))])


def test_highs_prints_nothing_of_its_own(capfd: pytest.CaptureFixture[str]) -> None:
    """300 customers with the shipped offers (cross-sell aside, phone and contacts capped): the
    HiGHS in SciPy 1.17 repairs integer solutions on this instance and printf-ed a debug line
    for each (8 lines), during ``guanxi demo``'s plan too; the solve shows nothing now."""
    offers = yaml.safe_load(SHIPPED_OFFERS.read_text(encoding="utf-8"))
    offers["offers"] = [o for o in offers["offers"] if o["kind"] != "cross_sell"]
    offers.update(channels={"phone": {"capacity": 100}, "email": {}}, max_contacts=150)
    offer_file = parse_offers(offers)
    values = offer_values(customers(300, seed=4), offer_file)
    resources = plan_resources(values, offer_file, budget=90.0)
    s = solve(values.value, resources, method="exact")
    assert s.method == "exact" and s.gap == pytest.approx(0.0, abs=1e-6)
    assert capfd.readouterr() == ("", "")
    print("after the solve")  # standard output is back
    assert capfd.readouterr().out == "after the solve\n"


def test_native_output_is_silenced_in_the_main_thread_only(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What C code writes to file descriptor 1 inside a block of the main thread is dropped,
    including its buffered printf output, and standard output is restored after; in a worker
    thread (the service's) nothing is redirected, so other threads' output is never lost."""
    libc = ctypes.CDLL(None)
    with _native_stdout_silenced():
        libc.printf(b"buffered native line\n")
        os.write(1, b"native line\n")
    assert capfd.readouterr() == ("", "")
    os.write(1, b"restored\n")
    assert capfd.readouterr().out == "restored\n"

    def worker() -> None:
        with _native_stdout_silenced():
            os.write(1, b"worker line\n")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert capfd.readouterr().out == "worker line\n"

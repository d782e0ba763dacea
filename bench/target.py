"""Benchmark the budgeted targeting plan: 1M customers x 4 offers, a budget, two channel capacities.

Usage: ``python -m bench.target [--customers 1000000] [--exact-customers 3000] [--seed 0]``.

Prints the wall time of each stage of :func:`models.targeting.plan_campaign` (expected values, the
knapsack, the whole plan with its summaries and next-best table), the optimality gap against the
LP bound, and two references measured in the same run:

* ``greedy``: the campaign manager's rule, customers by descending expected value per unit cost of
  their best offer, each taken while the budget and the capacities allow;
* ``exact``: HiGHS (``scipy.optimize.milp``) on a smaller instance of the same kind, against the
  Lagrangian method on that instance.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from models.knapsack import solve
from models.offers import SEGMENTS, OffersFile, parse_offers
from models.targeting import OfferValues, offer_values, plan_campaign, plan_resources

__all__ = ["main"]


def offers(n: int) -> OffersFile:
    """Four offers on two channels; the phone and e-mail capacities scale with ``n``."""
    return parse_offers(
        {
            "channels": {"phone": {"capacity": n // 200}, "email": {"capacity": n // 20}},
            "offers": [
                {
                    "name": "retention_email",
                    "kind": "retention",
                    "channel": "email",
                    "cost": 0.6,
                    "response": {"default": 0.04, "segments": {"at_risk": 0.06, "cant_lose": 0.08}},
                    "eligibility": {"population": "churn"},
                },
                {
                    "name": "retention_call",
                    "kind": "retention",
                    "channel": "phone",
                    "cost": 12.0,
                    "response": {
                        "default": 0.15,
                        "value_tiers": {"top_1pct": 0.25, "top_5pct": 0.2},
                    },
                    "eligibility": {"population": "churn", "min_churn_probability": 0.3},
                },
                {
                    "name": "win_back_voucher",
                    "kind": "win_back",
                    "channel": "email",
                    "cost": 2.5,
                    "response": {"default": 0.02, "segments": {"hibernating": 0.03}},
                    "eligibility": {"population": "lapsed"},
                },
                {
                    "name": "service_recovery_call",
                    "kind": "service_recovery",
                    "channel": "phone",
                    "cost": 25.0,
                    "response": {"default": 0.7},
                    "eligibility": {"unresolved_complaint": True},
                },
            ],
        }
    )


def customers(n: int, seed: int) -> pl.DataFrame:
    """Synthetic customers with the columns the offers read."""
    rng = np.random.default_rng(seed)
    clv = rng.lognormal(4.5, 1.1, n)
    rank = np.argsort(np.argsort(-clv)) / n
    tier = np.select(
        [rank < 0.01, rank < 0.05, rank < 0.2], ["top_1pct", "top_5pct", "top_20pct"], "rest"
    )
    lapsed = rng.random(n) < 0.2
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "segment": rng.choice(SEGMENTS, n),
            "value_tier": tier,
            "churn_probability": rng.beta(2.0, 5.0, n),
            "clv": clv,
            "churn_population": ~lapsed,
            "lapsed": lapsed,
            "unresolved_complaints": rng.poisson(0.05, n),
        }
    )


def greedy(values: OfferValues, offer_file: OffersFile, budget: float) -> float:
    """Return the value of the campaign manager's greedy rule (see the module docstring)."""
    value = np.nan_to_num(values.value, nan=-np.inf)
    best = np.argmax(value, axis=1)
    best_value = value[np.arange(len(value)), best]
    cost = values.cost[best]
    keep = np.flatnonzero(best_value > 0)
    order = keep[np.argsort(-(best_value[keep] / cost[keep]), kind="stable")]
    channel = np.array([o.channel for o in values.offers])[best]
    left = {name: c.capacity for name, c in offer_file.channels.items()}
    money, total = budget, 0.0
    for c, ch, v in zip(
        cost[order].tolist(),
        channel[order].tolist(),
        best_value[order].tolist(),
        strict=True,
    ):
        cap = left.get(ch)
        if c > money or (cap is not None and cap < 1):
            continue
        money -= c
        if cap is not None:
            left[ch] = cap - 1
        total += v
    return total


def run(n: int, seed: int) -> None:
    offer_file = offers(n)
    frame = customers(n, seed)
    budget = 0.13 * n  # 13 per 100 customers
    t0 = time.perf_counter()
    values = offer_values(frame, offer_file)
    t1 = time.perf_counter()
    plan = plan_campaign(values, offer_file, budget)
    t2 = time.perf_counter()
    reference = greedy(values, offer_file, budget)
    t3 = time.perf_counter()
    print(f"customers x offers      {n:,} x {len(values.offers)}")
    print(f"budget                  {budget:,.0f} (spent {plan.investment:,.1f})")
    for name, used in plan.usage.items():
        print(f"  uses {name:<18} {used:,.1f}  shadow price {plan.shadow_prices[name]:.4f}")
    print(f"expected values         {t1 - t0:.2f} s")
    print(f"plan ({plan.method})        {t2 - t1:.2f} s (knapsack, summaries, next-best table)")
    print(f"total                   {t2 - t0:.2f} s")
    print(f"expected value          {plan.expected_value:,.1f}")
    print(f"LP bound                {plan.bound:,.1f}")
    print(f"optimality gap          {plan.gap:.2e}")
    print(f"greedy reference        {reference:,.1f} in {t3 - t2:.2f} s")
    print(f"plan / greedy value     {plan.expected_value / reference:.4f}")


def exact_vs_lagrangian(n: int, seed: int) -> None:
    offer_file = offers(n)
    values = offer_values(customers(n, seed), offer_file)
    budget = 0.13 * n
    resources = plan_resources(values, offer_file, budget)
    t0 = time.perf_counter()
    exact = solve(values.value, resources, method="exact", time_limit=120.0)
    t1 = time.perf_counter()
    lagrangian = solve(values.value, resources, method="lagrangian")
    t2 = time.perf_counter()
    pairs = int(np.isfinite(values.value).sum())
    print(f"\nsmall instance          {n:,} customers, {pairs:,} eligible pairs")
    print(f"exact (HiGHS)           {exact.objective:,.2f} in {t1 - t0:.2f} s, gap {exact.gap:.1e}")
    print(f"lagrangian              {lagrangian.objective:,.2f} in {t2 - t1:.2f} s")
    print(
        f"lagrangian / exact      {lagrangian.objective / exact.objective:.5f} value, "
        f"{(t2 - t1) / (t1 - t0):.4f} time"
    )
    print(
        f"lagrangian gap to bound {lagrangian.gap:.2e} (reported), "
        f"{(exact.objective - lagrangian.objective) / exact.objective:.2e} (true)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--exact-customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(args.customers, args.seed)
    exact_vs_lagrangian(args.exact_customers, args.seed)


if __name__ == "__main__":
    main()

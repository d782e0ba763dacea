"""Measure cross-sell's XGBoost objectives against the affinity rule and popularity.

``training.train.train_task`` trains the cross-sell task once per objective of
:data:`models.estimators.OBJECTIVES` (``binary:logistic``, ``rank:ndcg``, ``rank:pairwise``; the
ranking ones with one query per customer and cutoff) on the same sample, as-of day, horizon,
seed and cutoffs, so the features, the training rows and the held-out test cutoff are the same
for all. A ranking objective's score is made a probability by the calibration fitted on the
validation cutoff, as the binary one's margin is. It prints, on the held-out cutoff, precision@1,
precision@3, recall@1, recall@3 and NDCG@3 per customer for each objective, the affinity rule
"bought A, also bought B" (the named reference, run in the same training) and category
popularity, each precision@3 as a ratio of the rule's (the issue's target is 1.10x), the
calibrated model's ECE, and each training's time. Nothing passes or fails.

Usage, from the project root, under the heavy lock (it trains the task three times)::

    flock /work/coord/heavy.lock .venv/bin/python -m bench.xsell_objectives --customers 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from bench._common import read_sample
from models.estimators import OBJECTIVES
from pipelines.console import quiet_libraries
from training.train import TrainConfig, train_task

__all__ = ["SHOWN", "main"]

SHOWN = ("precision@1", "precision@3", "recall@1", "recall@3", "ndcg@3")
"""The per-customer ranking metrics printed (the grade reads precision@1/@3 and NDCG@3)."""


def main() -> None:
    """Train cross-sell once per objective and print the held-out table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42, help="Seed of the sample.")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument(
        "--objectives", default=",".join(OBJECTIVES), help="Comma-separated XGBoost objectives."
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench-xsell"
    )
    args = parser.parse_args()

    folder = args.data / f"n{args.customers}-s{args.seed}"
    events, customers = read_sample(folder, args.customers, args.seed, args.as_of)
    print(
        f"cross_sell, {args.customers:,} sample customers (seed {args.seed}), {events.height:,} "
        f"events, as of {args.as_of}, horizon {args.horizon} days, {args.trials} trials, seed 0",
        flush=True,
    )
    header = " | ".join(SHOWN)
    print(
        f"| model | {header} | p@3 / rule | ECE | training s |\n|---|" + "---|" * (len(SHOWN) + 3),
        flush=True,
    )
    references: dict[str, dict[str, float]] = {}
    for objective in (o.strip() for o in args.objectives.split(",") if o.strip()):
        config = TrainConfig(trials=args.trials, seed=0, objective=objective)
        start = time.perf_counter()
        with quiet_libraries():
            result = train_task(events, customers, "cross_sell", args.as_of, args.horizon, config)
        seconds = time.perf_counter() - start
        rule = result.metrics["rule"]
        references = {k: result.metrics[k] for k in ("rule", "popularity")}
        model = result.metrics["xgboost"]
        values = " | ".join(f"{model[m]:.4f}" for m in SHOWN)
        print(
            f"| xgboost {objective} | {values} | "
            f"{model['precision@3'] / rule['precision@3']:.3f}x | {model['ece']:.4f} | "
            f"{seconds:.0f} |",
            flush=True,
        )
    for name, metrics in references.items():
        values = " | ".join(f"{metrics[m]:.4f}" for m in SHOWN)
        ratio = metrics["precision@3"] / references["rule"]["precision@3"]
        print(f"| {name} | {values} | {ratio:.3f}x | - | - |", flush=True)


if __name__ == "__main__":
    main()

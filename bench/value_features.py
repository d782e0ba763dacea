"""Measure the hybrid: each task trained with and without the ``value`` feature family.

For every classifier task of the registry (binary and ranked kinds), ``training.train.train_task``
runs twice on the same sample, as-of day, horizon, seed and cutoffs: once without the value
family (the reference) and once with it (``TrainConfig.value_inputs``), where BG/NBD's P(alive)
and expected purchases in 90 days are fitted at every cutoff on the events up to that cutoff
only (:mod:`models.clv.family`). It prints the held-out (test cutoff) ROC-AUC, PR-AUC and Brier
score of both XGBoost models, their difference, and a paired bootstrap of the difference over the
held-out rows (resampled by customer; the 2.5% and 97.5% quantiles), then the task's own graded
metrics where they differ (:attr:`models.tasks.TaskSpec.gate`, e.g. cross-sell's precision@3 and
NDCG@3, without an interval). "Helps" when the interval of the ROC-AUC or PR-AUC difference lies
above 0 and the Brier's does not lie above 0 (a rise of the graded metrics without an interval is
printed, not counted). The training time of both runs is printed with its ratio (with /
without). Nothing passes or fails.

Usage, from the project root, under the heavy lock (it trains 2 x the tasks)::

    flock /work/coord/heavy.lock .venv/bin/python -m bench.value_features --customers 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from bench._common import read_sample
from models.artifact import apply_calibration
from models.tasks import task_specs
from pipelines.console import quiet_libraries
from training.train import TrainConfig, TrainResult, train_task

METRICS = ("roc_auc", "pr_auc", "brier")
_SCORERS = {
    "roc_auc": roc_auc_score,
    "pr_auc": average_precision_score,
    "brier": brier_score_loss,
}


@dataclass
class Run:
    """One task trained one way."""

    result: TrainResult
    seconds: float

    def held_out(self) -> pd.DataFrame:
        """Held-out label and probability as the metrics score it, indexed like the rows.

        The probability is calibrated with the season shift of the test cutoff, as
        ``training.train`` scores the held-out rows (the bundle carries the shift of the as-of day).
        """
        x, y = self.result.holdout
        bundle = self.result.bundle
        season = (bundle.metadata.get("calibration") or {}).get("season") or {}
        calibration = {**bundle.calibration, "shift": season.get("test_shift", 0.0)}
        p = apply_calibration(calibration, bundle.predict_margin(x))
        return pd.DataFrame({"y": y, "p": p}, index=x.index)


def _bootstrap(
    without: pd.DataFrame, with_: pd.DataFrame, rounds: int, seed: int
) -> dict[str, tuple[float, float]]:
    """95% interval of each metric's difference (with - without), customers resampled."""
    both = without.add_suffix("_0").join(with_.add_suffix("_1"), how="inner")
    customers = both.index.get_level_values("customer_id")
    codes, uniques = pd.factorize(customers)
    rows_of = [np.flatnonzero(codes == i) for i in range(len(uniques))]
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {m: [] for m in METRICS}
    y, p0, p1 = both["y_0"].to_numpy(), both["p_0"].to_numpy(), both["p_1"].to_numpy()
    for _ in range(rounds):
        pick = np.concatenate([rows_of[i] for i in rng.integers(0, len(uniques), len(uniques))])
        if y[pick].min() == y[pick].max():
            continue
        for metric, score in _SCORERS.items():
            diffs[metric].append(score(y[pick], p1[pick]) - score(y[pick], p0[pick]))
    return {
        m: (float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))) for m, v in diffs.items()
    }


def main() -> None:
    """Train every classifier task with and without the value family and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--bootstrap", type=int, default=300)
    parser.add_argument(
        "--tasks", default="", help="Comma-separated tasks (default: every classifier task)."
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench-value-features"
    )
    args = parser.parse_args()

    folder = args.data / f"n{args.customers}-s{args.seed}"
    events, customers = read_sample(folder, args.customers, args.seed, args.as_of)
    print(
        f"{args.customers:,} sample customers (seed {args.seed}), {events.height:,} events, "
        f"as of {args.as_of}, horizon {args.horizon} days, {args.trials} trials, seed 0"
    )
    chosen = {t.strip() for t in args.tasks.split(",") if t.strip()}
    print(
        "| task | metric | without (reference) | with value family | difference | 95% interval |\n"
        "|---|---|---|---|---|---|",
        flush=True,
    )
    for spec in task_specs():
        if spec.kind not in ("binary", "ranked") or (chosen and spec.name not in chosen):
            continue
        runs = {}
        for flag in (False, True):
            config = TrainConfig(trials=args.trials, seed=0, value_inputs=flag)
            start = time.perf_counter()
            with quiet_libraries():
                result = train_task(events, customers, spec.name, args.as_of, args.horizon, config)
            runs[flag] = Run(result, time.perf_counter() - start)
        without, with_ = runs[False], runs[True]
        interval = _bootstrap(without.held_out(), with_.held_out(), args.bootstrap, args.seed)
        for metric in METRICS:
            a = without.result.metrics["xgboost"][metric]
            b = with_.result.metrics["xgboost"][metric]
            low, high = interval[metric]
            print(
                f"| {spec.name} | {metric} | {a:.4f} | {b:.4f} | {b - a:+.4f} | "
                f"[{low:+.4f}, {high:+.4f}] |",
                flush=True,
            )
        headline = [m for m in spec.gate if m not in METRICS]  # e.g. cross-sell's ndcg@3
        for metric in headline:
            a = without.result.metrics["xgboost"][metric]
            b = with_.result.metrics["xgboost"][metric]
            print(f"| {spec.name} | {metric} | {a:.4f} | {b:.4f} | {b - a:+.4f} | - |", flush=True)
        # the graded per-customer metrics have no interval here: a rise of theirs alone is noise
        # as far as this bench can tell, so the verdict reads the intervals above
        better = interval["roc_auc"][0] > 0 or interval["pr_auc"][0] > 0
        worse_brier = interval["brier"][0] > 0
        verdict = "helps" if better and not worse_brier else "does not clearly help"
        rows = len(without.result.holdout.y)
        print(
            f"{spec.name}: {verdict} ({rows:,} held-out rows, cutoffs "
            f"{without.result.params['cutoffs']['test']}); training {without.seconds:.1f} s "
            f"without, {with_.seconds:.1f} s with ({with_.seconds / without.seconds:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()

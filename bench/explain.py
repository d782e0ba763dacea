"""Benchmark exact TreeSHAP: models.treeshap against shap.TreeExplainer and pred_contribs.

Models measured, on rows of a generated sample's snapshot (as of 2025-09-30):

- **design**: the DESIGN.md model, 300 trees of depth 6 over 40 features (the churn inputs'
  first 40 columns, a synthetic recency label: only speed is measured);
- **trained**: the model of every registered task as ``guanxi train`` makes it on the sample
  (``--trials`` Optuna trials each), loaded back from the registry like any challenger.

For each model and the same rows: exact rows per second at 1 and 2 threads of ``models.treeshap``
(``TreeShap.contributions(X, threads=k)``), ``shap.TreeExplainer(booster).shap_values(X)`` and
XGBoost's ``booster.predict(DMatrix(X), pred_contribs=True)`` (``nthread`` set to k; shap hands
XGBoost boosters to that same ``pred_contribs`` and checks additivity with a margin prediction),
the best of ``--repeat`` runs each; the largest differences from both references and from the
margin; one-row latency p50 (one customer at a time, as serving explains) of each, plus
``ModelBundle.contributions`` on a one-row DataFrame; and the time to word five reasons a row
(``models.scoring.reason_columns`` given the contributions). It then projects the time to explain
1M customers for every registered task with five reasons each, a ranked task (cross-sell) counting
three rows a customer (its top three categories): ``sum over tasks of rows / (rows per second at
2 threads)``, with and without the wording. Targets: >= 5x shap.TreeExplainer; projection under
15 minutes. It prints numbers and ratios and never passes or fails on time.

Usage, from the project root (holding the heavy lock)::

    flock /work/coord/heavy.lock .venv/bin/python -m bench.explain [--customers 20000]
        [--rows 2000] [--repeat 2] [--latency-rows 200] [--trials 10] [--no-trained]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import shap
import xgboost as xgb

from features.contracts import FEATURE_SET_VERSION
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models import registry
from models.artifact import ModelBundle
from models.registry import configure_tracking
from models.scoring import model_rows, reason_columns
from models.tasks import get_task, model_frame, task_names
from models.treeshap import tree_shap
from pipelines.sample import generate_sample

__all__ = ["Measured", "main", "measure", "projection", "rows_per_customer"]

AS_OF = date(2025, 9, 30)
HORIZON = 90
THREADS = (1, 2)
REASONS = 5
CUSTOMERS_PROJECTED = 1_000_000
TOP_CATEGORIES = 3
"""Rows explained per customer for a ranked task (cross-sell): the categories shown."""
TARGET_RATIO = 5.0
TARGET_MINUTES = 15.0


@dataclass
class Measured:
    """Figures of one model on one set of rows."""

    label: str
    task: str
    trees: int
    depth: int
    nodes: int
    features: int
    rows: int
    parse_s: float
    rate: dict[str, dict[int, float]] = field(default_factory=dict)  # method -> threads -> rows/s
    cpu_rate: dict[str, dict[int, float]] = field(default_factory=dict)  # rows per CPU-second
    p50_ms: dict[str, float] = field(default_factory=dict)
    reasons_rate: float = 0.0
    reasons_cpu_rate: float = 0.0
    diff_xgboost: float = 0.0
    diff_shap: float = 0.0
    diff_margin: float = 0.0


def _best_rate(run: Callable[[], Any], rows: int, repeat: int) -> tuple[float, float]:
    """Rows per second of wall time and per CPU-second of the process (all threads), best runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return rows / wall, rows / max(cpu, 1e-9)


def _p50_ms(run: Callable[[int], Any], count: int) -> float:
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50) * 1000)


def _max_depth(trees: pd.DataFrame) -> int:
    deepest = 0
    for _, tree in trees.groupby("Tree"):
        depth = {f"{int(tree['Tree'].iloc[0])}-0": 0}
        for node, yes, no in zip(tree["ID"], tree["Yes"], tree["No"], strict=True):
            if isinstance(yes, str):
                depth[yes] = depth[no] = depth[node] + 1
        deepest = max(deepest, *depth.values())
    return deepest


def measure(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    label: str,
    repeat: int = 2,
    latency_rows: int = 200,
) -> Measured:
    """Measure one model on the rows of ``frame`` (its model inputs).

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    frame : pandas.DataFrame
        Model input rows (``bundle.feature_names`` columns).
    label : str
        Name printed for the model.
    repeat : int, default 2
        Runs per throughput figure (the best is kept).
    latency_rows : int, default 200
        Rows explained one at a time for the p50 latencies.

    Returns
    -------
    Measured
        Rates, latencies and differences.
    """
    booster = bundle.booster
    x = frame.loc[:, bundle.feature_names].to_numpy(dtype=np.float32, na_value=np.nan)
    n = len(x)
    t0 = time.perf_counter()
    explainer = tree_shap(booster)
    parse_s = time.perf_counter() - t0
    m = Measured(
        label,
        bundle.task,
        explainer.num_trees,
        _max_depth(booster.trees_to_dataframe()),
        int(explainer.tree_offsets[-1]),
        len(bundle.feature_names),
        n,
        parse_s,
    )
    explainer.contributions(x[:100], threads=1)  # load (or compile) both kernels
    explainer.contributions(x[:1], threads=1)
    shap_explainer = shap.TreeExplainer(booster)

    def contribs(rows: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(xgb.DMatrix(rows, missing=np.nan), pred_contribs=True))

    ours = explainer.contributions(x)
    reference = contribs(x)
    shap_values = np.asarray(shap_explainer.shap_values(x))
    margin = booster.predict(xgb.DMatrix(x, missing=np.nan), output_margin=True)
    m.diff_xgboost = float(np.abs(ours - reference).max())
    m.diff_shap = float(np.abs(ours[:, :-1] - shap_values).max())
    m.diff_margin = float(np.abs(ours.sum(axis=1) - margin).max())

    methods: dict[str, Callable[[int], Any]] = {
        "models.treeshap": lambda k: explainer.contributions(x, threads=k),
        "shap.TreeExplainer": lambda _: shap_explainer.shap_values(x),
        "pred_contribs": lambda _: contribs(x),
    }
    for method in methods:
        m.rate[method], m.cpu_rate[method] = {}, {}
    for k in THREADS:
        booster.set_param({"nthread": k})
        for method, run in methods.items():
            wall, cpu = _best_rate(lambda run=run, k=k: run(k), n, repeat)
            m.rate[method][k], m.cpu_rate[method][k] = wall, cpu

    booster.set_param({"nthread": 1})
    count = min(latency_rows, n)
    inputs = frame.loc[:, bundle.feature_names]
    one = [inputs.iloc[[i]] for i in range(count)]  # one-row frames, cut before the clock runs
    m.p50_ms = {
        "models.treeshap": _p50_ms(lambda i: explainer.contributions(x[i : i + 1]), count),
        "ModelBundle.contributions": _p50_ms(lambda i: bundle.contributions(one[i]), count),
        "shap.TreeExplainer": _p50_ms(lambda i: shap_explainer.shap_values(x[i : i + 1]), count),
        "pred_contribs": _p50_ms(lambda i: contribs(x[i : i + 1]), count),
    }
    booster.set_param({"nthread": 2})
    m.reasons_rate, m.reasons_cpu_rate = _best_rate(
        lambda: reason_columns(bundle, frame, REASONS, contributions=ours), n, repeat
    )
    return m


def rows_per_customer(task: str) -> int:
    """Rows explained per customer: :data:`TOP_CATEGORIES` for a ranked task, else one."""
    return TOP_CATEGORIES if get_task(task).kind == "ranked" else 1


def projection(rates: dict[str, float], reasons: dict[str, float] | None = None) -> float:
    """Seconds to explain :data:`CUSTOMERS_PROJECTED` customers for every task.

    Parameters
    ----------
    rates : dict
        Rows per second per task (at two threads).
    reasons : dict, optional
        Rows per second of wording the reasons per task, added when given.

    Returns
    -------
    float
        ``sum(CUSTOMERS_PROJECTED * rows_per_customer(task) * (1 / rate + 1 / reasons))`` over
        the tasks of ``rates``.
    """
    total = 0.0
    for task in rates:
        rows = CUSTOMERS_PROJECTED * rows_per_customer(task)
        total += rows / rates[task] + (rows / reasons[task] if reasons else 0.0)
    return total


def _design_bundle(snapshot: pl.DataFrame) -> ModelBundle:
    """The DESIGN.md model: 300 trees, depth 6, 40 features, a synthetic recency label."""
    frame = model_frame("churn", snapshot)
    names = list(frame.columns[:40])
    x = frame.loc[:, names]
    rng = np.random.default_rng(0)
    logit = -0.01 * frame["recency_days"].fillna(365).to_numpy() + rng.normal(0, 1, len(x))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.05, "nthread": 2},
        xgb.DMatrix(x.to_numpy(dtype=np.float32), label=(logit > np.median(logit)).astype(int)),
        num_boost_round=300,
    )
    return ModelBundle("churn", booster, names, {"method": "none"}, FEATURE_SET_VERSION)


def _trained_bundles(sample: Path, home: Path, trials: int) -> dict[str, ModelBundle]:
    """Train each task with ``guanxi train`` in ``home`` and load the challengers back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUANXI_", "MLFLOW_"))}
    env |= {"GUANXI_HOME": str(home), "COLUMNS": "120"}
    for task in task_names():
        cmd = [
            sys.executable, "-c", "from pipelines.cli import main; main()",
            "train", "--task", task,
            "--events", str(sample / "events.parquet"),
            "--customers", str(sample / "customers.parquet"),
            "--as-of", AS_OF.isoformat(), "--horizon", str(HORIZON),
            "--trials", str(trials), "--seed", "0",
        ]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"guanxi train --task {task} failed:\n{done.stdout[-3000:]}")
        print(f"  trained {task} in {time.perf_counter() - t0:.0f} s", flush=True)
    configure_tracking(home)
    return {
        task: registry.load_model(task, alias=registry.CHALLENGER).bundle for task in task_names()
    }


def _print(m: Measured) -> None:
    print(
        f"\n{m.label}: {m.task}, {m.trees} trees, depth {m.depth}, {m.nodes:,} nodes, "
        f"{m.features} features; {m.rows:,} rows; parsed in {m.parse_s * 1000:.0f} ms"
    )
    print(
        f"  exactness: max |diff| vs pred_contribs {m.diff_xgboost:.1e}, vs shap "
        f"{m.diff_shap:.1e}; |sum - margin| {m.diff_margin:.1e}   (limit 1e-4)"
    )
    print(
        f"  {'':<22} {'rows/s, wall':>22} {'rows per CPU-second':>23}\n"
        f"  {'':<22} {'1 thread':>10} {'2 threads':>11} {'1 thread':>11} {'2 threads':>11}"
    )
    for method, by_threads in m.rate.items():
        cpu = m.cpu_rate[method]
        print(
            f"  {method:<22} {by_threads[1]:>10,.0f} {by_threads[2]:>11,.0f} "
            f"{cpu[1]:>11,.0f} {cpu[2]:>11,.0f}"
        )
    ours, ref = m.rate["models.treeshap"], m.rate["shap.TreeExplainer"]
    contribs = m.rate["pred_contribs"]
    ours_cpu, ref_cpu = m.cpu_rate["models.treeshap"], m.cpu_rate["shap.TreeExplainer"]
    for k in THREADS:
        ratio = ours[k] / ref[k]
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(
            f"  ratio at {k} thread{'s' if k > 1 else ' '}: {ratio:6.1f}x shap.TreeExplainer "
            f"(target >= {TARGET_RATIO:.0f}x: {verdict}), {ours[k] / contribs[k]:6.1f}x "
            f"pred_contribs; per CPU-second {ours_cpu[k] / ref_cpu[k]:.1f}x shap"
        )
    print("  one row, p50: " + ", ".join(f"{k} {v:.2f} ms" for k, v in m.p50_ms.items()))
    print(
        f"  wording {REASONS} reasons (reason_columns): {m.reasons_rate:,.0f} rows/s, "
        f"{m.reasons_cpu_rate:,.0f} rows per CPU-second"
    )


def _print_projection(title: str, by_task: dict[str, Measured]) -> None:
    print(
        f"\nprojection, {title}: {CUSTOMERS_PROJECTED:,} customers x {len(by_task)} tasks, "
        f"{REASONS} reasons, rows a customer { ({t: rows_per_customer(t) for t in by_task}) }, "
        f"2 threads"
    )
    for method in ("models.treeshap", "shap.TreeExplainer", "pred_contribs"):
        seconds = projection({t: by_task[t].rate[method][2] for t in by_task})
        print(f"  {method:<22} contributions only {seconds / 60:7.1f} min")
    ours = {t: by_task[t].rate["models.treeshap"][2] for t in by_task}
    worded = projection(ours, {t: by_task[t].reasons_rate for t in by_task})
    alone = projection(ours)
    for name, seconds in (("contributions", alone), ("contributions + wording", worded)):
        verdict = "met" if seconds < TARGET_MINUTES * 60 else "NOT met"
        print(
            f"  models.treeshap, {name:<24} {seconds / 60:6.1f} min "
            f"(target < {TARGET_MINUTES:.0f} min: {verdict})"
        )
    # CPU-seconds over two cores: the wall time with the machine to ourselves, perfect scaling
    cpu = {t: by_task[t].cpu_rate["models.treeshap"][2] for t in by_task}
    cpu_worded = projection(cpu, {t: by_task[t].reasons_cpu_rate for t in by_task})
    print(
        f"  models.treeshap, CPU-seconds / 2 cores: contributions {projection(cpu) / 120:.1f} "
        f"min, + wording {cpu_worded / 120:.1f} min (for information)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--latency-rows", type=int, default=200)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-trained", action="store_true", help="Skip the trained models.")
    args = parser.parse_args()

    started = datetime.now(UTC)
    print(
        f"bench.explain {started:%Y-%m-%d %H:%M} UTC: {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; xgboost {xgb.__version__}, shap {shap.__version__}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-explain-") as tmp:
        work = Path(tmp)
        summary = generate_sample(args.customers, work / "sample", seed=args.seed)
        snapshot = build_snapshot(
            read_events(summary.events_path, now=started),
            read_customers(summary.customers_path, now=started),
            AS_OF,
        )
        print(f"sample: {summary.customers:,} customers, {summary.events:,} events", flush=True)
        rng = np.random.default_rng(args.seed)

        def rows_of(bundle: ModelBundle) -> pd.DataFrame:
            frame = model_rows(bundle, snapshot)
            take = rng.choice(len(frame), size=min(args.rows, len(frame)), replace=False)
            return frame.iloc[np.sort(take)]

        design = _design_bundle(snapshot)
        m = measure(design, rows_of(design), "design", args.repeat, args.latency_rows)
        _print(m)
        _print_projection("every task at the design model's rate", dict.fromkeys(task_names(), m))
        if not args.no_trained:
            print(f"\ntraining each task with guanxi train --trials {args.trials}", flush=True)
            trained = _trained_bundles(work / "sample", work / "home", args.trials)
            by_task = {}
            for task, bundle in trained.items():
                by_task[task] = measure(
                    bundle, rows_of(bundle), "trained", args.repeat, args.latency_rows
                )
                _print(by_task[task])
            _print_projection("the trained models", by_task)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""`guanxi train` at scale: peak memory of the process tree, wall time and held-out metrics.

    python -m bench.train_scale [--customers 1000000] [--tasks churn cross_sell] [--trials 10]
                                [--modes sampled all] [--max-customers 250000]
                                [--as-of 2025-12-31] [--horizon 90] [--seed 42]
                                [--data $TMPDIR/guanxi-bench]

Generates (and caches, as ``bench/spark.py`` does) the sample, then runs ``guanxi train`` for
every task and mode in its own fresh process with its own ``GUANXI_HOME``:

- **sampled**: the defaults (every cutoff's population cut to ``--max-customers`` customers, a
  uniform sample; each training cutoff to 200,000 rows, whole customers: those with a positive
  row kept, the others sampled and weighted);
- **all**: ``--max-rows-per-cutoff 0 --max-customers 0``, every row of every cutoff: the
  reference the sampled run's held-out metrics are compared with.

Peak memory is the highest RSS of the ``guanxi`` process tree, sampled every 0.2 s with psutil
(``bench._common.TreePeak``); wall time covers the whole command (reading the events included).
The held-out metrics are read back from the run in MLflow. Prints one row per run, then per task
the sampled - all differences of ROC-AUC and the task's headline metric (target: within 0.005
ROC-AUC) and whether the peak is under 12 GB. It never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from bench._common import TreePeak
from models.registry import metric_key
from models.tasks import get_task
from pipelines.sample import generate_sample

PEAK_TARGET_MB = 12 * 1024
AUC_TARGET = 0.005


def headline(task: str) -> str:
    """The metric a task is judged on besides ROC-AUC: precision at 3 when ranked, else PR-AUC."""
    return "precision@3" if get_task(task).kind == "ranked" else "pr_auc"


def _metrics(home: Path, task: str) -> dict[str, float]:
    client = MlflowClient(tracking_uri=f"sqlite:///{home.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"guanxi-{task}")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.grade != ''", max_results=1)
    return {
        name: run.data.metrics.get(metric_key("xgboost", name), float("nan"))
        for name in ("roc_auc", headline(task))
    }


def _train(
    task: str, mode: str, sample: Path, work: Path, args: argparse.Namespace
) -> dict[str, float]:
    home = work / f"home-{task}-{mode}"
    env = {**os.environ, "GUANXI_HOME": str(home), "COLUMNS": "160"}
    env.pop("MLFLOW_TRACKING_URI", None)
    caps = (
        ["--max-rows-per-cutoff", "0", "--max-customers", "0"]
        if mode == "all"
        else ["--max-customers", str(args.max_customers)]
    )
    cmd = [
        sys.executable, "-c", "from pipelines.cli import main; main()",
        "train", "--task", task,
        "--events", str(sample / "events.parquet"),
        "--customers", str(sample / "customers.parquet"),
        "--as-of", args.as_of, "--horizon", str(args.horizon),
        "--trials", str(args.trials), "--seed", "0", *caps,
    ]  # fmt: skip
    log_path = work / f"{task}-{mode}.log"
    with log_path.open("wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = TreePeak(proc.pid).until_exit(proc)
        wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"guanxi train --task {task} ({mode}) failed: {proc.returncode}\n{tail}")
    return {"wall_s": wall, "peak_mb": peak, **_metrics(home, task)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--tasks", nargs="+", default=["churn", "cross_sell"])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--modes", nargs="+", choices=["sampled", "all"], default=["sampled"])
    parser.add_argument("--max-customers", type=int, default=250_000)
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench")
    args = parser.parse_args()

    sample = args.data / f"sample-{args.customers}-{args.seed}"
    if not (sample / "events.parquet").exists():
        generate_sample(args.customers, sample, seed=args.seed)
    print(
        f"guanxi train at {args.customers:,} customers ({sample}), --trials {args.trials}, "
        f"as of {args.as_of}, horizon {args.horizon}; {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    print("| task | mode | wall s | peak MB (process tree) | ROC-AUC | headline |", flush=True)
    print("|---|---|---|---|---|---|", flush=True)
    runs: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-train-") as tmp:
        for task in args.tasks:
            for mode in args.modes:
                r = _train(task, mode, sample, Path(tmp), args)
                runs[task, mode] = r
                name = headline(task)
                print(
                    f"| {task} | {mode} | {r['wall_s']:.1f} | {r['peak_mb']:,.0f} "
                    f"| {r['roc_auc']:.4f} | {name} {r[name]:.4f} |",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for (task, mode), r in runs.items():
        under = "met" if r["peak_mb"] < PEAK_TARGET_MB else "NOT met"
        print(f"{task} {mode}: peak {r['peak_mb']:,.0f} MB, under 12 GB: {under}")
        reference = runs.get((task, "all"))
        if mode == "sampled" and reference is not None:
            d_auc = r["roc_auc"] - reference["roc_auc"]
            name = headline(task)
            met = "met" if abs(d_auc) <= AUC_TARGET else "NOT met"
            print(
                f"{task}: sampled - all rows: ROC-AUC {d_auc:+.4f} (target within "
                f"{AUC_TARGET}: {met}), {name} {r[name] - reference[name]:+.4f}"
            )


if __name__ == "__main__":
    main()

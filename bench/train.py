"""Benchmark `guanxi train`: wall time, peak memory and time per Optuna trial, pruning vs none.

Generates the sample (``pipelines.sample.generate_sample``) into a temporary directory, then runs
``guanxi train --task churn --trials N`` twice in fresh processes with the same seed and data:
once with pruning (the default) and once with ``--no-prune``. Each run uses its own GUANXI_HOME
(local SQLite tracking), so the trial runs it logged give the per-trial durations Optuna measured.

Peak memory is the highest resident set size of the ``guanxi`` process tree, sampled every
0.2 s with psutil. Prints numbers and the no-prune / prune ratio of the time per trial; it never
passes or fails on time.

Usage, from the project root (as a module: run as a script, ``bench/features.py`` would shadow
the ``features`` package)::

    .venv/bin/python -m bench.train --customers 100000 --trials 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from bench._common import TreePeak
from pipelines.sample import generate_sample

AS_OF = "2025-09-30"
HORIZON = "90"


@dataclass
class Measured:
    mode: str
    wall_s: float
    peak_mb: float
    trials: int
    pruned: int
    trial_s: list[float]

    @property
    def per_trial(self) -> float:
        return sum(self.trial_s) / max(len(self.trial_s), 1)


def _trial_durations(home: Path) -> tuple[list[float], int]:
    client = MlflowClient(tracking_uri=f"sqlite:///{home.resolve() / 'mlflow.db'}")
    exp = client.get_experiment_by_name("guanxi-churn")
    runs = client.search_runs([exp.experiment_id], "tags.optuna_state != ''", max_results=10_000)
    durations = [
        r.data.metrics["trial_duration"] for r in runs if "trial_duration" in r.data.metrics
    ]
    pruned = sum(r.data.tags.get("optuna_state") == "PRUNED" for r in runs)
    return durations, pruned


def _run(mode: str, sample: Path, work: Path, trials: int, seed: int) -> Measured:
    home = work / f"home-{mode}"
    env = {**os.environ, "GUANXI_HOME": str(home), "COLUMNS": "120"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        sys.executable, "-c", "from pipelines.cli import main; main()",
        "train", "--task", "churn",
        "--events", str(sample / "events.parquet"),
        "--customers", str(sample / "customers.parquet"),
        "--as-of", AS_OF, "--horizon", HORIZON,
        "--trials", str(trials), "--seed", str(seed),
        "--prune" if mode == "prune" else "--no-prune",
    ]  # fmt: skip
    log = (work / f"{mode}.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    peak = TreePeak(proc.pid).until_exit(proc)
    wall = time.monotonic() - started
    log.close()
    if proc.returncode != 0:
        tail = (work / f"{mode}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"guanxi train ({mode}) failed with {proc.returncode}:\n{tail}")
    durations, pruned = _trial_durations(home)
    return Measured(mode, wall, peak, len(durations), pruned, durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"guanxi train --task churn --trials {args.trials} "
        f"({args.customers:,} customers, {os.cpu_count()} cores)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        summary = generate_sample(args.customers, work / "sample", seed=args.seed)
        print(
            f"sample: {summary.customers:,} customers, {summary.events:,} events "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        print(
            f"{'mode':<9} {'wall s':>8} {'peak MB':>8} {'trials':>6} {'pruned':>6} "
            f"{'tuning s':>9} {'s/trial':>8}",
            flush=True,
        )
        results = []
        for mode in ("prune", "no-prune"):
            r = _run(mode, work / "sample", work, args.trials, args.seed)
            print(
                f"{r.mode:<9} {r.wall_s:>8.1f} {r.peak_mb:>8.0f} {r.trials:>6} {r.pruned:>6} "
                f"{sum(r.trial_s):>9.1f} {r.per_trial:>8.2f}",
                flush=True,
            )
            results.append(r)
    prune, full = results
    print(f"\ntime per trial, no pruning / pruning: {full.per_trial / prune.per_trial:.2f}x")
    print(f"wall time, no pruning / pruning:      {full.wall_s / prune.wall_s:.2f}x")


if __name__ == "__main__":
    main()

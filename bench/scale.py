"""Snapshot build and batch scoring as the customer base grows: time, peak memory, growth exponent.

    python -m bench.scale [--sizes 100000 1000000 5000000] [--spark-sizes 100000 1000000]
                          [--master local[*]] [--buckets N] [--driver-memory 4g]
                          [--steps snapshot scores] [--task churn] [--explain 5]
                          [--trees 100] [--depth 5] [--seed 42] [--data $TMPDIR/guanxi-bench]
                          [--fit-size N] [--results FILE]

Generates (and caches, as ``bench/spark.py`` does) one sample per size, registers synthetic
champions (``bench._common.register_champions``, fitted on the snapshot of ``--fit-size``
customers, the smallest size by default) in a temporary MLflow store, then runs every (engine,
size) in its own fresh process:

- **polars**: ``build_snapshot`` of the events scanned lazily from Parquet (the scan is timed
  with the build), in ``--buckets`` buckets of ``customer_id`` (default
  ``features.snapshot.buckets_for``: about 8M events each, so 1 up to 8M events; with more than
  one, the samples' events, in ``customer_id`` order, are built a range of ``customer_id`` at a
  time from the scan itself, which skips the row groups outside the range; events in another
  order would be written to temporary Parquet files per hash bucket in one streaming pass first;
  either way the events are never all in memory), then ``score_snapshot`` of ``--task`` with
  ``--explain`` reasons, as ``guanxi score`` does;
- **spark** (``--master``, local mode by default): ``build_snapshot_spark`` reading the same
  Parquet files once, in ``--buckets`` buckets (default ``pipelines.spark.buckets_for``: about 1M
  events each, at least two per core), written to Parquet; then ``score_spark`` of that Parquet
  snapshot, written to Parquet: nothing big is collected to the driver, as on a cluster. The
  session start is timed apart.

Each step's wall time (``bench/_measure.py``) and the peak RSS of the process tree during it
(``bench._common.TreePeak``, psutil every 0.2 s: for Spark it counts the JVM and the Python
workers) are printed with the time per million events, and so are the CPU seconds the tree spent
in the step (the same sampling: user + system of every process), which depend much less than the
wall on what else runs. Per engine and step, the growth exponent ``b`` of
``wall = a * events ** b`` is fitted by least squares on the logs (target: <= 1.1, close to
linear; it needs two sizes or more). With ``--results FILE`` every run is appended to that file
(one JSON line) and the exponents are fitted on every run the file holds, so the sizes can be
measured by separate invocations, each holding the heavy lock briefly (pass the same
``--fit-size`` to each, so they score with the same champions). Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

EXPONENT_TARGET = 1.1
DEFAULT_MASTER = "local[*]"
"""Spark master of the Spark runs: every core of this machine."""


def _sample(data: Path, customers: int, seed: int) -> Path:
    from pipelines.sample import generate_sample

    folder = data / f"sample-{customers}-{seed}"
    if not (folder / "events.parquet").exists():
        generate_sample(customers, folder, seed=seed)
    return folder


def _step(name: str, run: Any) -> tuple[Any, dict[str, Any]]:
    from bench._common import TreePeak
    from bench._measure import measured

    with TreePeak() as peak:
        result, figures = measured(run)
    return result, {"step": name, **figures, "tree_peak_mb": peak.mb, "tree_cpu_s": peak.cpu_s}


def _child(args: argparse.Namespace) -> None:
    """Measure one engine at one size; print the figures as one JSON line."""

    import polars as pl

    from features.events import read_customers
    from models import registry
    from models.registry import configure_tracking
    from pipelines.sample import DEFAULT_END

    folder = Path(args.folder)
    configure_tracking(Path(args.home))
    bundle = registry.load_model(args.task, alias=registry.CHAMPION).bundle
    steps = []
    if args.child == "polars":
        from features.snapshot import buckets_for, build_snapshot
        from models.scoring import score_snapshot

        now = datetime(DEFAULT_END.year + 1, 1, 1, tzinfo=UTC)
        events = pl.scan_parquet(folder / "events.parquet")  # the generator's: contract-typed
        customers = read_customers(folder / "customers.parquet", now=now)
        n_events = events.select(pl.len()).collect().item()
        buckets = buckets_for(n_events) if args.buckets is None else args.buckets
        snapshot, figures = _step(
            "snapshot", lambda: build_snapshot(events, customers, DEFAULT_END, buckets=buckets)
        )
        steps.append({**figures, "buckets": buckets})
        if "scores" in args.steps:
            _, figures = _step(
                "scores", lambda: score_snapshot(bundle, snapshot, explain_k=args.explain)
            )
            steps.append(figures)
        n_customers = snapshot.height
    else:
        from pipelines.spark import (
            build_snapshot_spark,
            read_table,
            score_spark,
            spark_session,
            write_table,
        )

        started = time.perf_counter()
        config = {"spark.driver.memory": args.driver_memory}
        spark = spark_session(args.master, app_name="guanxi-bench-scale", config=config)
        session_s = time.perf_counter() - started
        events_frame = read_table(spark, str(folder / "events.parquet"))
        n_events = events_frame.count()
        out = Path(args.home) / f"spark-{folder.name}"

        def build() -> None:  # written to Parquet, as on a cluster: nothing big to the driver
            built = build_snapshot_spark(
                events_frame,
                read_table(spark, str(folder / "customers.parquet")),
                DEFAULT_END,
                buckets=args.buckets,
            )
            write_table(built, str(out / "snapshot"))

        _, figures = _step("snapshot", build)
        steps.append({**figures, "session_s": session_s})
        uri = f"models:/{args.task}/{bundle.metadata['registry']['version']}"

        def score() -> None:
            snapshot = read_table(spark, str(out / "snapshot"))
            write_table(score_spark(snapshot, bundle, uri, args.explain), str(out / "scores"))

        if "scores" in args.steps:
            _, figures = _step("scores", score)
            steps.append(figures)
        n_customers = read_table(spark, str(out / "snapshot")).count()
        spark.stop()
    print(json.dumps({"events": n_events, "customers": n_customers, "steps": steps}))


def _run_child(engine: str, folder: Path, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.scale", "--child", engine, "--folder", str(folder),
        "--home", str(home), "--task", args.task, "--explain", str(args.explain),
        "--master", args.master, "--driver-memory", args.driver_memory,
        *([] if args.buckets is None else ["--buckets", str(args.buckets)]),
        "--steps", *args.steps,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench.scale {engine} {folder.name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def growth_exponent(events: list[float], seconds: list[float]) -> float:
    """Fitted ``b`` of ``seconds = a * events ** b`` (least squares on the logs).

    Parameters
    ----------
    events : list of float
        Events of each size (at least two distinct).
    seconds : list of float
        Wall time of each size.

    Returns
    -------
    float
        The exponent; 1 is linear growth.
    """
    slope, _ = np.polyfit(np.log(events), np.log(seconds), 1)
    return float(slope)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--spark-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--master", default=DEFAULT_MASTER)
    parser.add_argument(
        "--buckets", type=int, help="buckets of customer_id (default: sized by the events)"
    )
    parser.add_argument("--driver-memory", default="4g", help="spark.driver.memory")
    parser.add_argument(
        "--steps", nargs="+", choices=["snapshot", "scores"], default=["snapshot", "scores"]
    )
    parser.add_argument("--task", default="churn")
    parser.add_argument("--explain", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench")
    parser.add_argument("--child", choices=["polars", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--fit-size", type=int, help="customers of the champions' sample")
    parser.add_argument("--results", type=Path, help="JSON lines of runs, appended and fitted")
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    from bench._common import register_champions
    from features.events import read_customers, read_events
    from features.snapshot import build_snapshot
    from pipelines.sample import DEFAULT_END

    runs = [("polars", n) for n in args.sizes] + [("spark", n) for n in args.spark_sizes]
    folders = {n: _sample(args.data, n, args.seed) for n in sorted({n for _, n in runs})}
    fit = _sample(args.data, args.fit_size, args.seed) if args.fit_size else folders[min(folders)]
    now = datetime(DEFAULT_END.year + 1, 1, 1, tzinfo=UTC)
    print(
        f"bench.scale: {args.task} scores with {args.explain} reasons, synthetic champions "
        f"({args.trees} trees, depth {args.depth}, fitted on {fit.name}); spark {args.master}, "
        f"driver memory {args.driver_memory}; buckets "
        f"{'sized by the events' if args.buckets is None else args.buckets}; "
        f"{os.cpu_count()} cores, load average {_load()}",
        flush=True,
    )
    print(
        "| engine | customers | events | step | wall s | s per M events | peak MB (tree) "
        "| CPU s (tree) |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    earlier = (
        [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        if args.results is not None and args.results.exists()
        else []
    )
    done: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-scale-") as home:
        snapshot = build_snapshot(
            read_events(fit / "events.parquet", now=now),
            read_customers(fit / "customers.parquet", now=now),
            DEFAULT_END,
        )
        register_champions(Path(home), snapshot, args.trees, args.depth)
        del snapshot
        for engine, n in runs:
            result = {
                "engine": engine,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "load": _load(),
                **_run_child(engine, folders[n], Path(home), args),
            }
            done.append(result)
            if args.results is not None:
                with args.results.open("a") as out:
                    out.write(json.dumps(result) + "\n")
            million = result["events"] / 1e6
            for step in result["steps"]:
                print(
                    f"| {engine} | {result['customers']:,} | {result['events']:,} "
                    f"| {step['step']} | {step['wall_s']:.2f} | {step['wall_s'] / million:.2f} "
                    f"| {step['tree_peak_mb']:,.0f} | {step['tree_cpu_s']:,.1f} |",
                    flush=True,
                )
                if "session_s" in step:
                    print(f"  (spark session start {step['session_s']:.1f} s, not counted)")
                if "buckets" in step:
                    print(f"  ({step['buckets']} buckets of customer_id)")
    if earlier:
        print(f"earlier runs of {args.results} in the fit:")
        for result in earlier:
            steps = ", ".join(f"{s['step']} {s['wall_s']:.2f} s" for s in result["steps"])
            print(
                f"  {result['engine']} {result['customers']:,} customers "
                f"({result['events']:,} events, {result['at']}, load {result['load']}): {steps}"
            )
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for result in [*earlier, *done]:
        for step in result["steps"]:
            figures.setdefault((result["engine"], step["step"]), []).append(
                (result["events"], step["wall_s"])
            )
    print(f"load average after: {_load()}")
    for (engine, step), points in figures.items():
        if len({e for e, _ in points}) < 2:
            print(f"growth exponent {engine} {step}: not measured (one size)")
            continue
        b = growth_exponent([e for e, _ in points], [s for _, s in points])
        met = "met" if b <= EXPONENT_TARGET else "NOT met"
        print(f"growth exponent {engine} {step}: {b:.2f} (target <= {EXPONENT_TARGET}: {met})")


if __name__ == "__main__":
    main()

"""The Spark engine against the Polars engine on one machine: snapshot build and batch scoring.

    python -m bench.spark [--customers 20000] [--master local[2]] [--buckets 16] [--explain 5]

Generates (and caches) a sample, then in this one process times, for each engine, the snapshot
as of the last sample day and the first task's scores with ``--explain`` reasons from a
synthetic champion (``bench._common.register_champions``); Spark's session start is timed
apart. Prints the Spark/Polars ratio of each step (the Polars engine is the reference) and
whether the outputs are equal: every column exactly, floats bit for bit (both engines' snapshots
and scores are the same to the bit, as ``tests/pipelines/test_spark.py`` checks; no step has a
kernel of its own that would need a tolerance), and names the columns that differ if any do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from bench._common import register_champions
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models import registry
from models.scoring import score_snapshot
from models.tasks import task_names
from pipelines.sample import DEFAULT_END, generate_sample
from pipelines.spark import build_snapshot_spark, read_table, score_spark, spark_session


def _same_bits(a: pl.Series, b: pl.Series) -> bool:
    """Whether two float columns hold the same nulls and the same values bit for bit.

    Unlike ``==``, tells 0.0 from -0.0 and one NaN payload from another.
    """
    if not a.is_null().equals(b.is_null()):
        return False
    x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
    unsigned = f"u{x.dtype.itemsize}"
    return x.dtype == y.dtype and np.array_equal(x.view(unsigned), y.view(unsigned))


def _differences(got: pl.DataFrame, expected: pl.DataFrame) -> list[str]:
    """What differs between two outputs: schema, row count or the names of unequal columns.

    Every column is compared exactly, floats bit for bit, others with ``Series.equals`` (nulls
    equal to nulls). An empty list means the outputs are the same.
    """
    if got.schema != expected.schema:
        return ["schema"]
    if got.height != expected.height:
        return ["row count"]
    return [
        name
        for name, dtype in expected.schema.items()
        if not (
            _same_bits(got[name], expected[name])
            if dtype.is_float()
            else got[name].equals(expected[name])
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--explain", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench")
    args = parser.parse_args()

    data = args.data / f"sample-{args.customers}-{args.seed}"
    if not (data / "events.parquet").exists():
        generate_sample(args.customers, data, seed=args.seed)
    now = datetime(DEFAULT_END.year + 1, 1, 1, tzinfo=UTC)
    events = read_events(data / "events.parquet", now=now)
    customers = read_customers(data / "customers.parquet", now=now)
    as_of = DEFAULT_END
    print(f"{args.customers:,} customers, {events.height:,} events, as of {as_of}, {args.master}")

    # Sorted as every earlier run of this bench sorted them, so the timed Polars build keeps its
    # input; since 2767495 and 4cd1882 neither engine's output depends on the rows' order.
    sorted_events = events.sort(events.columns, nulls_last=True)
    start = time.perf_counter()
    snapshot = build_snapshot(sorted_events, customers, as_of)
    polars_build = time.perf_counter() - start

    task = task_names()[0]
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-spark-") as home:
        register_champions(Path(home), snapshot, args.trees, args.depth)
        bundle = registry.load_model(task, alias=registry.CHAMPION).bundle
        uri = f"models:/{task}/{bundle.metadata['registry']['version']}"
        start = time.perf_counter()
        expected_scores = score_snapshot(bundle, snapshot, explain_k=args.explain)
        polars_score = time.perf_counter() - start

        start = time.perf_counter()
        spark = spark_session(args.master, app_name="guanxi-bench")
        session = time.perf_counter() - start
        start = time.perf_counter()
        built = build_snapshot_spark(
            read_table(spark, str(data / "events.parquet")),
            read_table(spark, str(data / "customers.parquet")),
            as_of,
            buckets=args.buckets,
        )
        got = pl.from_arrow(built.toArrow())
        spark_build = time.perf_counter() - start
        frame = spark.createDataFrame(snapshot.to_arrow()).repartition(args.buckets).cache()
        frame.count()
        start = time.perf_counter()
        got_scores = pl.from_arrow(score_spark(frame, bundle, uri, args.explain).toArrow())
        spark_score = time.perf_counter() - start
        spark.stop()

    assert isinstance(got, pl.DataFrame) and isinstance(got_scores, pl.DataFrame)
    snapshot_diff = _differences(got.sort("customer_id"), snapshot)
    scores_diff = _differences(got_scores, expected_scores)
    million = events.height / 1e6
    print(f"Spark session start: {session:.1f} s (not in the ratios)")
    print("| step | Polars engine | Spark engine | Spark / Polars | outputs equal |")
    print("|---|---|---|---|---|")
    steps = (
        ("snapshot", polars_build, spark_build, snapshot_diff),
        (f"{task} scores, {args.explain} reasons", polars_score, spark_score, scores_diff),
    )
    for step, polars_s, spark_s, diff in steps:
        print(
            f"| {step} | {polars_s:.2f} s ({polars_s / million:.2f} s per M events) "
            f"| {spark_s:.2f} s ({spark_s / million:.2f} s per M events) "
            f"| {spark_s / polars_s:.1f}x | {not diff} |"
        )
    for step, _, _, diff in steps:
        if diff:
            print(f"{step}: not equal bit for bit: {', '.join(diff)}")


if __name__ == "__main__":
    main()

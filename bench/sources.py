"""Reading events from PostgreSQL against reading the same rows from Parquet.

```
.venv/bin/python -m bench.sources [--events 2000000 10000000] [--uri postgresql://...]
                                  [--repeat 1] [--data $TMPDIR/guanxi-bench-sources]
```

For each size in ``--events``, the sample generator's events (2025, about 22 events a customer;
generated once for the largest size) are cut to exactly that many rows, written once to
``events-<rows>.parquet`` under ``--data`` and loaded into table ``events`` (with an ``event_id``
primary key, as a warehouse table has) of a PostgreSQL server: the one ``--uri`` names, or one
started for the run in a temporary folder (``tests.processes.start_postgres``; as the ``postgres``
user when root) and stopped at the end. Loading is not timed. Two sizes show how each reader's
memory grows with the rows.

Each reader runs in its own fresh subprocess and does what ``guanxi`` does with its ``--events``:

- **parquet** (the reference): ``features.sources.load_events`` of the Parquet file: read and
  validated against the events contract;
- **postgresql**: the same function on ``--events <uri> --events-table events``: rows streamed in
  Arrow batches over ADBC into a Parquet staging file, which is then read and validated as the
  Parquet file is;
- **postgresql, whole** (for information): ``polars.read_database_uri(..., engine="adbc")`` of the
  same table, everything at once and not validated: what reading without batches costs.

Wall and CPU time (user + system, all threads of the child) cover the read (libraries are imported
before). Memory: the child's RSS after its imports (*baseline*) and its peak RSS (``VmHWM``) after
the read; the *increment* is peak - baseline. The PostgreSQL server's own memory is another
process and is not counted. Every reader's rows are checked to be the same (row count and an
order-independent digest). The ratios printed are postgresql / parquet. ``--repeat N`` alternates
the readers N times and reports the best of each figure; every run is listed. Last, the peak
increments of every size side by side, and each reader's growth from the smallest size to the
largest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from features.contracts import counted

READERS = ("parquet", "postgresql", "postgresql-whole")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _digest(frame: pl.DataFrame) -> str:
    """Order-independent fingerprint of the rows (wrapping sum of the row hashes)."""
    return str(frame.hash_rows(seed=0).cast(pl.Decimal(38, 0)).sum() % (1 << 64))


def _child(reader: str, parquet: Path, uri: str) -> dict[str, Any]:
    import adbc_driver_postgresql.dbapi  # noqa: F401  (imports are not part of the read)
    import pyarrow  # noqa: F401

    from features.sources import Source, load_events

    now = dt.datetime.now(dt.UTC)
    baseline = _status_kb("VmRSS")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if reader == "parquet":
        frame = load_events(Source(str(parquet)), now=now).frame
    elif reader == "postgresql":
        frame = load_events(Source(uri, table="events"), now=now).frame
    else:
        frame = pl.read_database_uri("SELECT * FROM events", uri, engine="adbc")
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = _status_kb("VmHWM")
    columns = [c for c in frame.columns if c != "event_id"]
    return {
        "reader": reader,
        "rows": frame.height,
        "digest": _digest(frame.select(columns).cast({"ts": pl.Datetime("us", "UTC")})),
        "wall_s": wall,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "baseline_mb": baseline / 1024,
        "peak_mb": peak / 1024,
        "increment_mb": (peak - baseline) / 1024,
    }


def _run_child(reader: str, parquet: Path, uri: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.sources", "--child", reader, "--parquet", str(parquet)]
    env = {**os.environ, "GUANXI_BENCH_URI": uri}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{reader} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _rows(path: Path) -> int:
    return int(pl.scan_parquet(path).select(pl.len()).collect().item()) if path.exists() else 0


def _sample(data: Path, events: int, largest: int) -> Path:
    """Write exactly ``events`` sample events to ``data/events-<events>.parquet`` (cached).

    The sample is generated once, for ``largest`` events, and every size is cut from it.
    """
    from pipelines.sample import generate_sample

    parquet = data / f"events-{events}.parquet"
    if _rows(parquet) == events:
        return parquet
    raw = data / "raw"
    if _rows(raw / "events.parquet") < largest:
        customers = max(1000, largest // 20)
        print(f"generating {customers:,} sample customers over 2025 into {raw} ...", flush=True)
        start, end = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
        generate_sample(customers, raw, seed=42, start=start, end=end)
    available = _rows(raw / "events.parquet")
    if available < events:
        raise SystemExit(f"the sample has {available:,} events, fewer than {events:,}")
    pl.scan_parquet(raw / "events.parquet").head(events).sink_parquet(parquet)
    return parquet


def _load(uri: str, parquet: Path) -> None:
    """Load the Parquet rows into table ``events`` with an ``event_id`` primary key (untimed)."""
    import adbc_driver_postgresql.dbapi as postgresql

    from features.database import write_table

    t0 = time.perf_counter()
    frame = pl.read_parquet(parquet).with_row_index("event_id", offset=1)
    write_table(uri, "events", frame.cast({"event_id": pl.Int64}))
    with postgresql.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events ADD PRIMARY KEY (event_id)")
        connection.commit()
    print(f"loaded {frame.height:,} rows into PostgreSQL in {time.perf_counter() - t0:.0f} s")


def _best(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        reader: {
            key: min(r[key] for r in runs if r["reader"] == reader)
            for key in ("wall_s", "cpu_s", "peak_mb", "increment_mb")
        }
        for reader in READERS
    }


def _report(runs: list[dict[str, Any]], events: int) -> None:
    per_reader = counted(len(runs) // len(READERS), "runs")
    print(f"\n{events:,} events, {per_reader} per reader (best shown)")
    for r in runs:
        print(
            f"  {r['reader']:<17} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
            f"peak {r['peak_mb']:7,.0f} MB  increment {r['increment_mb']:7,.0f} MB  "
            f"rows {r['rows']:,}"
        )
    best = _best(runs)
    print(f"\n{'':<24}" + "".join(f"{reader:>18}" for reader in READERS))
    for label, key, fmt in (
        ("wall (s)", "wall_s", "{:18.2f}"),
        ("cpu (s)", "cpu_s", "{:18.2f}"),
        ("peak RSS (MB)", "peak_mb", "{:18,.0f}"),
        ("peak increment (MB)", "increment_mb", "{:18,.0f}"),
    ):
        print(f"{label:<24}" + "".join(fmt.format(best[reader][key]) for reader in READERS))
    pg, ref = best["postgresql"], best["parquet"]
    print(
        f"\npostgresql / parquet: wall {pg['wall_s'] / ref['wall_s']:.2f}x, "
        f"cpu {pg['cpu_s'] / ref['cpu_s']:.2f}x, "
        f"peak increment {pg['increment_mb'] / ref['increment_mb']:.2f}x "
        f"({pg['increment_mb'] - ref['increment_mb']:+,.0f} MB)"
    )
    whole = best["postgresql-whole"]
    print(
        f"batched / whole PostgreSQL read: peak increment "
        f"{pg['increment_mb'] / whole['increment_mb']:.2f}x (the whole read is not validated)"
    )
    digests = {(r["rows"], r["digest"]) for r in runs}
    print("same rows from every reader: " + ("yes" if len(digests) == 1 else f"NO {digests}"))


def _growth(by_size: dict[int, list[dict[str, Any]]]) -> None:
    """Print every size's peak increments side by side, and their growth with the rows."""
    sizes = sorted(by_size)
    best = {n: _best(by_size[n]) for n in sizes}
    print("\npeak increment (MB) by size")
    print(f"{'reader':<20}" + "".join(f"{n:>14,}" for n in sizes) + f"{'growth':>14}")
    for reader in READERS:
        figures = [best[n][reader]["increment_mb"] for n in sizes]
        growth = f"{figures[-1] / figures[0]:.2f}x" if len(sizes) > 1 else "-"
        print(f"{reader:<20}" + "".join(f"{f:14,.0f}" for f in figures) + f"{growth:>14}")
    extra = [
        best[n]["postgresql"]["increment_mb"] - best[n]["parquet"]["increment_mb"] for n in sizes
    ]
    print(f"{'postgresql-parquet':<20}" + "".join(f"{f:+14,.0f}" for f in extra))


def main() -> None:
    """Run the benchmark (or one reader, with ``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[2_000_000, 10_000_000])
    parser.add_argument("--uri", help="a PostgreSQL database to load and read (default: start one)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench-sources"
    )
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        uri = os.environ["GUANXI_BENCH_URI"]
        print(json.dumps(_child(args.child, args.parquet, uri)))
        return
    args.data.mkdir(parents=True, exist_ok=True)
    sizes = sorted(set(args.events))
    files = {n: _sample(args.data, n, sizes[-1]) for n in sizes}
    server = None
    uri = args.uri
    if uri is None:
        from tests.processes import start_postgres

        server = start_postgres()
        uri = server.uri()
        print(f"started PostgreSQL on port {server.port} ({server.root})")
    by_size: dict[int, list[dict[str, Any]]] = {}
    try:
        for n in sizes:
            _load(uri, files[n])
            by_size[n] = [
                _run_child(reader, files[n], uri) for _ in range(args.repeat) for reader in READERS
            ]
            _report(by_size[n], n)
    finally:
        if server is not None:
            from tests.processes import stop_postgres

            stop_postgres(server)
    _growth(by_size)


if __name__ == "__main__":
    main()

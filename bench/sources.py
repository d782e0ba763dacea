"""Reading events from PostgreSQL against reading the same rows from Parquet.

```
.venv/bin/python -m bench.sources [--events 10000000] [--uri postgresql://...] [--repeat 1]
                                  [--data $TMPDIR/guanxi-bench-sources]
```

The sample generator's events (2025, about 22 events a customer) are cut to exactly ``--events``
rows, written once to ``events.parquet`` under ``--data`` and loaded into table ``events`` (with an
``event_id`` primary key, as a warehouse table has) of a PostgreSQL server: the one ``--uri`` names,
or one started for the run in a temporary folder (``tests.processes.start_postgres``; as the
``postgres`` user when root) and stopped at the end. Loading is not timed.

Each reader runs in its own fresh subprocess and does what ``guanxi`` does with its ``--events``:

- **parquet** (the reference): ``features.sources.load_events`` of the Parquet file: read and
  validated against the events contract;
- **postgresql**: the same function on ``--events <uri> --events-table events``: rows streamed in
  Arrow batches over ADBC and validated batch by batch by Polars' streaming engine;
- **postgresql, whole** (for information): ``polars.read_database_uri(..., engine="adbc")`` of the
  same table, everything at once and not validated: what reading without batches costs.

Wall and CPU time (user + system, all threads of the child) cover the read (libraries are imported
before). Memory: the child's RSS after its imports (*baseline*) and its peak RSS (``VmHWM``) after
the read; the *increment* is peak - baseline. The PostgreSQL server's own memory is another
process and is not counted. Every reader's rows are checked to be the same (row count and an
order-independent digest). The ratios printed are postgresql / parquet. ``--repeat N`` alternates
the readers N times and reports the best of each figure; every run is listed.
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
    args = [sys.executable, "-m", "bench.sources", "--child", reader, "--data", str(parquet.parent)]
    env = {**os.environ, "GUANXI_BENCH_URI": uri}
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{reader} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _sample(data: Path, events: int) -> Path:
    """Write exactly ``events`` sample events to ``data/events.parquet`` (cached)."""
    from pipelines.sample import generate_sample

    parquet = data / "events.parquet"
    if parquet.exists() and pl.scan_parquet(parquet).select(pl.len()).collect().item() == events:
        return parquet
    raw = data / "raw"
    customers = max(1000, events // 20)
    print(f"generating {customers:,} sample customers over 2025 into {raw} ...", flush=True)
    generate_sample(customers, raw, seed=42, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    available = pl.scan_parquet(raw / "events.parquet").select(pl.len()).collect().item()
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


def _report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.events:,} events, {len(runs) // len(READERS)} run(s) per reader (best shown)")
    for r in runs:
        print(
            f"  {r['reader']:<17} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
            f"peak {r['peak_mb']:7,.0f} MB  increment {r['increment_mb']:7,.0f} MB  "
            f"rows {r['rows']:,}"
        )
    best = {
        reader: {
            key: min(r[key] for r in runs if r["reader"] == reader)
            for key in ("wall_s", "cpu_s", "peak_mb", "increment_mb")
        }
        for reader in READERS
    }
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
        f"peak increment {pg['increment_mb'] / ref['increment_mb']:.2f}x"
    )
    whole = best["postgresql-whole"]
    print(
        f"batched / whole PostgreSQL read: peak increment "
        f"{pg['increment_mb'] / whole['increment_mb']:.2f}x (the whole read is not validated)"
    )
    digests = {(r["rows"], r["digest"]) for r in runs}
    print("same rows from every reader: " + ("yes" if len(digests) == 1 else f"NO {digests}"))


def main() -> None:
    """Run the benchmark (or one reader, with ``--child``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--uri", help="a PostgreSQL database to load and read (default: start one)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-bench-sources"
    )
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        uri = os.environ["GUANXI_BENCH_URI"]
        print(json.dumps(_child(args.child, args.data / "events.parquet", uri)))
        return
    args.data.mkdir(parents=True, exist_ok=True)
    parquet = _sample(args.data, args.events)
    server = None
    uri = args.uri
    if uri is None:
        from tests.processes import start_postgres

        server = start_postgres()
        uri = server.uri()
        print(f"started PostgreSQL on port {server.port} ({server.root})")
    try:
        _load(uri, parquet)
        runs = [_run_child(reader, parquet, uri) for _ in range(args.repeat) for reader in READERS]
    finally:
        if server is not None:
            from tests.processes import stop_postgres

            stop_postgres(server)
    _report(runs, args)


if __name__ == "__main__":
    main()

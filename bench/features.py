"""Benchmark ``build_snapshot`` (Polars) against a plain pandas groupby reference.

Builds one snapshot of the sample data (``pipelines.sample.generate_sample``; by default 500,000
customers simulated over 2025, about 11 million events, snapshot as of 2025-12-31) with
``features.snapshot.build_snapshot`` and with ``bench/_pandas_reference.py`` (idiomatic pandas,
the same feature columns with the same semantics), and prints wall time, CPU time and peak
memory of each as ratios against pandas measured in the same run. It never passes or fails on
time; it checks that the two outputs agree and says so.

Fairness:

- the sample is generated once and cached under ``--data``; each engine runs in its own fresh
  subprocess, which reads the same Parquet files with its own reader (``polars.read_parquet``,
  ``pandas.read_parquet``); reading is not timed;
- memory: after reading, the child resets its kernel peak-RSS counter (``/proc/self/clear_refs``)
  and records its RSS (the *baseline*: interpreter, libraries and the loaded tables); the *peak*
  is ``VmHWM`` after the build, the *increment* is peak minus baseline: the working memory the
  build needs. The memory ratio is polars increment / pandas increment. Where the counter cannot
  be reset, the peak is ``ru_maxrss`` and includes reading (the report says so);
- CPU time is the child's user + system time during the build (all threads); under a shared,
  loaded machine it is steadier than wall time;
- ``--repeat N`` runs each engine N times, alternating, and reports the best (minimum) of each
  figure, the usual choice when other load can only slow a run down.

Usage::

    .venv/bin/python -m bench.features [--customers 500000] [--repeat 3] [--threads 2]
    .venv/bin/python -m bench.features --sample-only   # make (or find) the sample, time nothing
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._measure import measured

__all__ = ["main"]

SPEED_TARGET = 5.0
"""pandas wall time / polars wall time should be at least this."""
MEMORY_TARGET = 0.5
"""polars peak increment / pandas peak increment should be at most this."""
ENGINES = ("polars", "pandas")


def _child(engine: str, data: Path, as_of: dt.date, out: Path) -> dict[str, Any]:
    """Load the sample, build the snapshot once, measure, write the snapshot to ``out``."""
    events_path, customers_path = data / "events.parquet", data / "customers.parquet"
    if engine == "polars":
        import polars as pl

        from features.snapshot import build_snapshot

        events, customers = pl.read_parquet(events_path), pl.read_parquet(customers_path)
        snapshot, figures = measured(lambda: build_snapshot(events, customers, as_of))
        snapshot.write_parquet(out)
        sizes = {"events": events.height, "rows": snapshot.height}
    else:
        import pandas as pd

        from bench._pandas_reference import build_snapshot_pandas

        frame, table = pd.read_parquet(events_path), pd.read_parquet(customers_path)
        result, figures = measured(lambda: build_snapshot_pandas(frame, table, as_of))
        result.to_parquet(out, index=False)
        sizes = {"events": len(frame), "rows": len(result)}
    return {"engine": engine, **sizes, **figures}


def _sample_dir(root: Path, customers: int, seed: int, start: dt.date, end: dt.date) -> Path:
    """Generate the sample once per argument set; later runs reuse it."""
    from pipelines.sample import generate_sample

    path = root / f"c{customers}-s{seed}-{start}-{end}"
    if not (path / "events.parquet").exists() or not (path / "customers.parquet").exists():
        print(f"generating the sample into {path} ...", flush=True)
        generate_sample(customers, path, seed=seed, start=start, end=end)
    return path


def _run_child(engine: str, data: Path, as_of: dt.date, out: Path, threads: int) -> dict[str, Any]:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "bench.features", "--child", engine, "--data", str(data)]
    cmd += ["--as-of", as_of.isoformat(), "--out", str(out)]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _agree(polars_out: Path, pandas_out: Path) -> list[str]:
    import polars as pl

    from bench._pandas_reference import compare_snapshots

    return compare_snapshots(pl.read_parquet(polars_out), pl.read_parquet(pandas_out))


def _report(runs: list[dict[str, Any]], problems: list[str], args: argparse.Namespace) -> None:
    from features.contracts import counted

    best = {
        engine: {
            key: min(r[key] for r in runs if r["engine"] == engine)
            for key in ("wall_s", "cpu_s", "baseline_mb", "peak_mb", "increment_mb")
        }
        for engine in ENGINES
    }
    first = {r["engine"]: r for r in reversed(runs)}
    pol, pan = best["polars"], best["pandas"]
    speed = pan["wall_s"] / pol["wall_s"]
    cpu_ratio = pan["cpu_s"] / pol["cpu_s"]
    memory = pol["increment_mb"] / pan["increment_mb"]
    print(f"events            {first['polars']['events']:,}  (as of {args.as_of})")
    print(
        f"rows (customers)  polars {first['polars']['rows']:,}, pandas {first['pandas']['rows']:,}"
    )
    for r in runs:
        print(
            f"  run {r['engine']:<7} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
            f"peak {r['peak_mb']:8,.0f} MB  after load {r['baseline_mb']:7,.0f} MB  "
            f"increment {r['increment_mb']:7,.0f} MB"
        )
    print(f"best of {counted(args.repeat, 'runs')} per engine (minimum of each figure):")
    print(f"{'':24}{'polars':>12}{'pandas':>12}")
    for label, key, fmt in (
        ("wall time (s)", "wall_s", "{:12.2f}"),
        ("cpu time user+sys (s)", "cpu_s", "{:12.2f}"),
        ("RSS after load (MB)", "baseline_mb", "{:12,.0f}"),
        ("peak RSS (MB)", "peak_mb", "{:12,.0f}"),
        ("peak increment (MB)", "increment_mb", "{:12,.0f}"),
    ):
        print(f"{label:24}{fmt.format(pol[key])}{fmt.format(pan[key])}")
    met = {True: "met", False: "NOT met"}
    print(
        f"speed ratio       {speed:.2f}x  (pandas wall / polars wall; target >= "
        f"{SPEED_TARGET:g}x: {met[speed >= SPEED_TARGET]})"
    )
    print(f"cpu ratio         {cpu_ratio:.2f}x  (pandas cpu / polars cpu; for information)")
    print(
        f"memory ratio      {memory:.2f}  (polars / pandas peak increment over the RSS after "
        f"loading; target <= {MEMORY_TARGET:g}: {met[memory <= MEMORY_TARGET]})"
    )
    print(f"raw peak ratio    {pol['peak_mb'] / pan['peak_mb']:.2f}  (polars / pandas peak RSS)")
    if not all(r["peak_reset"] for r in runs):
        print("note: the peak counter could not be reset; peaks include reading the data")
    print(f"outputs agree:    {'yes' if not problems else 'no'}")
    for line in problems:
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2025, 12, 31))
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine; best is reported")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "guanxi-bench-features",
        help="cache directory of the generated samples",
    )
    parser.add_argument(
        "--sample-only",
        action="store_true",
        help="make (or find) the sample in --data and stop, timing nothing",
    )
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.as_of = args.as_of or args.end
    if args.child:
        print(json.dumps(_child(args.child, args.data, args.as_of, args.out)))
        return

    data = _sample_dir(args.data, args.customers, args.seed, args.start, args.end)
    print(f"data              {data} ({args.customers:,} customers, {args.start} to {args.end})")
    if args.sample_only:  # bench.remeasure's set-up: no sample generated inside a timed log
        return
    print(
        "scheme            each engine in its own fresh process reads the same Parquet files "
        "with its own reader;\n                  reading is not timed; memory is measured "
        "from the RSS after reading"
    )
    print(f"threads           {args.threads} (POLARS_MAX_THREADS; pandas runs on one)")
    print(f"load average      {' '.join(f'{x:.1f}' for x in os.getloadavg())} (before)")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        outs = {engine: Path(tmp) / f"{engine}.parquet" for engine in ENGINES}
        for _ in range(args.repeat):
            for engine in ENGINES:
                runs.append(_run_child(engine, data, args.as_of, outs[engine], args.threads))
        problems = _agree(outs["polars"], outs["pandas"])
    print(f"load average      {' '.join(f'{x:.1f}' for x in os.getloadavg())} (after)")
    _report(runs, problems, args)


if __name__ == "__main__":
    main()

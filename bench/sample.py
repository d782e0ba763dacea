"""Benchmark ``guanxi data sample``: wall time, events/s, peak memory and output size.

Usage: ``python -m bench.sample --customers 1000000 [--chunk-size 20000] [--format parquet]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from pipelines.sample import generate_sample

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = generate_sample(
            args.customers, tmp, seed=args.seed, fmt=args.format, chunk_size=args.chunk_size
        )
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers         {summary.customers:,}")
    print(f"events written    {summary.events:,} ({summary.events / summary.customers:.1f} each)")
    print(f"wall time         {wall:.1f} s")
    print(f"events/s          {summary.events / wall:,.0f}")
    print(f"peak RSS          {peak_mb:,.0f} MB")
    print(f"output size       {size / 2**20:,.1f} MB ({args.format})")
    print(f"chunk size        {args.chunk_size:,} customers")


if __name__ == "__main__":
    main()

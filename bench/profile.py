"""Where the time goes: pyinstrument profiles of a served request, the background explainer and
``guanxi score --explain``.

It generates a sample (``--customers``), builds the snapshot, fits a 300-tree depth-6 model per
task (``bench._common.synthetic_bundles``: only speed matters) and builds the serving state as the
server does (:func:`serving.tables.build_state`), then profiles in this process:

- **never explained**: ``--requests`` customers asked once, every served task, five reasons
  (:func:`serving.presentation.score_fragments`, what ``GET /v1/customers/{id}/scores`` calls;
  the kernel is compiled and the boosters parsed before, as at server start-up);
- **asked again**: the same customers asked again (their answers are kept);
- **background explainer**: the first ``--chunk`` customers of every task explained and worded,
  one chunk as :func:`serving.explaining.explain_in_background` does it;
- **batch**: :func:`models.scoring.score_snapshot` with five reasons, every task.

HTTP and JSON parsing are not in these profiles (``bench/serve.py`` measures whole requests). Each
section prints its CPU time per item and pyinstrument's call tree (frames under 2 % hidden).

Usage: ``python -m bench.profile [--customers 5000] [--requests 100] [--chunk 2048]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from pyinstrument import Profiler

from bench._common import synthetic_bundles
from features.contracts import FEATURE_SET_VERSION
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models.scoring import score_snapshot
from models.treeshap import MIN_ROWS_PER_THREAD
from pipelines.sample import generate_sample
from serving.explaining import reasons
from serving.presentation import score_fragments
from serving.state import LoadedSnapshot, ServedModel
from serving.tables import build_state

__all__ = ["main"]

AS_OF = date(2025, 9, 30)


def _profile(name: str, items: int, work: Callable[[], object]) -> None:
    """Run ``work`` under pyinstrument; print CPU time per item and the call tree."""
    profiler = Profiler(interval=0.0005)
    cpu = time.process_time()
    with profiler:
        work()
    cpu = time.process_time() - cpu
    print(f"\n=== {name}: {cpu / items * 1000:.3f} ms CPU per item ({items:,} items)")
    print(profiler.output_text(unicode=False, show_all=False, time="percent_of_total"))


def main() -> None:
    """Build the state and print the profiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-profile-") as tmp:
        data = Path(tmp)
        generate_sample(args.customers, data)
        now = datetime.now(UTC)
        snapshot = build_snapshot(
            read_events(data / "events.parquet", now=now),
            read_customers(data / "customers.parquet", now=now),
            AS_OF,
        )
    bundles = synthetic_bundles(snapshot, trees=300, depth=6)
    models = {
        task: ServedModel(bundle=bundle, name=task, version="1") for task, bundle in bundles.items()
    }
    state = build_state(models, LoadedSnapshot(AS_OF, FEATURE_SET_VERSION, snapshot))
    tasks = list(state.tables)
    # Compile the kernels (one row, and a threaded batch of blocks) and parse the boosters on the
    # last customers, so that no profile below pays numba's compilation in a tree without its cache
    warm = np.arange(max(0, snapshot.height - 2 * MIN_ROWS_PER_THREAD), snapshot.height)
    for table in state.tables.values():
        for rows in (warm[-1:], warm):
            reasons(table, rows[table.top[rows] >= 0])
    asked = range(args.requests)

    def ask() -> None:
        for position in asked:
            score_fragments(state, position, tasks, 5, False)

    print(f"{snapshot.height:,} customers, tasks {', '.join(tasks)}, 300 trees of depth 6")
    _profile(f"never explained, {len(tasks)} tasks, 5 reasons", args.requests, ask)
    _profile(f"asked again, {len(tasks)} tasks, 5 reasons", args.requests, ask)
    chunk = np.arange(args.requests + 1, min(args.requests + 1 + args.chunk, int(warm[0])))

    def background() -> None:
        for table in state.tables.values():
            reasons(table, chunk[table.top[chunk] >= 0])

    _profile("background explainer, one chunk (per customer)", len(chunk), background)
    _profile(
        "guanxi score --explain 5 (per customer)",
        snapshot.height,
        lambda: [score_snapshot(bundle, snapshot, explain_k=5) for bundle in bundles.values()],
    )


if __name__ == "__main__":
    main()

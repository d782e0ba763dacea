"""The pandas reference of bench/features.py computes what build_snapshot computes.

The benchmark's speed and memory ratios only mean something if both engines compute the same
features; these fast checks keep the reference honest on a small sample and on random tiny
histories (null ref_ids, channels and margins, ties, events after the snapshot day).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench._pandas_reference import build_snapshot_pandas, compare_snapshots
from features.snapshot import build_snapshot
from pipelines.sample import generate_sample
from tests.features.conftest import AS_OF
from tests.features.test_snapshot_properties import frame, row


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate_sample(400, out, seed=7, start=date(2024, 1, 1), end=date(2024, 12, 31))
    return out


def reference(events: pl.DataFrame, customers: pl.DataFrame | None, **kw: object) -> pl.DataFrame:
    table = None if customers is None else customers.to_pandas()
    snapshot = build_snapshot_pandas(events.to_pandas(), table, **kw)  # type: ignore[arg-type]
    return pl.from_pandas(snapshot, nan_to_null=True)


@pytest.mark.parametrize("categories", [None, ["Toys", "garden", "Crème Brûlée"]])
def test_reference_equals_build_snapshot_on_a_sample(
    sample: Path, categories: list[str] | None
) -> None:
    events = pl.read_parquet(sample / "events.parquet")
    customers = pl.read_parquet(sample / "customers.parquet")
    as_of = date(2024, 9, 30)  # later events exist and must be ignored by both
    expected = build_snapshot(events, customers, as_of, categories)
    assert expected.height > 300
    got = reference(events, customers, as_of=as_of, categories=categories)
    assert compare_snapshots(expected, got) == []


def test_reference_reads_pandas_parquet_types(sample: Path) -> None:
    """The benchmark's pandas child reads the file with pandas itself."""
    as_of = date(2024, 12, 31)
    events = pd.read_parquet(sample / "events.parquet")
    customers = pd.read_parquet(sample / "customers.parquet")
    got = pl.from_pandas(build_snapshot_pandas(events, customers, as_of), nan_to_null=True)
    expected = build_snapshot(
        pl.read_parquet(sample / "events.parquet"),
        pl.read_parquet(sample / "customers.parquet"),
        as_of,
    )
    assert compare_snapshots(expected, got) == []


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=40))
def test_reference_equals_build_snapshot_on_random_histories(rows: list[dict[str, object]]) -> None:
    events = frame(rows)
    assert (
        compare_snapshots(build_snapshot(events, None, AS_OF), reference(events, None, as_of=AS_OF))
        == []
    )


def test_compare_snapshots_reports_differences(sample: Path) -> None:
    events = pl.read_parquet(sample / "events.parquet")
    expected = build_snapshot(events, None, date(2024, 12, 31))
    changed = expected.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.col("spend_total") * (1 + 1e-6))
        .otherwise(pl.col("spend_total")),
        pl.when(pl.int_range(pl.len()) == 5)
        .then(None)
        .otherwise(pl.col("rfm_segment"))
        .alias("rfm_segment"),
    )
    problems = compare_snapshots(expected, changed)
    assert len(problems) == 2
    assert problems[0].startswith("spend_total: 1 rows differ")
    assert problems[1].startswith("rfm_segment: 1 rows null on one side only")
    tiny = expected.with_columns(pl.col("spend_total") * (1 + 1e-12))
    assert compare_snapshots(expected, tiny) == []

"""`guanxi score` writes its rows as they are made: the same table as every task's held at once."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from features import store
from models.artifact import ModelBundle
from models.scoring import SCORE_COLUMNS, score_schema, score_snapshot
from pipelines import connectors
from pipelines.cli import app
from pipelines.score import task_parts
from tests.features.test_database import database, read, tables  # noqa: F401  (fixture)
from tests.pipelines.test_train_cli import (  # noqa: F401  (fixtures)
    AS_OF,
    _snapshot,
    cli,
    sample,
)

DAY = date(2025, 12, 31)


def _held_at_once(bundles: dict[str, ModelBundle], snapshot: pl.DataFrame, k: int) -> pl.DataFrame:
    """The table as `guanxi score` built it before it streamed: every task's table, then one."""
    tables = [
        score_snapshot(b, snapshot, explain_k=k, batch_customers=snapshot.height)
        for b in bundles.values()
    ]
    return (
        pl.concat(tables, how="diagonal_relaxed")
        .with_columns(as_of=pl.lit(DAY))
        .select(*SCORE_COLUMNS, "as_of", pl.exclude(*SCORE_COLUMNS, "as_of"))
    )


@pytest.fixture
def tasks(tiny_bundle: ModelBundle, tiny_data) -> tuple[dict[str, ModelBundle], pl.DataFrame]:  # type: ignore[no-untyped-def]
    """Three models: a churn model as referral whose population nobody in the snapshot is in
    (no scored rows, so no reason columns: first, so the others add them), churn and cross-sell
    (ranked)."""
    x, _ = tiny_data
    rng = np.random.default_rng(5)
    snapshot = pl.from_pandas(x.reset_index()).with_columns(
        pl.Series(f"cat_{c}_orders", rng.poisson(0.7, len(x))) for c in ("garden", "toys", "books")
    )
    cross_sell = ModelBundle(
        **{
            **tiny_bundle.__dict__,
            "task": "cross_sell",
            "feature_names": ["recency_days", "orders_90d", "target_garden"],
            "categories": ["garden", "toys", "books"],
        }
    )
    nobody = ModelBundle(
        **{
            **tiny_bundle.__dict__,
            "task": "referral",
            "metadata": {"population": {"active_days": -1}},
        }
    )
    return {"referral": nobody, "churn": tiny_bundle, "cross_sell": cross_sell}, snapshot


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("k", [0, 4])
def test_streamed_file_is_the_table_held_at_once(
    tasks, tmp_path: Path, suffix: str, k: int
) -> None:  # type: ignore[no-untyped-def]
    """Written 7 customers a part (deciles still over each whole task) or held at once and
    written in one go, the file is the same: columns, order, types and rows."""
    bundles, snapshot = tasks
    expected = _held_at_once(bundles, snapshot, k)
    assert (expected["task"] == "referral").sum() == snapshot.height
    assert expected.filter(pl.col("task") == "referral")["score"].null_count() == snapshot.height
    old = connectors.write_output(expected, str(tmp_path / f"old{suffix}"), None)

    schema, _, parts = task_parts(bundles, snapshot, k, batch_customers=7)
    rows = (p.with_columns(as_of=pl.lit(DAY)) for t in bundles for p in parts[t])
    where, written = connectors.write_parts(rows, schema, str(tmp_path / f"new{suffix}"), None)
    assert schema == expected.schema and written == expected.height
    if suffix == ".csv":
        assert Path(where).read_bytes() == Path(old).read_bytes()
    else:
        assert pl.read_parquet(where).equals(pl.read_parquet(old))
        assert pl.read_parquet(where).schema == expected.schema
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"old{suffix}", f"new{suffix}"])


def test_streamed_database_table_is_the_table_held_at_once(
    tasks,
    database: str,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    """Into a database (`--out <uri> --out-table`), part by part in one transaction: the table
    the old path wrote from every row at once; a part that fails keeps the previous table."""
    bundles, snapshot = tasks
    expected = _held_at_once(bundles, snapshot, 4)
    connectors.write_output(expected, database, "old_scores")
    schema, _, parts = task_parts(bundles, snapshot, 4, batch_customers=7)
    rows = (p.with_columns(as_of=pl.lit(DAY)) for t in bundles for p in parts[t])
    where, written = connectors.write_parts(rows, schema, database, "scores")
    assert written == expected.height and where.endswith("table scores")
    key = ["task", "customer_id", "category"]
    new = read(database, "scores").sort(key, nulls_last=True)
    assert new.equals(read(database, "old_scores").sort(key, nulls_last=True))
    assert new.with_columns(pl.col("decile").cast(pl.Int8)).equals(
        expected.sort(key, nulls_last=True)
    )

    def failing():  # type: ignore[no-untyped-def]
        yield expected.head(3)
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError, match="scoring failed"):
        connectors.write_parts(failing(), schema, database, "scores")
    assert read(database, "scores").sort(key, nulls_last=True).equals(new)
    assert tables(database) == ["old_scores", "scores"]


def test_streamed_parquet_is_about_the_size_of_polars_own(tmp_path: Path) -> None:
    """Unique ids and floats, repeated text and floats, a column null at first: written 50,000
    rows a part, the file reads back equal and is at most 3 % above `write_parquet`'s."""
    rng = np.random.default_rng(7)
    n = 200_000
    table = pl.DataFrame(
        {
            "customer_id": [f"c{i:07d}" for i in range(n)],
            "task": ["churn"] * n,
            "score": rng.random(n),
            "reason_1_value": rng.integers(0, 40, n).astype(float),
            "reason_1_sentence": rng.choice(["3 orders in 90 days", "no visit in 60 days"], n),
            "late": [None] * 60_000 + rng.random(n - 60_000).tolist(),
        }
    )
    parts = [table.slice(lo, 50_000) for lo in range(0, n, 50_000)]
    assert store._repeating(parts[0]) == ["task", "reason_1_value", "reason_1_sentence"]
    where, _ = connectors.write_parts(parts, table.schema, str(tmp_path / "new.parquet"), None)
    table.write_parquet(tmp_path / "old.parquet")
    assert pl.read_parquet(where).equals(table)
    assert Path(where).stat().st_size <= 1.03 * (tmp_path / "old.parquet").stat().st_size


def test_score_schema_is_the_tables(tasks) -> None:  # type: ignore[no-untyped-def]
    bundles, snapshot = tasks
    for bundle in bundles.values():
        for k in (0, 2, 9):
            table = score_snapshot(bundle, snapshot, explain_k=k)
            scored = bool((table["status"] == "eligible").any())
            assert score_schema(bundle, k, scored) == table.schema, (bundle.task, k)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_error_midway_leaves_no_file(tmp_path: Path, suffix: str) -> None:
    """A part that fails after others were written leaves nothing at `--out` (or its old
    content) and no temporary file."""
    schema = pl.Schema({"customer_id": pl.String, "score": pl.Float64})

    def parts():  # type: ignore[no-untyped-def]
        yield pl.DataFrame({"customer_id": ["a"], "score": [0.5]})
        raise RuntimeError("scoring failed")

    out = tmp_path / f"scores{suffix}"
    with pytest.raises(RuntimeError, match="scoring failed"):
        connectors.write_parts(parts(), schema, str(out), None)
    assert list(tmp_path.iterdir()) == []
    out.write_text("old")
    with pytest.raises(RuntimeError, match="scoring failed"):
        connectors.write_parts(parts(), schema, str(out), None)
    assert list(tmp_path.iterdir()) == [out] and out.read_text() == "old"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_score_command_writes_the_table_held_at_once(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tiny_bundle: ModelBundle,
    tmp_path: Path,
    suffix: str,
) -> None:
    out_path = tmp_path / f"scores{suffix}"
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    out = cli.invoke(app, [*args, "--out", str(out_path), "--tasks", "churn", "--explain", "2"])
    assert out.exit_code == 0, out.output
    from models import registry

    bundle = registry.load_model("churn", alias="champion").bundle
    expected = _held_at_once({"churn": bundle}, _snapshot(sample), 2).with_columns(
        as_of=pl.lit(date.fromisoformat(AS_OF))
    )
    old = connectors.write_output(expected, str(tmp_path / f"old{suffix}"), None)
    if suffix == ".csv":
        assert out_path.read_bytes() == Path(old).read_bytes()
    else:
        assert pl.read_parquet(out_path).equals(expected)
    assert f"wrote {expected.height:,} rows to {out_path}" in " ".join(out.output.split())


def test_score_command_error_leaves_no_file(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure while the rows are made and written: no file at `--out`, no temporary file."""

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the store is full")

    monkeypatch.setattr(store.ScoreTableWriter, "write", fail)
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    folder = tmp_path / "out"
    folder.mkdir()
    out = cli.invoke(app, [*args, "--out", str(folder / "s.parquet"), "--tasks", "churn"])
    assert out.exit_code != 0 and isinstance(out.exception, RuntimeError)
    assert list(folder.iterdir()) == []


def test_score_command_stores_each_part_as_it_writes_it_out(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each part of a task's table goes into the store's file as it goes into `--out`: the table
    is never gathered to be stored (at 1M customers cross-sell's 7.5M rows, held until stored,
    took 4.5 GB), and the stored table is the one held at once."""
    import pipelines.score
    from models import registry
    from serving.settings import get_settings

    monkeypatch.setattr(pipelines.score, "task_parts", partial(task_parts, batch_customers=7))
    folder = tmp_path / "out"
    writes: list[tuple[str, int]] = []
    write = store.ParquetParts.write

    def logged(self: store.ParquetParts, part: pl.DataFrame) -> None:
        writes.append(("out" if self.path.parent == folder else "store", part.height))
        write(self, part)

    monkeypatch.setattr(store.ParquetParts, "write", logged)
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--out", str(folder / "s.parquet"), "--tasks", "churn", "--explain", "2"]
    out = cli.invoke(app, args)
    assert out.exit_code == 0, out.output
    heights = [height for _, height in writes[::2]]
    assert len(heights) > 1 and writes == [(w, h) for h in heights for w in ("store", "out")]
    day = date.fromisoformat(AS_OF)
    stored = store.Store(get_settings().home).read_scores("churn", day, "1")
    bundle = registry.load_model("churn", alias="champion").bundle
    snapshot = _snapshot(sample)
    held = score_snapshot(bundle, snapshot, explain_k=2, batch_customers=snapshot.height)
    assert stored is not None and stored.equals(held)


@pytest.mark.parametrize(("threshold", "path"), [(None, "in memory"), ("0", "staged")])
def test_score_builds_a_missing_snapshot_as_features_build_does(
    sample: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    input_paths: list[str],
    threshold: str | None,
    path: str,
) -> None:
    """Without a stored snapshot, few events are validated and built in memory and more are
    staged and built a range at a time (as `guanxi features build`): the same snapshot."""
    from datetime import UTC, datetime

    from features.store import Store
    from pipelines.connectors import inputs
    from pipelines.score import snapshot_for
    from serving.settings import get_settings

    if threshold is not None:
        monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", threshold)
    get_settings.cache_clear()
    day = date.fromisoformat(AS_OF)
    store = Store(tmp_path / "home")
    events = inputs(str(sample / "events.parquet"))
    try:
        frame, source, _ = snapshot_for(store, events, day, datetime.now(UTC))
    finally:
        get_settings.cache_clear()
    assert input_paths == [path] and source.startswith("built from")
    assert frame.equals(_snapshot(sample))

"""Score tables in the store: round trip, metadata, atomic writes, snapshot digests."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from features.store import (
    METADATA_KEY,
    ParquetParts,
    ScoreTableInfo,
    Store,
    is_temporary,
    snapshot_digest,
)

DAY = date(2024, 6, 30)


def scores(n: int, score: float = 0.5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "score": [score] * n,
            "reason_1_sentence": ["3 orders in the last 90 days: lowers churn risk by 1.0 points"]
            * n,
        }
    )


def write(store: Store, frame: pl.DataFrame, version: str = "3") -> ScoreTableInfo:
    return store.write_scores(
        "churn",
        DAY,
        version,
        frame,
        model_name="churn",
        feature_set_version="1",
        explain_k=1,
        snapshot_digest="abc",
    )


def test_round_trip_and_metadata(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    assert store.read_scores("churn", DAY, "3") is None
    assert store.score_info("churn", DAY, "3") is None
    info = write(store, scores(4))
    assert info.path == tmp_path / "home/scores/task=churn/as_of=2024-06-30/version=3.parquet"
    assert store.read_scores("churn", DAY, "3").equals(scores(4))  # type: ignore[union-attr]
    assert store.score_info("churn", DAY, "3") == info
    assert (info.rows, info.explain_k, info.model_version, info.snapshot_digest) == (
        4,
        1,
        "3",
        "abc",
    )
    on_disk = json.loads(pl.read_parquet_metadata(info.path)[METADATA_KEY])
    assert on_disk["task"] == "churn" and on_disk["as_of"] == "2024-06-30"
    # other versions, days and tasks are other tables
    assert store.read_scores("churn", DAY, "4") is None
    assert store.read_scores("churn", date(2024, 7, 1), "3") is None
    assert store.read_scores("repurchase", DAY, "3") is None
    write(store, scores(2, 0.9))
    assert store.read_scores("churn", DAY, "3").equals(scores(2, 0.9))  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden"])
def test_names_that_are_not_one_path_component_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="cannot name a score table"):
        Store(tmp_path).score_path("churn", DAY, bad)
    with pytest.raises(ValueError, match="cannot name a score table"):
        Store(tmp_path).score_path(bad, DAY, "1")
    # heavy28: a campaign's name was said not to name "a score table"
    with pytest.raises(ValueError, match=r"^campaign .* cannot name a stored campaign: use"):
        Store(tmp_path).campaign_path(bad)


def test_failed_write_leaves_no_table_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)

    def half_then_fail(self: ParquetParts, part: pl.DataFrame) -> None:
        self.path.write_bytes(b"PAR1 half a table")
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(ParquetParts, "write", half_then_fail)
        with pytest.raises(OSError, match="disk full"):
            write(store, scores(3))
    directory = store.score_path("churn", DAY, "3").parent
    assert store.read_scores("churn", DAY, "3") is None
    assert store.score_info("churn", DAY, "3") is None
    assert list(directory.iterdir()) == []

    write(store, scores(3))
    with monkeypatch.context() as m:
        m.setattr(ParquetParts, "write", half_then_fail)
        with pytest.raises(OSError):
            write(store, scores(5, 0.1))
    assert store.read_scores("churn", DAY, "3").equals(scores(3))  # type: ignore[union-attr]


def test_a_dead_writers_temporary_file_is_ignored_then_removed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.score_path("churn", DAY, "3")
    path.parent.mkdir(parents=True)
    dead = 2**22 + 12345  # above the default pid_max, so no process has it
    stale = path.parent / f".{path.name}.{dead}.0badc0de.tmp"
    stale.write_bytes(b"PAR1 partial")
    assert is_temporary(stale)
    assert store.read_scores("churn", DAY, "3") is None
    assert store.score_info("churn", DAY, "3") is None
    write(store, scores(2))
    assert not stale.exists()
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert os.path.getsize(path) > 0


def test_snapshot_digest(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"customer_id": ["a", "b", "c"], "recency_days": [1.0, None, float("nan")], "n": [1, 2, 3]}
    ).with_columns(as_of=pl.lit(DAY))
    store = Store(tmp_path)
    store.write_snapshot(frame, DAY)
    assert snapshot_digest(store.read_snapshot(DAY)) == snapshot_digest(frame)
    assert snapshot_digest(frame.clone()) == snapshot_digest(frame)
    changed = frame.with_columns(
        pl.when(pl.col("n") == 2).then(5).otherwise(pl.col("n")).alias("n")
    )
    assert snapshot_digest(changed) != snapshot_digest(frame)
    assert snapshot_digest(frame.reverse()) != snapshot_digest(frame)
    assert snapshot_digest(frame.rename({"n": "m"})) != snapshot_digest(frame)
    assert snapshot_digest(frame.with_columns(pl.col("n").cast(pl.Int32))) != snapshot_digest(frame)

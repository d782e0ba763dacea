"""`guanxi score` keeps each task's table in the store, where serving finds it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.store import Store, snapshot_digest
from models.artifact import ModelBundle
from pipelines.cli import app
from pipelines.score import reasons_phrase
from serving.settings import get_settings
from tests.pipelines.test_train_cli import (  # noqa: F401  (fixtures)
    AS_OF,
    _result,
    _snapshot,
    _train,
    cli,
    sample,
)


@pytest.fixture
def champion(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch,  # type: ignore[no-untyped-def]
    tiny_bundle: ModelBundle,
    tiny_data,  # type: ignore[no-untyped-def]
) -> None:
    """A churn model trained through `guanxi train` (training stubbed) and promoted."""
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "B"))
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0


def test_score_keeps_the_table_in_the_store(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    out_path = tmp_path / "scores.parquet"
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--out", str(out_path), "--tasks", "churn", "--explain", "2"]
    store = Store(get_settings().home)
    day = date.fromisoformat(AS_OF)

    out = cli.invoke(app, [*args, "--no-store"])
    assert out.exit_code == 0, out.output
    assert store.read_scores("churn", day, "1") is None

    out = cli.invoke(app, args)
    assert out.exit_code == 0, out.output
    table = store.read_scores("churn", day, "1")
    assert table is not None
    written = pl.read_parquet(out_path)
    assert table.equals(written.drop("as_of"))
    info = store.score_info("churn", day, "1")
    assert info is not None
    assert (info.model_name, info.explain_k, info.rows) == ("churn", 2, written.height)
    assert info.snapshot_digest == snapshot_digest(_snapshot(sample))
    assert "kept in the store" in out.output


def test_a_thinner_table_does_not_replace_a_fuller_one(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--out", str(tmp_path / "scores.parquet"), "--tasks", "churn"]
    store = Store(get_settings().home)
    day = date.fromisoformat(AS_OF)

    assert cli.invoke(app, [*args, "--explain", "3"]).exit_code == 0
    out = cli.invoke(app, [*args, "--explain", "0"])
    assert out.exit_code == 0, out.output
    info = store.score_info("churn", day, "1")
    assert info is not None and info.explain_k == 3
    assert "3 reasons a row" in out.output


def test_a_count_of_reasons_is_singular_for_one() -> None:
    """What ``guanxi score`` and the demo print of the reasons a row keeps (the demo's
    cross-sell, served by its one-input rule-backed version, keeps 1 reason, not "1 reasons")."""
    assert [reasons_phrase(k) for k in (0, 1, 3)] == ["0 reasons", "1 reason", "3 reasons"]

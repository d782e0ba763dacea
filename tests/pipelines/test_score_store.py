"""`guanxi score` keeps each task's table in the store, where serving finds it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from features.store import Store, snapshot_digest
from pipelines.cli import app
from pipelines.score import check_task, parse_tasks
from serving.settings import get_settings
from tests.pipelines.test_train_cli import (  # noqa: F401  (fixtures)
    AS_OF,
    _snapshot,
    cli,
    sample,
)


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
    assert "GUANXI_STORE_KEY" not in out.output  # nothing kept, nothing to warn of

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
    # kept without GUANXI_STORE_KEY: a server with one computes them again, and score says so
    assert "GUANXI_STORE_KEY is not set: each task's score table goes into the store unsigned" in (
        " ".join(out.output.split())
    )


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


def test_unknown_tasks_are_counted_in_words() -> None:
    """``--tasks`` names one unknown task as "1 unknown task", two as "2 unknown tasks"."""
    with pytest.raises(typer.BadParameter, match=r"^1 unknown task 'upsell'; choose from churn"):
        parse_tasks("churn,upsell")
    with pytest.raises(typer.BadParameter, match=r"^2 unknown tasks 'upsell', 'winback'; choose"):
        parse_tasks("upsell,winback")
    with pytest.raises(typer.BadParameter, match=r"^no task given; choose from churn"):
        parse_tasks(" , ")


def test_a_misspelt_task_is_named_with_the_one_it_may_be_meant_for() -> None:
    """heavy35: `--tasks chrun` (or `--task chrun`) was refused with the list of tasks alone to
    search; the registered task closest to a misspelt one is named, quoted as --task quotes it."""
    with pytest.raises(typer.BadParameter) as refused:
        parse_tasks("chrun,cross-sell,upsell")
    assert str(refused.value).startswith(
        "3 unknown tasks 'chrun' (is it 'churn'?), 'cross-sell' (is it 'cross_sell'?), 'upsell'; "
        "choose from churn, "
    )
    with pytest.raises(typer.BadParameter) as refused:
        check_task("Referal")
    assert str(refused.value).startswith("unknown task 'Referal' (is it 'referral'?); choose")

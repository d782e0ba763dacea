"""The day checks the commands share (:mod:`pipelines.days`), and what importing them costs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import grimp
import polars as pl
import pytest

from pipelines.days import after_today, history_start


def test_after_today_says_the_day_and_today_and_what_to_give() -> None:
    """cycle31: guanxi cycle and guanxi drift wrote this refusal apart, in two wordings."""
    today = date(2026, 12, 4)
    assert after_today(today, today) is None
    assert after_today(date(2026, 12, 3), today) is None
    assert after_today(date(2027, 1, 3), today) == (
        "--as-of 2027-01-03 is in the future (today is 2026-12-04 UTC): its events are not in "
        "yet; give 2026-12-04 or an earlier day"
    )


@pytest.mark.parametrize("command", ["value", "target", "campaign"])
def test_the_commands_that_check_the_day_do_not_load_the_drift_report(command: str) -> None:
    """cycle32: value (at the top), target and campaign (in their commands) imported
    ``after_today`` from :mod:`pipelines.drift`, so ``guanxi value`` loaded the drift report and
    its serving views (+39 ms) to compare two dates. Statically, lazy imports included."""
    graph = grimp.build_graph("pipelines", cache_dir=None)
    chain = graph.find_shortest_chain(importer=f"pipelines.{command}", imported="pipelines.drift")
    assert chain is None, chain


def test_history_start_is_the_first_event_or_none(tmp_path: Path) -> None:
    path = tmp_path / "as_of=2025-06-01.parquet"
    assert history_start(path) is None  # no file
    first = datetime(2025, 1, 3, 9, 30, tzinfo=UTC)
    later = datetime(2025, 5, 1, tzinfo=UTC)
    pl.DataFrame({"customer_id": ["b", "a"], "ts": [later, first]}).write_parquet(path)
    assert history_start(path) == first
    pl.DataFrame({"ts": []}, schema={"ts": pl.Datetime("us", "UTC")}).write_parquet(path)
    assert history_start(path) is None  # no event

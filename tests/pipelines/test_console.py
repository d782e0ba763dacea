"""What the commands print besides their own results: no library progress lines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.console import fits, fitted_table, layout_table, warn_unsigned
from serving.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
GUANXI = ROOT / ".venv" / "bin" / "guanxi"


@pytest.mark.parametrize("key", ["", "store-key-for-tests-0123456789abcdef"])
def test_an_unsigned_table_is_warned_of_only_without_a_store_key(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUANXI_STORE_KEY", key)
    get_settings.cache_clear()
    console = Console(record=True, width=300)
    try:
        warn_unsigned(console, "the value table", "does not serve it", skip="--no-store")
    finally:
        get_settings.cache_clear()
    text = console.export_text()
    if key:
        assert text == ""
    else:
        assert text.startswith("warning: GUANXI_STORE_KEY is not set: the value table goes into")
        assert (
            "a server started with a store key (required outside --dev) does not serve it" in text
        )


@pytest.mark.parametrize("skip", ["--no-store", None])
def test_the_unsigned_warning_names_a_way_to_keep_nothing_only_where_the_command_has_one(
    skip: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """heavy35: every command was told "(or --no-store)", guanxi cycle too, which has no such
    option (click: "No such option: --no-store"); the way out is named where the command has
    one (score, value, target), and the cycle's warning ends at the key."""
    monkeypatch.setenv("GUANXI_STORE_KEY", "")
    get_settings.cache_clear()
    console = Console(record=True, width=300)
    try:
        warn_unsigned(console, "the plan", "does not show it", skip=skip)
    finally:
        get_settings.cache_clear()
    said = console.export_text().rstrip()
    assert said.endswith(
        "run this with the server's GUANXI_STORE_KEY" + (f" (or {skip})" if skip else "")
    )
    assert ("--no-store" in said) is (skip is not None)


@pytest.mark.slow
def test_a_new_home_does_not_print_mlflow_creating_its_tables(tmp_path: Path) -> None:
    """The first command on a new GUANXI_HOME creates the tracking store's tables: MLflow's
    "Creating initial MLflow database tables..." and "Updating database tables" stay off."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [str(GUANXI), "models"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "GUANXI_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "mlflow.db").exists()  # the tables were created by this run
    assert "no registered models yet" in result.stdout
    assert result.stderr == ""
    assert "INFO" not in result.stdout


SEGMENTS = [
    ("loyal", "3,580", "1,027,233.72", "27.3%", "318,460.45", "31.0%"),
    ("potential_loyalist", "2,016", "468,354.64", "12.4%", "215,911.49", "46.1%"),
    ("cant_lose", "540", "81,246.76", "2.2%", "32,332.20", "39.8%"),
]
"""`guanxi value`'s equity by segment at about 20k customers, with a churn champion's figures."""


def test_a_table_too_wide_for_80_columns_is_compact_not_cut() -> None:
    """At 80 columns (a pipe, CI) the boxed table cut `potential_loya…`; the compact layout
    keeps every name and figure whole, its headings broken into words."""
    columns = ("rfm_segment", "customers", "equity", "share", "at risk", "risk share")
    narrow = Console(record=True, width=80)
    assert not fits(narrow, layout_table("Equity by rfm segment", columns, SEGMENTS, {"x"}))
    narrow.print(fitted_table(narrow, "Equity by rfm segment", columns, SEGMENTS, {"rfm_segment"}))
    text = narrow.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for row in SEGMENTS:
        assert " ".join(row) in " ".join(text.split())  # one line a row, every cell whole
    lines = text.splitlines()
    assert lines[1].split() == ["rfm_", "at", "risk"]  # headings broken into words
    assert lines[2].split() == ["segment", "customers", "equity", "share", "risk", "share"]
    wide = Console(record=True, width=120)
    wide.print(fitted_table(wide, "Equity by rfm segment", columns, SEGMENTS, {"rfm_segment"}))
    assert "┃ rfm_segment" in wide.export_text()  # boxed while it fits

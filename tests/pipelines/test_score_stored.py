"""`guanxi score` of the store's snapshot, and outputs refused before any work.

A user who built the day's snapshot (``guanxi features build``, the demo) runs ``guanxi score
--as-of D`` without ``--events`` and gets it scored; a day the store has no snapshot of is
refused first, naming the day, the store and the ways out. An ``--out`` whose folder cannot take
a file is refused before any work by score, value, target and features export alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import typer
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import features.store
from features.store import Store
from pipelines import connectors
from pipelines.cli import app
from pipelines.days import after_today
from serving.settings import get_settings
from tests.pipelines.test_train_cli import AS_OF, cli, sample  # noqa: F401  (fixtures)

DAY = date.fromisoformat(AS_OF)
UNWRITABLE = Path("/sys/guanxi-out")
"""A folder nobody can create a file in, root included (the tests may run as root, for whom a
folder's mode bits are no obstacle)."""


def _said(cli: CliRunner, args: list[str], code: int) -> str:  # noqa: F811
    result = cli.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return " ".join(result.output.replace("│", " ").split())  # Typer's error panel unboxed


def _build(cli: CliRunner, sample: Path, day: str = AS_OF) -> None:  # noqa: F811
    events = str(sample / "events.parquet")
    _said(cli, ["features", "build", "--events", events, "--as-of", day], 0)


def test_score_without_events_scores_the_stored_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    _build(cli, sample)
    stored = tmp_path / "stored.csv"
    args = ["score", "--as-of", AS_OF, "--tasks", "churn", "--explain", "2", "--no-store"]
    said = _said(cli, [*args, "--out", str(stored)], 0)
    info = Store(get_settings().home).snapshot_info(DAY)
    # one line: which snapshot, how many customers, and that no events were read
    assert f"snapshot as of {AS_OF}: {info.rows:,} customers, store ({info.path}; " in said
    assert "no --events given)" in said
    # the rows are those of the same command given the events (which reads the same snapshot)
    given = tmp_path / "given.csv"
    events = ["--events", str(sample / "events.parquet")]
    assert "no --events given" not in _said(cli, [*args, *events, "--out", str(given)], 0)
    assert_frame_equal(pl.read_csv(stored), pl.read_csv(given), check_exact=True)
    assert pl.read_csv(stored).height == info.rows


def test_score_without_events_and_without_a_stored_snapshot_says_how_to_make_one(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Refused before the registry is asked: no champion here, and the snapshot is named."""
    _build(cli, sample, "2024-09-30")
    out = tmp_path / "scores.parquet"
    said = _said(cli, ["score", "--as-of", AS_OF, "--out", str(out)], 1)
    folder = Store(get_settings().home).snapshot_dir
    assert f"cannot score, nothing written: no snapshot as of {AS_OF} in {folder}" in said
    assert "(stored: 2024-09-30)" in said
    assert f"guanxi features build --as-of {AS_OF} --events" in said
    assert "or give --events to build it here" in said
    assert "champion" not in said  # the models were not loaded
    assert not out.exists()


def test_score_of_a_day_to_come_is_refused_before_any_work(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """heavy32: `guanxi score --as-of <tomorrow> --events F` built and kept that day's snapshot
    and score table, which the server and guanxi drift then read as the latest. Refused now
    before any work, in the words of guanxi value, target and cycle; features build gives the
    same advice (a day to give)."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    out = tmp_path / "scores.parquet"
    events = str(sample / "events.parquet")
    args = ["score", "--as-of", str(tomorrow), "--events", events, "--out", str(out)]
    said = _said(cli, args, 1)
    assert f"cannot score, nothing written: {after_today(tomorrow)}" in said
    assert not out.exists() and tomorrow not in Store(get_settings().home).list_snapshots()
    said = _said(cli, ["features", "build", "--events", events, "--as-of", str(tomorrow)], 1)
    assert f"cannot build the snapshot, nothing stored: {after_today(tomorrow)}" in said


def test_a_stored_snapshot_of_another_feature_set_is_named_as_such(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(features.store, "FEATURE_SET_VERSION", "0")  # written by an older guanxi
    _build(cli, sample)
    monkeypatch.undo()
    said = _said(cli, ["score", "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet")], 1)
    assert f"the snapshot as of {AS_OF} in " in said and "is of feature set version 0, not" in said
    assert f"build it first with `guanxi features build --as-of {AS_OF} --events <file>`" in said


def test_score_on_spark_without_events_is_refused_as_clearly(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    """No Spark is started for a day the store has no snapshot of."""
    args = ["score", "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet"), "--engine", "spark"]
    said = _said(cli, args, 1)
    assert f"no snapshot as of {AS_OF} in " in said and "(stored: none)" in said


def test_customers_without_events_are_still_refused(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An input option without --events still asks for the events, as before."""
    _build(cli, sample)
    args = ["score", "--as-of", AS_OF, "--out", str(tmp_path / "s.parquet")]
    said = _said(cli, [*args, "--customers", str(sample / "customers.parquet")], 2)
    assert "Invalid value for" in said and "--events" in said and "name the events" in said


def test_value_without_events_says_why_it_needs_them(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    _build(cli, sample)
    said = _said(cli, ["value", "--as-of", AS_OF, "--out", str(tmp_path / "v.parquet")], 2)
    assert "guanxi value fits its models on the events' orders" in said
    assert "which the store's snapshot does not hold" in said


# --- an --out that cannot be written ----------------------------------------------------------


def test_check_output_probes_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    connectors.check_output(str(tmp_path / "scores.parquet"), None)
    connectors.check_output(str(tmp_path / "new" / "deeper" / "scores.csv"), None)
    assert list(tmp_path.iterdir()) == []  # no probe left, no folder made


def test_an_out_below_a_file_is_refused_by_name(tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text("kept\n")
    with pytest.raises(typer.BadParameter) as raised:
        connectors.check_output(str(file / "scores.parquet"), None)
    assert (
        str(raised.value)
        == f"cannot write {file / 'scores.parquet'}: {file} is a file, not a folder"
    )
    assert file.read_text() == "kept\n"


def test_an_out_in_an_unwritable_folder_is_refused_with_the_reason() -> None:
    out = UNWRITABLE / "scores.parquet"
    with pytest.raises(typer.BadParameter) as raised:
        connectors.check_output(str(out), None)
    assert str(raised.value).startswith(f"cannot write {out}: cannot create a file in ")
    assert str(raised.value).endswith("(Permission denied)")


@pytest.mark.parametrize(
    "command",
    [
        ["score", "--as-of", AS_OF, "--events", "{events}"],
        ["score", "--as-of", AS_OF],  # the stored snapshot
        ["value", "--as-of", AS_OF, "--events", "{events}"],
        ["features", "export", "--as-of", AS_OF],
        ["target", "--budget", "100", "--offers", "docs/examples/offers.yaml"],
    ],
    ids=["score", "score-stored", "value", "export", "target"],
)
def test_every_command_refuses_an_unwritable_out_before_any_work(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    command: list[str],
) -> None:
    """Before: score, value and target did all the work, then failed with a traceback."""
    root = Path(__file__).resolve().parents[2]
    events = str(sample / "events.parquet")
    args = [word.replace("{events}", events) for word in command]
    args = [str(root / word) if word.startswith("docs/") else word for word in args]
    out = UNWRITABLE / "result.parquet"
    said = _said(cli, [*args, "--out", str(out)], 2)
    assert f"Invalid value for --out: cannot write {out}: cannot create a file in " in said
    assert "(Permission denied)" in said
    home = Store(get_settings().home)
    assert home.list_snapshots() == []  # nothing built before the refusal

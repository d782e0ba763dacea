"""`guanxi value`: the table, the store, MLflow, the holdout check, a database as the sink."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import mlflow
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console
from typer.testing import CliRunner

from features.database import Relation, scan
from features.events import read_events
from features.store import Store
from features.value import repeat_purchase_summary
from models import registry
from models.clv.customers import DETAIL_COLUMNS, VALUE_COLUMNS
from pipelines.cli import app
from pipelines.days import after_today
from pipelines.score import stored_snapshot
from pipelines.value import ValueRun, _number, print_values
from serving.settings import get_settings
from tests.conftest import create_database
from tests.pipelines.test_train_cli import AS_OF, cli, sample  # noqa: F401  (fixtures)

DAY = date.fromisoformat(AS_OF)


def _value(cli: CliRunner, sample: Path, *extra: str) -> str:  # noqa: F811
    args = ["value", "--events", str(sample / "events.parquet"), "--as-of", AS_OF, *extra]
    result = cli.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_value_writes_the_table_keeps_it_and_logs_the_fit(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    out_path = tmp_path / "values.csv"
    output = _value(
        cli, sample, "--customers", str(sample / "customers.parquet"), "--out", str(out_path)
    )
    written = pl.read_csv(out_path, try_parse_dates=True)
    assert written.columns == [*VALUE_COLUMNS, *DETAIL_COLUMNS, "as_of"]
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    buyers = repeat_purchase_summary(events, DAY)
    assert written["customer_id"].to_list() == buyers["customer_id"].to_list()
    # churn probabilities only inside the churn population (an order in the last 365 days)
    eligible = written.filter(pl.col("churn_status") == "eligible")
    assert eligible["churn_probability"].null_count() == 0
    outside = written.filter(pl.col("churn_status") != "eligible")
    assert outside.height > 0 and outside["churn_probability"].null_count() == outside.height
    assert outside["equity_at_risk"].null_count() == outside.height
    assert eligible["clv_textbook"].null_count() == 0
    risk = (eligible["churn_probability"] * eligible["clv"] - eligible["equity_at_risk"]).abs()
    assert risk.max() < 1e-9
    # the events reach past --as-of: the forecast is checked on what followed
    assert f"purchases in ({AS_OF}," in " ".join(output.split())
    assert "BG/NBD" in output and "same as last period" in output
    # the groupings named as the value page names them, not "Equity by rfm segment"
    assert "Equity by RFM segment" in output and "Equity by value tier" in output
    # kept without GUANXI_STORE_KEY: a server with one would not serve it, and the command says so
    assert "GUANXI_STORE_KEY is not set: the value table goes into the store unsigned" in " ".join(
        output.split()
    )
    store = Store(get_settings().home)
    info = store.value_info(DAY)
    assert info is not None and info.rows == written.height and info.horizon_days == 365
    assert info.churn_model == {"name": "churn", "version": "1", "horizon_days": 90}
    assert info.validation is not None and info.validation["cutoff"] == AS_OF
    assert set(info.validation["forecasts"]) == {"bgnbd", "naive"}
    stored = store.read_values(DAY)
    assert stored is not None and stored.height == written.height
    assert stored["clv"].to_list() == pytest.approx(written["clv"].to_list())
    run = mlflow.get_run(info.run_id)
    assert run.data.params["horizon_days"] == "365" and run.data.params["basis"] == info.basis
    metrics = run.data.metrics
    for key in ("bgnbd_r", "bgnbd_log_likelihood", "holdout_bgnbd_mae", "holdout_naive_mae"):
        assert key in metrics, key
    assert "gamma_gamma_revenue_spend_frequency_correlation" in metrics
    assert metrics["equity_equity"] == pytest.approx(written["clv"].sum())
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == registry.VALUE_EXPERIMENT


def test_value_without_a_churn_model_says_so(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    out_path = tmp_path / "values.parquet"
    output = " ".join(_value(cli, sample, "--out", str(out_path), "--no-store").split())
    assert "no churn probabilities" in output
    # polish29: no group has a churn probability: its equity at risk is not measured, not 0.00
    assert "│ — │ — │" in output and "0.0% │" not in output
    assert "GUANXI_STORE_KEY" not in output  # --no-store: nothing kept, nothing to warn of
    written = pl.read_parquet(out_path)
    assert written["equity_at_risk"].null_count() == written.height
    assert Store(get_settings().home).value_info(DAY) is None


def test_a_margin_rate_the_margin_basis_does_not_use_is_said(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """polish30: `--margin-rate 0.3` beside events whose orders have margins (auto chose the
    margin basis) was dropped without a word."""
    out = tmp_path / "values.parquet"
    output = " ".join(
        _value(cli, sample, "--out", str(out), "--no-store", "--margin-rate", "0.3").split()
    )
    assert "CLV earns on margins" in output
    assert (
        "note: the margin rate 0.3 (--margin-rate) is not used: the CLV earns on the orders' own "
        "margins; --value-basis revenue values revenue times the rate instead"
    ) in output


def test_a_figure_guanxi_value_has_not_got_is_one_mark() -> None:
    """polish30: a missing number printed "-" beside the tables' "—" (07528cc), and a share of an
    equity of 0 (the group's, or every customer's) printed 0.0%, a share it never measured."""
    assert _number(None) == "—"
    assert _number(-1234.5) == "-1,234.50"


class _Fit:
    """The least of a :class:`models.clv.ValueFit` that :func:`print_values` reads."""

    basis = "margin"

    def summary(self) -> dict[str, Any]:
        bgnbd = dict.fromkeys(("customers", "repeat_buyers", "r", "alpha", "a", "b"), 1.0)
        return {"bgnbd": {**bgnbd, "log_likelihood": -1.0}}


def test_value_prints_a_small_share_as_the_value_page_does() -> None:
    """ui31b: a segment holding 0.04% of the equity printed "0.0%" in guanxi value's table, a
    share of nothing beside the value page's "<0.1%" for the same segment; both use
    features.formatting.format_percent now."""
    table = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "clv": [9996.0, 4.0, 0.0],
            "churn_probability": [0.5, 0.0004, None],
            "revenue_365d": [1.0, 1.0, 1.0],
            "value_tier": ["top_1pct", "rest", "rest"],
            "rfm_segment": ["champions", "lost", None],
        }
    )
    run = ValueRun(
        as_of=DAY,
        horizon_days=365,
        discount_rate=0.1,
        table=table,
        fit=cast(Any, _Fit()),
        churn_model=None,
        notes=(),
        check=None,
    )
    console = Console(width=200, record=True)
    print_values(console, run)
    cells = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in console.export_text().splitlines()
        if line.startswith("│")
    ]
    rows = {row[0]: row[2:] for row in cells}
    assert rows["lost"] == ["4.00", "<0.1%", "0.00", "<0.1%"]
    assert rows["top_1pct"] == ["9,996.00", ">99.9%", "4,998.00", "50.0%"]
    # ui31b: the customers without a segment were "None" (Python's), "unsegmented" on the pages
    assert rows["unsegmented"] == ["0.00", "0.0%", "—", "—"] and "None" not in rows


def test_value_keeps_the_snapshot_it_builds_unless_no_store(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`value --events` built the day's snapshot and dropped it, so `target` (and `score`) built
    it again; it is kept as `features build` keeps it, with its history, but not with
    --no-store."""
    store = Store(get_settings().home)
    _value(cli, sample, "--out", str(tmp_path / "a.parquet"), "--no-store")
    assert stored_snapshot(store, DAY) is None
    output = " ".join(_value(cli, sample, "--out", str(tmp_path / "b.parquet")).split())
    info = stored_snapshot(store, DAY)
    assert info is not None and f"kept in the store ({info.path})" in output
    assert info.events is not None and info.events.path == str(sample / "events.parquet")
    assert store.history_path(DAY).is_file()
    again = " ".join(_value(cli, sample, "--out", str(tmp_path / "c.parquet")).split())
    assert f"customers, store ({info.path})" in again


def test_value_reads_the_stored_snapshot_only_of_the_events_given(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    input_paths: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """qa47 H1: value read the day's stored snapshot (its RFM segments, its churn inputs)
    whatever --events said, and mixed it with the given file's orders; another file is built
    and replaces it, the same file still reads it with only its orders staged."""
    store = Store(get_settings().home)
    _value(cli, sample, "--out", str(tmp_path / "a.parquet"))
    events = pl.read_parquet(sample / "events.parquet")
    other = tmp_path / "other.parquet"
    events.filter(pl.col("customer_id") != events["customer_id"][0]).write_parquet(other)
    args = ["value", "--events", str(other), "--as-of", AS_OF, "--out", str(tmp_path / "b.csv")]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"built from {other}, replacing the store's snapshot of that day built from " in said
    info = stored_snapshot(store, DAY)
    assert info is not None and info.events is not None and info.events.path == str(other)
    again = " ".join(_value(cli, sample, "--out", str(tmp_path / "c.parquet")).split())
    assert "replacing the store's snapshot of that day built from " + str(other) in again
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", "0")
    get_settings.cache_clear()
    same = " ".join(_value(cli, sample, "--out", str(tmp_path / "d.parquet")).split())
    assert input_paths[-1] == "orders staged" and "customers, store (" in same


def test_a_day_after_today_is_refused_with_nothing_kept(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """cycle31: `guanxi value --as-of` a day to come built and kept that day's snapshot (the
    store's newest from then on, which guanxi drift and the server read) and then failed on a
    BG/NBD fit the data "cannot identify", saying "no values written"; guanxi cycle and guanxi
    drift refuse such a day (:func:`pipelines.days.after_today`)."""
    later = datetime.now(UTC).date() + timedelta(days=30)
    args = ["value", "--events", str(sample / "events.parquet"), "--as-of", later.isoformat()]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "v.parquet")], env={"COLUMNS": "300"})
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"cannot value customers, nothing written: {after_today(later)}" in said
    assert Store(get_settings().home).list_snapshots() == []
    assert not (tmp_path / "v.parquet").exists()


def test_a_day_before_every_event_is_refused_as_such(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """cycle32: `guanxi value --as-of` a day before the first event built a snapshot of 0
    customers and said BG/NBD's "no customer has a repeat purchase ... use a longer history",
    after guanxi target had sent the user there; cycle and features build say why."""
    first = read_events(sample / "events.parquet", now=datetime.now(UTC))["ts"].min()
    args = ["value", "--events", str(sample / "events.parquet"), "--as-of", "2020-01-01"]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "v.parquet")], env={"COLUMNS": "300"})
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert (
        "cannot value customers, nothing written: no customer has an event on or before "
        f"2020-01-01 (the first event is on {first:%Y-%m-%d}): choose a later --as-of"
    ) in said
    assert "repeat purchase" not in said
    assert "GUANXI_STORE_KEY is not set" not in said  # cycle32b: no value table is kept
    assert Store(get_settings().home).list_snapshots() == []
    assert not (tmp_path / "v.parquet").exists()


def test_bad_options_fail_before_any_work(cli: CliRunner, sample: Path, tmp_path: Path) -> None:  # noqa: F811
    base = ["value", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    for extra, message in (
        (["--out", str(tmp_path / "v.txt")], "must end in .csv or .parquet"),
        (["--out", str(tmp_path / "v.csv"), "--value-basis", "profit"], "choose auto"),
        (["--out", str(tmp_path / "v.csv"), "--margin-rate", "0"], "must be > 0"),
        # heavy28: 30 (a 30% margin typed as a percentage) was taken, every CLV 100 times 0.3's
        (["--out", str(tmp_path / "v.csv"), "--margin-rate", "30"], "30 is not a share of rev"),
        # polish29: nan and a negative rate got typer's generic "greater than or equal to 0"
        (["--out", str(tmp_path / "v.csv"), "--margin-rate", "nan"], "nan is not a share of rev"),
        (["--out", str(tmp_path / "v.csv"), "--margin-rate", "-1"], "-1 is not a share of rev"),
        (["--out", str(tmp_path / "v.csv"), "--margin-rate", "inf"], "inf is not a share of rev"),
        (["--out", "duckdb:///x.db"], "--out-table"),
    ):
        result = cli.invoke(app, [*base, *extra], env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
    assert not (tmp_path / "v.csv").exists()


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_value_table_into_a_database(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    if kind == "duckdb":
        uri = f"duckdb:///{tmp_path / 'crm.duckdb'}"
    else:
        uri = create_database(request.getfixturevalue("postgres"), "values_sink")
    _value(cli, sample, "--out", uri, "--out-table", "guanxi_values", "--no-store")
    table, _ = scan(Relation(uri, table="guanxi_values"))
    stored = table.collect().sort("customer_id")
    expected = _value_frame(cli, sample, tmp_path)
    assert stored.columns == expected.columns
    assert stored["customer_id"].to_list() == expected["customer_id"].to_list()
    assert stored["clv"].to_list() == pytest.approx(expected["clv"].to_list())


def _value_frame(cli: CliRunner, sample: Path, tmp_path: Path) -> pl.DataFrame:  # noqa: F811
    path = tmp_path / "same.parquet"
    _value(cli, sample, "--out", str(path), "--no-store")
    return pl.read_parquet(path)


def test_staged_events_value_as_events_held_in_memory(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    input_paths: list[str],
) -> None:
    """Events above GUANXI_FEATURES_IN_MEMORY_EVENTS are staged, as `guanxi features build`
    stages them, and the summaries, the snapshot and the holdout check read a scan of them: the
    same table and the same check as the events held in memory. With the day's snapshot in the
    store only the orders are staged (every event validated): the same table and check again."""
    people = ("--customers", str(sample / "customers.parquet"))
    runs = {}
    for threshold, path in ((None, "in memory"), ("0", "staged"), ("0", "orders staged")):
        if threshold is not None:
            monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", threshold)
        get_settings.cache_clear()
        if path == "orders staged":  # the snapshot of the day stored: value reads it
            build = ["features", "build", "--events", str(sample / "events.parquet"), *people]
            built = cli.invoke(app, [*build, "--as-of", AS_OF])
            assert built.exit_code == 0, built.output
        out_path = tmp_path / f"{path}.parquet"
        output = _value(cli, sample, *people, "--out", str(out_path), "--no-store")
        assert input_paths[-1] == path
        assert ("snapshot as of 2024-10-31" in output) and (
            ("store (" in output) == (path == "orders staged")
        )
        holdout = output[output.index("Holdout") : output.index("customer equity")]
        runs[path] = pl.read_parquet(out_path), holdout
    memory, memory_check = runs.pop("in memory")
    for staged, staged_check in runs.values():
        assert staged_check == memory_check
        # the summaries' sums are exact (features.window.exact_sum), the same in whatever order
        # the staged scan or the frame in memory gives the orders: the same fit, every value
        # the same to the last bit
        assert_frame_equal(staged, memory, check_exact=True)


def test_staged_orders_still_refuse_a_bad_event_of_any_type(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    input_paths: list[str],
) -> None:
    """Staging only the orders still validates every event: a bad visit (not an order) refuses
    the run, naming the file and the row, and nothing is written."""
    events = pl.read_parquet(sample / "events.parquet")
    row = events.with_row_index().filter(pl.col("event_type") == "visit")["index"][-1]
    chosen = pl.int_range(pl.len()) == row
    bad = events.with_columns(channel=pl.when(chosen).then(pl.lit("mars")).otherwise("channel"))
    path = tmp_path / "events.parquet"
    bad.write_parquet(path)
    built = cli.invoke(app, ["features", "build", "--events", str(sample / "events.parquet"),
                             "--as-of", AS_OF])  # fmt: skip
    assert built.exit_code == 0, built.output
    # the stored snapshot taken as built from the bad file (another file is built instead)
    monkeypatch.setattr("pipelines.value.same_inputs", lambda info, sources, categories=None: True)
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", "0")
    get_settings.cache_clear()
    out_path = tmp_path / "values.csv"
    args = ["value", "--events", str(path), "--as-of", AS_OF, "--out", str(out_path), "--no-store"]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert input_paths[-1] == "orders staged"
    output = " ".join(result.output.split())
    assert "cannot value customers, nothing written" in output
    assert f"{path}, column 'channel', row {row + 1}: unknown channel (allowed:" in output
    assert not out_path.exists()


def test_value_builds_with_the_churn_models_categories_as_score_does(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """review50 M-B: value built without the churn model's categories (NaN for a category the
    events lack), so its churn_probability was not score's churn score, and its stored snapshot
    then lacked them for score."""
    from models.clv.customers import churn_probabilities
    from pipelines import value
    from tests.pipelines.test_score_inputs import bundle

    # a category none of the events' orders has (a model trained on other customers' events)
    churn = bundle("churn", ["recency_days", "cat_pets_orders", "cat_pets_share"])
    churn.metadata["params"] = {"horizon": 90}
    loaded = registry.LoadedModel(churn, "churn", "1", ("champion",), None, {})
    monkeypatch.setattr(value, "load_churn", lambda alias: value.ChurnModel(loaded))
    events = sample / "events.parquet"
    assert "pets" not in pl.read_parquet(events)["category"].to_list()
    args = ["value", "--events", str(events), "--as-of", AS_OF, "--out", str(tmp_path / "v.csv")]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    snapshot = Store(get_settings().home).read_snapshot(DAY)
    assert "cat_pets_orders" in snapshot.columns
    written = pl.read_csv(tmp_path / "v.csv").filter(pl.col("churn_probability").is_not_null())
    expected = churn_probabilities(churn, snapshot).select("customer_id", "churn_probability")
    assert written.height > 0
    both = written.join(expected, on="customer_id", suffix="_score")
    assert both.height == written.height
    assert (both["churn_probability"] - both["churn_probability_score"]).abs().max() < 1e-9

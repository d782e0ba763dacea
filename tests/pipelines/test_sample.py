"""Tests of the sample data generator: the events contract, determinism and the story."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from features.contracts import (
    CHANNELS,
    CUSTOMER_COLUMNS,
    CUSTOMER_TYPES,
    EVENT_REQUIRES,
    EVENT_TYPES,
    SCORE_RANGES,
    event_schema,
)
from features.events import load_customers, load_events
from models.campaigns import read_outcomes, validate_outcomes
from pipelines.sample import (
    BLOCK_SIZE,
    CAMPAIGN_COLUMNS,
    CAMPAIGN_OFFER,
    CATEGORIES,
    DEFAULT_END,
    DEFAULT_START,
    UPLIFT_TYPES,
    SampleFormat,
    generate_sample,
    sample_command,
)

UTC = dt.UTC
N = 4000


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = tmp_path_factory.mktemp("sample")
    summary = generate_sample(N, out, seed=7)
    events = pl.read_parquet(summary.events_path)
    customers = pl.read_parquet(summary.customers_path)
    assert summary.events == events.height
    assert summary.customers == customers.height == N
    assert sum(summary.events_by_type.values()) == events.height
    return events, customers


def check_contract(
    events: pl.DataFrame, customers: pl.DataFrame, start: dt.date, end: dt.date
) -> None:
    """Assert everything the events contract and the generator promise."""
    assert events.schema == pl.Schema(event_schema())
    assert customers.schema == pl.Schema({c.name: c.dtype for c in CUSTOMER_COLUMNS})
    assert (
        events.select(
            pl.sum_horizontal(pl.col("customer_id", "ts", "event_type").null_count())
        ).item()
        == 0
    )
    assert set(events["event_type"].unique()) <= set(EVENT_TYPES)
    assert set(events["channel"].drop_nulls().unique()) <= set(CHANNELS)
    assert set(events["category"].drop_nulls().unique()) <= set(CATEGORIES)
    assert set(customers["customer_type"].unique()) <= set(CUSTOMER_TYPES)
    for event_type, columns in EVENT_REQUIRES.items():
        rows = events.filter(pl.col("event_type") == event_type)
        assert rows.select(pl.sum_horizontal(pl.col(columns).null_count())).item() == 0, event_type
    for event_type, (lo, hi) in SCORE_RANGES.items():
        scores = events.filter(pl.col("event_type") == event_type)["score"]
        assert scores.is_between(lo, hi).all(), event_type
    assert (events["amount"].drop_nulls() >= 0).all()
    assert (events["quantity"].drop_nulls() >= 0).all()
    assert events["ts"].is_between(_utc(start), _utc(end + dt.timedelta(days=1)), "left").all()
    assert events.equals(events.sort("customer_id", "ts", maintain_order=True))
    assert not events.is_duplicated().any()

    ids = customers["customer_id"]
    width = len(str(customers.height))
    assert ids.to_list() == [f"C{i:0{width}d}" for i in range(1, customers.height + 1)]
    signed = events.join(customers, on="customer_id", how="left")
    assert signed["signup_ts"].null_count() == 0
    assert (signed["ts"] >= signed["signup_ts"]).all()

    for opener, closer in (("order", "return"), ("complaint", "complaint_resolved")):
        opened = events.filter(pl.col("event_type") == opener)
        assert opened["ref_id"].null_count() == 0
        assert opened["ref_id"].is_unique().all(), opener
        closed = events.filter(pl.col("event_type") == closer)
        linked = closed.join(opened, on=["customer_id", "ref_id"], how="left", suffix="_open")
        assert linked["ts_open"].null_count() == 0, f"{closer} without its {opener}"
        assert (linked["ts"] > linked["ts_open"]).all(), f"{closer} before its {opener}"
    returns = events.filter(pl.col("event_type") == "return")
    orders = events.filter(pl.col("event_type") == "order")
    paired = returns.join(orders, on=["customer_id", "ref_id"], suffix="_order")
    assert (paired["category"] == paired["category_order"]).all()
    assert (paired["amount"] <= paired["amount_order"]).all()
    assert (paired["quantity"] <= paired["quantity_order"]).all()
    resolved = events.filter(pl.col("event_type") == "complaint_resolved")
    assert resolved["ref_id"].is_unique().all()


def test_contract(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, customers = sample
    check_contract(events, customers, DEFAULT_START, DEFAULT_END)
    assert set(events["event_type"].unique()) == set(EVENT_TYPES)
    assert set(customers["customer_type"].unique()) == set(CUSTOMER_TYPES)
    assert 35 <= events.height / N <= 75


@settings(
    max_examples=15,
    deadline=None,
    # too_slow as in the profile (tests/conftest.py): this list replaces the profile's
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32),
    start=st.dates(dt.date(2015, 1, 1), dt.date(2030, 1, 1)),
    days=st.integers(0, 500),
)
def test_contract_any_window(tmp_path: Path, n: int, seed: int, start: dt.date, days: int) -> None:
    end = start + dt.timedelta(days=days)
    summary = generate_sample(n, tmp_path / f"{n}-{seed}-{start}-{days}", seed, start, end)
    check_contract(
        pl.read_parquet(summary.events_path), pl.read_parquet(summary.customers_path), start, end
    )


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = generate_sample(300, tmp_path / "a", seed=3)
    b = generate_sample(300, tmp_path / "b", seed=3)
    assert a.events_path.read_bytes() == b.events_path.read_bytes()
    assert a.customers_path.read_bytes() == b.customers_path.read_bytes()


def test_different_seeds_differ(tmp_path: Path) -> None:
    a = generate_sample(300, tmp_path / "a", seed=3)
    b = generate_sample(300, tmp_path / "b", seed=4)
    assert not pl.read_parquet(a.events_path).equals(pl.read_parquet(b.events_path))


def test_content_does_not_depend_on_chunk_size(tmp_path: Path) -> None:
    a = generate_sample(6000, tmp_path / "a", chunk_size=BLOCK_SIZE)
    b = generate_sample(6000, tmp_path / "b", chunk_size=4 * BLOCK_SIZE)
    assert pl.read_parquet(a.events_path).equals(pl.read_parquet(b.events_path))
    assert pl.read_parquet(a.customers_path).equals(pl.read_parquet(b.customers_path))


def test_csv_equals_parquet(tmp_path: Path) -> None:
    p = generate_sample(300, tmp_path / "p", fmt="parquet")
    c = generate_sample(300, tmp_path / "c", fmt="csv")
    assert c.events_path.name == "events.csv"
    schema = event_schema()
    assert pl.read_csv(c.events_path, schema=schema).equals(pl.read_parquet(p.events_path))
    customers = pl.read_parquet(p.customers_path)
    assert pl.read_csv(c.customers_path, schema=customers.schema).equals(customers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"end": dt.date(2022, 1, 1)}, "before start"),
        ({"fmt": "json"}, "fmt"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_customers": 10, "out_dir": tmp_path} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_sample(**args)  # type: ignore[arg-type]


def test_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(sample_command)
    result = CliRunner().invoke(
        app, ["--customers", "50", "--out", str(tmp_path), "--format", "csv", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "events.csv").exists()
    assert (tmp_path / "customers.csv").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_cli_out_that_is_a_file_is_refused_by_name(tmp_path: Path) -> None:
    """``--out events.csv`` (a file, not a directory) ended in a FileExistsError traceback."""
    app = typer.Typer()
    app.command()(sample_command)
    file = tmp_path / "events.csv"
    file.write_text("kept\n")
    # wide enough for the message on one line: the box wrapped it where pytest's tmp_path is long
    result = CliRunner().invoke(
        app, ["--customers", "10", "--out", str(file)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "is a file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert file.read_text() == "kept\n"


def test_cli_out_in_an_unwritable_folder_is_refused_before_any_work() -> None:
    """``guanxi data sample --out /proc/x`` simulated, then failed with a traceback at the first
    write; the folder is probed first, as score, value, target and features export do."""
    app = typer.Typer()
    app.command()(sample_command)
    out = Path("/proc/guanxi-sample")
    result = CliRunner().invoke(app, ["--customers", "10", "--out", str(out)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())
    refused = (
        f"Invalid value for --out: cannot write the sample into {out}: cannot create a file in"
    )
    assert re.search(re.escape(refused) + r" /proc \([^)]+\)", said), said  # the system's reason
    assert "simulating" not in said and "Traceback" not in said
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


# --- the story ---------------------------------------------------------------------------------


def _orders(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter(pl.col("event_type") == "order")


def test_business_orders_larger_and_less_often(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, customers = sample
    by_type = (
        _orders(events)
        .join(customers, on="customer_id")
        .group_by("customer_type")
        .agg(aov=pl.col("amount").mean(), orders=pl.len())
        .join(customers.group_by("customer_type").len(), on="customer_type")
        .with_columns(per_customer=pl.col("orders") / pl.col("len"))
    )
    row = {r["customer_type"]: r for r in by_type.iter_rows(named=True)}
    assert row["business"]["aov"] > 5 * row["consumer"]["aov"]
    assert row["business"]["per_customer"] < 0.75 * row["consumer"]["per_customer"]


def test_november_december_uplift(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, _ = sample
    month = _orders(events).group_by(pl.col("ts").dt.year().alias("y"), pl.col("ts").dt.month())
    counts = {(r["y"], r["ts"]): r["len"] for r in month.len().iter_rows(named=True)}
    for year in (2023, 2024, 2025):
        peak = counts[(year, 11)] + counts[(year, 12)]
        before = counts[(year, 9)] + counts[(year, 10)]
        assert peak > 1.25 * before, year


def test_unresolved_complaints_precede_fewer_orders(
    sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, _ = sample
    quarter = events.with_columns(q=pl.col("ts").dt.year() * 4 + (pl.col("ts").dt.month() - 1) // 3)
    resolved = quarter.filter(pl.col("event_type") == "complaint_resolved").select(
        "customer_id", "ref_id", rq="q"
    )
    complaints = (
        quarter.filter(pl.col("event_type") == "complaint")
        .join(resolved, on=["customer_id", "ref_id"], how="left")
        .with_columns(open_at_end=pl.col("rq").is_null() | (pl.col("rq") > pl.col("q")))
        .group_by("customer_id", "q")
        .agg(pl.col("open_at_end").any())
    )
    orders = _orders(quarter).group_by("customer_id", "q").len()
    active = orders.select("customer_id", "q")
    nxt = orders.with_columns(pl.col("q") - 1).rename({"len": "next_orders"})
    panel = (
        active.join(complaints, on=["customer_id", "q"], how="left")
        .join(nxt, on=["customer_id", "q"], how="left")
        .with_columns(pl.col("next_orders").fill_null(0), pl.col("open_at_end").fill_null(False))
        .filter(pl.col("q") < pl.col("q").max())
    )
    means = {
        r["open_at_end"]: r["next_orders"]
        for r in panel.group_by("open_at_end")
        .agg(pl.col("next_orders").mean())
        .iter_rows(named=True)
    }
    assert means[True] < 0.8 * means[False]


def test_cross_sell_affinity(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, _ = sample
    cut = _utc(dt.date(2024, 7, 1))
    orders = _orders(events)
    owned = orders.filter(pl.col("ts") < cut).group_by("customer_id").agg(pl.col("category"))
    later = orders.filter(pl.col("ts") >= cut).group_by("customer_id").agg(later=pl.col("category"))
    panel = owned.join(later, on="customer_id", how="left")
    for source, target in (("computers", "accessories"), ("apparel", "shoes"), ("home", "kitchen")):
        rates = (
            panel.filter(~pl.col("category").list.contains(target))
            .with_columns(
                has_source=pl.col("category").list.contains(source),
                bought=pl.col("later").list.contains(target).fill_null(False),
            )
            .group_by("has_source")
            .agg(pl.col("bought").mean())
        )
        rate = {r["has_source"]: r["bought"] for r in rates.iter_rows(named=True)}
        assert rate[True] > 2 * rate[False], (source, target)


def test_clicks_precede_orders(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, _ = sample
    orders = _orders(events).select("customer_id", order_ts="ts").sort("order_ts")

    def order_within_week(event_type: str) -> float:
        touches = events.filter(pl.col("event_type") == event_type).select("customer_id", "ts")
        joined = touches.sort("ts").join_asof(
            orders,
            left_on="ts",
            right_on="order_ts",
            by="customer_id",
            strategy="forward",
            tolerance=dt.timedelta(days=7),
            check_sortedness=False,
        )
        return joined["order_ts"].is_not_null().mean()  # type: ignore[return-value]

    assert order_within_week("email_click") > 1.5 * order_within_week("email_sent")


def test_surveys_reflect_service(sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, _ = sample
    tickets = (
        events.filter(pl.col("event_type") == "complaint")
        .join(
            events.filter(pl.col("event_type") == "complaint_resolved"),
            on=["customer_id", "ref_id"],
            suffix="_resolved",
        )
        .select(
            "customer_id",
            ts="ts_resolved",
            quick=(pl.col("ts_resolved") - pl.col("ts")) <= dt.timedelta(days=7),
        )
        .sort("ts")
    )
    after_resolution = (
        events.filter(pl.col("event_type") == "survey")
        .select("customer_id", "ts", "score")
        .sort("ts")
        .join_asof(
            tickets,
            on="ts",
            by="customer_id",
            tolerance=dt.timedelta(days=10),
            check_sortedness=False,
        )
        .drop_nulls("quick")
    )
    mean = dict(after_resolution.group_by("quick").agg(pl.col("score").mean()).iter_rows())
    assert mean[True] > mean[False] + 0.75


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_passes_the_events_validator(tmp_path: Path, fmt: SampleFormat) -> None:
    summary = generate_sample(500, tmp_path, seed=11, fmt=fmt)
    now = _utc(DEFAULT_END + dt.timedelta(days=1))
    events = load_events(summary.events_path, now=now)
    customers = load_customers(summary.customers_path, now=now)
    assert events.warnings == ()
    assert customers.warnings == ()
    assert events.frame.height == summary.events
    assert customers.frame.height == summary.customers


# --- the sample campaign ------------------------------------------------------------------------


def test_campaign_leaves_events_and_customers_unchanged(tmp_path: Path) -> None:
    off = generate_sample(600, tmp_path / "off", seed=9)
    on = generate_sample(600, tmp_path / "on", seed=9, campaign=True)
    assert off.campaign_path is None
    assert on.campaign_path is not None
    assert on.events_path.read_bytes() == off.events_path.read_bytes()
    assert on.customers_path.read_bytes() == off.customers_path.read_bytes()
    again = generate_sample(600, tmp_path / "again", seed=9, campaign=True, chunk_size=BLOCK_SIZE)
    assert again.campaign_path is not None
    assert again.campaign_path.read_bytes() == on.campaign_path.read_bytes()


def test_campaign_story(tmp_path: Path) -> None:
    summary = generate_sample(N, tmp_path, seed=7, campaign=True)
    assert summary.campaign_path is not None
    campaign = validate_outcomes(pl.read_parquet(summary.campaign_path), "campaign.parquet")
    assert campaign.columns[: len(CAMPAIGN_COLUMNS)] == list(CAMPAIGN_COLUMNS)
    assert campaign.height == summary.campaign_rows
    events = pl.read_parquet(summary.events_path)
    buyers = events.filter(pl.col("event_type") == "order")["customer_id"].unique()
    assert set(campaign["customer_id"]) == set(buyers)  # everyone with an order
    assert set(campaign["offer"]) == {CAMPAIGN_OFFER}
    assert 0.45 < campaign["control"].mean() < 0.55  # type: ignore[operator]
    lift = (
        campaign.group_by("uplift_type", "control")
        .agg(pl.col("responded").mean())
        .pivot("control", index="uplift_type", values="responded")
        .select("uplift_type", lift=pl.col("false") - pl.col("true"))
    )
    got = dict(lift.iter_rows())
    assert set(got) == set(UPLIFT_TYPES)
    assert got["persuadable"] > 0.25
    assert got["do_not_disturb"] < -0.15
    assert abs(got["sure_thing"]) < 0.08
    assert abs(got["lost_cause"]) < 0.05


def test_campaign_csv(tmp_path: Path) -> None:
    summary = generate_sample(200, tmp_path, seed=2, fmt="csv", campaign=True)
    assert summary.campaign_path is not None
    assert summary.campaign_path.name == "campaign.csv"
    outcomes = read_outcomes(summary.campaign_path)
    assert outcomes.height == summary.campaign_rows


def test_campaign_shares_match_the_docs(tmp_path: Path) -> None:
    """docs/sample-data.md states the uplift-type shares of the default sample; they hold."""
    summary = generate_sample(5000, tmp_path, seed=42, campaign=True)
    assert summary.campaign_path is not None
    campaign = pl.read_parquet(summary.campaign_path)
    shares = dict(campaign["uplift_type"].value_counts(normalize=True).iter_rows())
    docs = (Path(__file__).parents[2] / "docs" / "sample-data.md").read_text(encoding="utf-8")
    text = " ".join(docs.split())
    stated = (
        f"{campaign.height:,} customers are in the campaign: "
        f"{shares['persuadable']:.0%} persuadables, {shares['sure_thing']:.0%} sure things, "
        f"{shares['lost_cause']:.0%} lost causes and {shares['do_not_disturb']:.0%} "
        "do-not-disturbs"
    )
    assert stated in text

"""`guanxi score` of your own files: the snapshot has what the models read, or says what it lacks.

qa47 H2: a file without a category the model knows gave the model NaN for ``cat_<category>_*``
(unknown) instead of 0, and so other scores and "no spend" reasons for spenders. H3: inputs the
snapshot lacks (the customers file's columns without ``--customers``) were scored as unknown
without a word.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from features.contracts import FEATURE_SET_VERSION
from features.store import Store
from models.artifact import ModelBundle
from pipelines import score
from pipelines.cli import app
from serving.settings import get_settings
from tests.pipelines.test_train_cli import AS_OF, cli, sample  # noqa: F401  (fixtures)

DAY = date.fromisoformat(AS_OF)


def bundle(
    task: str, names: list[str], x: np.ndarray | None = None, y: np.ndarray | None = None
) -> ModelBundle:
    """A small model of ``task`` reading ``names``, as the registry's version 1.

    Trained on ``x`` (random normal by default) with labels ``y`` (by default, whether the first
    input is positive).
    """
    if x is None:
        x = np.random.default_rng(0).normal(size=(200, len(names)))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "seed": 0, "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float) if y is None else y),
        num_boost_round=3,
    )
    return ModelBundle(
        task=task,
        booster=booster,
        feature_names=names,
        calibration={"method": "sigmoid", "a": 1.0, "b": 0.0},
        feature_set_version=FEATURE_SET_VERSION,
        categories=[],
        metadata={"registry": {"name": task, "version": "1"}},
    )


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModelBundle]:
    """The champions `guanxi score` loads: fill it with :func:`bundle`s by task."""
    loaded: dict[str, ModelBundle] = {}
    monkeypatch.setattr(score, "load_models", lambda tasks, alias: {t: loaded[t] for t in tasks})
    return loaded


def said(cli: CliRunner, args: list[str], code: int = 0) -> str:  # noqa: F811
    """Run the command; its output on one line."""
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return " ".join(result.output.split())


def without_toys(sample: Path, folder: Path) -> Path:  # noqa: F811
    """The sample's events without a toys order: a file of some categories only."""
    events = pl.read_parquet(sample / "events.parquet")
    path = folder / "no_toys.parquet"
    events.filter(pl.col("category").ne_missing("toys")).write_parquet(path)
    return path


def test_a_category_the_file_lacks_is_built_as_none_bought(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """The models' categories get their columns, 0 orders and a 0 share for whoever spent, and
    the file's own categories keep theirs (the union: the stored snapshot loses nothing)."""
    models["churn"] = bundle("churn", ["recency_days", "cat_toys_orders", "cat_toys_share"])
    events = without_toys(sample, tmp_path)
    args = ["score", "--events", str(events), "--as-of", AS_OF, "--tasks", "churn"]
    output = said(cli, [*args, "--out", str(tmp_path / "s.parquet")])
    assert "which the snapshot lacks" not in output
    snapshot = Store(get_settings().home).read_snapshot(DAY)
    spent = snapshot.filter(pl.col("orders_total") > 0)
    assert spent.height > 0
    assert (spent["cat_toys_orders"] == 0).all() and (spent["cat_toys_share"] == 0).all()
    assert {"cat_apparel_orders", "cat_shoes_share"} <= set(snapshot.columns)
    categories = [c for c in snapshot.columns if c.endswith("_orders") and c.startswith("cat_")]
    assert categories == sorted(categories)  # the order a build without models gives


def test_the_models_categories_change_nothing_of_a_file_that_has_them(
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The demo's, cycle's and drift's files have every category: the snapshot is the same."""
    from datetime import UTC, datetime

    from pipelines.connectors import inputs

    day, now = DAY, datetime.now(UTC)
    given = inputs(str(sample / "events.parquet"))
    plain, _, _ = score.snapshot_for(Store(tmp_path / "a"), given, day, now)
    models, _, _ = score.snapshot_for(Store(tmp_path / "b"), given, day, now, categories=["toys"])
    assert plain.equals(models)


def test_inputs_the_snapshot_lacks_are_named_per_task(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """Without --customers the customers file's inputs are unknown for every customer: said
    once per task, as POST /v1/score reports missing_inputs; with it, nothing is said."""
    customers = pl.read_parquet(sample / "customers.parquet").with_columns(
        loyalty_points=pl.int_range(pl.len())
    )
    customers.write_parquet(tmp_path / "customers.parquet")
    models["churn"] = bundle("churn", ["recency_days", "signup_tenure_days", "loyalty_points"])
    models["referral"] = bundle("referral", ["orders_total", "is_business"])
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF, "--no-store"]
    args += ["--tasks", "churn,referral", "--out", str(tmp_path / "s.parquet")]
    output = said(cli, args)
    assert (
        "churn v1 reads signup_tenure_days, loyalty_points, which come from a customers file "
        "and the snapshot was built without one: scored as unknown"
    ) in output
    # is_business is 0 without a customers file: a default, not knowledge (review50 M-C)
    assert "referral v1 reads is_business, which come from a customers file" in output
    output = said(cli, [*args, "--customers", str(tmp_path / "customers.parquet")])
    assert "which the snapshot lacks" not in output


def test_events_given_again_are_read_unless_they_built_the_stored_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """qa47 H1: the store's snapshot of the day was scored whatever --events said (a corrected
    export, a missing or an invalid file: exit 0). It is read only when it was built from the
    files given, as they are now; other files are validated and built, and replace it."""
    models["churn"] = bundle("churn", ["recency_days", "orders_total"])
    first = sample / "events.parquet"
    events = pl.read_parquet(first)
    late = events.head(1).with_columns(customer_id=pl.lit("NEW1"), ts=events["ts"].min())
    corrected = tmp_path / "corrected.parquet"
    pl.concat([events, late]).write_parquet(corrected)
    store = Store(get_settings().home)
    out = tmp_path / "s.csv"
    args = ["score", "--as-of", AS_OF, "--tasks", "churn", "--out", str(out)]
    said(cli, [*args, "--events", str(first)])
    stored = store.snapshot_info(DAY)
    # the same file: the stored snapshot
    assert f"customers, store ({stored.path})" in said(cli, [*args, "--events", str(first)])
    # a missing file, an invalid one: refused, the stored snapshot left as it was
    missing = said(cli, [*args, "--events", str(tmp_path / "none.csv")], 1)
    assert "cannot score, nothing written" in missing
    bad = tmp_path / "bad.parquet"
    events.with_columns(amount=-pl.col("amount").abs() - 1).write_parquet(bad)
    assert "nothing written" in said(cli, [*args, "--events", str(bad)], 1)
    assert store.snapshot_info(DAY) == stored
    # another file: built, scored and kept in place of the stored one, said so
    output = said(cli, [*args, "--events", str(corrected), "--no-store"])
    assert f"built from {corrected} (the store's snapshot of that day, built from {first}, " in (
        output
    )
    assert "NEW1" in pl.read_csv(out)["customer_id"].to_list()
    assert store.snapshot_info(DAY) == stored  # --no-store
    output = said(cli, [*args, "--events", str(corrected)])
    assert f"built from {corrected}, replacing the store's snapshot of that day built from " in (
        output
    )
    assert store.snapshot_info(DAY).events.path == str(corrected)  # type: ignore[union-attr]
    # a customers file the stored snapshot was built without: built again with it
    customers = sample / "customers.parquet"
    output = said(cli, [*args, "--events", str(corrected), "--customers", str(customers)])
    assert "replacing the store's snapshot" in output
    # and left out, the stored one (with the customers' columns) is read
    assert "customers, store (" in said(cli, [*args, "--events", str(corrected)])


def test_a_database_source_cannot_be_told_unchanged_so_it_is_said_unread(
    cli: CliRunner,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    from tests.pipelines.test_connectors import TINY_DAY, tiny_duckdb

    models["churn"] = bundle("churn", ["recency_days", "orders_total"])
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    day = TINY_DAY.isoformat()
    source = ["--events", uri, "--events-table", "events", "--as-of", day]
    said(cli, ["features", "build", *source])
    args = ["score", *source, "--tasks", "churn", "--out", str(tmp_path / "s.csv")]
    output = said(cli, args)
    assert "customers, store (" in output
    assert "was not read" in output
    assert f"`guanxi features build --as-of {day}` and the same input options" in output


def test_a_day_before_every_event_is_refused_as_features_build_refuses_it(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """qa47 M3: a mistyped year wrote a file of its header alone and exited 0."""
    models["churn"] = bundle("churn", ["recency_days"])
    first = pl.read_parquet(sample / "events.parquet")["ts"].min()
    out = tmp_path / "s.csv"
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", "2020-01-01"]
    output = said(cli, [*args, "--tasks", "churn", "--out", str(out)], 1)
    assert (
        "cannot score, nothing written: no customer has an event on or before 2020-01-01 "
        f"(the first event is on {first:%Y-%m-%d}): choose a later --as-of"
    ) in output
    assert not out.exists() and Store(get_settings().home).list_snapshots() == []


def test_customers_of_the_customers_file_without_an_event_are_counted(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """qa47 L1: a signed-up customer without an event got no row, and nothing said so."""
    models["churn"] = bundle("churn", ["recency_days"])
    customers = pl.read_parquet(sample / "customers.parquet")
    pl.concat(
        [customers, customers.head(1).with_columns(customer_id=pl.lit("NEW1"))]
    ).write_parquet(tmp_path / "customers.parquet")
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF, "--no-store"]
    args += ["--customers", str(tmp_path / "customers.parquet"), "--tasks", "churn"]
    output = said(cli, [*args, "--out", str(tmp_path / "s.csv")])
    rows = pl.read_csv(tmp_path / "s.csv").height
    absent = customers.height + 1 - rows
    assert absent >= 1
    customers_word = "customer" if absent == 1 else "customers"
    has = "has" if absent == 1 else "have"
    assert (
        f"; {absent:,} {customers_word} of the customers file {has} no event up to {AS_OF}, "
        "so no row"
    ) in output


def _replaced(output: str) -> bool:
    """Whether a run built the snapshot again in place of the stored one (else: read it)."""
    return "replacing the store's snapshot of that day" in output


def test_a_changed_mapping_is_another_source(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 H-A: a snapshot built with one --mapping was read for another (or none): the
    file's rows mean other events. The mapping's digest is recorded and compared."""
    models["churn"] = bundle("churn", ["recency_days", "orders_total"])
    one, other = tmp_path / "one.yaml", tmp_path / "other.yaml"
    one.write_text("event_types:\n  ZZZ: order\n")
    other.write_text("event_types:\n  ZZY: order\n")
    events = str(sample / "events.parquet")
    args = ["score", "--events", events, "--as-of", AS_OF, "--tasks", "churn"]
    args += ["--out", str(tmp_path / "s.csv")]
    said(cli, ["features", "build", "--events", events, "--as-of", AS_OF, "--mapping", str(one)])
    assert "customers, store (" in said(cli, [*args, "--mapping", str(one)])
    assert _replaced(said(cli, [*args, "--mapping", str(other)]))
    assert _replaced(said(cli, args))  # built with a mapping, given none
    assert "customers, store (" in said(cli, args)
    assert _replaced(said(cli, [*args, "--mapping", str(one)]))  # built without, given one


def test_a_stored_snapshot_without_a_models_category_is_built_again_from_its_files(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 H-B: `features build` then `score` of the same file read the stored snapshot,
    without the models' categories (NaN for them), and scored otherwise than `score` alone."""
    events = str(without_toys(sample, tmp_path))
    models["churn"] = bundle("churn", ["recency_days", "cat_toys_orders", "cat_toys_share"])
    args = ["score", "--events", events, "--as-of", AS_OF, "--tasks", "churn"]
    said(cli, [*args, "--no-store", "--out", str(tmp_path / "alone.csv")])  # nothing stored
    said(cli, ["features", "build", "--events", events, "--as-of", AS_OF])
    output = said(cli, [*args, "--out", str(tmp_path / "after.csv")])
    assert _replaced(output) and "which the snapshot lacks" not in output
    assert "cat_toys_orders" in Store(get_settings().home).read_snapshot(DAY).columns
    assert pl.read_csv(tmp_path / "after.csv").equals(pl.read_csv(tmp_path / "alone.csv"))
    assert "customers, store (" in said(cli, [*args, "--out", str(tmp_path / "again.csv")])


def test_another_query_of_the_same_database_is_another_source(
    cli: CliRunner,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 M-A: any --events-query counted as the stored snapshot's query."""
    from tests.pipelines.test_connectors import TINY_DAY, tiny_duckdb

    models["churn"] = bundle("churn", ["recency_days", "orders_total"])
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    day = TINY_DAY.isoformat()
    every = ["--events", uri, "--events-query", "SELECT * FROM events", "--as-of", day]
    said(cli, ["features", "build", *every])
    args = ["--tasks", "churn", "--out", str(tmp_path / "s.csv")]
    assert "was not read" in said(cli, ["score", *every, *args])  # the same query
    first = pl.read_csv(tmp_path / "s.csv")["customer_id"][0]
    query = f"SELECT * FROM events WHERE customer_id = '{first}'"
    output = said(cli, ["score", *every[:2], "--events-query", query, "--as-of", day, *args])
    assert _replaced(output) and "was not read" not in output
    assert pl.read_csv(tmp_path / "s.csv")["customer_id"].unique().to_list() == [first]


def test_the_stored_snapshot_read_alone_gets_the_models_categories_completed(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 H-B: without --events the stored snapshot's lacking categories are completed
    (no order of them up to the day: 0 orders, a 0 share), so the scores are a build's."""
    events = str(without_toys(sample, tmp_path))
    models["churn"] = bundle("churn", ["recency_days", "cat_toys_orders", "cat_toys_share"])
    args = ["score", "--as-of", AS_OF, "--tasks", "churn", "--no-store"]
    said(cli, [*args, "--events", events, "--out", str(tmp_path / "built.csv")])
    said(cli, ["features", "build", "--events", events, "--as-of", AS_OF])
    output = said(cli, [*args, "--out", str(tmp_path / "stored.csv")])
    assert (
        "churn v1 reads cat_toys_orders, cat_toys_share, which the snapshot lacks (categories "
        "none of its orders has): completed as 0 orders and a 0 share of spend"
    ) in output
    assert "scored as unknown" not in output
    assert pl.read_csv(tmp_path / "stored.csv").equals(pl.read_csv(tmp_path / "built.csv"))


def test_a_stored_snapshot_without_a_models_category_scores_alike_everywhere(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review52 H1: only `guanxi score` completed the stored snapshot's lacking categories; the
    server, the cycle and drift (score_snapshot) read NaN for them, and a table computed either
    way recorded the snapshot's digest alone, so the server served whichever was written."""
    from fastapi.testclient import TestClient

    from features.store import snapshot_digest
    from models.scoring import score_snapshot
    from serving.app import create_app
    from serving.loader import stored_scores
    from serving.state import LoadedSnapshot, ServedModel
    from tests.serving.conftest import StaticSource, headers, make_settings, wait_ready

    events = str(without_toys(sample, tmp_path))
    # a model that tells no toys order (likely to churn) from an unknown count (unlikely)
    toys = np.tile([0.0, np.nan, 1.0], 100)
    x = np.column_stack([np.random.default_rng(0).normal(size=300), toys, toys])
    churn = bundle("churn", ["recency_days", "cat_toys_orders", "cat_toys_share"], x, toys == 0)
    models["churn"] = churn
    said(cli, ["features", "build", "--events", events, "--as-of", AS_OF])
    out = tmp_path / "s.csv"
    said(cli, ["score", "--as-of", AS_OF, "--tasks", "churn", "--explain", "3", "--out", str(out)])
    scored = pl.read_csv(out).filter(pl.col("status") == "eligible")
    store = Store(get_settings().home)
    frame = store.read_snapshot(DAY)
    assert "cat_toys_orders" not in frame.columns
    unknown = frame.with_columns(
        cat_toys_orders=pl.lit(None, pl.Float64), cat_toys_share=pl.lit(None, pl.Float64)
    )
    nan = score_snapshot(churn, unknown).filter(pl.col("status") == "eligible")["score"]
    differ = (nan - scored["score"]).abs() > 1e-6
    assert differ.any()  # the model tells 0 orders of toys from unknown
    ids = scored.filter(differ)["customer_id"].head(5).to_list()
    expected = dict(zip(scored["customer_id"], scored["score"], strict=True))
    # the cycle's and drift's scores of the stored snapshot (models.scoring.score_snapshot)
    again = score_snapshot(churn, frame).filter(pl.col("status") == "eligible")
    np.testing.assert_allclose(again["score"].to_numpy(), scored["score"].to_numpy(), rtol=1e-6)
    # the server, computing them (its home holds no table)
    served = ServedModel(bundle=churn, name="churn", version="1", aliases=("champion",))
    loaded = LoadedSnapshot(as_of=DAY, feature_set_version=FEATURE_SET_VERSION, frame=frame)
    source = StaticSource(models={"churn": served}, snapshot=loaded)
    settings = make_settings(tmp_path / "serve", tasks=("churn",))
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        for customer in ids:
            r = client.get(f"/v1/customers/{customer}/scores", headers=headers())
            assert r.status_code == 200, r.text
            probability = r.json()["scores"]["churn"]["probability"]
            assert probability == pytest.approx(expected[customer], rel=1e-6)
    # the table score kept is served; one recorded with the snapshot's digest alone, as every
    # table computed before the completion was, is computed again
    assert set(stored_scores(store, {"churn": served}, loaded)) == {"churn"}
    info = store.score_info("churn", DAY, "1")
    assert info is not None and info.snapshot_digest == f"{snapshot_digest(frame)}+toys"
    table = store.read_scores("churn", DAY, "1")
    assert table is not None
    store.write_scores(
        "churn",
        DAY,
        "1",
        table,
        model_name="churn",
        feature_set_version=FEATURE_SET_VERSION,
        explain_k=info.explain_k,
        snapshot_digest=snapshot_digest(frame),
    )
    assert stored_scores(store, {"churn": served}, loaded) == {}


def test_a_snapshot_without_customers_names_every_customers_file_input(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 M-C: without --customers is_business was 0 for everyone and not named; L-a:
    "(no --customers file?)" was said when one was given."""
    models["referral"] = bundle("referral", ["orders_total", "is_business", "loyalty_points"])
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--tasks", "referral", "--out", str(tmp_path / "s.csv")]
    output = said(cli, [*args, "--no-store"])
    assert (
        "referral v1 reads is_business, loyalty_points, which come from a customers file and "
        "the snapshot was built without one: scored as unknown (is_business as 0)"
    ) in output
    customers = pl.read_parquet(sample / "customers.parquet").with_columns(
        loyalty_points=pl.lit(None, pl.Int64)
    )
    customers.write_parquet(tmp_path / "customers.parquet")
    output = said(cli, [*args, "--customers", str(tmp_path / "customers.parquet")])
    assert (
        "referral v1 reads loyalty_points, which the customers file has no value of: "
        "scored as unknown"
    ) in output
    assert "--customers file?" not in output
    # the stored snapshot, built with the customers file, read without it: is_business known
    output = said(cli, ["score", "--as-of", AS_OF, "--tasks", "referral", "--no-store",
                        "--out", str(tmp_path / "s.csv")])  # fmt: skip
    assert "is_business" not in output


def test_a_snapshot_stored_without_sources_is_not_said_built_without_customers(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review52 L1: a snapshot that records no source (`guanxi drift` stores its builds so, and
    older snapshots are so) was said "built without" a customers file, its inputs with values."""
    from features.snapshot import build_snapshot

    models["referral"] = bundle("referral", ["orders_total", "is_business", "loyalty_points"])
    frame = build_snapshot(
        pl.read_parquet(sample / "events.parquet"),
        pl.read_parquet(sample / "customers.parquet").with_columns(
            loyalty_points=pl.lit(None, pl.Int64)
        ),
        DAY,
    )
    Store(get_settings().home).write_snapshot(frame, DAY)  # no events=, no customers=
    args = ["score", "--as-of", AS_OF, "--tasks", "referral", "--no-store"]
    output = said(cli, [*args, "--out", str(tmp_path / "s.csv")])
    assert "built without one" not in output and "is_business" not in output
    assert "referral v1 reads loyalty_points, which the customers file has no value of" in output


def test_a_customers_file_recorded_unreadably_counts_as_given(tmp_path: Path) -> None:
    """review54 L3: a customers file recorded with a field this code does not know read as not
    recorded, so score's note said every customers-file input came from no customers file."""
    from features.store import SnapshotInfo, SourceFile

    source = SourceFile("/data/x.csv", 1, "2024-01-01T00:00:00+00:00")
    info = SnapshotInfo(DAY, tmp_path / "s.parquet", 1, "v", "now", events=source)
    assert not score._with_customers(info)  # built from events alone
    assert score._with_customers(replace(info, unreadable=("customers",)))
    assert score._with_customers(replace(info, customers=source))


def test_the_line_names_the_database_that_was_not_read(
    cli: CliRunner,  # noqa: F811
    models: dict[str, ModelBundle],
    tmp_path: Path,
) -> None:
    """review50 L-b: events from an unchanged file, customers from a database: the customers
    were not read, not the events."""
    from tests.pipelines.test_connectors import DATA, TINY_DAY, tiny_duckdb

    models["churn"] = bundle("churn", ["recency_days"])
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    events = DATA / "events_tiny.csv"
    day = TINY_DAY.isoformat()
    given = ["--events", str(events), "--customers", uri, "--customers-table", "customers"]
    said(cli, ["features", "build", *given, "--as-of", day])
    output = said(cli, ["score", *given, "--as-of", day, "--tasks", "churn",
                        "--out", str(tmp_path / "s.csv")])  # fmt: skip
    assert f"; {uri} table customers was not read" in output
    assert f"{events} was not read" not in output


def test_the_files_are_recorded_as_they_were_read(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """review50 L-c: a file rewritten during the build was recorded as it is after it, so the
    next run of the new file read the snapshot of the old one."""
    models["churn"] = bundle("churn", ["recency_days"])
    events = tmp_path / "events.parquet"
    pl.read_parquet(sample / "events.parquet").write_parquet(events)
    from features.store import SourceFile
    from pipelines import snapshot as snapshot_cli

    before = SourceFile.of(events)
    build = snapshot_cli.build_validated

    def rewritten(*args, **kwargs):  # type: ignore[no-untyped-def]
        built = build(*args, **kwargs)
        frame = pl.read_parquet(events)
        frame.head(frame.height - 1).write_parquet(events)  # an export landing meanwhile
        return built

    monkeypatch.setattr(score, "build_validated", rewritten)
    args = ["score", "--events", str(events), "--as-of", AS_OF, "--tasks", "churn"]
    said(cli, [*args, "--out", str(tmp_path / "s.csv")])
    assert Store(get_settings().home).snapshot_info(DAY).events == before
    monkeypatch.setattr(score, "build_validated", build)
    assert _replaced(said(cli, [*args, "--out", str(tmp_path / "s.csv")]))


def test_replacing_a_snapshot_says_the_days_value_table_and_plan_were_made_from_it(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    models: dict[str, ModelBundle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """review50 L-d: they carry no snapshot digest, so are served beside the new snapshot."""
    models["churn"] = bundle("churn", ["recency_days"])
    args = ["score", "--as-of", AS_OF, "--tasks", "churn", "--out", str(tmp_path / "s.csv")]
    said(cli, [*args, "--events", str(sample / "events.parquet")])
    monkeypatch.setattr(Store, "value_info", lambda self, day: object())
    monkeypatch.setattr(Store, "plan_info", lambda self, day: object())
    output = said(cli, [*args, "--events", str(without_toys(sample, tmp_path))])
    assert (
        "replacing the store's snapshot of that day built from "
        f"{(sample / 'events.parquet').resolve()} (the day's stored value table and plan were "
        "made from the one replaced)"
    ) in output
    # review52 L3: read before the build; a plan whose metadata cannot be read is not named,
    # and `guanxi value`, which replaces the day's value table too, names the plan alone

    def damaged(self: Store, day: date) -> object:
        raise ValueError("not JSON")

    monkeypatch.setattr(Store, "plan_info", damaged)
    output = said(cli, [*args, "--events", str(sample / "events.parquet")])
    assert "(the day's stored value table was made from the one replaced)" in output
    monkeypatch.setattr(Store, "plan_info", lambda self, day: object())
    info = Store(get_settings().home).snapshot_info(DAY)
    said_by_value = score._replacing(Store(get_settings().home), info, True, writes_values=True)
    assert said_by_value.endswith("(the day's stored plan was made from the one replaced)")


def test_a_snapshot_kept_without_history_removes_the_replaced_ones(
    sample: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review52 L4 (review50 L-d): a Spark build kept by `score` or `value` left the day's
    history of the snapshot it replaced, so the reviewer pages showed other events."""
    from features.snapshot import build_snapshot

    events = pl.read_parquet(sample / "events.parquet")
    frame = build_snapshot(events, None, DAY)
    store = Store(tmp_path / "home")
    assert score._keep(store, frame, DAY, True, None, None, events)
    customer = frame["customer_id"][0]
    assert store.read_history(DAY, customer) is not None
    # review54 L2: removed after the write, so a failed write keeps the replaced one's history
    import features.store

    def full(*_: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(features.store, "_write_with_info", full)
        with pytest.raises(OSError, match="disk full"):
            score._keep(store, frame, DAY, True, None, None, None)
    assert store.read_history(DAY, customer) is not None
    assert score._keep(store, frame, DAY, True, None, None, None)  # a Spark build's
    assert store.read_history(DAY, customer) is None
    assert not store.drop_history(DAY)

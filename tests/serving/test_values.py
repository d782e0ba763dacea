"""A value table's churn model, read once: the JSON answers and the segment CSV say the same.

The churn model's horizon was read from the table's info by the customer's answer and by
:attr:`serving.values.LoadedValues.churn_horizon_days` (the CSV's column) apart, and the
``churn_status`` of a row without one was filled by the customer's answer and by
:func:`serving.values.segment_rows` apart. These pin what both say, with and without a churn
model, from the same rule.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from features.store import Store, ValueTableInfo
from serving.app import create_app
from serving.value_routes import customer_value
from serving.values import EXPORT_COLUMNS, NO_CHURN_MODEL, LoadedValues, segment_rows
from tests.serving.conftest import STORE_KEY, StaticSource, headers, make_settings, wait_ready
from tests.serving.test_value_api import AS_OF, value_frame

CHURN = {"name": "churn", "version": "1", "horizon_days": 90}


def _loaded(frame: pl.DataFrame, churn_model: dict[str, Any] | None) -> LoadedValues:
    """``frame`` as a loaded value table (365 days, 10%), read with ``churn_model``."""
    info = ValueTableInfo(
        as_of=AS_OF,
        rows=frame.height,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        churn_model=churn_model,
        fit={},
        validation=None,
        run_id="run123",
        created="2024-11-01T00:00:00+00:00",
        path=Path("values.parquet"),
    )
    return LoadedValues.of(frame, info)


def _with_model() -> LoadedValues:
    """:func:`value_frame` read with a churn model; c000 has no churn status (left null)."""
    frame = value_frame().with_columns(
        pl.when(pl.col("customer_id") == "c000")
        .then(None)
        .otherwise(pl.col("churn_status"))
        .alias("churn_status")
    )
    return _loaded(frame, CHURN)


def _without_model() -> LoadedValues:
    """:func:`value_frame` as ``guanxi value`` writes it before any churn model is promoted."""
    frame = value_frame().with_columns(
        pl.lit(None, pl.Float64).alias("churn_probability"),
        pl.lit(None, pl.Float64).alias("equity_at_risk"),
        pl.lit(None, pl.String).alias("churn_status"),
    )
    return _loaded(frame, None)


def _exported(values: LoadedValues, segment: str) -> list[dict[str, str]]:
    """The segment's CSV rows, as the export writes them (its columns, polars' CSV)."""
    rows = segment_rows(values, "rfm_segment", segment).select(EXPORT_COLUMNS)
    return list(csv.DictReader(io.StringIO(rows.write_csv())))


CHURN_FIELDS = ("churn_status", "churn_model_version", "churn_horizon_days")


@pytest.mark.parametrize(
    ("values", "said"),
    [
        # c000 has none of its own; c003 is outside the churn population
        (_with_model, {"c000": (None, "1", 90), "c003": ("lapsed", "1", 90)}),
        (_without_model, {c: (NO_CHURN_MODEL, None, None) for c in ("c000", "c003")}),
    ],
    ids=["with_churn_model", "without_churn_model"],
)
def test_the_json_answers_and_the_csv_say_the_same_churn_status_and_model(
    values: Any, said: dict[str, tuple[str | None, str | None, int | None]]
) -> None:
    loaded: LoadedValues = values()
    one = {c: customer_value(loaded, loaded.row(c) or {}).model_dump() for c in said}
    assert {c: tuple(one[c][f] for f in CHURN_FIELDS) for c in said} == said
    listed = [
        customer_value(loaded, r).model_dump()
        for r in segment_rows(loaded, "rfm_segment", "champions").iter_rows(named=True)
    ]
    assert {c["customer_id"]: tuple(c[f] for f in CHURN_FIELDS) for c in listed} == said
    exported = _exported(loaded, "champions")
    written = {c: tuple("" if v is None else str(v) for v in said[c]) for c in said}
    assert {r["customer_id"]: tuple(r[f] for f in CHURN_FIELDS) for r in exported} == written


@pytest.mark.parametrize(
    ("churn_model", "horizon"),
    [
        (CHURN, 90),
        ({**CHURN, "horizon_days": 30.0}, 30),  # a number written as a float: still whole days
        (None, None),
    ],
    ids=["int", "float", "none"],
)
def test_one_churn_horizon_for_the_answer_the_table_and_the_csv(
    churn_model: dict[str, Any] | None, horizon: int | None
) -> None:
    loaded = _loaded(value_frame(), churn_model)
    assert loaded.churn_horizon_days == horizon
    answer = customer_value(loaded, loaded.row("c001") or {})
    assert answer.churn_horizon_days == horizon
    assert type(answer.model_dump(mode="json")["churn_horizon_days"]) is type(horizon)
    rows = segment_rows(loaded, "rfm_segment", "at_risk")
    assert rows["churn_horizon_days"].to_list() == [horizon]


def test_a_row_without_churn_status_is_filled_by_the_table_s_rule() -> None:
    assert _without_model().churn_status_default == NO_CHURN_MODEL
    assert _with_model().churn_status_default is None


def test_the_value_page_says_the_horizon_the_answers_and_the_csv_say(
    tmp_path: Path, source: StaticSource
) -> None:
    """The value page wrote the horizon as recorded (``30.0-day``) where the answers and the CSV
    read it as whole days (30), as :attr:`LoadedValues.churn_horizon_days` does."""
    settings = make_settings(tmp_path / "home")
    Store(settings.home, STORE_KEY.encode()).write_values(
        value_frame(),
        AS_OF,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={},
        churn_model={**CHURN, "horizon_days": 30.0},  # a number a hand wrote as a float
    )
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        page = client.get("/ui/value", headers=headers("reviewer")).text
        answer = client.get("/v1/customers/c000/value", headers=headers()).json()
    assert answer["churn_horizon_days"] == 30
    assert "churn probabilities from churn v1 (30-day horizon)" in page
    assert "the chance of churning within 30 days" in page
    assert "30.0-day" not in page and "within 30.0" not in page

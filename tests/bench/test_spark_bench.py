"""bench.spark's output check: every column exactly, floats bit for bit."""

from __future__ import annotations

import math

import polars as pl

from bench.spark import _differences

BASE: dict[str, list[object]] = {
    "customer_id": ["a", "b", "c"],
    "n": [1, None, 3],
    "x": [0.1 + 0.2, None, math.nan],
    "y": [1.5, 2.5, None],
}


def _frame(**changes: list[object]) -> pl.DataFrame:
    return pl.DataFrame(
        {**BASE, **changes},
        schema={"customer_id": pl.String, "n": pl.Int64, "x": pl.Float64, "y": pl.Float32},
    )


def test_the_same_values_are_equal_nans_and_nulls_included() -> None:
    assert _differences(_frame(), _frame()) == []


def test_a_last_bit_or_a_sign_of_zero_is_a_difference() -> None:
    assert 0.3 != 0.1 + 0.2 and abs(0.3 - (0.1 + 0.2)) < 1e-15  # one bit apart
    assert _differences(_frame(x=[0.3, None, math.nan]), _frame()) == ["x"]
    assert _differences(_frame(y=[1.5, -0.0, None]), _frame(y=[1.5, 0.0, None])) == ["y"]


def test_nulls_text_integers_rows_and_schema_are_compared() -> None:
    assert _differences(_frame(x=[0.1 + 0.2, math.nan, None]), _frame()) == ["x"]
    other = _frame(customer_id=["a", "b", "d"], n=[1, 2, 3])
    assert _differences(other, _frame()) == ["customer_id", "n"]
    assert _differences(_frame().head(2), _frame()) == ["row count"]
    recast = _frame().with_columns(pl.col("y").cast(pl.Float64))
    assert _differences(recast, _frame()) == ["schema"]

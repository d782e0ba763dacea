"""exact_sum and exact_mean: the correctly rounded sum, the same in any order, engine or chunks."""

from __future__ import annotations

import math

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from features.snapshot import build_snapshot
from features.window import (
    exact_mean,
    exact_sum,
    fixed,
    fixed_point,
    float_sums,
    load,
    split_loads,
)
from tests.features.conftest import AS_OF, events

money = st.one_of(
    st.integers(-(10**9), 10**9).map(lambda cents: cents / 100),
    st.floats(2**-12, 1e12).flatmap(lambda x: st.sampled_from([x, -x])),
    st.just(0.0),
)
"""Cents, and any float of magnitude 2**-12 or more: whole numbers of 2**-64."""


def sums(frame: pl.DataFrame, engine: str) -> dict[int, float]:
    totals = (
        frame.lazy()
        .with_columns(fixed_point("x"))
        .group_by("customer_id")
        .agg(exact_sum(fixed("x")).alias("sum"))
        .collect(engine=engine)  # type: ignore[arg-type]
    )
    return dict(totals.iter_rows())


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.tuples(st.integers(0, 3), money), min_size=1, max_size=80),
    data=st.data(),
)
def test_the_correctly_rounded_sum_in_any_order(
    values: list[tuple[int, float]], data: st.DataObject
) -> None:
    schema = {"customer_id": pl.Int64, "x": pl.Float64}
    frame = pl.DataFrame(values, schema=schema, orient="row")
    shuffled = pl.DataFrame(data.draw(st.permutations(values)), schema=schema, orient="row")
    chunked = pl.concat([shuffled.slice(i, 7) for i in range(0, shuffled.height, 7)])
    expected = {k: math.fsum(x for key, x in values if key == k) for k, _ in values}
    first = sums(frame, "in-memory")
    for engine in ("in-memory", "streaming"):
        for rows in (frame, shuffled, chunked):
            got = sums(rows, engine)
            assert got == expected
            # the same bits, not just equal values (0.0 and -0.0 compare equal)
            assert [math.copysign(1, got[k]) for k in got] == [
                math.copysign(1, first[k]) for k in got
            ]


def test_empty_groups_means_and_the_limit() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "d", "d"],
            "x": [2.0**60, 2.0**60, None, 0.1, 0.2, 2.0**61, 2.0**61],
        }
    )
    got = (
        frame.lazy()
        .with_columns(fixed_point("x"))
        .group_by("customer_id", maintain_order=True)
        .agg(exact_sum(fixed("x")).alias("sum"), exact_mean(fixed("x")).alias("mean"), load("x"))
        .collect()
    )
    assert got.drop("_load_x").rows() == [
        ("a", 2.0**61, 2.0**60),
        ("b", 0.0, None),  # no values: 0, and no mean
        ("c", math.fsum([0.1, 0.2]), 0.15000000000000002),
        ("d", 2.0**62, 2.0**61),  # the integers hold 2**63; split_loads stops at 2**62
    ]
    kept, fits = split_loads(got.filter(pl.col("customer_id") != "d"))
    assert fits and kept.columns == ["customer_id", "sum", "mean"]
    assert split_loads(got)[1] is False
    with float_sums():
        assert split_loads(got)[1] is True  # floats hold it: nothing to build again


def test_amounts_beyond_the_integers_are_added_as_floats() -> None:
    huge = [
        ("a", "2024-06-01", "order", {"amount": 1e300, "margin": -1e300}),
        ("a", "2024-06-02", "order", {"amount": 1e300, "margin": 0.5}),
        ("b", "2024-06-02", "order", {"amount": 0.1}),
        ("b", "2024-06-03", "order", {"amount": 0.2}),
    ]
    snapshot = build_snapshot(events(*huge), None, AS_OF)
    assert snapshot["spend_total"].to_list() == [2e300, 0.1 + 0.2]
    assert snapshot["margin_total"].to_list() == [-1e300 + 0.5, 0.0]
    # without a customer beyond them, b's sums are the exact ones
    alone = build_snapshot(events(*huge[2:]), None, AS_OF)
    assert alone["spend_total"].to_list() == [math.fsum([0.1, 0.2])]

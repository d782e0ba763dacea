"""Scoring from value counts (the Spark engine's second pass) equals scoring the rows."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from features.rfm import score, score_counts, scores_among


def test_counts_by_hand() -> None:
    # values 1, 2, 2, 3, 9 (n = 5): mid-ranks 1, 2.5, 2.5, 4, 5 -> 1 + floor(5 (rank - 1/2) / 5)
    counts = pl.DataFrame({"value": [9, 2, 1, 3], "count": [1, 2, 1, 1]})
    scored = score_counts(counts)
    assert scored.rows() == [(1, 1), (2, 3), (3, 4), (9, 5)]
    # fewer is better: 9 is worst (rank 1), the 2s share ranks 3 and 4 (3.5), 1 is best
    assert score_counts(counts, higher_is_better=False).rows() == [(9, 1), (3, 2), (2, 4), (1, 5)]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 30), min_size=1, max_size=300),
    higher_is_better=st.booleans(),
)
def test_scoring_counts_equals_scoring_rows(values: list[int], higher_is_better: bool) -> None:
    rows = pl.DataFrame({"value": values})
    expected = rows.with_columns(score=score(pl.col("value"), higher_is_better=higher_is_better))
    counts = rows.group_by("value").len(name="count")
    by_value = score_counts(counts, higher_is_better=higher_is_better)
    got = rows.join(by_value, on="value", how="left", maintain_order="left")
    assert got["score"].to_list() == expected["score"].to_list()


def test_every_segment_has_a_name_in_words() -> None:
    """Segment identifiers are for code; people read "can't lose", "need attention"."""
    from features.rfm import RFM_SEGMENTS, SEGMENT_NAMES, segment_name

    assert set(SEGMENT_NAMES) == {name for name, _, _ in RFM_SEGMENTS}
    assert segment_name("cant_lose") == "can't lose"
    assert segment_name("potential_loyalist") == "potential loyalists"
    for name in SEGMENT_NAMES.values():
        assert "_" not in name and name == name.strip() and "cant" not in name.split()


def test_rows_are_scored_among_the_population() -> None:
    """Customer x (4 orders, 5 days, 50 spent) among a..d (1..4 orders, 10..40 days, 10..40):
    x ties d on orders, mid-rank 4.5 of 5: f 1 + floor(5 * 4 / 5) = 5; best recency and spend:
    5 and 5, a champion. Alone it would score 3 everywhere. Its own row in the population (an
    older x) is left out; a row without orders gets no scores."""
    population = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "x"],
            "orders_total": [1, 2, 3, 4, 1],
            "recency_days": [10, 20, 30, 40, 400],
            "spend_total": [10.0, 20.0, 30.0, 40.0, 1.0],
            "r_score": [5, 4, 2, 1, 1],
            "f_score": [1, 2, 4, 5, 1],
            "m_score": [1, 2, 4, 5, 1],
            "rfm_segment": ["new", "x", "x", "x", "lost"],
        }
    )
    rows = pl.DataFrame(
        {
            "customer_id": ["x", "y"],
            "orders_total": [4, 0],
            "recency_days": [5, None],
            "spend_total": [50.0, 0.0],
            "r_score": [3, None],
            "f_score": [3, None],
            "m_score": [3, None],
            "rfm_segment": ["need_attention", None],
        },
        schema_overrides={"recency_days": pl.Int64},
    )
    got = scores_among(rows, population)
    assert got.select("r_score", "f_score", "m_score", "rfm_segment").rows() == [
        (5, 5, 5, "champions"),
        (None, None, None, None),
    ]

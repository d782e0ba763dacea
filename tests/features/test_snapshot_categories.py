"""complete_categories: a stored snapshot given the categories it lacks, as a build gives them.

review50 H-B: a snapshot stored by `features build` has its events' categories only; a model of
another category read NaN (unknown) for it where a build given that category reads 0.
"""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from features.snapshot import build_snapshot, complete_categories
from tests.features.conftest import AS_OF, events, order, row


def _events() -> pl.DataFrame:
    """Orders of two categories (one free), a visit-only customer, an uncategorised order."""
    return pl.concat(
        [
            events(
                order("a", "2024-05-01", 30.0, category="Shoes"),
                order("a", "2024-05-02", 10.0, category="garden"),
                order("b", "2024-05-03", 0.0, category="garden"),
                order("c", "2024-05-04", 12.0),
                ("d", "2024-05-05", "visit"),
            ),
            # an order after the day: not among the snapshot's, so its category is not either
            events(order("a", "2024-07-05", 5.0, category="toys")),
        ]
    )


def test_the_completion_equals_a_build_given_the_categories() -> None:
    """0 orders, a 0 share for whoever spent (null for a free order's or no order's customer),
    the columns where the build puts them: sorted with the snapshot's own."""
    frame = _events()
    stored = build_snapshot(frame, None, AS_OF)
    assert "cat_toys_orders" not in stored.columns
    wanted = ["toys", "apparel", "shoes"]
    built = build_snapshot(frame, None, AS_OF, categories=sorted({*wanted, "garden", "shoes"}))
    completed = complete_categories(stored, wanted)
    assert_frame_equal(completed, built, check_exact=True)
    assert (
        row(completed, "a")["cat_toys_orders"] == 0 and row(completed, "a")["cat_toys_share"] == 0
    )
    assert row(completed, "b")["cat_toys_share"] is None  # ordered, spent nothing
    assert (
        row(completed, "d")["cat_toys_orders"] == 0
        and row(completed, "d")["cat_toys_share"] is None
    )


def test_a_snapshot_with_every_category_is_returned_as_it_is() -> None:
    stored = build_snapshot(_events(), None, AS_OF)
    assert complete_categories(stored, ["garden", "Shoes"]) is stored

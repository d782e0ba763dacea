"""The one decile and band rule, by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.ranking import band, best_rows, decile_among, deciles, rank_bins, ranked_deciles


def test_deciles_by_hand() -> None:
    assert deciles(np.arange(10.0)).tolist() == list(range(10, 0, -1))
    assert deciles(np.array([0.5, 0.5, 0.9])).tolist() == [4, 7, 1]  # ties keep row order
    assert deciles(np.zeros(0)).tolist() == []


def test_rank_bins_are_equal_sized_and_stable() -> None:
    score = np.arange(20, 0, -1, dtype=float)
    assert rank_bins(score).tolist() == [b for b in range(1, 11) for _ in range(2)]
    assert rank_bins(np.array([0.5, 0.5, 0.5, 0.5]), n_bins=2).tolist() == [1, 1, 2, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60, unique=True), st.floats(0, 1))
def test_a_new_score_gets_the_decile_it_would_have_among_the_rows(
    population: list[float], new: float
) -> None:
    """Placing a score that ties with none is the same as ranking it with the others."""
    if new in population:
        return
    scores = np.array([*population, new])
    expected = 1 + (10 * int((scores > new).sum())) // len(population)
    assert decile_among(np.sort(np.array(population)), np.array([new]))[0] == min(expected, 10)


def test_decile_among_an_empty_population_is_one() -> None:
    assert decile_among(np.zeros(0), np.array([0.3, 0.9])).tolist() == [1, 1]


def test_bands() -> None:
    assert band(np.array([1, 2, 3, 5, 6, 10]), 2, 5).tolist() == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def test_best_rows_keep_the_first_of_equal_scores() -> None:
    groups = np.array(["x", "x", "y", "x"])
    assert best_rows(groups, np.array([0.3, 0.3, 0.1, 0.2])).tolist() == [True, False, True, False]
    assert best_rows(np.zeros(0), np.zeros(0)).tolist() == []


def test_ranked_deciles_rank_customers_by_their_best_category() -> None:
    """Customers a (0.9, 0.2), b (0.5, 0.6), c (0.1): a customer's band is its best row's.

    The best rows 0.9, 0.6 and 0.1 are ranked among themselves (1 + floor(10 r / 3): deciles 1,
    4, 7); the other rows are placed among them: 0.2 and 0.5 each have two best scores above,
    1 + floor(20 / 3) = 7. Per-row deciles would have put b's best, 0.6, in decile 3 of 5 rows.
    """
    groups = np.array(["a", "a", "b", "b", "c"])
    score = np.array([0.9, 0.2, 0.5, 0.6, 0.1])
    decile, reference = ranked_deciles(score, groups)
    assert decile.tolist() == [1, 7, 7, 4, 7]
    assert reference.tolist() == [0.1, 0.6, 0.9]
    assert band(decile[best_rows(groups, score)], 2, 5).tolist() == ["high", "medium", "low"]
    # a live score is placed on the same scale (a new customer whose best is 0.7: decile 4)
    assert decile_among(reference, np.array([0.7])).tolist() == [4]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(0, 1)), min_size=1, max_size=40))
def test_ranked_deciles_of_best_rows_are_the_customers_deciles(
    rows: list[tuple[int, float]],
) -> None:
    """One decile per customer, from its best score; every row's decile follows its score."""
    groups = np.array([g for g, _ in rows])
    score = np.array([s for _, s in rows])
    decile, reference = ranked_deciles(score, groups)
    best = best_rows(groups, score)
    assert best.sum() == len(np.unique(groups))
    np.testing.assert_array_equal(decile[best], deciles(score[best]))
    own = {g: decile[(groups == g) & best][0] for g in np.unique(groups)}
    placed = decile_among(reference, score[~best])
    np.testing.assert_array_equal(
        decile[~best], np.maximum(placed, [own[g] for g in groups[~best]])
    )
    for g in np.unique(groups):  # no row of a customer ranks above the customer's best
        assert decile[groups == g].min() == decile[(groups == g) & best][0]

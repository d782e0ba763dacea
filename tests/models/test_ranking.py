"""The one decile and band rule, by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.ranking import band, decile_among, deciles, rank_bins


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

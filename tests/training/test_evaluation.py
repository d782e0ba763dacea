"""Evaluation tables (gains, reliability) against hand-computed tiny fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import gains_table, reliability_curve

# 20 rows scored 20, 19, ..., 1; positives at ranks 1, 2, 5 and 12 (overall rate 0.2)
SCORE = np.arange(20, 0, -1, dtype=float)
Y = np.zeros(20, dtype=int)
Y[[0, 1, 4, 11]] = 1


def test_gains_table_by_hand() -> None:
    table = gains_table(Y, SCORE)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["rows"].tolist() == [2] * 10
    assert table["positives"].tolist() == [2, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    assert table["lift"].tolist() == pytest.approx([5, 0, 2.5, 0, 0, 2.5, 0, 0, 0, 0])
    assert table["cum_positives_share"].tolist() == pytest.approx(
        [0.5, 0.5, 0.75, 0.75, 0.75, 1, 1, 1, 1, 1]
    )
    assert table["cum_lift"].iloc[2] == pytest.approx(0.75 / 0.3)


def test_gains_with_uneven_bins() -> None:
    table = gains_table(np.array([1, 0, 0]), np.array([0.9, 0.5, 0.1]), n_bins=2)
    assert table["rows"].tolist() == [2, 1]
    assert table["positives"].tolist() == [1, 0]


def test_reliability_curve() -> None:
    curve = reliability_curve(np.array([0, 1, 1, 0]), np.array([0.05, 0.15, 0.95, 1.0]))
    assert curve["bin_lower"].tolist() == pytest.approx([0.0, 0.1, 0.9])
    assert curve["rows"].tolist() == [1, 1, 2]
    assert curve["mean_predicted"].tolist() == pytest.approx([0.05, 0.15, 0.975])
    assert curve["observed_rate"].tolist() == pytest.approx([0.0, 1.0, 0.5])

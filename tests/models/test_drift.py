"""Drift: hand-computed PSI, a planted shift at 1k and 1M rows, no alarm from size alone."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.contracts import MISSING
from models.drift import (
    DRIFT_COLUMNS,
    PSI_FLOOR,
    DriftThresholds,
    categorical_drift,
    feature_drift,
    format_measure,
    numeric_drift,
    psi,
    quantile_edges,
    score_drift,
)
from tests.conftest import loaded_by


def test_psi_by_hand_on_two_quantile_bins() -> None:
    # reference 1..4, 2 bins: the median 2 is the one edge, bins (-inf, 2] and (2, inf)
    assert quantile_edges(np.array([1.0, 2.0, 3.0, 4.0]), bins=2).tolist() == [2.0]
    # shares: reference 2/4, 2/4; current [1, 1, 1, 4] gives 3/4, 1/4
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert expected == pytest.approx(0.2746530722)
    result = numeric_drift(
        np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0, 4.0]), "x", DriftThresholds(bins=2)
    )
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert result.bins == 2
    # KS: the empirical CDFs differ most at 1..2 (3/4 against 1/4 or 2/4): D = 1/2
    assert result.ks == pytest.approx(0.5)
    # Wasserstein: moving 3 -> 1 and 2 -> 1 costs (2 + 1) / 4
    assert result.wasserstein == pytest.approx(0.75)
    assert result.wasserstein_std == pytest.approx(0.75 / np.std([1.0, 2.0, 3.0, 4.0]))


def test_psi_by_hand_with_a_missing_bin_and_an_emptied_category() -> None:
    # bins a, b, missing: reference 1/2, 1/2, 0 (floored); current 3/4, 0 (floored), 1/4
    r, c = [0.5, 0.5, PSI_FLOOR], [0.75, PSI_FLOOR, 0.25]
    expected = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert expected == pytest.approx(6.3143413, rel=1e-6)
    result = categorical_drift(["a", "a", "b", "b"], ["a", "a", "a", None], "segment")
    assert (result.kind, result.bins) == ("categorical", 3)
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert (result.missing_reference, result.missing_current) == (0.0, 0.25)
    assert math.isnan(result.ks) and math.isnan(result.wasserstein)


def test_bins_are_right_closed_so_a_heavy_value_keeps_its_own_bin() -> None:
    counts = np.array([0.0] * 80 + [1.0] * 10 + [2.0] * 5 + [5.0] * 5)
    edges = quantile_edges(counts, bins=10)
    # deciles 1-8 are 0 and decile 9 is 1: bins (-inf, 0], (0, 1], (1, inf)
    assert edges.tolist() == [0.0, 1.0]
    bins = np.searchsorted(edges, np.array([0.0, 0.5, 1.0, 2.0, 5.0]), side="left")
    assert bins.tolist() == [0, 1, 1, 2, 2]


def test_unseen_categories_share_the_other_bin() -> None:
    thresholds = DriftThresholds(max_categories=2)
    result = categorical_drift(["a", "a", "b", "c"], ["a", "d", "e", "c"], "s", thresholds)
    # top-2 of the reference are a (2) and b (1, ties broken by value: b before c)
    # bins a, b, other: reference 2/4, 1/4, 1/4 against current 1/4, 0, 3/4
    r, c = [0.5, 0.25, 0.25], [0.25, PSI_FLOOR, 0.75]
    expected = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert result.bins == 3
    assert result.psi == pytest.approx(expected, rel=1e-12)


def _frames(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reference and current samples of ``n`` rows: one planted shift, the rest unchanged."""
    rng = np.random.default_rng(seed)

    def sample(shift: float, scale: float) -> pl.DataFrame:
        spend = rng.lognormal(4.0, 1.0, n)
        spend[rng.random(n) < 0.1] = np.nan  # customers without orders
        return pl.DataFrame(
            {
                "customer_id": [f"C{i}" for i in range(n)],
                "complaints_90d": rng.poisson(0.3, n),
                "recency_days": rng.normal(100.0, 30.0, n) + shift,
                "spend_total": spend * scale,
                "rfm_segment": rng.choice(["champions", "loyal", "lost", "new"], n),
                "is_business": rng.random(n) < 0.2,
            }
        )

    return sample(0.0, 1.0), sample(15.0, 1.02)


@pytest.mark.parametrize("n", [1_000, 1_000_000])
def test_a_planted_shift_is_flagged_and_unshifted_features_are_not(n: int) -> None:
    reference, current = _frames(n, seed=n)
    # recency_days moved by half a standard deviation; spend_total grew by 2 %; nothing else
    table = feature_drift(reference, current)
    assert table.columns == list(DRIFT_COLUMNS)
    by_column = {row["column"]: row for row in table.iter_rows(named=True)}
    assert set(by_column) == {
        "complaints_90d",
        "recency_days",
        "spend_total",
        "rfm_segment",
        "is_business",
    }
    flagged = {c for c, row in by_column.items() if row["drifted"]}
    assert flagged == {"recency_days"}
    shifted = by_column["recency_days"]
    assert shifted["fired"] == "psi,ks,wasserstein"
    assert shifted["psi"] > 0.2 and shifted["wasserstein_std"] == pytest.approx(0.5, abs=0.1)
    assert by_column["rfm_segment"]["kind"] == "categorical"
    assert by_column["spend_total"]["missing_reference"] == pytest.approx(0.1, abs=0.03)
    if n == 1_000_000:
        # at a million rows a p-value alone would flag the 2 % growth of spend ...
        tiny = by_column["spend_total"]
        assert tiny["ks_p_value"] < 1e-6
        # ... but its effect is immaterial, so it is not drift
        assert tiny["ks"] < 0.01 and tiny["psi"] < 0.001 and tiny["wasserstein_std"] < 0.02


def test_small_samples_do_not_false_alarm_on_psi_noise() -> None:
    """100 rows a side, no change: PSI passes 0.1 by chance often; the flag stays quiet."""
    naive, flagged = 0, 0
    for seed in range(1_000):
        rng = np.random.default_rng(seed)
        result = numeric_drift(rng.normal(size=100), rng.normal(size=100))
        naive += result.psi >= 0.1
        flagged += result.drifted
    assert naive > 700  # a fixed PSI threshold alone alarms on most unchanged pairs
    assert flagged <= 10  # at most alpha = 1 %


def test_missing_values_appearing_are_drift() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=5_000)
    current = rng.normal(size=5_000)
    current[:1_500] = np.nan  # 30 % of the values go missing, the rest keep their distribution
    result = numeric_drift(reference, current, "rate")
    assert result.bins == 11  # ten quantile bins and the missing bin
    assert result.missing_current == pytest.approx(0.3)
    assert result.drifted and result.fired == "psi"


def test_a_constant_reference_that_moved_is_infinitely_many_sds_away_and_says_so() -> None:
    """light36: guanxi drift printed "inf" for such a column's W / sd and the page the missing
    mark, read "not available", beside a "fired" naming the Wasserstein distance; both say "∞"."""
    moved = numeric_drift(np.zeros(200), np.ones(200), "complaints_90d")
    assert moved.wasserstein_std == math.inf and moved.drifted and "wasserstein" in moved.fired
    assert format_measure(moved.wasserstein_std) == "∞" and format_measure(-math.inf) == "−∞"
    shown = [format_measure(v) for v in (None, math.nan, 0.1234, 1234.5)]
    assert shown == [MISSING, MISSING, "0.123", "1,234.500"]  # as format_number writes them
    assert format_measure(0.1234, 2) == "0.12"


def test_drift_writes_its_figures_without_loading_the_optimiser() -> None:
    """review37: models.drift imported models.targeting (the knapsack solver, the offers schema,
    the equity code) only to reach format_number, as a6b3c8c had found of MISSING; the
    formatters are features.formatting's now."""
    assert not {"models.targeting", "models.knapsack"} & loaded_by("models.drift")


def test_score_drift_per_task() -> None:
    rng = np.random.default_rng(3)

    def scores(churn_shift: float) -> pl.DataFrame:
        churn = 1 / (1 + np.exp(-(rng.normal(-1.0, 1.0, 5_000) + churn_shift)))
        repurchase = 1 / (1 + np.exp(-rng.normal(0.5, 1.0, 5_000)))
        return pl.DataFrame(
            {
                "task": ["churn"] * 5_000 + ["repurchase"] * 5_000,
                "score": np.concatenate([churn, repurchase]),
            }
        )

    table = score_drift(scores(0.0), scores(0.8))
    assert table["column"].to_list() == ["churn", "repurchase"]
    assert table["drifted"].to_list() == [True, False]


def test_empty_samples_and_unknown_columns_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'recency_days'.*0 current rows"):
        numeric_drift(np.array([1.0]), np.array([]), "recency_days")
    frame = pl.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="'b' is missing from the reference"):
        feature_drift(frame, frame, columns=["b"])
    with pytest.raises(ValueError, match="bins must be at least 2"):
        DriftThresholds(bins=1)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("psi", -1.0, "psi must be a non-negative number, got -1.0"),
        ("psi", float("nan"), "psi must be a non-negative number, got nan"),
        ("wasserstein", float("inf"), "wasserstein must be a non-negative number, got inf"),
        ("ks", 1.5, "ks must be in [0, 1], got 1.5"),
    ],
)
def test_a_threshold_no_drift_can_reach_or_every_drift_does_is_refused(
    field: str, value: float, said: str
) -> None:
    """loop23: `guanxi drift --psi -1` wrote a report in which the PSI bar was no bar at all."""
    with pytest.raises(ValueError) as info:
        DriftThresholds(**{field: value})  # type: ignore[arg-type]
    assert str(info.value) == said
    assert DriftThresholds(psi=0.0, ks=1.0).ks == 1.0  # the bounds themselves are thresholds


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.integers(0, 1_000), min_size=2, max_size=12).filter(lambda c: sum(c) > 0),
    factor=st.integers(1, 7),
)
def test_psi_is_zero_for_equal_shares_and_never_negative(counts: list[int], factor: int) -> None:
    r = np.array(counts)
    assert psi(r, r * factor) == pytest.approx(0.0, abs=1e-12)
    assert psi(r, r[::-1]) >= 0.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_changes_nothing(seed: int) -> None:
    reference, current = _frames(300, seed)
    shuffled = current.sample(fraction=1.0, shuffle=True, seed=seed)
    assert feature_drift(reference, current).equals(feature_drift(reference, shuffled))

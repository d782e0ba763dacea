"""The loaded state: served scores equal batch scores, contributions add up, deciles, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.artifact import ModelBundle
from models.ranking import deciles
from models.scoring import score_snapshot
from models.tasks import task_names
from serving.explaining import ensure_explained_together
from serving.presentation import stored_scores
from serving.schemas import MAX_REASONS
from serving.state import IncompatibleModelError, LoadedSnapshot, ServedModel, ServingState
from serving.tables import build_state


@pytest.fixture(scope="module")
def state(served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot) -> ServingState:
    return build_state(served, loaded_snapshot)


@pytest.fixture(scope="module")
def batches(snapshot: pl.DataFrame, bundles: dict[str, ModelBundle]) -> dict[str, pl.DataFrame]:
    """Batch scores with every reason, as `guanxi score` computes them."""
    return {
        task: score_snapshot(b, snapshot, explain_k=MAX_REASONS, model_version="1")
        for task, b in bundles.items()
    }


@settings(
    max_examples=25,
    deadline=None,
    # too_slow as in the profile (tests/conftest.py): this list replaces the profile's
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_served_score_is_batch_score_and_contributions_add_up(
    data: st.DataObject,
    state: ServingState,
    snapshot: pl.DataFrame,
    bundles: dict[str, ModelBundle],
    batches: dict[str, pl.DataFrame],
) -> None:
    ids = snapshot.get_column("customer_id").to_list()
    chosen = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=6))
    task = data.draw(st.sampled_from(task_names()))
    bundle = bundles[task]
    k = min(MAX_REASONS, len(bundle.feature_names))
    positions = state.positions(chosen)
    served = stored_scores(state, positions, [task], k=k, group=False)
    table = state.tables[task]
    for cid, position, scores in zip(chosen, positions, served, strict=True):
        s = scores[task]
        rows = (
            batches[task]
            .filter(pl.col("customer_id") == cid)
            .sort("score", descending=True, maintain_order=True, nulls_last=True)
        )
        assert s.status == rows["status"][0]
        if rows["score"][0] is None:  # outside the population, or nothing to rank
            assert rows.height == 1 and s.status != "eligible" and s.status_reason
            assert s.probability is None and s.decile is None and s.reasons == []
            continue
        best = rows.row(0, named=True)
        assert s.probability == pytest.approx(best["score"], abs=1e-12)
        assert s.log_odds == pytest.approx(best["margin"], abs=1e-9)
        assert s.decile == best["decile"]
        assert s.model_version == best["model_version"]
        assert [r.feature for r in s.reasons] == [
            best[f"reason_{i}_feature"] for i in range(1, k + 1)
        ]
        assert [r.contribution_log_odds for r in s.reasons] == pytest.approx(
            [best[f"reason_{i}_logodds"] for i in range(1, k + 1)], abs=1e-6
        )
        # every contribution kept for the customer, plus the base value, is the margin
        assert s.base_log_odds == table.contributions[position, -1] == best["base_logodds"]
        total = s.base_log_odds + table.contributions[position, :-1].astype(np.float64).sum()
        assert total == pytest.approx(s.log_odds, abs=1e-4)
        if task == "cross_sell":
            assert s.categories is not None
            assert [c.category for c in s.categories] == rows.get_column("category").to_list()


def test_deciles_follow_probabilities(state: ServingState) -> None:
    for table in state.tables.values():
        order = np.lexsort((table.decile, -table.proba))  # equal probabilities: row order decides
        assert np.all(np.diff(table.decile[order]) >= 0)
        assert table.decile.min() == 1 and table.decile.max() == 10
        # a live score equal to a stored one that ties with no other gets the batch decile
        values, counts = np.unique(table.proba, return_counts=True)
        alone = np.isin(table.proba, values[counts == 1])
        assert alone.sum() > len(alone) // 2
        np.testing.assert_array_equal(table.decile_of(table.proba[alone]), table.decile[alone])


def test_cross_sell_bands_come_from_each_customers_best_category(state: ServingState) -> None:
    """A customer's cross-sell decile (so band) ranks its top category's probability among the
    customers' top categories, not among every (customer, category) row: high is the top fifth
    of customers (band_high_decile 2), as for the other tasks."""
    table = state.tables["cross_sell"]
    has = table.top >= 0
    best = table.proba[table.top[has]]
    np.testing.assert_array_equal(table.decile[table.top[has]], deciles(best))
    np.testing.assert_array_equal(table.population, np.sort(best))
    high = state.band(table.decile[table.top[has]]) == "high"
    assert high.mean() == pytest.approx(0.2, abs=1 / has.sum() + 1e-9)
    assert best[high].min() >= best[~high].max()  # the band reads the probability scale


def test_bands(state: ServingState) -> None:
    assert state.band(np.array([1, 2, 3, 5, 6, 10])).tolist() == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def test_unknown_ids_get_minus_one(state: ServingState) -> None:
    assert state.positions(["c000", "nope", "c079"]).tolist() == [0, -1, 79]


def test_holds_is_what_positions_finds(state: ServingState) -> None:
    """The one lookup the 404s' whitespace hints ask (three copies of a lambda over positions)."""
    ids = ["c000", "nope", "c079", "c000 ", " c079", ""]
    assert [state.holds(c) for c in ids] == (state.positions(ids) >= 0).tolist()
    assert [state.holds(c) for c in ids] == [True, False, True, False, False, False]


def test_contributions_are_cached(state: ServingState) -> None:
    table = state.tables["churn"]
    positions = np.flatnonzero(table.top >= 0)[:2]
    stored_scores(state, positions, ["churn"], k=3, group=False)
    assert table.explained[positions].all()
    before = table.contributions[positions].copy()
    stored_scores(state, positions, ["churn"], k=3, group=False)
    np.testing.assert_array_equal(table.contributions[positions], before)


def test_rows_are_arrays_and_tasks_are_explained_together(
    served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot
) -> None:
    """A table keeps its model rows as one array over X's memory (a request picks rows by
    position, no pandas); a customer explained for every task at once (helper threads) gets the
    contributions one task at a time gives."""
    state = build_state(served, loaded_snapshot)
    tables = list(state.tables.values())
    for table in tables:
        assert np.shares_memory(table.values, table.X.to_numpy())
        np.testing.assert_array_equal(
            table.values, table.X.to_numpy(dtype=np.float64, na_value=np.nan)
        )
    everywhere = np.logical_and.reduce([t.top >= 0 for t in tables])
    position = int(np.flatnonzero(everywhere)[0])
    assert len(tables) > 2 and not any(t.explained[position] for t in tables)
    ensure_explained_together(tables, position)
    ensure_explained_together(tables, position)  # nothing left to do
    for table in tables:
        assert table.explained[position]
        alone = table.model.bundle.contributions(table.X.iloc[[table.top[position]]])
        np.testing.assert_array_equal(table.contributions[position], alone[0])


def test_other_feature_set_version_is_refused(
    served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot
) -> None:
    old = dataclasses.replace(served["churn"].bundle, feature_set_version="0")
    models = dict(served, churn=dataclasses.replace(served["churn"], bundle=old))
    with pytest.raises(
        IncompatibleModelError, match=r"feature set version 0.*feature set version 1"
    ):
        build_state(models, loaded_snapshot)


def test_model_of_another_task_is_refused(
    served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot
) -> None:
    with pytest.raises(IncompatibleModelError, match="'repurchase' model"):
        build_state({"churn": served["repurchase"]}, loaded_snapshot)


def test_repeated_customer_is_refused(
    served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot
) -> None:
    frame = pl.concat([loaded_snapshot.frame, loaded_snapshot.frame.head(1)])
    first = frame["customer_id"][0]
    # dups28: it said "repeats customer ids", naming none of them nor what to run
    with pytest.raises(
        ValueError,
        match=rf"^the snapshot as of {loaded_snapshot.as_of} lists customer '{first}' on more "
        rf"than one row: .*; build it again \(guanxi features build --as-of "
        rf"{loaded_snapshot.as_of}\)$",
    ):
        build_state(served, dataclasses.replace(loaded_snapshot, frame=frame))


def test_reason_cache_is_bounded(
    served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot
) -> None:
    small = build_state(served, loaded_snapshot, reason_cache_size=3)
    table = small.tables["churn"]
    first = stored_scores(small, small.positions(["c001"]), ["churn"], k=5, group=False)
    stored_scores(
        small, small.positions(["c002", "c003", "c004", "c005"]), ["churn"], k=5, group=False
    )
    assert len(table.reason_cache) == 3
    again = stored_scores(small, small.positions(["c001"]), ["churn"], k=5, group=False)
    assert again == first

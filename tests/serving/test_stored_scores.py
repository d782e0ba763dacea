"""Scores and reasons kept in the store: serving reads them instead of computing, same answers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from features.store import MANIFEST_SUFFIX, Store, TamperedTableError, snapshot_digest
from models.artifact import ModelBundle
from models.scoring import score_snapshot
from serving.app import create_app
from serving.explaining import ensure_explained, score_table
from serving.loader import load_state
from serving.presentation import stored_scores
from serving.schemas import MAX_REASONS
from serving.settings import Settings
from serving.state import kept_reasons
from serving.tables import build_state
from tests.serving.conftest import AS_OF, StaticSource, headers, make_settings, until, wait_ready


def _responses(client: TestClient, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for customer in ids:
        for query in (f"?explain={MAX_REASONS}&group=true", "?explain=3"):
            r = client.get(f"/v1/customers/{customer}/scores{query}", headers=headers())
            assert r.status_code == 200, r.text
            out.append(r.json())
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ids, "explain": 4})
    assert r.status_code == 200, r.text
    out.append(r.json())
    return out


def _serve(settings: Settings, source: StaticSource, ids: list[str]) -> list[dict[str, Any]]:
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        return _responses(client, ids)


def _forbid_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("computed although the store has the table")

    monkeypatch.setattr(ModelBundle, "contributions", refuse)
    monkeypatch.setattr(ModelBundle, "predict_margin", refuse)
    monkeypatch.setattr("models.explain.explain", refuse)
    monkeypatch.setattr("serving.explaining.explain", refuse)


def _write_batch_tables(
    store: Store, bundles: dict[str, ModelBundle], snapshot: pl.DataFrame, explain_k: int
) -> None:
    """What `guanxi score --explain K` keeps in the store."""
    for task, bundle in bundles.items():
        scored = score_snapshot(bundle, snapshot, explain_k, model_name=task, model_version="1")
        store.write_scores(
            task,
            AS_OF,
            "1",
            scored,
            model_name=task,
            feature_set_version=bundle.feature_set_version,
            explain_k=min(explain_k, len(bundle.feature_names)),
            snapshot_digest=snapshot_digest(snapshot),
        )


@pytest.fixture(scope="module")
def ids(snapshot: pl.DataFrame) -> list[str]:
    return snapshot.get_column("customer_id").to_list()[::7]


def test_batch_table_is_served_as_computed(
    tmp_path: Path,
    source: StaticSource,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    ids: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path / "home")
    computed = _serve(settings, source, ids)
    _write_batch_tables(settings.store(), bundles, snapshot, MAX_REASONS)
    _forbid_computing(monkeypatch)
    state = load_state(source, settings)
    assert all(t.stored is not None for t in state.tables.values())
    assert all(t.explained[t.top >= 0].all() for t in state.tables.values())
    assert _serve(settings, source, ids) == computed


def test_background_writes_the_table_and_the_next_start_reads_it(
    tmp_path: Path, source: StaticSource, ids: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "home", precompute_reasons=True)
    store = settings.store()
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        computed = _responses(client, ids)
        until(
            lambda: all(store.score_info(t, AS_OF, "1") for t in settings.tasks),
            "the background wrote no score table",
        )
        infos = [store.score_info(t, AS_OF, "1") for t in settings.tasks]
    assert all(info is not None and info.explain_k > 0 for info in infos), infos
    _forbid_computing(monkeypatch)
    assert _serve(settings, source, ids) == computed


def test_serving_table_has_the_batch_layout(
    served: dict[str, Any], loaded_snapshot: Any, bundles: dict[str, ModelBundle]
) -> None:
    state = build_state(served, loaded_snapshot)
    for task in ("churn", "repurchase"):
        table = state.tables[task]
        ensure_explained(table, np.flatnonzero(table.top >= 0))
        batch = score_snapshot(
            bundles[task],
            loaded_snapshot.frame,
            explain_k=kept_reasons(bundles[task]),
            model_name=task,
            model_version="1",
        )
        assert_frame_equal(score_table(table, state.index, chunk=7), batch)
    table = state.tables["cross_sell"]
    with pytest.raises(ValueError, match="not every customer is explained"):
        score_table(table, state.index)
    ensure_explained(table, np.flatnonzero(table.top >= 0))
    cross = score_table(table, state.index)
    assert cross.filter(pl.col("status") == "eligible").height == len(table.X)
    assert cross.filter(pl.col("status") == "no_candidates").height == (table.top < 0).sum() > 0
    assert cross.get_column("reason_1_feature").drop_nulls().len() == (table.top >= 0).sum()


@pytest.mark.parametrize("defect", ["row", "order", "digest", "reasons", "model", "unsigned"])
def test_unusable_tables_are_ignored_with_a_warning(
    defect: str,
    tmp_path: Path,
    source: StaticSource,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path / "home")
    store = settings.store() if defect != "unsigned" else Store(settings.home)
    bundle = bundles["churn"]
    scored = score_snapshot(bundle, snapshot, MAX_REASONS, model_name="churn", model_version="1")
    meta: dict[str, Any] = {
        "model_name": "churn",
        "feature_set_version": bundle.feature_set_version,
        "explain_k": kept_reasons(bundle),
        "snapshot_digest": snapshot_digest(snapshot),
    }
    if defect == "row":
        scored = scored.head(-1)
    elif defect == "order":
        scored = scored.reverse()
    elif defect == "digest":
        meta["snapshot_digest"] = snapshot_digest(snapshot.head(5))
    elif defect == "reasons":
        meta["explain_k"] = 5
    elif defect == "model":
        meta["model_name"] = "churn-old"
    store.write_scores("churn", AS_OF, "1", scored, **meta)
    with caplog.at_level(logging.WARNING):
        state = load_state(source, settings)
    assert state.tables["churn"].stored is None
    assert "ignoring the stored score table of churn version 1" in caplog.text
    if defect == "reasons":  # the README's --explain 5: the warning says what the server reads
        assert f"guanxi score --explain {kept_reasons(bundle)} is read" in caplog.text
    reference = build_state(source.models, source.snapshot)
    positions = state.positions(["c001", "c002"])
    assert stored_scores(state, positions, ["churn"], 5, False) == stored_scores(
        reference, positions, ["churn"], 5, False
    )


@pytest.mark.parametrize("change", ["value", "bytes", "manifest"])
def test_a_tampered_table_is_refused_and_the_previous_state_keeps_serving(
    change: str,
    tmp_path: Path,
    source: StaticSource,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    ids: list[str],
) -> None:
    settings = make_settings(tmp_path / "home")
    _write_batch_tables(settings.store(), bundles, snapshot, MAX_REASONS)
    path = settings.store().score_path("churn", AS_OF, "1")
    manifest = path.with_name(path.name + MANIFEST_SUFFIX)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        before = _responses(client, ids)
        if change == "value":  # a score changed and the file rewritten with the same metadata
            table = pl.read_parquet(path)
            metadata = pl.read_parquet_metadata(path)
            table = table.with_columns(
                pl.when(pl.col("customer_id") == ids[0])
                .then(0.999)
                .otherwise(pl.col("score"))
                .alias("score")
            )
            table.write_parquet(path, metadata=metadata)
        elif change == "bytes":
            raw = bytearray(path.read_bytes())
            raw[len(raw) // 2] ^= 0xFF
            path.write_bytes(bytes(raw))
        else:  # a manifest rewritten for other bytes without the key
            data = json.loads(manifest.read_text())
            manifest.write_text(json.dumps({**data, "sha256": "0" * 64}))
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409
        assert _responses(client, ids) == before  # the previous state keeps serving
    with pytest.raises(TamperedTableError):
        load_state(source, settings)


def test_a_ranked_table_whose_first_row_is_not_explained_is_served(
    tmp_path: Path,
    source: StaticSource,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    ids: list[str],
) -> None:
    """A ranked task's table explains each customer's top rows only, so its first row may have
    no base: the base comes from an explained row (the demo's rule-backed cross-sell table
    began so, and the server refused to load)."""
    settings = make_settings(tmp_path / "home")
    computed = _serve(settings, source, ids)
    bundle = bundles["cross_sell"]
    scored = score_snapshot(
        bundle, snapshot, MAX_REASONS, model_name="cross_sell", model_version="1"
    )
    assert scored["base_logodds"].null_count() < scored.height
    scored = scored.with_columns(  # as a first row that is not a customer's top row
        pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("base_logodds"))
        .alias("base_logodds")
    )
    settings.store().write_scores(
        "cross_sell",
        AS_OF,
        "1",
        scored,
        model_name="cross_sell",
        feature_set_version=bundle.feature_set_version,
        explain_k=min(MAX_REASONS, len(bundle.feature_names)),
        snapshot_digest=snapshot_digest(snapshot),
    )
    state = load_state(source, settings)
    table = state.tables["cross_sell"]
    assert table.stored is not None
    assert table.base_log_odds == pytest.approx(float(scored["base_logodds"].drop_nulls()[0]))
    assert _serve(settings, source, ids) == computed

"""The model page's cards of versions the server does not serve (qa49 Lows)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient

from models import registry
from serving.app import create_app
from serving.ui.cards import ModelCards, VersionCard
from tests.serving.conftest import KEYS, SAME_ORIGIN, StaticSource, make_settings, wait_ready
from tests.serving.ui_data import UIWorld


@pytest.fixture
def registry_uri(world: UIWorld) -> Iterator[str]:
    mlflow.set_tracking_uri(world.uri)
    mlflow.set_registry_uri(world.uri)
    yield world.uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _page(settings_home: Path, path: str, **overrides: object) -> str:
    """``path`` as a reviewer reads it, from a server of the world's registry."""
    with TestClient(create_app(make_settings(settings_home, **overrides))) as client:
        wait_ready(client)
        r = client.post(
            "/ui/login",
            headers=SAME_ORIGIN,
            data={"api_key": KEYS["reviewer"], "next": "/ui/"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        page = client.get(path)
    assert page.status_code == 200, page.text
    return page.text


def _card(page: str, slot: str) -> str:
    """The words of one card of the model page (``champion`` or ``challenger``)."""
    start = page.index(f'id="card-{slot}"')
    end = page.find('<section class="card model-card"', start + 1)
    end = page.index('id="metrics"') if end < 0 else end
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[start:end])).split())


def test_an_unserved_version_says_why_its_data_window_and_calibration_are_not_shown(
    world: UIWorld, registry_uri: str
) -> None:
    """qa49 L (a): the challenger's card read "Data window —" and "Calibration —", though its
    metadata records both (2024-01-01, and the method): they are in its bundle, which a page
    does not load for a version not served, and in its run's model card, not in the run's
    parameters; the card says so. The served champion's shows them."""
    page = _page(world.home, "/ui/models/churn")
    champion, challenger = _card(page, "champion"), _card(page, "challenger")
    assert "Data window 1 Jan 2024 – 31 Mar 2024" in champion
    unread = (
        "not read: its run's parameters do not record it (its model's metadata and its model "
        "card do), and its model is not loaded for a version not served"
    )
    assert f"Data window {unread}" in challenger
    assert f"Calibration {unread}" in challenger
    assert "Calibration —" not in challenger


def test_an_unserved_task_s_champion_is_called_the_champion(
    world: UIWorld, registry_uri: str
) -> None:
    """qa49 L (b): with GUANXI_TASKS=churn, cross-sell's champion (not served) was said to be a
    challenger ("a challenger's bundle is not loaded"): it is the champion, not served."""
    page = _page(world.home, "/ui/models/cross_sell", tasks=("churn",))
    champion = _card(page, "champion")
    assert "challenger" not in champion.lower()
    assert "Shown for the served version only (the champion, not served: its bundle is" in champion
    assert "challenger's bundle" in _card(page, "challenger")


def test_cross_sell_s_headline_holds_its_graded_metrics_as_read_from_the_run(
    source: StaticSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa49 L (c): metrics read back from a run carry MLflow's keys (``precision_at_3``), so the
    headline, which looked for ``precision@3``, showed cross-sell's ROC-AUC and the like but not
    precision@3 or NDCG@3, the metrics its grade is of."""
    ranked = {
        "precision@1": 0.31,
        "recall@1": 0.12,
        "precision@3": 0.251,
        "recall@3": 0.28,
        "ndcg@3": 0.402,
        "roc_auc": 0.79,
    }
    run = registry.nest_metrics(registry.flatten_metrics({"xgboost": ranked, "rule": ranked}))
    assert "precision_at_3" in run["xgboost"]  # as MLflow keeps them
    card = VersionCard(
        task="cross_sell",
        version="3",
        aliases=("champion",),
        created=None,
        run_id=None,
        run_url=None,
        metrics=run,
        metric_source="run",
        grade="B",
        feature_set_version="x",
    )
    monkeypatch.setattr(
        "serving.ui.pages.load_cards", lambda *args: ModelCards("cross_sell", card, None, 3)
    )
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as client:
        wait_ready(client)
        client.post(
            "/ui/login",
            headers=SAME_ORIGIN,
            data={"api_key": KEYS["reviewer"], "next": "/ui/"},
            follow_redirects=False,
        )
        page = client.get("/ui/models/cross_sell").text
    headline = page[page.index('id="headline-champion"') :].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">([^<]*)</th><td class="num" data-headline', headline)
    assert rows == ["precision@1", "recall@1", "precision@3", "recall@3", "NDCG@3", "ROC-AUC"]
    assert 'data-headline="ndcg_at_3">0.402' in headline


def test_the_served_champion_without_rows_to_explain_is_not_called_unserved(
    world: UIWorld, registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa49 L (b): the card of the served champion whose global SHAP had no rows of the snapshot
    to explain read "(the champion, not served: its bundle is not loaded ...)": it is served, and
    the card says there was nothing to explain."""
    monkeypatch.setattr("serving.ui.cards._SHAP_ROWS", 0)  # a sample of no rows
    page = _page(world.home, "/ui/models/churn")
    champion = _card(page, "champion")
    assert "not served" not in champion
    assert "Global SHAP importance No rows of the snapshot to explain." in champion
    assert "challenger's bundle" in _card(page, "challenger")


def _login(client: TestClient) -> None:
    r = client.post(
        "/ui/login",
        headers=SAME_ORIGIN,
        data={"api_key": KEYS["reviewer"], "next": "/ui/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_a_reload_on_the_same_snapshot_day_rebuilds_both_cards(
    world: UIWorld, registry_uri: str
) -> None:
    """qa44 M1: after a promotion and POST /v1/admin/reload on the same snapshot day, the new
    champion's card was the one cached while it was not served ("Data window — not available",
    "No rows of the snapshot to explain."), and the version no longer served kept its served
    card. A card is kept per served-or-not, so the reload rebuilds both."""
    old, new = world.versions["churn"]
    unread = (
        "not read: its run's parameters do not record it (its model's metadata and its model "
        "card do), and its model is not loaded for a version not served"
    )
    with TestClient(create_app(make_settings(world.home))) as client:
        wait_ready(client)
        _login(client)
        before = client.get("/ui/models/churn").text
        assert f"Data window {unread}" in _card(before, "challenger")
        try:
            registry.set_champion("churn", new)
            registry.set_alias("churn", registry.CHALLENGER, old)
            r = client.post("/v1/admin/reload", headers={"X-API-Key": KEYS["admin"]})
            assert r.status_code == 200, r.text
            after = client.get("/ui/models/churn").text
        finally:
            registry.set_champion("churn", old)
            registry.set_alias("churn", registry.CHALLENGER, new)
            client.post("/v1/admin/reload", headers={"X-API-Key": KEYS["admin"]})
    champion, challenger = _card(after, "champion"), _card(after, "challenger")
    assert f"v{new}" in champion and f"v{old}" in challenger
    assert "Data window 1 Jan 2024 –" in champion
    assert unread not in champion
    assert "Data window — not available" not in champion
    assert "Calibration — not available" not in champion
    assert "Calibration " in champion and f"Calibration {unread}" not in champion
    assert "No rows of the snapshot to explain" not in champion
    assert "data-no-rows" not in after
    assert f"Data window {unread}" in challenger
    assert f"Calibration {unread}" in challenger


def test_a_task_left_out_by_guanxi_tasks_says_so_in_the_header(
    world: UIWorld, registry_uri: str
) -> None:
    """qa44 L4: with GUANXI_TASKS=churn, /ui/models/cross_sell (reached by URL; the menu lists
    churn only) never said that this server does not serve cross-sell, nor why."""
    page = _page(world.home, "/ui/models/cross_sell", tasks=("churn",))
    head = page.split('id="model-task-not-served"', 1)[1].split("<", 1)[0]
    assert head == ">cross_sell is not served by this server (GUANXI_TASKS=churn)"
    served = _page(world.home, "/ui/models/churn", tasks=("churn",))
    assert 'id="model-task-not-served"' not in served
    every = _page(world.home, "/ui/models/cross_sell")
    assert 'id="model-task-not-served"' not in every

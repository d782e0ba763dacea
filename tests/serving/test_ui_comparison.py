"""When the model page compares two versions' metrics (qa49 M3): only measured on the same
held-out day under the same task definition (horizon, activity window); otherwise it says why
not. Hand-built version metadata, as training records it (the run's params, the model's own)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import polars as pl
import pytest
from fastapi.testclient import TestClient

from models import registry
from models.artifact import ModelBundle
from models.registry import VersionInfo, configure_tracking, flatten_metrics
from models.scoring import model_rows
from serving.app import create_app
from serving.state import ServedModel
from serving.ui.cards import Measured, _build, comparison_note, measured_on, training_params
from tests.serving.conftest import KEYS, SAME_ORIGIN, StaticSource, make_settings, wait_ready
from training.tracking import experiment_id, log_dict_params

# as MLflow keeps a run's params: text, nested keys joined by dots (training.tracking)
RUN_PARAMS = {
    "as_of": "2024-10-31",
    "horizon": "90",
    "active_days": "365",
    "cutoffs.train": "[datetime.date(2024, 4, 4), datetime.date(2024, 5, 4)]",
    "cutoffs.validation": "2024-07-31",
    "cutoffs.test": "2024-10-31",
    "cutoffs.split": "time",
}
OCT = Measured(held_out=date(2024, 10, 31), horizon=90, active_days=365)


def test_a_versions_held_out_day_and_definition_are_read_as_training_records_them() -> None:
    # from its run's params (a challenger's card, a previous version)
    assert measured_on(training_params(None, RUN_PARAMS)) == OCT
    # from the model's own metadata (the served version's card): the population's window first
    meta = {
        "params": {"horizon": 60, "active_days": 365, "cutoffs": {"test": "2024-07-31"}},
        "population": {"active_days": 180},
    }
    bundle = SimpleNamespace(metadata=meta, calibration={})
    assert measured_on(training_params(bundle, {})) == Measured(date(2024, 7, 31), 60, 180)  # type: ignore[arg-type]
    # a version that records none of it (older ones, a version tag's horizon alone)
    assert measured_on(training_params(None, {})) == Measured(None, None, None)
    assert measured_on(training_params(None, {"horizon": "90"})) == Measured(None, 90, None)
    assert measured_on({"cutoffs": {"test": "not a day"}, "horizon": "x"}) == Measured()
    # read as the promotion gate reads them (models.definitions.recorded_int): 90.0 is 90 days
    assert measured_on({"horizon": 90.0, "active_days": "180.0"}) == Measured(None, 90, 180)


def test_versions_measured_alike_are_compared() -> None:
    assert comparison_note(OCT, OCT) is None
    # a task whose population reads no activity window: the window changes nothing
    wider = replace(OCT, active_days=730)
    assert comparison_note(OCT, wider, window=False) is None


def test_another_held_out_day_is_not_compared() -> None:
    july = replace(OCT, held_out=date(2024, 7, 31))
    assert comparison_note(july, OCT) == (
        "measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable"
    )
    assert comparison_note(july, OCT, names=("champion", "challenger")) == (
        "the champion's held-out day 31 Jul 2024, the challenger's 31 Oct 2024: not comparable"
    )


def test_another_definition_is_not_compared() -> None:
    sixty = replace(OCT, horizon=60)
    assert comparison_note(OCT, sixty) == "another definition: 90-day horizon then, 60 now"
    narrower = replace(OCT, active_days=180)
    assert comparison_note(OCT, narrower) == (
        "another definition: 365-day activity window then, 180 now"
    )
    both = replace(OCT, horizon=60, active_days=180, held_out=date(2024, 11, 30))
    assert comparison_note(OCT, both) == (
        "another definition: 90-day horizon then, 60 now; 365-day activity window then, 180 now;"
        " measured on 31 Oct 2024, this one on 30 Nov 2024: not comparable"
    )
    # qa43 L6: "90-day horizon champion, 60 challenger" read oddly; the versions come first
    assert comparison_note(OCT, sixty, names=("champion", "challenger")) == (
        "another definition: the champion's horizon 90 days, the challenger's 60"
    )
    assert comparison_note(OCT, both, names=("champion", "challenger")) == (
        "another definition: the champion's horizon 90 days, the challenger's 60;"
        " the champion's activity window 365 days, the challenger's 180;"
        " the champion's held-out day 31 Oct 2024, the challenger's 30 Nov 2024: not comparable"
    )


def test_a_version_that_records_no_held_out_day_or_definition_is_not_recorded() -> None:
    older = Measured(None, 90, None)
    assert comparison_note(older, OCT) == (
        "not recorded: the previous version records no held-out day or activity window"
    )
    assert comparison_note(OCT, Measured()) == (
        "not recorded: this one records no held-out day, horizon or activity window"
    )
    # the window need not be recorded where it defines nothing
    assert comparison_note(older, OCT, window=False) == (
        "not recorded: the previous version records no held-out day"
    )
    assert comparison_note(Measured(), OCT, names=("champion", "challenger")) == (
        "not recorded: the champion records no held-out day, horizon or activity window"
    )


def _run(metrics: dict[str, float], params: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        info=SimpleNamespace(experiment_id="0", run_id="r" * 32),
        data=SimpleNamespace(metrics=metrics, tags={}, params=params),
    )


@pytest.mark.parametrize(
    ("before", "said"),
    [
        (
            {**RUN_PARAMS, "cutoffs.test": "2024-07-31"},
            "measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable",
        ),
        ({**RUN_PARAMS, "horizon": "60"}, "another definition: 60-day horizon then, 90 now"),
        (
            {},
            "not recorded: the previous version records no held-out day, horizon or "
            "activity window",
        ),
    ],
)
def test_a_card_keeps_no_change_since_a_version_measured_otherwise(
    before: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Churn v2 after v1: v1 measured on another day, under another horizon, or recording
    neither. The card keeps no change (no row's, no AUC's) and says why; measured alike, the
    changes are this one's minus v1's."""
    runs = {
        "a" * 32: _run({"xgboost_roc_auc": 0.71, "xgboost_brier": 0.20}, before),
        "b" * 32: _run({"xgboost_roc_auc": 0.75, "xgboost_brier": 0.18}, RUN_PARAMS),
    }
    client = SimpleNamespace(get_run=runs.__getitem__)
    monkeypatch.setattr("serving.ui.cards.registry.read_table", lambda *args: [])
    v1 = VersionInfo("churn", "1", (), "a" * 32, 0, {})
    v2 = VersionInfo("churn", "2", ("champion",), "b" * 32, 0, {})
    card = _build(client, "sqlite:///x.db", v2, v1, None)  # type: ignore[arg-type]
    assert card.previous == "1"
    assert card.deltas == {} and card.previous_auc_change is None
    assert card.previous_note == said
    runs["a" * 32] = _run(runs["a" * 32].data.metrics, RUN_PARAMS)
    card = _build(client, "sqlite:///x.db", v2, v1, None)  # type: ignore[arg-type]
    assert card.previous_note is None
    assert card.previous_auc_change == pytest.approx(0.04)
    assert card.deltas["xgboost"] == pytest.approx({"roc_auc": 0.04, "brier": -0.02})


# the short-history fallback (training.train): the test day's customers split in two by the seed,
# half held out for validation; another split, or another seed, holds out other customers
CUSTOMER = replace(OCT, split="customer", seed=3)


def test_a_versions_split_and_its_seed_are_read_as_training_records_them() -> None:
    by_customer = {**RUN_PARAMS, "cutoffs.split": "customer", "seed": "3"}
    assert measured_on(training_params(None, by_customer)) == CUSTOMER
    # the time split holds every customer of the day: its seed draws none of them
    assert measured_on(training_params(None, {**RUN_PARAMS, "seed": "3"})) == OCT
    # a version recording a held-out day but no split was trained before the customer split
    before = {k: v for k, v in RUN_PARAMS.items() if k != "cutoffs.split"}
    assert measured_on(training_params(None, before)) == OCT
    # the model's own metadata, seed 0 too (not taken for "none")
    meta = {"params": {"horizon": 90, "active_days": 365, "seed": 0, "cutoffs": {}}}
    meta["params"]["cutoffs"] = {"test": "2024-10-31", "split": "customer"}
    bundle = SimpleNamespace(metadata=meta, calibration={})
    assert measured_on(training_params(bundle, {})) == replace(CUSTOMER, seed=0)  # type: ignore[arg-type]


def test_another_split_is_not_compared() -> None:
    assert comparison_note(OCT, CUSTOMER) == "another held-out split: by time then, by customer now"
    assert comparison_note(CUSTOMER, OCT, names=("champion", "challenger")) == (
        "another held-out split: the champion's by customer, the challenger's by time"
    )


def test_another_seed_of_the_customer_split_is_not_compared() -> None:
    assert comparison_note(CUSTOMER, CUSTOMER) is None
    assert comparison_note(replace(CUSTOMER, seed=0), CUSTOMER) == (
        "another held-out split: customers drawn by seed 0 then, 3 now"
    )
    assert comparison_note(
        replace(CUSTOMER, seed=0), CUSTOMER, names=("champion", "challenger")
    ) == (
        "another held-out split: the champion's customers drawn by seed 0,"
        " the challenger's by seed 3"
    )
    # the time split's seed is never read, so never compared
    assert comparison_note(replace(OCT, seed=0), replace(OCT, seed=3)) is None
    assert comparison_note(CUSTOMER, replace(CUSTOMER, seed=None)) == (
        "not recorded: this one records no split seed"
    )


def _train_run(
    bundle: ModelBundle, rows: Any, home: Path, auc: float, params: dict[str, Any]
) -> str:
    """Register ``bundle`` from a run logged as ``guanxi train`` logs it: metrics, params."""
    with mlflow.start_run(experiment_id=experiment_id(bundle.task, home)):
        mlflow.log_metrics(flatten_metrics({"xgboost": {"roc_auc": auc, "brier": 0.2}}))
        log_dict_params(params)
        uri = registry.log_bundle(bundle, rows)
    return registry.register_challenger(bundle.task, uri, {"grade": "B"})


@pytest.fixture
def measured_apart(
    tmp_path: Path,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    source: StaticSource,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """A real MLflow registry of churn: v1 measured on 31 Jul 2024, champion v2 on 31 Oct 2024
    (both by time), challenger v3 on 31 Oct 2024 by customer (seed 0); the app reads it."""
    home = tmp_path / "home"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = configure_tracking(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    bundle = bundles["churn"]
    rows = model_rows(bundle, snapshot).head(3)
    july = {"horizon": 90, "active_days": 365, "seed": 0, "cutoffs": {"test": "2024-07-31"}}
    october = {**july, "cutoffs": {"test": "2024-10-31", "split": "time"}}
    by_customer = {**july, "cutoffs": {"test": "2024-10-31", "split": "customer"}}
    try:
        assert _train_run(bundle, rows, home, 0.70, july) == "1"
        assert _train_run(bundle, rows, home, 0.74, october) == "2"
        assert _train_run(bundle, rows, home, 0.77, by_customer) == "3"
        registry.set_alias("churn", registry.CHAMPION, "2")
        with TestClient(create_app(make_settings(home), source)) as client:
            wait_ready(client)
            yield client
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_the_model_page_reads_from_real_runs_what_versions_were_measured_on(
    measured_apart: TestClient,
) -> None:
    """The cards' notes come from the versions' MLflow runs (their logged params), as the page
    reads them: v2 after v1 of another held-out day, v3 after v2 of another split; no change."""
    r = measured_apart.post(
        "/ui/login",
        headers=SAME_ORIGIN,
        data={"api_key": KEYS["reviewer"], "next": "/ui/models/churn"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = measured_apart.get("/ui/models/churn")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    card = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    other = text[text.index('id="card-challenger"') : text.index('id="metrics"')]
    assert "v1: <span data-not-compared>measured on 31 Jul 2024, this one on 31 Oct 2024" in card
    assert "v2: <span data-not-compared>another held-out split: by time then, by customer now<" in (
        other
    )
    table = text[text.index('id="metrics"') :]
    said = re.findall(r"data-not-compared>([^<]+)<", table[: table.index("</thead>")])
    assert [html.unescape(note) for note in said] == [
        "measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable",
        "another held-out split: by time then, by customer now",
        "another held-out split: the champion's by time, the challenger's by customer",
    ]
    changes = re.findall(r'<td class="num delta">([^<]*)</td>', table)
    assert changes and set(changes) == {""}


def test_the_model_page_says_a_promoted_challenger_as_guanxi_models_does(
    measured_apart: TestClient,
) -> None:
    """After `guanxi promote` the promoted challenger keeps its challenger alias until
    the next training moves it; its model page listed "Aliases @challenger @champion", two roles,
    where `guanxi models` says "champion (was challenger)". The page says it as that does (both
    call models.aliases.shown_aliases)."""
    registry.set_alias("churn", registry.CHAMPION, "3")  # promote the challenger, v3
    r = measured_apart.post(
        "/ui/login",
        headers=SAME_ORIGIN,
        data={"api_key": KEYS["reviewer"], "next": "/ui/models/churn"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = measured_apart.get("/ui/models/churn")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'id="card-challenger"' not in text  # one version holds both aliases
    card = text[text.index('id="card-champion"') : text.index('id="metrics"')]
    assert 'data-version="3"' in card
    aliases = re.search(r"<dt>Aliases</dt><dd>(.*?)</dd>", card)
    assert aliases is not None
    pills = [html.unescape(p) for p in re.findall(r'class="pill">([^<]*)<', aliases[1])]
    assert pills == ["@champion (was challenger)"], aliases[1]


def test_the_overview_says_a_served_promoted_challenger_as_guanxi_models_does(
    client: TestClient, source: StaticSource, served: dict[str, ServedModel]
) -> None:
    """The overview lists the served version's aliases as at load: a promoted challenger served
    after a reload read "@challenger @champion" there too."""
    source.models["churn"] = replace(served["churn"], aliases=("challenger", "champion"))
    r = client.post("/v1/admin/reload", headers={"X-API-Key": KEYS["admin"]})
    assert r.status_code == 200, r.text
    overview = client.get("/ui/", headers={"X-API-Key": KEYS["reviewer"]})
    assert overview.status_code == 200
    text = " ".join(overview.text.split())
    assert '<span class="pill">@champion (was challenger)</span>' in text
    assert "@challenger" not in text

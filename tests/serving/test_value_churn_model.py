"""Which churn model a value table's numbers use, said by the value API, its CSV and the pages.

qa49 M1: a value table is computed with one churn model version (its info records the churn
model's name, version and horizon), but after a churn promotion the customer page showed the new
champion's churn score beside a textbook CLV and equity at risk computed with the old version's
churn probabilities, saying nothing; and ``GET /v1/customers/{id}/value`` did not say which churn
model its numbers use. The table of these tests read ``churn`` version 1, 90-day horizon
(:func:`tests.serving.test_value_api.store_values`); the served churn model is version 1 too
unless promoted (:func:`_promoted`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import polars as pl
import pytest
from fastapi.testclient import TestClient

from features.store import Store
from models import registry
from serving.app import create_app
from tests.serving.conftest import (
    STORE_KEY,
    Registry,
    StaticSource,
    headers,
    make_settings,
    wait_ready,
)
from tests.serving.test_api import _conforms
from tests.serving.test_value_api import AS_OF, VALIDATION, store_values, value_frame
from tests.serving.test_young_pages import churnless_app

DIFFERS = 'id="churn-model-differs"'
NAMED = 'id="value-churn-model"'
CUSTOMER_VALUE = "/v1/customers/{customer_id}/value"
# the table's settings (store_values: 365 days, 10%, revenue basis): computed again as it was
COMMAND = (
    f"guanxi value --events PATH --as-of {AS_OF.isoformat()} --horizon-days 365 "
    "--discount-rate 0.1 --value-basis revenue --out PATH"
)


def _promoted(source: StaticSource, version: str) -> StaticSource:
    """The source with its churn model served as another version (a promotion since the table)."""
    churn = dataclasses.replace(source.models["churn"], version=version)
    return dataclasses.replace(source, models={**source.models, "churn": churn})


def _app(home: Path, source: StaticSource) -> Iterator[TestClient]:
    settings = make_settings(home)
    store_values(settings.home)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        yield client


@pytest.fixture
def same(tmp_path: Path, source: StaticSource) -> Iterator[TestClient]:
    """The table's churn model is the one served."""
    yield from _app(tmp_path / "same", source)


@pytest.fixture
def promoted(tmp_path: Path, source: StaticSource) -> Iterator[TestClient]:
    """Churn version 2 promoted and served since the table was computed with version 1."""
    yield from _app(tmp_path / "promoted", _promoted(source, "2"))


def _text(html: str) -> str:
    """The words of a piece of HTML, tags dropped and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def _element(page: str, marker: str) -> str:
    """The text of the element whose opening tag holds ``marker`` (up to its closing ``</p>``)."""
    assert marker in page, marker
    return _text(page.split(marker, 1)[1].split(">", 1)[1].split("</p>", 1)[0])


def test_a_customer_value_names_its_churn_model(same: TestClient) -> None:
    r = same.get("/v1/customers/c000/value", headers=headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["churn_model_version"] == "1" and body["churn_horizon_days"] == 90
    # every field it had is still there
    assert body["clv"] == 200.0 and body["equity_at_risk"] == 20.0
    assert body["value_version"] == f"{AS_OF.isoformat()}/run123" and body["horizon_days"] == 365
    _conforms(same, "GET", CUSTOMER_VALUE, r)
    # a segment's customer is the customer's answer, these two included
    segment = same.get("/v1/segments/champions/customers", headers=headers()).json()
    assert {(c["churn_model_version"], c["churn_horizon_days"]) for c in segment["customers"]} == {
        ("1", 90)
    }


def test_the_value_answer_documents_its_churn_model(same: TestClient) -> None:
    document = same.app.openapi()  # type: ignore[attr-defined]
    schema = document["components"]["schemas"]["CustomerValue"]["properties"]
    assert {"churn_model_version", "churn_horizon_days"} <= set(schema)
    answer = document["paths"][CUSTOMER_VALUE]["get"]["responses"]["200"]
    example = answer["content"]["application/json"]["example"]
    assert example["churn_model_version"] == "1" and example["churn_horizon_days"] == 90


def test_without_a_churn_model_the_value_names_none(tmp_path: Path, source: StaticSource) -> None:
    with churnless_app(tmp_path, source, loaded=True) as client:
        r = client.get("/v1/customers/c000/value", headers=headers())
        exported = client.get("/v1/segments/champions/customers?format=csv", headers=headers())
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        _conforms(client, "GET", CUSTOMER_VALUE, r)
    body = r.json()
    assert body["churn_model_version"] is None and body["churn_horizon_days"] is None
    assert body["churn_status"] == "no_churn_model"
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["churn_model_version"] for row in rows] == ["", ""]
    assert _element(page, NAMED) == (
        "Textbook CLV and equity at risk: this value table was computed without a churn model."
    )
    # the served churn model's score is beside a value that read none: the page says so
    alert = _element(page, DIFFERS)
    assert alert == (
        "The churn score above is from churn v1; this value table was computed without a "
        "churn model, so it holds no textbook CLV or equity at risk. To compute them with the "
        f"served model, run {COMMAND}, "
        "then reload the server (POST /v1/admin/reload, as after a promotion)."
    )


def test_the_segment_csv_carries_the_churn_model_version(same: TestClient) -> None:
    for url, who in [
        ("/v1/segments/champions/customers?format=csv", headers()),
        ("/ui/value/segments/champions.csv", headers("reviewer")),
    ]:
        r = same.get(url, headers=who)
        assert r.status_code == 200, (url, r.text)
        rows = list(csv.DictReader(io.StringIO(r.text)))
        # added at the end (then its horizon): a script reading the columns by position reads
        # what it read
        assert list(rows[0])[-2] == "churn_model_version", url
        assert [(row["customer_id"], row["churn_model_version"]) for row in rows] == [
            ("c003", "1"),
            ("c000", "1"),
        ]


def test_the_segment_csv_carries_the_churn_model_s_horizon(
    same: TestClient, tmp_path: Path, source: StaticSource
) -> None:
    """review60 L7: the value page's export named the churn model's version, not its horizon,
    which GET /v1/customers/{id}/value gives beside it (churn_horizon_days): a column after
    churn_model_version, empty for a table computed without a churn model."""
    for url, who in [
        ("/v1/segments/champions/customers?format=csv", headers()),
        ("/ui/value/segments/champions.csv", headers("reviewer")),
    ]:
        r = same.get(url, headers=who)
        assert r.status_code == 200, (url, r.text)
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert list(rows[0])[-2:] == ["churn_model_version", "churn_horizon_days"], url
        assert {(row["churn_model_version"], row["churn_horizon_days"]) for row in rows} == {
            ("1", "90")
        }
    answer = same.get("/v1/customers/c000/value", headers=headers()).json()
    assert (answer["churn_model_version"], answer["churn_horizon_days"]) == ("1", 90)
    # a table computed without a churn model: both empty
    with churnless_app(tmp_path, source, loaded=True) as client:
        r = client.get("/ui/value/segments/champions.csv", headers=headers("reviewer"))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["churn_model_version"], row["churn_horizon_days"]) for row in rows] == [
        ("", ""),
        ("", ""),
    ]


def test_the_customer_page_names_the_value_table_s_churn_model(same: TestClient) -> None:
    page = same.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert _element(page, NAMED) == (
        "Textbook CLV and equity at risk use churn model churn v1, 90-day horizon."
    )
    assert DIFFERS not in page  # the churn score shown is the same version's


def test_the_customer_page_says_a_horizon_recorded_as_a_float_as_the_value_answer_does(
    tmp_path: Path, source: StaticSource
) -> None:
    """A table whose info records its churn model's horizon as 30.0 and its version as the
    number 1 (written by hand or by an older writer): the page says them as LoadedValues reads
    them for the value answer (churn_horizon_days 30, churn_model_version "1"), "30-day", not
    "30.0-day", and finds the served version 1 the same (no alert)."""
    settings = make_settings(tmp_path / "home")
    Store(settings.home, STORE_KEY.encode()).write_values(
        value_frame(),
        AS_OF,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={"bgnbd": {"r": 0.5}},
        churn_model={"name": "churn", "version": 1, "horizon_days": 30.0},
        validation=VALIDATION,
        run_id="run123",
    )
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        answer = client.get("/v1/customers/c000/value", headers=headers()).json()
    assert (answer["churn_model_version"], answer["churn_horizon_days"]) == ("1", 30)
    assert _element(page, NAMED) == (
        "Textbook CLV and equity at risk use churn model churn v1, 30-day horizon."
    )
    assert DIFFERS not in page


def test_after_a_churn_promotion_the_customer_page_says_the_value_is_of_the_old_model(
    promoted: TestClient,
) -> None:
    """Before: version 2's churn score beside version 1's equity at risk, nothing said."""
    page = promoted.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert 'data-task="churn"' in page and "model v2" in page  # the score shown is version 2's
    assert _element(page, NAMED) == (
        "Textbook CLV and equity at risk use churn model churn v1, 90-day horizon."
    )
    assert _element(page, DIFFERS) == (
        "The churn score above is from churn v2; this customer's textbook CLV and equity "
        f"at risk were computed with churn v1. {_both('1')}"
    )
    # the API says the same of its numbers
    value = promoted.get("/v1/customers/c000/value", headers=headers()).json()
    assert value["churn_model_version"] == "1"


def test_without_a_model_the_customer_page_names_the_churn_model_and_no_other(
    unloaded: TestClient,
) -> None:
    """No churn score is shown while no model is loaded: nothing to tell apart."""
    store_values(unloaded.app.state.settings.home)  # type: ignore[attr-defined]
    page = unloaded.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert 'id="no-models"' in page and 'data-task="churn"' not in page
    assert _element(page, NAMED) == (
        "Textbook CLV and equity at risk use churn model churn v1, 90-day horizon."
    )
    assert DIFFERS not in page


def test_after_a_churn_promotion_the_value_page_says_its_risk_is_of_the_old_model(
    promoted: TestClient, same: TestClient
) -> None:
    page = promoted.get("/ui/value", headers=headers("reviewer")).text
    assert _element(page, DIFFERS) == (
        "The churn model served is churn v2; the churn risk and equity at risk below were "
        f"computed with churn v1. {_both('1')}"
    )
    assert DIFFERS not in same.get("/ui/value", headers=headers("reviewer")).text


def _both(version: str) -> str:
    """Both remedies, said when the registry's champion cannot be read (a source that is no
    registry, as these tests' :class:`StaticSource`, or a registry down): qa43 M1."""
    return (
        f"If churn v{version} is the champion again, reload the server (POST /v1/admin/reload) "
        "to serve it; otherwise, to compute them with the served model, run "
        f"{COMMAND}, then reload the server."
    )


def _table_of(
    home: Path, version: str, frame: pl.DataFrame | None = None, fit: dict | None = None
) -> None:
    """The value table of store_values, read with churn ``version`` (``frame``'s rows, ``fit``)."""
    Store(home, STORE_KEY.encode()).write_values(
        value_frame() if frame is None else frame,
        AS_OF,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={"bgnbd": {"r": 0.5}} if fit is None else fit,
        churn_model={"name": "churn", "version": version, "horizon_days": 90},
        validation=VALIDATION,
        run_id="run123",
    )


def test_a_table_of_another_version_without_a_registry_gives_both_remedies(
    tmp_path: Path, source: StaticSource
) -> None:
    """M1 (qa49), qa43 M1: churn v10 valued while the server serves v9. Whether a reload serves
    v10 (promoted, not loaded yet) or the table is to be computed again (v10 rolled back) is the
    registry's champion's to say; this source is no registry, so the pages say both, in one
    sentence (the registry's cases: the rolled-back test below)."""
    settings = make_settings(tmp_path / "home")
    _table_of(settings.home, "10")
    with TestClient(create_app(settings, _promoted(source, "9"))) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        value = client.get("/ui/value", headers=headers("reviewer")).text
    assert _element(page, DIFFERS) == (
        "The churn score above is from churn v9; this customer's textbook CLV and equity at "
        f"risk were computed with churn v10. {_both('10')}"
    )
    assert _element(value, DIFFERS) == (
        "The churn model served is churn v9; the churn risk and equity at risk below were "
        f"computed with churn v10. {_both('10')}"
    )


def test_the_command_names_the_served_alias(tmp_path: Path, source: StaticSource) -> None:
    """M2: a server loading the `staging` alias is served by the table `--alias staging` reads."""
    settings = make_settings(tmp_path / "home", model_alias="staging")
    store_values(settings.home)
    with TestClient(create_app(settings, _promoted(source, "2"))) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert f"run {COMMAND.replace(' --out', ' --alias staging --out')}, then" in _element(
        page, DIFFERS
    )


def test_both_remedies_name_the_alias_the_server_follows(
    tmp_path: Path, source: StaticSource
) -> None:
    """qa43 M1: a server following `staging`, churn v10 valued while it serves v9 and no
    registry to ask: the sentence read "If churn v10 is the staging again"; it names the alias
    (the champion's: the test above)."""
    settings = make_settings(tmp_path / "home", model_alias="staging")
    _table_of(settings.home, "10")
    with TestClient(create_app(settings, _promoted(source, "9"))) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        value = client.get("/ui/value", headers=headers("reviewer")).text
    both = (
        "If churn v10 is again the version under the alias staging, reload the server (POST "
        "/v1/admin/reload) to serve it; otherwise, to compute them with the served model, run "
        f"{COMMAND.replace(' --out', ' --alias staging --out')}, then reload the server."
    )
    assert _element(value, DIFFERS).endswith(f"computed with churn v10. {both}")
    assert _element(page, DIFFERS).endswith(f"computed with churn v10. {both}")
    assert "<code>staging</code>" in value


def test_the_command_names_the_table_s_margin_rate(tmp_path: Path, source: StaticSource) -> None:
    """M2: a revenue-basis table valued at a 30% margin is computed again at that margin."""
    settings = make_settings(tmp_path / "home")
    _table_of(settings.home, "1", fit={"basis": "revenue", "margin_rate": 0.3})
    with TestClient(create_app(settings, _promoted(source, "2"))) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert f"run {COMMAND.replace(' --out', ' --margin-rate 0.3 --out')}, then" in _element(
        page, DIFFERS
    )


def test_no_alert_for_a_customer_without_a_churn_score_or_a_clv(
    tmp_path: Path, source: StaticSource
) -> None:
    """L1: c012 is a prospect in the served snapshot (no churn probability shown), c000 has no
    CLV in this table: neither page tells the churn score apart from a value it is not beside."""
    frame = value_frame().with_columns(
        customer_id=pl.Series(["c000", "c012", "c002", "c003"]),
        clv=pl.Series([None, 80.0, 20.0, 300.0]),
    )
    settings = make_settings(tmp_path / "home")
    _table_of(settings.home, "1", frame)
    with TestClient(create_app(settings, _promoted(source, "2"))) as client:
        wait_ready(client)
        scores = client.get("/v1/customers/c012/scores?tasks=churn", headers=headers()).json()
        prospect = client.get("/ui/customers/c012", headers=headers("reviewer")).text
        no_clv = client.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert scores["scores"]["churn"]["probability"] is None
    for page in (prospect, no_clv):
        assert DIFFERS not in page
        assert _element(page, NAMED) == (
            "Textbook CLV and equity at risk use churn model churn v1, 90-day horizon."
        )


def test_head_of_a_customer_value(same: TestClient) -> None:
    r = same.head("/v1/customers/c000/value", headers=headers())
    assert r.status_code == 200 and r.content == b""


def test_a_churnless_table_on_the_value_page_while_churn_is_served(
    tmp_path: Path, source: StaticSource
) -> None:
    """The table holds no churn risk to be of another version: the value page says so its own
    way (churn_missing), not with the alert."""
    with churnless_app(tmp_path, source, loaded=True) as client:
        page = client.get("/ui/value", headers=headers("reviewer")).text
    assert 'id="equity"' in page and DIFFERS not in page


def test_a_customer_only_in_a_later_day_s_table(tmp_path: Path, source: StaticSource) -> None:
    """c999 is not in the served snapshot: no churn score is shown, the table's model is named."""
    frame = value_frame().with_columns(customer_id=pl.Series(["c000", "c001", "c002", "c999"]))
    settings = make_settings(tmp_path / "home")
    _table_of(settings.home, "1", frame)
    with TestClient(create_app(settings, _promoted(source, "2"))) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c999", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'data-task="churn"' not in page.text and DIFFERS not in page.text
    assert _element(page.text, NAMED) == (
        "Textbook CLV and equity at risk use churn model churn v1, 90-day horizon."
    )


def test_a_table_of_a_rolled_back_champion_says_to_compute_again_not_to_reload(
    registry_env: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa43 M1: the value table read churn v3, then the champion was rolled back (`guanxi
    promote --task churn --version 2`) and the server reloaded: the pages said "The value table
    is of a newer churn model than the server serves: reload the server", and no reload ever
    cleared it. A reload serves the table's version only when the registry's champion points at
    it now; otherwise the table is computed again. A registry that cannot be read gets both
    remedies in one sentence."""
    reg = registry_env
    served = reg.champion["churn"]
    table = reg.good  # a version registered after the served one: the rolled-back champion
    _table_of(reg.home, table)
    again = (
        f"To compute them with the served model, run {COMMAND}, then reload the server "
        "(POST /v1/admin/reload, as after a promotion)."
    )
    try:
        with TestClient(create_app(make_settings(reg.home))) as client:
            wait_ready(client)

            def said() -> tuple[str, str]:
                page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
                value = client.get("/ui/value", headers=headers("reviewer")).text
                return _element(page, DIFFERS), _element(value, DIFFERS)

            page, value = said()  # the champion is the served version: compute again
            assert page == (
                f"The churn score above is from churn v{served}; this customer's textbook CLV "
                f"and equity at risk were computed with churn v{table}. {again}"
            )
            assert value == (
                f"The churn model served is churn v{served}; the churn risk and equity at risk "
                f"below were computed with churn v{table}. {again}"
            )

            registry.set_champion("churn", table)  # promoted, not reloaded yet: reload only
            page, value = said()
            reload = (
                "The value table's churn model is the champion now: reload the server "
                "(POST /v1/admin/reload) to serve it."
            )
            assert page.endswith(f"churn v{table}. {reload}") and value.endswith(reload)
            assert "guanxi value" not in page + value

            # a registry that does not answer: both remedies, one sentence
            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
            mlflow.set_registry_uri("http://127.0.0.1:9")
            try:
                page, value = said()
            finally:
                mlflow.set_registry_uri(reg.uri)
            both = (
                f"If churn v{table} is the champion again, reload the server (POST "
                "/v1/admin/reload) to serve it; otherwise, to compute them with the served "
                f"model, run {COMMAND}, then reload the server."
            )
            assert page.endswith(both) and value.endswith(both)
    finally:
        shutil.rmtree(reg.home / "values")  # the session's registry home, shared


def test_a_table_of_the_version_now_under_the_followed_alias_says_to_reload_naming_it(
    registry_env: Registry,
) -> None:
    """qa43 M1: a server following `staging` serves churn v(served); the value table read the
    version `staging` points at now (moved, not reloaded yet): both pages say only to reload,
    naming the alias ("the version under the alias staging", not "the staging")."""
    reg = registry_env
    served, table = reg.champion["churn"], reg.good
    registry.set_alias("churn", "staging", served)
    _table_of(reg.home, table)
    settings = make_settings(reg.home, model_alias="staging", tasks=("churn",))
    try:
        with TestClient(create_app(settings)) as client:
            wait_ready(client)
            registry.set_alias("churn", "staging", table)  # moved, not reloaded yet
            page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
            value = client.get("/ui/value", headers=headers("reviewer")).text
    finally:
        mlflow.MlflowClient().delete_registered_model_alias("churn", "staging")
        shutil.rmtree(reg.home / "values")  # the session's registry home, shared
    reload = (
        "The value table's churn model is the version under the alias staging now: reload the "
        "server (POST /v1/admin/reload) to serve it."
    )
    assert _element(page, DIFFERS) == (
        f"The churn score above is from churn v{served}; this customer's textbook CLV and equity "
        f"at risk were computed with churn v{table}. {reload}"
    )
    assert _element(value, DIFFERS).endswith(f"computed with churn v{table}. {reload}")
    assert "guanxi value" not in page + value
    assert "<code>staging</code>" in value

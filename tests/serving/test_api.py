"""The HTTP API: every endpoint, every error code, the audit log and the metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import httpx2
import numpy as np
import polars as pl
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from features.events import MAX_VALUE_CHARS
from models.artifact import MAX_INPUT, ModelBundle
from models.tasks import model_frame, task_names
from serving.app import API_DESCRIPTION, NO_ROUTE, SEND_JSON, create_app, missing_file
from serving.audit import key_fingerprint
from serving.metrics import OTHER_METHOD, SCORES_HELP
from serving.middleware import body_too_large
from serving.state import LoadedSnapshot, ServedModel
from tests.serving.conftest import (
    AS_OF,
    AUDIT_KEY,
    CATEGORIES,
    KEYS,
    StaticSource,
    headers,
    make_settings,
    rule_bundle,
    wait_ready,
)


def _scores(client: TestClient, customer: str, query: str = "") -> dict:
    r = client.get(f"/v1/customers/{customer}/scores{query}", headers=headers())
    assert r.status_code == 200, r.text
    return r.json()


def test_customer_scores_all_tasks(
    client: TestClient, snapshot: pl.DataFrame, bundles: dict[str, ModelBundle]
) -> None:
    body = _scores(client, "c001")
    assert body["customer_id"] == "c001"
    assert set(body["scores"]) == set(task_names())
    churn = body["scores"]["churn"]
    assert churn["model_name"] == "churn" and churn["model_version"] == "1"
    assert churn["snapshot_date"] == AS_OF.isoformat()
    assert 1 <= churn["decile"] <= 10 and churn["band"] in {"low", "medium", "high"}
    assert len(churn["reasons"]) == 5 and churn["groups"] is None
    contributions = [abs(r["contribution_log_odds"]) for r in churn["reasons"]]
    assert contributions == sorted(contributions, reverse=True)
    for reason in churn["reasons"]:
        assert set(reason) == {
            "feature",
            "group",
            "value",
            "contribution_points",
            "contribution_log_odds",
            "sentence",
        }
        assert "points" in reason["sentence"]

    # the served probability is the batch score of the same model on the same snapshot
    for task in ("churn", "repurchase"):
        b = bundles[task]
        X = model_frame(task, snapshot, b.feature_names, b.categories)  # noqa: N806
        expected = b.predict_proba(X.loc[["c001"]])[0]
        assert body["scores"][task]["probability"] == pytest.approx(expected, abs=1e-12)

    cross = body["scores"]["cross_sell"]
    row = snapshot.filter(pl.col("customer_id") == "c001").row(0, named=True)
    not_bought = {c for c in CATEGORIES if not row[f"cat_{c}_orders"]}
    ranked = cross["categories"]
    assert {c["category"] for c in ranked} == not_bought
    assert [c["rank"] for c in ranked] == list(range(1, len(ranked) + 1))
    probabilities = [c["probability"] for c in ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    if ranked:
        assert cross["probability"] == probabilities[0]


def test_tasks_explain_and_group(client: TestClient) -> None:
    body = _scores(client, "c002", "?tasks=churn,repurchase&explain=8&group=true")
    assert set(body["scores"]) == {"churn", "repurchase"}
    churn = body["scores"]["churn"]
    assert len(churn["reasons"]) == 8
    grouped = [r for g in churn["groups"] for r in g["reasons"]]
    assert sorted(r["feature"] for r in grouped) == sorted(r["feature"] for r in churn["reasons"])
    for g in churn["groups"]:
        assert {r["group"] for r in g["reasons"]} == {g["group"]}
        assert g["contribution_points"] == pytest.approx(
            sum(r["contribution_points"] for r in g["reasons"])
        )
    none = _scores(client, "c002", "?tasks=churn&explain=0")["scores"]["churn"]
    assert none["reasons"] == [] and none["probability"] == churn["probability"]


def test_unknown_customer_is_404_without_echo(client: TestClient) -> None:
    r = client.get("/v1/customers/nobody-here-42/scores", headers=headers())
    assert r.status_code == 404
    assert "nobody-here-42" not in r.text


def test_a_customer_id_with_a_slash_is_served(
    tmp_path: Path, source: StaticSource, loaded_snapshot: LoadedSnapshot
) -> None:
    odd = "shop/7 #1?x"
    frame = loaded_snapshot.frame.with_columns(pl.col("customer_id").replace("c001", odd))
    renamed = StaticSource(models=source.models, snapshot=replace(loaded_snapshot, frame=frame))
    with (
        TestClient(create_app(make_settings(tmp_path / "home"), renamed)) as c,
        TestClient(create_app(make_settings(tmp_path / "plain"), source)) as plain,
    ):
        wait_ready(c)
        wait_ready(plain)
        r = c.get(f"/v1/customers/{quote(odd, safe='')}/scores", headers=headers())
        assert r.status_code == 200, r.text
        assert r.json()["customer_id"] == odd
        expected = plain.get("/v1/customers/c001/scores", headers=headers()).json()["scores"]
        assert r.json()["scores"] == expected


def test_an_id_as_long_as_the_contract_takes_is_served_alone_as_in_a_batch(
    tmp_path: Path, source: StaticSource, loaded_snapshot: LoadedSnapshot
) -> None:
    """serve28c: the GET took ids of at most 256 characters, the events contract and the batch
    1,000, so a customer with a 300-character id was scored by POST /v1/scores but a 422 alone.
    Both take the contract's longest id and refuse a longer one with the same reason."""
    longest = "c" * MAX_VALUE_CHARS
    frame = loaded_snapshot.frame.with_columns(pl.col("customer_id").replace("c001", longest))
    renamed = StaticSource(models=source.models, snapshot=replace(loaded_snapshot, frame=frame))
    with TestClient(create_app(make_settings(tmp_path / "home"), renamed)) as c:
        wait_ready(c)
        alone = c.get(f"/v1/customers/{longest}/scores", headers=headers())
        assert alone.status_code == 200, alone.text
        batch = c.post("/v1/scores", headers=headers(), json={"customer_ids": [longest]})
        assert batch.json()["results"][0]["scores"] == alone.json()["scores"]
        longer = longest + "c"
        refused = _fields(c.get(f"/v1/customers/{longer}/scores", headers=headers()))
        in_batch = _fields(c.post("/v1/scores", headers=headers(), json={"customer_ids": [longer]}))
        assert refused == {"path.customer_id": in_batch["body.customer_ids.0"]}


def test_auth_401_and_403(client: TestClient) -> None:
    url = "/v1/customers/c001/scores"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get(url, headers={"X-API-Key": KEYS["scorer"] + "x"}).status_code == 401
    for role in ("scorer", "reviewer", "admin"):
        assert client.get(url, headers=headers(role)).status_code == 200
    for role in ("scorer", "reviewer"):
        r = client.post("/v1/admin/reload", headers=headers(role))
        assert r.status_code == 403
        assert KEYS[role] not in r.text
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200


def _fields(r) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return {e["field"]: e["reason"] for e in r.json()["detail"]}


def test_the_document_says_what_the_server_checks(client: TestClient) -> None:
    """Task names, the one source of a score request and the events contract are in the
    OpenAPI document (found by the schemathesis run: requests valid by the document were 422s)."""
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    get = document["paths"]["/v1/customers/{customer_id}/scores"]["get"]
    (tasks,) = (p for p in get["parameters"] if p["name"] == "tasks")
    assert "pattern" in json.dumps(tasks["schema"])
    spaced = _scores(client, "c001", "?tasks=churn,%20repurchase")
    assert list(spaced["scores"]) == ["churn", "repurchase"]
    assert "query.tasks" in _fields(
        client.get("/v1/customers/c001/scores?tasks=,", headers=headers())
    )
    r = client.post(
        "/v1/scores", headers=headers(), json={"customer_ids": ["c001"], "tasks": ["x"]}
    )
    assert list(_fields(r)) == ["body.tasks.0"]

    request = schemas["ScoreRequest"]
    assert [rule["required"] for rule in request["oneOf"]] == [["features"], ["events"]]
    event = schemas["EventIn"]
    assert event["properties"]["event_type"]["enum"][0] == "order"
    rules = {
        rule["if"]["properties"]["event_type"]["const"]: rule["then"] for rule in event["allOf"]
    }
    assert rules["order"]["required"] == ["amount"]
    assert {"minimum": 0, "type": "number"} in event["properties"]["amount"]["anyOf"]
    assert '"ge"' not in json.dumps(document)  # pydantic's name, not JSON Schema's "minimum"
    assert rules["review"]["properties"]["score"] == {"type": "number", "minimum": 1, "maximum": 5}
    order = {"ts": "2024-06-01T00:00:00Z", "event_type": "order"}
    r = client.post("/v1/score", headers=headers(), json={"events": [order]})
    assert list(_fields(r)) == ["body.events.0.amount"]
    r = client.post("/v1/score", headers=headers(), json={"customer_id": "a\tb", "features": {}})
    assert list(_fields(r)) == ["body.customer_id"]
    # a feature name is one of the deployment's, whichever tasks are asked for; keys are not
    cross_sell_input = {"features": {"target_garden": 1.0, "recency_days": 3.0}, "tasks": ["churn"]}
    assert client.post("/v1/score", headers=headers(), json=cross_sell_input).status_code == 200
    r = client.post("/v1/score", headers=headers(), json={"features": {"customer_id": 1.0}})
    assert list(_fields(r)) == ["body.features.customer_id"]


def test_body_numbers_and_booleans_are_json_ones(client: TestClient) -> None:
    """What the document calls an integer, number or boolean is one: pydantic's lax mode took
    ``true`` for 1 and ``"5"`` for 5 (found by the schemathesis run's negative-data check)."""
    ids = {"customer_ids": ["c001"]}
    for wrong in ({"explain": True}, {"explain": "5"}, {"group": 1}, {"group": "yes"}):
        r = client.post("/v1/scores", headers=headers(), json=ids | wrong)
        assert list(_fields(r)) == [f"body.{next(iter(wrong))}"]
    r = client.post("/v1/scores", headers=headers(), json=ids | {"explain": 2.0, "group": True})
    assert r.status_code == 200, r.text
    r = client.post("/v1/score", headers=headers(), json={"features": {"recency_days": "3"}})
    assert list(_fields(r)) == ["body.features.recency_days"]


def test_an_event_time_outside_the_calendar_in_utc_is_a_422(client: TestClient) -> None:
    """A time on the calendar's first or last day is refused, as the document says: with an
    offset it may not exist in UTC (found by the schemathesis run: ``0001-01-01T00:00:00+00:01``
    answered 500)."""
    document = client.get("/openapi.json").json()
    ts = document["components"]["schemas"]["EventIn"]["properties"]["ts"]
    assert ts["not"] == {"pattern": "^(0001-01-01|9999-12-31)"}
    call = {"event_type": "call", "score": 1.0}
    for edge in ("0001-01-01T00:00:00+00:01", "0001-01-01T12:00:00Z", "9999-12-31T00:00:00-00:01"):
        r = client.post("/v1/score", headers=headers(), json={"events": [call | {"ts": edge}]})
        assert list(_fields(r)) == ["body.events.0.ts"]
    first = {"events": [call | {"ts": "0001-01-02T00:00:00+23:59"}]}  # 0001-01-01 in UTC
    assert client.post("/v1/score", headers=headers(), json=first).status_code == 200


def test_a_number_beyond_what_the_models_read(client: TestClient) -> None:
    """A feature value beyond float32's range (the models' input type) is a 422 naming it, as
    the document says; events adding up to one are scored, the value read as beyond every split.
    Neither warns: the fuzz run's ``RuntimeWarning: overflow encountered in cast`` came from
    ``{"features": {"recency_days": 1e300}}``, cast to float32 for the booster."""
    document = client.get("/openapi.json").json()
    features = document["components"]["schemas"]["ScoreRequest"]["properties"]["features"]
    (mapping,) = (branch for branch in features["anyOf"] if branch.get("type") == "object")
    bounded = {"type": "number", "minimum": -MAX_INPUT, "maximum": MAX_INPUT}
    assert bounded in mapping["additionalProperties"]["anyOf"]

    def order(amount: float, day: int) -> dict[str, object]:
        return {"ts": f"2024-06-{day:02d}T00:00:00Z", "event_type": "order", "amount": amount}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for value in (1e300, -1e39, MAX_INPUT * (1 + 1e-15)):
            r = client.post(
                "/v1/score", headers=headers(), json={"features": {"recency_days": value}}
            )
            assert list(_fields(r)) == ["body.features.recency_days"]
            assert repr(MAX_INPUT) in _fields(r)["body.features.recency_days"]
        for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):  # Python's JSON reader's
            r = client.post(
                "/v1/score",
                headers=headers() | {"Content-Type": "application/json"},
                content=b'{"features": {"recency_days": ' + raw + b"}}",
            )
            assert list(_fields(r)) == ["body.features.recency_days"]
        # the largest either way, each where the feature takes it (a margin may be negative)
        for name, value in (("recency_days", MAX_INPUT), ("margin_total", -MAX_INPUT)):
            features = {"recency_days": 3.0, name: value}
            r = client.post("/v1/score", headers=headers(), json={"features": features})
            assert r.status_code == 200, r.text

        answers = []
        for amount in (1e300, 1e39, 1e308):  # each beyond float32; two of 1e308 are infinite
            events = [order(amount, 1), order(amount, 2) | {"margin": -amount}]
            r = client.post("/v1/score", headers=headers(), json={"events": events})
            assert r.status_code == 200, r.text
            answers.append({t: s["probability"] for t, s in r.json()["scores"].items()})
    assert answers[0]["churn"] is not None
    assert answers[0] == answers[1] == answers[2]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], caught


def test_422_names_fields_never_values(client: TestClient) -> None:
    fields = _fields(client.get("/v1/customers/c001/scores?explain=987654", headers=headers()))
    assert list(fields) == ["query.explain"]
    r = client.get("/v1/customers/c001/scores?tasks=churn,secretsauce", headers=headers())
    assert "query.tasks" in _fields(r) and "secretsauce" not in r.text
    # the reason names the tasks, not the regular expression they are checked with
    assert _fields(r)["query.tasks"] == (
        "should be comma-separated task names, each one of churn, repurchase, cross_sell, referral"
    )
    r = client.post(
        "/v1/scores", headers=headers(), json={"customer_ids": ["c001"], "tasks": ["x"]}
    )
    assert _fields(r)["body.tasks.0"].startswith("should be a task name, one of churn")
    r = client.post("/v1/score", headers=headers(), json={"customer_id": " ", "features": {}})
    assert "not blank" in _fields(r)["body.customer_id"]

    secret = "s3cr3t-value-17"
    r = client.post(
        "/v1/scores",
        headers=headers(),
        json={"customer_ids": secret, "explain": secret, "bogus": secret},
    )
    assert set(_fields(r)) == {"body.customer_ids", "body.explain", "body.bogus"}
    assert secret not in r.text
    r = client.post("/v1/score", headers=headers(), json={"features": {"recency_days": secret}})
    assert "body.features.recency_days" in " ".join(_fields(r)) and secret not in r.text
    r = client.post("/v1/scores", headers=headers(), content=b'{"customer_ids": [' + b"x" * 50)
    assert next(iter(_fields(r))).startswith("body") and "xxxx" not in r.text


def test_a_batch_refuses_a_blank_or_control_character_id_by_its_index(client: TestClient) -> None:
    """serve28b: POST /v1/scores answered a blank id or one with a control character as
    "unknown", while POST /v1/score's customer_id refuses it (422). The batch refuses it the same
    way, naming the index of each bad id, so the sending system can find it; the id itself is
    not repeated."""
    ids = ["c001", " ", "c002", "a\tb", "", "x\x00y"]
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ids})
    fields = _fields(r)
    assert set(fields) == {f"body.customer_ids.{i}" for i in (1, 3, 4, 5)}
    assert fields["body.customer_ids.1"] == (
        "should be not blank, and no control characters (tab, line break, NUL, ...)"
    )
    assert "x\\u0000y" not in r.text and "a\\tb" not in r.text
    _conforms(client, "POST", "/v1/scores", r)
    # ids of any other text still are what they are: scored or unknown
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ["c001", "José 7/b"]})
    assert r.status_code == 200 and r.json()["unknown"] == 1


def test_common_type_slips_in_a_body_say_what_to_send(client: TestClient) -> None:
    """serve31: a numeric CRM id sent unquoted was "Input should be a valid string", one task
    without its array "Input should be a valid list", and a misnamed field (``customerIds``)
    "Extra inputs are not permitted"; now each says what to send, and a misnamed field the
    body's fields. Other inputs keep pydantic's words; none is quoted."""
    sent = headers("admin")
    quote = "should be a JSON string, not a number: put it in quotes"
    r = client.post("/v1/scores", headers=sent, json={"customer_ids": [90817, 2.5, True]})
    assert _fields(r) == {
        "body.customer_ids.0": quote,
        "body.customer_ids.1": quote,
        "body.customer_ids.2": "Input should be a valid string",
    }
    assert "90817" not in r.text
    _conforms(client, "POST", "/v1/scores", r)
    r = client.post("/v1/scores", headers=sent, json={"customer_ids": ["c001"], "tasks": "churn"})
    assert _fields(r) == {
        "body.tasks": "should be a JSON array, not a string: send one value as [value]"
    }
    r = client.post("/v1/scores", headers=sent, json={"customerIds": ["c001"]})
    fields = "customer_ids (required), tasks, explain and group"
    assert _fields(r) == {
        "body.customer_ids": "Field required",
        "body.customerIds": f"not a field of the body, whose fields are {fields}",
    }
    r = client.post("/v1/score", headers=sent, json={"customer_id": 7, "features": {}, "x": 1})
    assert _fields(r)["body.customer_id"] == quote
    assert _fields(r)["body.x"].startswith("not a field of the body, whose fields are customer_id")


def test_an_unknown_id_with_whitespace_around_it_is_said_to_have_it(client: TestClient) -> None:
    """serve31: "c001 " (a space copied with it) answered "customer not in the snapshot" with
    no hint, and was "unknown" in a batch, though c001 is in it. Ids are exact (never trimmed);
    the 404 and the batch's ``hint`` say the id has whitespace around it, and whether it is
    known without it. An id without any, or one found as it is, gets no hint."""
    said = "ids are matched exactly, never trimmed"
    for sent, where in [("c001%20", "is in"), ("%20%20c001", "is in"), ("nobody%09", None)]:
        r = client.get(f"/v1/customers/{sent}/scores", headers=headers())
        if where is None:  # a tab is a control character: the path's 422, as before
            assert r.status_code == 422, r.text
            continue
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == (
            f"customer not in the snapshot as of {AS_OF.isoformat()}: the id has whitespace "
            f"before or after it, and {said}: without the whitespace, the id {where} the snapshot"
        )
        _conforms(client, "GET", "/v1/customers/{customer_id}/scores", r)
    r = client.get("/v1/customers/nobody%E3%80%80/scores", headers=headers())  # ideographic
    assert r.json()["detail"].endswith("without the whitespace, the id is not in the snapshot")
    r = client.get("/v1/customers/nobody/scores", headers=headers())
    assert r.json() == {"detail": f"customer not in the snapshot as of {AS_OF.isoformat()}"}
    ids = ["c001", "c002 ", "nobody", "\u00a0nobody", " c003"]
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ids, "explain": 0})
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["ok"] + ["unknown"] * 4
    assert body["hint"] == (
        f"3 unknown ids have whitespace before or after them (the first: result 1), and {said}: "
        "without the whitespace, 2 of them are in the snapshot"
    )
    _conforms(client, "POST", "/v1/scores", r)
    for ids, where in [(["c001", "x "], "not in"), ([" c002", "nobody"], "in")]:
        r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ids})
        spaced = next(i for i, cid in enumerate(ids) if cid != cid.strip())
        assert r.json()["hint"] == (  # cycle32: the GET's words, was a rewording of them
            f"result {spaced}: the id has whitespace before or after it, and {said}: without "
            f"the whitespace, the id is {where} the snapshot"
        )
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ["c001", "nobody"]})
    assert r.json()["hint"] is None


def test_422_reason_is_the_check_s_own_words(client: TestClient) -> None:
    """A check of guanxi's own read "Value error, must be a JSON number": pydantic's prefix
    for the ValueError a validator raises, which tells the caller nothing."""
    r = client.post("/v1/score", headers=headers(), json={})
    assert _fields(r) == {"body": "give exactly one of 'features' or 'events'"}
    r = client.post("/v1/score", headers=headers(), json={"features": {"recency_days": "3"}})
    assert _fields(r) == {"body.features.recency_days": "must be a JSON number"}


# White space and control characters on which regex engines disagree (\x85 is white space to
# Python and Rust, not to JavaScript's \s), and their neighbours.
_TRICKY_IDS = ["a", " a ", "\x85", "a\x85b", "\x9f", "\xa0", "\xa0x", "\u3000", "\ufeff", "\u2028"]


def test_the_published_customer_id_pattern_is_what_the_server_checks(client: TestClient) -> None:
    """A fuzzer generates ids from the OpenAPI pattern: the server must accept exactly those."""
    schema = client.app.openapi()  # type: ignore[attr-defined]
    pattern = schema["components"]["schemas"]["ScoreRequest"]["properties"]["customer_id"][
        "pattern"
    ]
    assert not re.search(r"\\[sSwWdDbB]", pattern), "no class whose meaning depends on the engine"
    for customer_id in _TRICKY_IDS:
        r = client.post(
            "/v1/score",
            headers=headers(),
            json={"customer_id": customer_id, "features": {"recency_days": 3.0}},
        )
        published = re.fullmatch(pattern, customer_id) is not None
        assert (r.status_code != 422) == published, (repr(customer_id), r.text)


def test_batch_scores_report_unknown_ids(client: TestClient) -> None:
    ids = ["c003", "ghost-1", "c001", "c003", "ghost-2"]
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": ids, "tasks": ["churn"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["customer_id"] for x in body["results"]] == ids
    assert [x["status"] for x in body["results"]] == ["ok", "unknown", "ok", "ok", "unknown"]
    assert body["unknown"] == 2
    single = _scores(client, "c001", "?tasks=churn")["scores"]["churn"]
    assert body["results"][2]["scores"]["churn"] == single
    assert body["results"][1]["scores"] == {}


def test_batch_size_limits(client: TestClient, tmp_path: Path, source: StaticSource) -> None:
    too_many = [f"c{i}" for i in range(1001)]
    r = client.post("/v1/scores", headers=headers(), json={"customer_ids": too_many})
    assert "body.customer_ids" in _fields(r)
    small = create_app(make_settings(tmp_path / "h2", max_batch=2), source)
    with TestClient(small) as c:
        wait_ready(c)
        r = c.post("/v1/scores", headers=headers(), json={"customer_ids": ["c1", "c2", "c3"]})
        assert "body.customer_ids" in _fields(r)


def test_score_from_features_equals_snapshot_score(
    client: TestClient, snapshot: pl.DataFrame
) -> None:
    row = snapshot.filter(pl.col("customer_id") == "c004")
    features = {
        k: (float(v) if v is not None else None)
        for k, v in row.row(0, named=True).items()
        if isinstance(v, int | float) or v is None
    }
    r = client.post(
        "/v1/score", headers=headers(), json={"customer_id": "c004", "features": features}
    )
    assert r.status_code == 200, r.text
    live = r.json()["scores"]
    stored = _scores(client, "c004")["scores"]
    for task in task_names():
        assert live[task]["probability"] == pytest.approx(stored[task]["probability"], abs=1e-12)
        assert live[task]["decile"] == stored[task]["decile"]
        assert live[task]["snapshot_date"] is None
        assert [x["feature"] for x in live[task]["reasons"]] == [
            x["feature"] for x in stored[task]["reasons"]
        ]
    assert live["cross_sell"]["categories"] == stored["cross_sell"]["categories"]

    r = client.post("/v1/score", headers=headers(), json={"features": {"no_such_feature": 1.0}})
    assert _fields(r) == {"body.features.no_such_feature": "unknown feature"}
    r = client.post("/v1/score", headers=headers(), json={})
    assert "body" in _fields(r)


def test_score_from_events_equals_snapshot_score(client: TestClient) -> None:
    from tests.serving.conftest import tiny_events

    events = tiny_events().filter(pl.col("customer_id") == "c005")
    payload = [
        {k: (v.isoformat() if k == "ts" else v) for k, v in e.items() if k != "customer_id"}
        for e in events.iter_rows(named=True)
    ]
    r = client.post(
        "/v1/score",
        headers=headers(),
        json={"customer_id": "c005", "events": payload, "as_of": AS_OF.isoformat()},
    )
    assert r.status_code == 200, r.text
    live = r.json()["scores"]
    stored = _scores(client, "c005")["scores"]
    for task in task_names():
        assert live[task]["probability"] == pytest.approx(stored[task]["probability"], abs=1e-12)

    bad = [dict(payload[0], event_type="teleport"), dict(payload[0], event_type="order")]
    bad[1]["amount"] = None
    r = client.post("/v1/score", headers=headers(), json={"events": bad})
    fields = _fields(r)
    assert "body.events.0.event_type" in fields and "body.events.1.amount" in fields
    assert "teleport" not in r.text


def test_score_from_events_counts_a_category_the_loaded_snapshot_lacks(
    client: TestClient,
    served: dict[str, ServedModel],
    snapshot: pl.DataFrame,
    tmp_path: Path,
) -> None:
    """review52 H1: the request's snapshot was built with the loaded snapshot's categories only,
    so a category the models read and it lacks was unknown, even for a customer who bought in
    it; it is built with the models' categories too."""
    from features.contracts import FEATURE_SET_VERSION
    from tests.serving.conftest import tiny_events

    events = tiny_events()
    customer = events.filter(pl.col("category") == "toys")["customer_id"][0]
    payload = [
        {k: (v.isoformat() if k == "ts" else v) for k, v in e.items() if k != "customer_id"}
        for e in events.filter(pl.col("customer_id") == customer).iter_rows(named=True)
    ]
    lacking = snapshot.drop("cat_toys_orders", "cat_toys_share")
    loaded = LoadedSnapshot(as_of=AS_OF, feature_set_version=FEATURE_SET_VERSION, frame=lacking)
    source = StaticSource(models=dict(served), snapshot=loaded)
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as other:
        wait_ready(other)
        body = {"customer_id": customer, "events": payload, "as_of": AS_OF.isoformat()}
        r = other.post("/v1/score", headers=headers(), json=body)
    assert r.status_code == 200, r.text
    live = r.json()["scores"]
    stored = _scores(client, customer)["scores"]  # the snapshot with every category
    for task in task_names():
        assert live[task]["probability"] == pytest.approx(stored[task]["probability"], abs=1e-12)


def test_score_from_events_reads_the_categories_the_load_computed(
    client: TestClient, snapshot: pl.DataFrame
) -> None:
    """score43: every POST /v1/score with events built ``model_categories(models)`` (an empty
    frame of every model input) and the loaded snapshot's categories again; the load computes
    them once and keeps them in the state, and each request reads them there. A state whose
    categories lack toys (swapped in by hand) scores a toys buyer's events without them: the
    request took them from the state, not from the models."""
    from tests.serving.conftest import tiny_events

    holder = client.app.state.holder  # type: ignore[attr-defined]
    state = holder.current
    # the tiny snapshot and every model read garden, kitchen and toys (conftest.CATEGORIES)
    assert state.categories == ("garden", "kitchen", "toys")
    events = tiny_events()
    customer = events.filter(pl.col("category") == "toys")["customer_id"][0]
    payload = [
        {k: (v.isoformat() if k == "ts" else v) for k, v in e.items() if k != "customer_id"}
        for e in events.filter(pl.col("customer_id") == customer).iter_rows(named=True)
    ]
    body = {"customer_id": customer, "events": payload, "as_of": AS_OF.isoformat()}

    def probabilities() -> dict[str, float]:
        r = client.post("/v1/score", headers=headers(), json=body)
        assert r.status_code == 200, r.text
        return {task: s["probability"] for task, s in r.json()["scores"].items()}

    stored = {t: s["probability"] for t, s in _scores(client, customer)["scores"].items()}
    first, second = probabilities(), probabilities()
    assert first == second == pytest.approx(stored, abs=1e-12)
    holder.swap(replace(state, categories=("garden", "kitchen")))
    try:
        without = probabilities()
    finally:
        holder.swap(state)
    assert [t for t in task_names() if without[t] != pytest.approx(stored[t], abs=1e-12)]


def test_score_from_features_lists_a_category_the_loaded_snapshot_lacks_as_missing(
    client: TestClient,
    served: dict[str, ServedModel],
    snapshot: pl.DataFrame,
    tmp_path: Path,
) -> None:
    """review54 M1: a row of every column of a loaded snapshot without toys scored toys' inputs
    as unknown while the lookup completes them (0 orders), and ``missing_inputs`` was empty:
    every model input not sent is listed, and sending the completed values gives the lookup."""
    from features.contracts import FEATURE_SET_VERSION

    lacking = snapshot.drop("cat_toys_orders", "cat_toys_share")
    row = lacking.row(0, named=True)
    customer = row["customer_id"]
    features = {k: v for k, v in row.items() if isinstance(v, int | float) or v is None}
    loaded = LoadedSnapshot(as_of=AS_OF, feature_set_version=FEATURE_SET_VERSION, frame=lacking)
    source = StaticSource(models=dict(served), snapshot=loaded)
    toys = {"cat_toys_orders", "cat_toys_share"}
    completed = {"cat_toys_orders": 0.0, "cat_toys_share": 0.0 if row["spend_total"] else None}
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as other:
        wait_ready(other)
        stored = _scores(other, customer)["scores"]
        scores = [
            other.post(
                "/v1/score",
                headers=headers(),
                json={"customer_id": customer, "features": sent},
            ).json()["scores"]
            for sent in (features, {**features, **completed})
        ]
    partial, whole = scores
    read_toys = 0
    for task in task_names():
        inputs = set(served[task].bundle.feature_names)
        assert set(partial[task]["missing_inputs"]) >= toys & inputs, task
        read_toys += bool(toys & inputs)
        assert whole[task]["missing_inputs"] == [], task
        if stored[task]["probability"] is None:
            assert whole[task]["probability"] is None, task
            continue
        assert whole[task]["probability"] == pytest.approx(stored[task]["probability"], abs=1e-12)
    assert read_toys  # some model reads the category the loaded snapshot lacks


def test_models_endpoint(client: TestClient) -> None:
    r = client.get("/v1/models", headers=headers())
    assert r.status_code == 200, r.text
    body = r.json()
    models = {m["task"]: m for m in body["models"]}
    assert set(models) == set(task_names())
    churn = models["churn"]
    assert churn["version"] == "1" and churn["aliases"] == ["champion"]
    assert churn["metrics"] == {"xgboost": {"roc_auc": 0.75}} and churn["grade"] == "B"
    assert models["cross_sell"]["categories"] == CATEGORIES
    assert body["snapshot"]["as_of"] == AS_OF.isoformat()
    assert body["snapshot"]["customers"] == 80
    assert body["not_served"] == {}  # every task serves
    # a source that is not a registry: whether a reload would change a model is not known
    assert {m["reload_pending"] for m in body["models"]} == {None}


def test_health_readiness_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "detail": None}
    _scores(client, "c001", "?tasks=churn")
    client.get("/v1/customers/c001/scores")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = 'route="/v1/customers/{customer_id}/scores"'
    assert f'guanxi_requests_total{{method="GET",{route},status="200"}}' in text
    assert f'guanxi_requests_total{{method="GET",{route},status="401"}}' in text
    assert f"guanxi_request_latency_seconds_count{{{route}}}" in text
    assert 'guanxi_scores_served_total{model_version="1",task="churn"} 1.0' in text
    assert "c001" not in text
    # a reviewer page's scores count apart (test_value_api.py), and the help says so (before,
    # it said "Customer scores served", fewer than the audit log holds)
    page = client.get("/ui/customers/c001", headers=headers("reviewer"))
    assert page.status_code == 200
    text = client.get("/metrics").text
    assert 'guanxi_scores_served_total{model_version="1",task="churn"} 1.0' in text
    assert f"# HELP guanxi_scores_served_total {SCORES_HELP}" in text


def test_health_and_readiness_answer_head_as_get(client: TestClient) -> None:
    """serve28b: ``HEAD /healthz`` and ``HEAD /readyz`` were 405s, so an uptime monitor or load
    balancer probing with HEAD saw the service as down. They answer as GET, without a body,
    counted under their route, and the OpenAPI document keeps one GET operation each.
    serve28c: ``HEAD /metrics`` too (it was a 405), for a monitor checking it is up."""
    for path in ("/healthz", "/readyz", "/metrics"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["x-request-id"]
    text = client.get("/metrics").text
    assert 'guanxi_requests_total{method="HEAD",route="/healthz",status="200"} 1.0' in text
    assert 'guanxi_requests_total{method="HEAD",route="/readyz",status="200"} 1.0' in text
    assert 'guanxi_requests_total{method="HEAD",route="/metrics",status="200"} 1.0' in text
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/healthz"]) == set(paths["/readyz"]) == set(paths["/metrics"]) == {"get"}


def test_the_icon_and_the_api_docs_answer_head_as_get(client: TestClient) -> None:
    """serve31: ``HEAD /favicon.ico``, ``HEAD /docs`` and ``HEAD /redoc`` were 405s while GET
    answered, so a link checker or monitor saw them broken; now as GET, without a body. The
    document's operations are unchanged (serve31b: an API operation's HEAD is outside it)."""
    for path in ("/favicon.ico", "/docs", "/redoc", "/docs/oauth2-redirect"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/v1/models", headers=headers()).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path, operations in paths.items() if "head" in operations]


def test_a_405_allows_every_method_answered_at_its_path(client: TestClient) -> None:
    """serve28c: Starlette's 405 names the methods of the first route matching the path, so
    ``POST /healthz`` said ``Allow: GET`` once ``HEAD`` was answered by a route of its own (and
    ``PUT /ui/login`` ``Allow: GET``, though the login form posts to it)."""
    for method, path, allow in [
        ("POST", "/healthz", "GET, HEAD"),
        ("PUT", "/readyz", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("PUT", "/ui/login", "GET, HEAD, POST"),  # ui30b: a page answers HEAD
        ("POST", "/v1/models", "GET, HEAD"),  # serve31b: an operation's GET answers HEAD
        # polish29: a mounted folder's 405 (StaticFiles: "GET, HEAD") came with an empty Allow
        ("POST", "/ui/static/guanxi.css", "GET, HEAD"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allow, (path, r.headers)
        if not path.startswith("/ui/login"):  # serve31: the detail names them too
            said = f"{method} is not a method of this address, which takes {allow}"
            assert r.json() == {"detail": said}, r.text


def test_the_document_says_first_what_every_operation_shares(client: TestClient) -> None:
    """serve31: /docs opened on the operations alone: the key's header, the error shapes,
    ``X-Request-ID``, ``Retry-After`` and that addresses and ids are exact were each found
    only by trying. The document's description says them above the operations, and what it
    says of the key holds for every /v1 operation."""
    document = client.get("/openapi.json").json()
    assert document["info"]["description"] == API_DESCRIPTION
    assert "`X-API-Key` header" in API_DESCRIPTION and "scorer, reviewer, admin" in API_DESCRIPTION
    scheme = document["components"]["securitySchemes"]["APIKeyHeader"]
    assert scheme["name"] == "X-API-Key"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert (operation.get("security") == [{"APIKeyHeader": []}]) == path.startswith("/v1/")
    assert "/v1/scores/" in API_DESCRIPTION
    assert client.post("/v1/scores/", headers=headers(), json={}).status_code == 404


def test_an_address_no_route_has_says_where_the_api_is(client: TestClient) -> None:
    """serve31: a mistyped address (``/v2/models``, ``/v1/customer/c001/scores``) answered
    ``{"detail": "Not Found"}``, and a method a route does not take "Method Not Allowed" (the
    methods in ``Allow`` only): an integrator's log said neither where to look nor what to
    send. The 404 says where the API is, the 405 the methods, as its ``Allow``."""
    for path in ("/v2/models", "/v1/customer/c001/scores", "/"):
        r = client.get(path, headers=headers())
        assert r.status_code == 404 and r.json() == {"detail": NO_ROUTE}, path
        assert r.headers["x-request-id"]
    # web33: a person at the server's own address was told of the API and the health alone
    assert NO_ROUTE.endswith(", the reviewer pages at /ui/")
    r = client.put("/v1/models", headers=headers())
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"  # serve31b: HEAD too
    assert r.json() == {"detail": "PUT is not a method of this address, which takes GET, HEAD"}


def test_metrics_label_every_route_by_its_template(client: TestClient) -> None:
    # the docs, their assets, the icon and the pages' static files and redirects are routes too
    templates = {
        "/docs": "/docs",
        "/redoc": "/redoc",
        "/docs/assets/swagger-ui.css": "/docs/assets/{path}",
        "/favicon.ico": "/favicon.ico",
        "/ui/static/guanxi.css": "/ui/static/{path}",
        "/ui/customers/c001": "/ui/customers/{customer_id}",
        "/openapi.json": "/openapi.json",
    }
    for path in templates:
        assert client.get(path, follow_redirects=False).status_code in (200, 303), path
    client.post("/v1/customers/c001/scores", headers=headers())  # 405: the route refused it
    client.get("/no/such/page")
    text = client.get("/metrics").text
    for template in templates.values():
        assert f'route="{template}"' in text, template
    assert 'method="POST",route="/v1/customers/{customer_id}/scores",status="405"' in text
    counts = [line for line in text.splitlines() if line.startswith("guanxi_requests_total")]
    unmatched = [line for line in counts if 'route="unmatched"' in line]
    assert unmatched == ['guanxi_requests_total{method="GET",route="unmatched",status="404"} 1.0']


def test_metrics_label_methods_from_a_fixed_set(client: TestClient) -> None:
    """serve28: a request's method was its label as sent, so a client sending FOO1, FOO2...
    made a series of guanxi_requests_total per method, without bound (h11 and other ASGI servers
    pass any token). Now a method outside HTTP's own is labelled other."""
    for method in ("FOO1", "FOO2", "get-ish"):
        assert client.request(method, "/healthz").status_code == 405
    assert client.request("PATCH", "/healthz").status_code == 405
    counts = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("guanxi_requests_total") and 'route="/healthz"' in line
    ]
    assert sorted(counts) == [
        'guanxi_requests_total{method="PATCH",route="/healthz",status="405"} 1.0',
        f'guanxi_requests_total{{method="{OTHER_METHOD}",route="/healthz",status="405"}} 3.0',
    ]


def test_api_docs_are_off_by_default_outside_dev(tmp_path: Path, source: StaticSource) -> None:
    app = create_app(make_settings(tmp_path / "h", api_docs=None), source)
    with TestClient(app) as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            assert c.get(path).status_code == 404, path
    dev = create_app(make_settings(tmp_path / "h", api_docs=None, dev=True), source)
    with TestClient(dev) as c:
        assert c.get("/openapi.json").status_code == 200


def test_docs_and_icon_come_from_this_server(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path).text
        assert "cdn" not in page.lower() and "/docs/assets/" in page
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 200
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_docs_behind_a_path_prefix_ask_for_nothing_outside_it(app: FastAPI) -> None:
    """web32: mounted under ``/crm`` (the ASGI ``root_path``), ``/crm/docs`` and ``/crm/redoc``
    linked their icon as ``/favicon.ico``, an address outside the prefix that the proxy does not
    send to guanxi (another site's icon, or a 404 in the browser's console). Every address the
    docs pages name, resolved as a browser does, is under the prefix and answers."""
    with TestClient(app, root_path="/crm") as proxied:
        for page in ("/crm/docs", "/crm/redoc"):
            r = proxied.get(page)
            assert r.status_code == 200, page
            named = re.findall(r"""(?:href|src|url)\s*[:=]\s*['"]([^'"]+)['"]""", r.text)
            assert any("favicon" in address for address in named), page
            for address in named:
                path = urlsplit(urljoin(str(r.url), address)).path
                assert path.startswith("/crm/"), (page, address)
                assert proxied.get(path).status_code == 200, (page, address)


def test_request_id_header(client: TestClient) -> None:
    a = client.get("/healthz").headers["x-request-id"]
    b = client.get("/healthz").headers["x-request-id"]
    assert len(a) == 32 and a != b


def test_client_request_id_is_kept_when_safe(
    client: TestClient, settings, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """serve30: a client's own X-Request-ID was replaced by the server's, so an integrator
    sending one for correlation never saw it back; now the answer, the access log and the
    audit log carry it when it is safe, and a new one replaces it when it is not."""
    own = "4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7:trace-1_x"
    with caplog.at_level(logging.INFO, logger="serving.access"):
        r = client.post(
            "/v1/scores",
            headers={**headers(), "X-Request-ID": own},
            json={"customer_ids": ["c001"], "tasks": ["churn"]},
        )
    assert r.status_code == 200 and r.headers["x-request-id"] == own
    access = [rec.getMessage() for rec in caplog.records if rec.name == "serving.access"]
    assert access[-1].endswith(f"request_id={own}")
    (part,) = (settings.home / "audit").glob("part-*.jsonl")
    assert {json.loads(line)["request_id"] for line in part.read_text().splitlines()} == {own}
    assert (
        client.get("/healthz", headers={"X-Request-ID": "a" * 128}).headers["x-request-id"]
        == "a" * 128
    )
    unsafe = [
        "",
        "a" * 129,  # over the bound
        "abc def",  # a space: a second field in the access log
        "abc request_id=forged",
        "abc\tdef",
        "abc\x7fdef",
        "caf\u00e9".encode("latin-1"),  # not ASCII
    ]
    for given in unsafe:
        answered = client.get("/healthz", headers={"X-Request-ID": given}).headers
        assert re.fullmatch("[0-9a-f]{32}", answered["x-request-id"]), given
    twice = client.get("/healthz", headers=[("X-Request-ID", "one"), ("X-Request-ID", "two")])
    assert re.fullmatch("[0-9a-f]{32}", twice.headers["x-request-id"])


def test_openapi_lists_every_route_with_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {
        "/v1/customers/{customer_id}/scores": "get",
        "/v1/scores": "post",
        "/v1/score": "post",
        "/v1/models": "get",
        "/v1/admin/reload": "post",
        "/healthz": "get",
        "/readyz": "get",
        "/metrics": "get",
    }
    for path, method in expected.items():
        operation = spec["paths"][path][method]
        assert "200" in operation["responses"]
    scores = spec["paths"]["/v1/customers/{customer_id}/scores"]["get"]["responses"]
    # a scorer's GET: no 403 (no role is below a scorer), no 400, 413 or 415 (no body)
    assert set(scores) - {"200"} == {"401", "404", "422", "429", "503"}
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]


def _chunks(size: int, piece: int = 1000) -> Iterator[bytes]:
    yield b'{"customer_ids": ["'
    for _ in range(size // piece):
        yield b"x" * piece
    yield b'"]}'


def _conforms(client: TestClient, method: str, path: str, response: httpx2.Response) -> None:
    """Check a real response against the app's own OpenAPI document: its status is documented
    for the operation, its media type is the documented one, and its body is valid against the
    documented schema (schemathesis' validation, as the fuzz run does)."""
    document = client.app.openapi()  # type: ignore[attr-defined]
    documented = document["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in documented, (path, response.status_code)
    media = response.headers["content-type"].split(";")[0]
    assert media in documented[str(response.status_code)].get("content", {}), (path, media)
    schemathesis.openapi.from_dict(document)[path][method].validate_response(response)


def test_413_on_the_stream(tmp_path: Path, source: StaticSource) -> None:
    """A body over the limit is a 413 in the API's error shape, naming the limit and its
    setting, whether its length is declared or it streams in chunks."""
    app = create_app(make_settings(tmp_path / "h", max_body_bytes=4096), source)
    with TestClient(app) as c:
        wait_ready(c)
        # chunked: no Content-Length, the limit is counted on the received bytes
        r = c.post("/v1/scores", headers=headers(), content=_chunks(20_000))
        assert r.status_code == 413
        assert "xxxx" not in r.text
        assert r.json() == {"detail": body_too_large(4096)}
        _conforms(c, "POST", "/v1/scores", r)
        r = c.post("/v1/scores", headers=headers(), content=b"x" * 5000)
        assert r.status_code == 413
        assert "4,096 bytes" in r.json()["detail"] and "GUANXI_MAX_BODY_BYTES" in r.text
        _conforms(c, "POST", "/v1/scores", r)
        # a plan's offers are a body too: its 413 is documented as the scores' is
        r = c.post("/v1/targeting", headers=headers("reviewer"), content=b"x" * 5000)
        assert r.status_code == 413
        _conforms(c, "POST", "/v1/targeting", r)
        r = c.post("/v1/scores", headers=headers(), json={"customer_ids": ["c001"]})
        assert r.status_code == 200
        metrics = c.get("/metrics").text
        assert 'route="/v1/scores",status="413"} 2.0' in metrics
        # an operation that takes no body never reads one, and answers as without it: before, a
        # GET with one over the limit was a 413 its document does not list, and a file's answer
        # (which receives the body while it waits for the client to leave) failed on one
        r = c.request("GET", "/v1/models", headers=headers(), content=b"x" * 5000)
        assert r.status_code == 200, r.text
        _conforms(c, "GET", "/v1/models", r)
        assert c.request("GET", "/favicon.ico", content=_chunks(20_000)).status_code == 200
        # a form is a body: the login's is refused as the API's are
        r = c.post("/ui/login", content=b"x" * 5000)
        assert r.status_code == 413


def test_a_body_that_is_not_json_says_to_send_json(client: TestClient) -> None:
    """Bad JSON, a body sent as text or a form, and no body at all name the field ``body`` and
    say what to send, without quoting the body (FastAPI's own location of bad JSON is the
    offset of the character, as if it were a field)."""
    secret = "s3cr3t-value-17"
    cases = {
        "not valid JSON (Expecting value at character 18)": (
            {"content-type": "application/json"},
            b'{"customer_ids": [' + secret.encode() + b"]}",
        ),
        "the body was not sent as JSON": (
            {"content-type": "text/plain"},
            json.dumps({"customer_ids": [secret]}).encode(),
        ),
        "no body": ({"content-type": "application/json"}, b""),
    }
    for why, (sent, content) in cases.items():
        r = client.post("/v1/scores", headers=headers() | sent, content=content)
        assert _fields(r) == {"body": f"{why}: {SEND_JSON}"}, r.text
        assert secret not in r.text
        _conforms(client, "POST", "/v1/scores", r)
    # a form post (curl -d without -H) is not JSON either
    r = client.post("/v1/score", headers=headers(), data={"customer_id": secret})
    assert _fields(r) == {"body": f"the body was not sent as JSON: {SEND_JSON}"}


def test_json_that_is_no_object_says_the_body_must_be_one_and_its_fields(
    client: TestClient,
) -> None:
    """serve31: ``null``, ``[]``, ``"x"`` or ``1`` as the body of a JSON route answered
    pydantic's "Input should be a valid dictionary or object to extract fields from", which an
    integrator sending ``json.dumps(None)`` could not act on. Now the body's 422 says what it
    was, that it must be a JSON object, and the object's fields (the required ones said so),
    never quoting it."""
    takes = {
        "/v1/scores": "customer_ids (required), tasks, explain and group",
        "/v1/score": "customer_id, features, events, as_of, tasks, explain and group",
        "/v1/targeting": "budget (required), offers (required), as_of, method, uplift and limit",
    }
    sent = {**headers("admin"), "Content-Type": "application/json"}
    for content, what in [
        (b"null", "null"),
        (b'["c001"]', "an array"),
        (b'"c001"', "a string"),
        (b"1", "a number"),
        (b"2.5", "a number"),
        (b"true", "true or false"),
    ]:
        for path, fields in takes.items():
            r = client.post(path, headers=sent, content=content)
            reason = f"the body is {what}, not a JSON object: {SEND_JSON}; its fields are {fields}"
            assert _fields(r) == {"body": reason}, r.text
            assert "c001" not in r.text
            _conforms(client, "POST", path, r)


def test_real_responses_are_what_the_document_publishes(client: TestClient) -> None:
    """What a marketing system reads from /openapi.json is what the server answers: each
    status, media type and body, successes and errors alike."""
    scorer = headers()
    checked = [
        ("GET", "/v1/customers/{customer_id}/scores", "/v1/customers/c001/scores?group=true"),
        ("GET", "/v1/customers/{customer_id}/scores", "/v1/customers/ghost/scores"),
        ("GET", "/v1/customers/{customer_id}/scores", "/v1/customers/c001/scores?explain=99"),
        ("GET", "/v1/models", "/v1/models"),
    ]
    for method, path, url in checked:
        _conforms(client, method, path, client.request(method, url, headers=scorer))
    for key in ({}, {"X-API-Key": "wrong"}):
        _conforms(client, "GET", "/v1/models", client.get("/v1/models", headers=key))
    r = client.post("/v1/admin/reload", headers=scorer)
    assert r.status_code == 403
    _conforms(client, "POST", "/v1/admin/reload", r)
    for body in (
        {"customer_ids": ["c001", "ghost"], "explain": 2, "group": True},
        {"customer_ids": ["c001"], "tasks": ["nope"]},
    ):
        _conforms(
            client, "POST", "/v1/scores", client.post("/v1/scores", headers=scorer, json=body)
        )
    for body in ({"features": {"recency_days": 3.0}}, {"features": {"nope": 1.0}}):
        _conforms(client, "POST", "/v1/score", client.post("/v1/score", headers=scorer, json=body))


def _without_hex(text: str) -> str:
    """Drop the hex digests and request ids from a log: ``c001`` is hex, so one of those holds
    by chance, and an assertion that no raw id is in the text then failed (serve28c saw it)."""
    return re.sub(r"[0-9a-f]{32,}", "", text)


def test_audit_log_hashes_ids(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    client.post(
        "/v1/scores",
        headers=headers("reviewer"),
        json={"customer_ids": ["c001", "ghost"], "tasks": ["churn", "cross_sell"]},
    )
    parts = list((settings.home / "audit").glob("part-*.jsonl"))
    assert len(parts) == 1
    text = parts[0].read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert "c001" not in _without_hex(text) and "ghost" not in text
    digest = hmac.new(AUDIT_KEY.encode(), b"c001", hashlib.sha256).hexdigest()
    assert {line["customer_hash"] for line in lines} == {digest}
    assert {line["task"] for line in lines} <= {"churn", "cross_sell"}
    assert {line["role"] for line in lines} == {"reviewer"}
    assert set(lines[0]) == {
        "request_id",
        "time",
        "role",
        "key_fingerprint",
        "task",
        "model_version",
        "customer_hash",
        "score",
        "item",
        "items",
        "mac",
    }


def test_audit_lines_name_the_key_not_only_the_role(tmp_path: Path, source: StaticSource) -> None:
    """sec32: a line said "reviewer", so two reviewers (or two systems) with keys of one role
    could not be told apart afterwards; it carries the key's fingerprint now, which the auditor
    matches with the audit key and the key (``guanxi audit verify --keys``) and which reveals
    neither."""
    second = "second-review-key-0123456789abcdef0123"
    spec = ",".join(f"{k}:{role}" for role, k in KEYS.items()) + f",{second}:reviewer"
    settings = make_settings(tmp_path, api_keys=SecretStr(spec))
    body = {"customer_ids": ["c001"], "tasks": ["churn"]}
    with TestClient(create_app(settings, source=source)) as client:
        wait_ready(client)
        ids = {
            key: client.post("/v1/scores", headers={"X-API-Key": key}, json=body).headers[
                "X-Request-ID"
            ]
            for key in (KEYS["reviewer"], second)
        }
    text = "".join(p.read_text() for p in (tmp_path / "audit").glob("part-*.jsonl"))
    lines = [json.loads(line) for line in text.splitlines()]
    by_request = {line["request_id"]: line for line in lines}
    for key, request_id in ids.items():
        line = by_request[request_id]
        assert line["role"] == "reviewer"
        assert line["key_fingerprint"] == key_fingerprint(AUDIT_KEY.encode(), key)
        assert re.fullmatch(r"[0-9a-f]{16}", line["key_fingerprint"])
        assert key not in text
    assert len({line["key_fingerprint"] for line in lines}) == 2
    # keyed: not a plain hash of the key, which a reader of the log could try keys against
    plain = hashlib.sha256(second.encode()).hexdigest()
    assert by_request[ids[second]]["key_fingerprint"] not in plain


def test_500_hides_details(app, source: StaticSource, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals at /srv/x")

    monkeypatch.setattr("serving.presentation.stored_scores", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        wait_ready(c)
        r = c.get("/v1/customers/c001/scores", headers=headers())
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.json()["detail"].startswith("internal error (request id ")
    assert np.isfinite(len(r.text))


@pytest.mark.parametrize("query", ["", "?explain=0", "?explain=3&group=true", "?tasks=cross_sell"])
def test_customer_scores_come_from_kept_fragments(client: TestClient, query: str) -> None:
    """GET answers what the response model of stored_scores says, first and again from memory."""
    from serving.presentation import stored_scores
    from serving.schemas import CustomerScores

    state = client.app.state.holder.current  # type: ignore[attr-defined]
    params = dict(p.split("=") for p in query.lstrip("?").split("&") if p)
    tasks = params["tasks"].split(",") if "tasks" in params else list(state.tables)
    k, group = int(params.get("explain", 5)), params.get("group") == "true"
    for customer in ("c001", "c002"):
        first = _scores(client, customer, query)
        positions = state.positions([customer])
        expected = CustomerScores(
            customer_id=customer, scores=stored_scores(state, positions, tasks, k, group)[0]
        ).model_dump(mode="json")
        assert first == expected
        fragments = [state.tables[t].fragments.get((int(positions[0]), k, group)) for t in tasks]
        assert all(f is not None for f in fragments)  # kept: the next answer is a lookup
        assert [json.loads(f) for f in fragments] == list(expected["scores"].values())
        assert _scores(client, customer, query) == expected


def test_access_log_names_route_templates_and_request_ids(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="serving.access"):
        r = client.get("/v1/customers/c001/scores?tasks=churn", headers=headers())
        missing = client.get("/v1/customers/nobody-x1/scores", headers=headers())
        # a key in the query string is not read (a 401) and never logged
        in_query = client.get(f"/v1/models?api_key={KEYS['admin']}&key={KEYS['admin']}")
    assert in_query.status_code == 401
    assert KEYS["admin"] not in caplog.text and KEYS["admin"] not in in_query.text
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "serving.access"]
    text = "\n".join(lines)
    assert "c001" not in _without_hex(text) and "nobody-x1" not in text and "tasks=" not in text
    assert '"GET /v1/customers/{customer_id}/scores" 200' in text
    assert f"request_id={r.headers['x-request-id']}" in text
    assert f"request_id={missing.headers['x-request-id']}" in text


def _assert_reconciles(score: dict) -> None:
    """The reasons and the remainder line sum exactly to the change from the base.

    In probability points to ``100 * (probability - base_probability)``, in log-odds of the
    uncalibrated margin to ``log_odds - base_log_odds``.
    """
    assert score["status"] == "eligible" and score["probability"] is not None
    rest = score["other_inputs"]
    assert rest is not None and rest["inputs"] >= 0
    points = sum(r["contribution_points"] for r in score["reasons"]) + rest["contribution_points"]
    assert points == pytest.approx(
        100 * (score["probability"] - score["base_probability"]), abs=1e-9
    )
    log_odds = sum(r["contribution_log_odds"] for r in score["reasons"])
    log_odds += rest["contribution_log_odds"]
    assert log_odds == pytest.approx(score["log_odds"] - score["base_log_odds"], abs=1e-9)
    if rest["inputs"] == 0:  # heavy28: it read "0 other inputs together: lower ... by 0.0"
        assert rest["sentence"] == "no other input: the reasons are every input"
    else:
        assert rest["sentence"].startswith(
            "1 other input:" if rest["inputs"] == 1 else f"{rest['inputs']} other inputs together:"
        )


def test_reasons_reconcile_for_every_task_get_and_post(
    client: TestClient, snapshot: pl.DataFrame
) -> None:
    """GET, POST /v1/scores and POST /v1/score (features and events) reconcile for every task."""
    ids = ["c001", "c002", "c004", "c010"]
    posted = client.post(
        "/v1/scores", headers=headers(), json={"customer_ids": ids, "explain": 4}
    ).json()["results"]
    seen = dict.fromkeys(task_names(), 0)
    for cid, batch in zip(ids, posted, strict=True):
        got = _scores(client, cid, "?explain=4")["scores"]
        row = snapshot.filter(pl.col("customer_id") == cid).row(0, named=True)
        features = {k: v for k, v in row.items() if isinstance(v, int | float) or v is None}
        live = client.post(
            "/v1/score", headers=headers(), json={"customer_id": cid, "features": features}
        ).json()["scores"]
        for task in task_names():
            for score in (got[task], batch["scores"][task], live[task]):
                if score["probability"] is None:
                    continue
                _assert_reconciles(score)
                assert 0 <= score["base_probability"] <= 1
                seen[task] += 1
            assert live[task]["missing_inputs"] == []
    assert all(seen.values()), seen  # every task had scored customers
    # explain=0: no reasons asked, no remainder line
    bare = _scores(client, "c001", "?explain=0")["scores"]["churn"]
    assert bare["reasons"] == [] and bare["other_inputs"] is None
    assert bare["base_probability"] is not None


def test_the_rule_backed_version_serves_with_reasons_that_reconcile(
    tmp_path: Path, source: StaticSource, snapshot: pl.DataFrame
) -> None:
    """Cross-sell served by its rule-backed version: named the affinity rule, not XGBoost, its
    categories ranked by the rule's own score, and its one reason sums exactly."""
    bundle = rule_bundle(snapshot)
    models = dict(source.models)
    models["cross_sell"] = ServedModel(bundle, "cross_sell", "7", ("champion",))
    app = create_app(make_settings(tmp_path / "home"), replace(source, models=models))
    with TestClient(app) as client:
        wait_ready(client)
        info = {m["task"]: m for m in client.get("/v1/models", headers=headers()).json()["models"]}
        assert info["cross_sell"]["served_by"] == "affinity rule"
        assert info["churn"]["served_by"] == "XGBoost"
        assert info["cross_sell"]["features"] == 1
        posted = client.post(
            "/v1/scores", headers=headers(), json={"customer_ids": ["c001", "c004"], "explain": 3}
        ).json()["results"]
        seen = 0
        for cid, batch in zip(["c001", "c004"], posted, strict=True):
            for score in (
                _scores(client, cid, "?explain=3")["scores"]["cross_sell"],
                batch["scores"]["cross_sell"],
            ):
                assert score["model_served_by"] == "affinity rule"
                assert score["model_version"] == "7"
                if score["probability"] is None:
                    continue
                _assert_reconciles(score)
                assert {r["feature"] for r in score["reasons"]} <= {"candidate_affinity"}
                assert score["other_inputs"]["inputs"] == 1 - len(score["reasons"])
                seen += 1
            # the categories in the rule's order: by candidate_affinity, highest first
            rows = model_frame(
                "cross_sell",
                snapshot.filter(pl.col("customer_id") == cid),
                ["candidate_affinity"],
                list(CATEGORIES),
                bundle.metadata["category_inputs"],
            )
            ranked = [c["category"] for c in batch["scores"]["cross_sell"]["categories"] or []]
            affinity = dict(
                zip(
                    rows.index.get_level_values("category"), rows["candidate_affinity"], strict=True
                )
            )
            assert [affinity[c] for c in ranked] == sorted(affinity.values(), reverse=True)
        assert seen
        churn = _scores(client, "c001")["scores"]["churn"]
        assert churn["model_served_by"] == "XGBoost"


TARGETS = [f"target_{c}" for c in CATEGORIES] + ["candidate_popularity", "candidate_season"]


def test_inputs_not_sent_are_never_reasons(client: TestClient, snapshot: pl.DataFrame) -> None:
    """POST /v1/score with some features: the rest are listed as missing and never a reason."""
    row = snapshot.filter(pl.col("customer_id") == "c004").row(0, named=True)
    sent = {"recency_days": float(row["recency_days"]), "orders_total": float(row["orders_total"])}
    r = client.post(
        "/v1/score",
        headers=headers(),
        json={"customer_id": "c004", "features": sent, "explain": 10},
    )
    assert r.status_code == 200, r.text
    for task, score in r.json()["scores"].items():
        if score["probability"] is None:
            continue
        missing = set(score["missing_inputs"])
        assert "recency_days" not in missing and "is_subscribed" in missing, task
        reasons = {x["feature"] for x in score["reasons"]}
        # only what was sent, or what the model derives (the category being ranked)
        assert not reasons & missing and reasons <= set(sent) | set(TARGETS), task
        assert not any("unknown" in x["sentence"] for x in score["reasons"]), task
        _assert_reconciles(score)
        # the inputs not sent are in the remainder line
        assert score["other_inputs"]["inputs"] >= len(missing)


def test_customers_outside_the_population_get_a_status(
    client: TestClient, snapshot: pl.DataFrame
) -> None:
    """A never-ordered customer has a churn status 'prospect' and no score; repurchase scores
    everyone known."""
    prospects = snapshot.filter(pl.col("recency_days").is_null())["customer_id"].to_list()
    assert prospects, "the fixture has customers without orders"
    body = _scores(client, prospects[0])["scores"]
    churn = body["churn"]
    assert churn["status"] == "prospect" and "no order yet" in churn["status_reason"]
    assert churn["probability"] is None and churn["decile"] is None and churn["band"] is None
    assert churn["reasons"] == [] and churn["base_log_odds"] is None
    assert body["repurchase"]["status"] == "eligible"
    assert body["repurchase"]["probability"] is not None


def test_every_answer_carries_the_security_headers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scores, errors and probes are never cached, sniffed or framed; only static files cache.

    The JSON API answered customer scores with none of these headers (only the reviewer pages
    had them): a browser or proxy could keep them, another site could frame an answer.
    """
    big = {"Content-Length": str(10**9), "Content-Type": "application/json"}
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        answers = {
            "scores": client.get("/v1/customers/c001/scores", headers=headers()),
            "batch": client.post(
                "/v1/scores", headers=headers("reviewer"), json={"customer_ids": ["c001"]}
            ),
            "401": client.get("/v1/customers/c001/scores"),
            "404": client.get("/v1/customers/nobody/scores", headers=headers()),
            "422": client.post("/v1/scores", headers=headers("reviewer"), json={}),
            "413": client.post("/v1/scores", headers={**headers("reviewer"), **big}, content=b"{}"),
            "no route": client.get("/nowhere"),
            "healthz": client.get("/healthz"),
            "metrics": client.get("/metrics"),
            "docs": client.get("/docs"),
        }
        monkeypatch.setattr("serving.routes.live_scores", _boom)
        answers["500"] = client.post(
            "/v1/score",
            headers=headers(),
            json={"customer_id": "x", "features": {"recency_days": 3.0}},
        )
        page = client.get("/ui/", headers=headers("reviewer"))
        style = client.get("/ui/static/guanxi.css")
    assert answers["500"].status_code == 500
    for name, r in answers.items():
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert r.headers.get("x-frame-options") == "DENY", name
        assert r.headers.get("referrer-policy") == "same-origin", name
        assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), name
        assert r.headers.get("cache-control") == "no-store", name
    assert answers["scores"].headers["content-security-policy"].startswith("default-src 'none'")
    assert answers["docs"].headers["content-security-policy"] == "frame-ancestors 'none'"
    # a page keeps its own policy; a static file may be cached and loads nothing itself
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert style.status_code == 200 and "cache-control" not in style.headers
    assert style.headers["x-content-type-options"] == "nosniff"


def test_a_500_names_its_request_id_in_the_header_too(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header every other answer carries: a 500 had it in its body only."""
    monkeypatch.setattr("serving.routes.live_scores", _boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        body = {"customer_id": "x", "features": {"recency_days": 3.0}}
        r = client.post("/v1/score", headers=headers(), json=body)
        mine = client.post("/v1/score", headers={**headers(), "X-Request-ID": "trace-7"}, json=body)
    assert r.status_code == 500
    assert r.json()["detail"] == f"internal error (request id {r.headers['x-request-id']})"
    assert mine.headers["x-request-id"] == "trace-7" and "trace-7" in mine.json()["detail"]


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_another_sites_script_may_not_read_an_answer(client: TestClient) -> None:
    """No CORS: a browser refuses another site's script both the preflight of a keyed call and
    the reading of any answer, so a page a reviewer opens elsewhere cannot fetch scores."""
    evil = {"Origin": "https://evil.example"}
    preflight = client.options(
        "/v1/customers/c001/scores",
        headers={
            **evil,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert preflight.status_code >= 400
    answers = [preflight, client.get("/v1/customers/c001/scores", headers={**headers(), **evil})]
    answers.append(client.get("/healthz", headers=evil))
    for r in answers:
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers


def test_a_missing_static_file_is_a_404_naming_its_folder(app: FastAPI) -> None:
    """serve31b: ``/ui/static/x.css``, ``/docs/assets/x`` and ``/ui/static`` answered
    Starlette's bare ``{"detail": "Not Found"}`` (the last "the route is /ui/static/{path} (),
    with a trailing slash"): the 404 says no file is there and which folder was looked in, with
    the proxy's path prefix."""
    with TestClient(app) as client:
        for path, folder in [
            ("/ui/static/x.css", "/ui/static"),
            ("/ui/static/", "/ui/static"),
            ("/ui/static", "/ui/static"),
            ("/docs/assets/x", "/docs/assets"),
        ]:
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 404 and r.json() == {"detail": missing_file(folder)}, path
        assert client.get("/ui/static/guanxi.css").status_code == 200
    with TestClient(app, root_path="/crm") as proxied:
        r = proxied.get("/crm/ui/static/x.css")
        assert r.json() == {"detail": missing_file("/crm/ui/static")}

"""``POST /v1/targeting``: the hand-computed plan of the ``guanxi target`` tests, over HTTP.

The uplift model cache is checked with the registered uplift model of
:mod:`tests.models.test_planning`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import yaml
from fastapi.testclient import TestClient

from features.store import Store
from models import registry
from models.offers import parse_offers
from models.planning import fit_campaign_uplift, keep_plan, plan_from_store
from models.uplift import UpliftBundle
from serving.metrics import PLAN_ROWS_HELP
from serving.targeting import UpliftCache
from tests.models.test_planning import DAY as PLANNING_DAY
from tests.models.test_planning import OFFERS_DOC, _store
from tests.pipelines.test_target_cli import DAY, OFFERS, PLAN_COLUMNS, _values, keep_values
from tests.serving.conftest import STORE_KEY, headers
from tests.serving.test_value_api import _audit, _counted


def _body(budget: float = 3.0, **extra: object) -> dict[str, object]:
    return {"budget": budget, "offers": yaml.safe_load(OFFERS), **extra}


def test_targeting_plans_from_the_value_table_and_audits(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    unsigned = Store(settings.home)  # written without GUANXI_STORE_KEY: refused
    keep_values(unsigned, _values())
    refused = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert refused.status_code == 409 and "request id" in refused.json()["detail"]
    # it said "does not match its signed manifest" of a table that has none
    assert refused.json()["detail"].startswith(
        f"the value table as of {DAY.isoformat()} is not signed with this server's "
        "GUANXI_STORE_KEY: keep it again with the key set"
    )
    keep_values(settings.store(), _values())
    assert client.post("/v1/targeting", json=_body()).status_code == 401
    scorer = client.post("/v1/targeting", json=_body(), headers=headers("scorer"))
    assert scorer.status_code == 403
    answer = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["as_of"] == DAY.isoformat() and plan["customers"] == 2
    assert plan["expected_value"] == 17.0 and plan["investment"] == 3.0 and plan["reason"] is None
    assert [list(r) for r in plan["rows"]] == [PLAN_COLUMNS, PLAN_COLUMNS]
    assert [(r["customer_id"], r["offer"]) for r in plan["rows"]] == [
        ("C1", "retention_email"),
        ("C4", "win_back_voucher"),
    ]
    assert {r["segment"]: r["expected_value"] for r in plan["by_segment"]} == {
        "at_risk": 9.0,
        "hibernating": 8.0,
    }
    assert {r["allocation"] for r in plan["comparison"]} == {"optimiser", "even", "churn_score"}
    lines = [
        json.loads(line)
        for part in (settings.home / "audit").glob("part-*.jsonl")
        for line in part.read_text().splitlines()
    ]
    planned = [line for line in lines if line["task"].startswith("targeting:")]
    assert sorted(line["task"] for line in planned) == [
        "targeting:retention_email",
        "targeting:win_back_voucher",
    ]
    assert all("C1" not in json.dumps(line) for line in planned)  # ids are hashed

    empty = client.post("/v1/targeting", json=_body(0.5), headers=headers("reviewer")).json()
    assert empty["customers"] == 0 and "buys nothing" in empty["reason"]
    # nothing approximate ran: the empty plan is exact (it said "lagrangian", serve28b)
    assert empty["method"] == "exact"
    lagrangian = _body(0.5, method="lagrangian")
    answer = client.post("/v1/targeting", json=lagrangian, headers=headers("reviewer")).json()
    assert answer["method"] == "lagrangian"


def test_metrics_count_the_plan_rows_the_audit_log_holds(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    """tidy27: the plan rows POST /v1/targeting answered were audit lines, but /metrics counted
    them nowhere (the values and the pages' scores are counted since 1a85e53). Now each is
    counted by value table day (not by offer: a request names its own offers, and a label a
    caller picks grows without bound), as many as the audit log's lines: the rows answered
    (``limit``), an empty plan none."""
    keep_values(settings.store(), _values())
    for body in (_body(), _body(limit=1), _body(0.5)):  # two rows, the first, none
        answer = client.post("/v1/targeting", json=body, headers=headers("reviewer"))
        assert answer.status_code == 200, answer.text
    planned = Counter(
        (line["model_version"],)
        for line in _audit(settings.home)
        if line["task"].startswith("targeting:")
    )
    assert planned == {(DAY.isoformat(),): 3}
    assert _counted(client)["guanxi_plan_rows_served_total"] == planned
    assert f"# HELP guanxi_plan_rows_served_total {PLAN_ROWS_HELP}" in client.get("/metrics").text


def test_targeting_says_why_the_next_best_use_buys_nothing(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    """The answer's next best lists were empty with no reason, where guanxi target gives one."""
    keep_values(settings.store(), _values())
    plan = client.post("/v1/targeting", json=_body(100.0), headers=headers("reviewer")).json()
    assert plan["next_best_by_segment"] == [] and plan["next_best_by_offer"] == []
    assert plan["next_reason"] == (
        "every customer with an offer worth its cost is in the plan already: the 96.00 left over "
        "would buy nothing worthwhile"
    )
    # a budget of 3 buys C1 and C4; a further tenth (0.30) is below C2's 1.00 e-mail
    plan = client.post("/v1/targeting", json=_body(3.0), headers=headers("reviewer")).json()
    assert plan["next_reason"].startswith("its budget of 0.30 buys none of the offers")


def test_targeting_names_the_caps_the_next_best_use_lifts(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    """qa45 #2: under a campaign cap of 0 the plan contacted nobody while its next best use,
    bought as if no cap bound, listed contacts, with nothing saying so. ``next_limits`` names
    the caps and capacities it goes past (empty when it goes past none); the plan page, for the
    stored plan, says it lifts them."""
    keep_values(settings.store(), _values())
    plan = client.post("/v1/targeting", json=_body(3.0), headers=headers("reviewer")).json()
    assert plan["next_limits"] == []
    offers = {**yaml.safe_load(OFFERS), "max_contacts": 0}
    body = {"budget": 3.0, "offers": offers}
    plan = client.post("/v1/targeting", json=body, headers=headers("reviewer")).json()
    assert plan["customers"] == 0 and plan["next_best_by_offer"]
    assert plan["next_limits"] == ["the campaign's contact cap (0)"]
    store = settings.store()
    keep_plan(store, plan_from_store(store, parse_offers(offers), 3.0))
    page = " ".join(client.get("/ui/plan", headers=headers("reviewer")).text.split())
    assert (
        '<p class="muted small" id="plan-next-limits">Note: the next best use goes past the '
        "campaign&#39;s contact cap (0): it is what its budget would buy were that limit lifted "
        "(what more capacity would be worth), not what the plan can still buy.</p>"
    ) in page


def test_targeting_errors_name_the_field(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    body = _body()
    body["offers"]["offers"][1]["cost"] = -2  # type: ignore[index]
    bad = client.post("/v1/targeting", json=body, headers=headers("reviewer"))
    assert bad.status_code == 422
    assert "win_back_voucher" in bad.text and "cost" in bad.text
    missing = client.post("/v1/targeting", json=_body(), headers=headers("admin"))
    assert missing.status_code == 404 and "guanxi value" in missing.text
    negative = client.post("/v1/targeting", json=_body(-1), headers=headers("reviewer"))
    assert negative.status_code == 422


def test_targeting_loads_an_uplift_version_once_until_the_admin_reload(  # type: ignore[no-untyped-def]
    local_tracking: Path, settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(local_tracking, key=STORE_KEY.encode())
    _, bundles, _ = fit_campaign_uplift(store, PLANNING_DAY)
    registry.register_uplift(bundles[0], local_tracking, PLANNING_DAY)
    loads: list[Path] = []
    read = UpliftBundle.load

    def counted(path: Path) -> UpliftBundle:
        loads.append(path)
        return read(path)

    monkeypatch.setattr(
        UpliftBundle, "load", counted
    )  # the loader every registry load goes through
    body = {"budget": 100.0, "offers": OFFERS_DOC, "as_of": PLANNING_DAY.isoformat()}

    def plan_notes() -> list[str]:
        answer = client.post("/v1/targeting", json=body, headers=headers("reviewer"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["customers"] == 100
        return list(answer.json()["notes"])

    for _ in range(2):
        assert any("uplift_retention_email version 1) beats" in n for n in plan_notes())
    assert len(loads) == 1
    cache: UpliftCache = client.app.state.uplift_cache  # type: ignore[attr-defined]
    with ThreadPoolExecutor(4) as pool:  # requests arriving together share the one load
        assert {m.version for m in pool.map(lambda _: cache.load("retention_email"), range(8))} == {
            "1"
        }
    assert len(loads) == 1

    # a new fit registered as version 2; the admin reload forgets version 1
    registry.register_uplift(bundles[0], local_tracking, PLANNING_DAY)
    loads.clear()  # MLflow read the model it logged
    assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
    assert len(cache) == 0
    for _ in range(2):
        assert any("uplift_retention_email version 2) beats" in n for n in plan_notes())
    assert len(loads) == 1


def test_targeting_refuses_a_campaign_the_key_does_not_vouch_for(
    client: TestClient, settings
) -> None:  # type: ignore[no-untyped-def]
    """The plan's measured rates came from recorded outcomes read unchecked; a campaign kept
    without the server's key is now a 409 that names it (never a path of the server)."""
    keep_values(settings.store(), _values())
    outcomes = pl.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "offer": ["retention_email"] * 2,
            "control": [False, True],
            "responded": [True, False],
            "ordered": [True, False],
            "revenue": [10.0, 0.0],
            "margin": [3.0, 0.0],
        }
    )
    Store(settings.home).write_campaign(outcomes, "october", "/srv/secret/october.csv", DAY)
    refused = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith(
        "the recorded campaign 'october' is not signed with this server's GUANXI_STORE_KEY: keep "
        "it again with the key set; the reason is in the server log (request id "
    )
    assert "/srv/secret" not in detail


def test_targeting_refuses_a_value_table_listing_a_customer_twice(
    client: TestClient, settings
) -> None:  # type: ignore[no-untyped-def]
    """dups28: the plan took the value table's customer ids to be unique: a table listing C1 on
    two rows (no campaign recorded) was a 500 (offer_values' check of its customers frame). It
    is a 409 naming the day and the customer, and nothing is planned or audited."""
    keep_values(settings.store(), pl.concat([_values(), _values().head(1)]))
    refused = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "the value table as of 2024-10-31 lists customer 'C1' on more than one row: which row's "
        "segment, value tier, churn probability and CLV are theirs is not known, and the plan "
        "would offer them (and spend on them) once a row; write it again (guanxi value --events "
        "PATH --as-of 2024-10-31 --out PATH)"
    )
    audit = settings.home / "audit"
    assert not any("targeting:" in p.read_text() for p in audit.glob("part-*.jsonl"))


def test_targeting_refuses_a_snapshot_listing_a_customer_twice(
    client: TestClient, settings, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """dups28: a snapshot listing C1 on two rows was a 500 (offer_values' check of the plan's
    customers frame); it is a 409 naming the snapshot, its day and the customer, and the log
    says a table was refused (it said 'value table refused' of every such refusal)."""
    store = settings.store()
    keep_values(store, _values())
    snapshot = pl.DataFrame(
        {"customer_id": ["C1", "C2", "C1"], "unresolved_complaints": [0, 1, 0]}
    ).with_columns(recency_days=pl.lit(30.0))
    store.write_snapshot(snapshot, DAY)
    with caplog.at_level(logging.WARNING, logger="serving.targeting"):
        refused = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith(
        "the snapshot as of 2024-10-31 lists customer 'C1' on more than one row: "
    )
    logged = [m.getMessage() for m in caplog.records if "refused" in m.getMessage()]
    assert len(logged) == 1 and ": table refused: the snapshot as of 2024-10-31" in logged[0]


@pytest.mark.parametrize("budget", [0, -1])
def test_targeting_refuses_a_budget_of_0_as_guanxi_target_does(  # type: ignore[no-untyped-def]
    client: TestClient, settings, budget: float
) -> None:
    """walk28: a budget of 0 was taken (``ge=0``) and answered an empty plan, where ``guanxi
    target --budget 0`` is refused: the API refuses it in the CLI's words, naming the field."""
    keep_values(settings.store(), _values())
    answer = client.post("/v1/targeting", json=_body(budget), headers=headers("reviewer"))
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "field": "body.budget",
            "reason": f"{budget} buys nothing: the budget is what the campaign may spend, in "
            "money units, and must be above 0",
        }
    ]


def test_targeting_refuses_a_budget_no_campaign_can_spend(  # type: ignore[no-untyped-def]
    client: TestClient, settings
) -> None:
    """polish30b: as guanxi target --budget 1e30 is refused (its amounts lose their cents), the
    API refuses a budget above 10,000,000,000,000 in the same words, naming the field."""
    keep_values(settings.store(), _values())
    answer = client.post("/v1/targeting", json=_body(1e30), headers=headers("reviewer"))
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "field": "body.budget",
            "reason": "1e+30 is more than a campaign can spend: a budget is at most "
            "10,000,000,000,000 money units (beyond, amounts lose their cents)",
        }
    ]


def test_targeting_refuses_a_key_given_twice_naming_the_field_and_offer(  # type: ignore[no-untyped-def]
    client: TestClient, settings
) -> None:
    """walk28: the offers file refuses a key given twice in one mapping (9007141), but the same
    offers sent as JSON kept the last ``"cost"`` of an offer without a word: the plan changed
    unseen. Each repeat is a 422 naming its field and offer, as the file's errors do."""
    keep_values(settings.store(), _values())
    text = json.dumps(_body())
    assert text.count('"cost": 2.0') == 1 and text.count('"at_risk": 0.2') == 1
    twice = (
        text.replace('"cost": 2.0', '"cost": 2.0, "cost": 0.2')
        .replace('"at_risk": 0.2', '"at_risk": 0.2, "at_risk": 0.9')
        .replace('"budget": 3.0', '"budget": 3.0, "budget": 30.0')
    )

    def post(role: str, body: str):  # type: ignore[no-untyped-def]
        kind = {"content-type": "application/json", **headers(role)}
        return client.post("/v1/targeting", content=body.encode(), headers=kind)

    assert post("scorer", twice).status_code == 403  # the key is checked first
    answer = post("reviewer", twice)
    assert answer.status_code == 422
    held = "only one can hold, so the request is refused rather than one kept unseen"
    assert answer.json()["detail"] == [
        {"field": "body.budget", "reason": f"'budget' is given twice in one object; {held}"},
        {
            "field": "body.offers.offers.0.response.segments.at_risk",
            "reason": "'at_risk' is given twice in one object (offer 'retention_email', field "
            f"response.segments); {held}",
        },
        {
            "field": "body.offers.offers.1.cost",
            "reason": f"'cost' is given twice in one object (offer 'win_back_voucher'); {held}",
        },
    ]
    assert post("reviewer", text).status_code == 200  # each key once: planned


def test_targeting_answers_money_in_cents_as_guanxi_target_writes_it(  # type: ignore[no-untyped-def]
    client: TestClient, settings
) -> None:
    """walk28: the answer gave money as summed, "investment": 9.899999999999999, where
    ``guanxi target --out`` writes cents: the money fields are rounded to cents (numbers still),
    the budget as sent and the ratios as computed."""
    keep_values(settings.store(), _values())
    body = _body(4.0)
    for offer, cost in zip(body["offers"]["offers"], (1.1, 2.2), strict=True):  # type: ignore[index]
        offer["cost"] = cost
    answer = client.post("/v1/targeting", json=body, headers=headers("reviewer"))
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["customers"] == 2 and plan["investment"] == 3.3  # 1.1 + 2.2 is 3.3000000000000003
    money = ("cost", "expected_value", "investment", "expected_return", "bound")
    tables = ("rows", "by_segment", "by_offer", "comparison")
    for row in [plan, *(row for table in tables for row in plan[table])]:
        for name in money:
            if name in row:
                assert isinstance(row[name], float) and row[name] == round(row[name], 2), name

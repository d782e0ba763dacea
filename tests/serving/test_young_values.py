"""The value API of a store without models: answered from the value table, as ``/ui/value`` is.

Customer value needs no churn model, but the value routes answered 503 "models are not loaded
yet" while no model was loaded, though ``/ui/value`` showed the same table. They now answer from
the store's newest value table; what needs churn probabilities (equity at risk, the customers
carrying it, ``churn_status``) says it needs a churn model when the table holds none, instead of
0, an empty list or null.
"""

from __future__ import annotations

import csv
import io
import threading
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from fastapi.testclient import TestClient

import serving.deps
import serving.values
from features.store import Store
from serving.app import create_app
from serving.deps import served_values
from serving.state import StateHolder
from serving.values import NO_CHURN_MODEL, NO_VALUES, NewestValues
from tests.serving.conftest import (
    NO_MODEL,
    STORE_KEY,
    StaticSource,
    headers,
    make_settings,
    wait_failed_once,
    wait_ready,
)
from tests.serving.test_api import _conforms
from tests.serving.test_value_api import AS_OF, _audit, store_values, value_frame
from tests.serving.test_young_pages import churnless_app

VALUE_OPERATIONS = [
    ("/v1/customers/{customer_id}/value", "/v1/customers/c000/value"),
    ("/v1/segments", "/v1/segments"),
    ("/v1/equity", "/v1/equity"),
    ("/v1/segments/{name}/customers", "/v1/segments/champions/customers"),
]


def test_the_value_api_needs_no_model(unloaded: TestClient) -> None:
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    store_values(home)
    assert unloaded.get("/v1/customers/c000/scores", headers=headers()).status_code == 503
    for path, url in VALUE_OPERATIONS:
        r = unloaded.get(url, headers=headers())
        assert r.status_code == 200, (url, r.text)
        _conforms(unloaded, "GET", path, r)
    value = unloaded.get("/v1/customers/c000/value", headers=headers()).json()
    assert value["clv"] == 200.0 and value["as_of"] == AS_OF.isoformat()
    assert value["churn_status"] == "eligible" and value["equity_at_risk"] == 20.0
    overall = unloaded.get("/v1/segments", headers=headers()).json()["overall"]
    assert overall["equity"] == 600.0 and overall["equity_at_risk"] == pytest.approx(76.0)
    equity = unloaded.get("/v1/equity", headers=headers()).json()
    assert [t["customer_id"] for t in equity["top_at_risk"]] == ["c001"]
    assert equity["churn_missing"] is None
    segment = unloaded.get("/v1/segments/champions/customers", headers=headers()).json()
    assert [c["customer_id"] for c in segment["customers"]] == ["c003", "c000"]
    exported = unloaded.get("/v1/segments/champions/customers?format=csv", headers=headers())
    assert [r["customer_id"] for r in csv.DictReader(io.StringIO(exported.text))] == [
        "c003",
        "c000",
    ]
    # values served without a model are audited as with one
    assert any(a["task"] == "value" and a["score"] == 200.0 for a in _audit(home))
    # the request is still checked first: a bad format is its 422, not a 404 or 503
    bad = unloaded.get("/v1/segments/champions/customers?format=xml", headers=headers())
    assert bad.status_code == 422


def test_without_models_or_values_the_value_api_says_how_to_compute_them(
    unloaded: TestClient,
) -> None:
    for path, url in VALUE_OPERATIONS:
        r = unloaded.get(url, headers=headers())
        assert r.status_code == 404 and r.json() == {"detail": NO_VALUES}, (url, r.text)
        assert "retry-after" not in r.headers
        _conforms(unloaded, "GET", path, r)


def test_a_value_table_written_after_start_is_served_without_a_model(
    unloaded: TestClient,
) -> None:
    assert unloaded.get("/v1/segments", headers=headers()).status_code == 404
    store_values(unloaded.app.state.settings.home)  # type: ignore[attr-defined]
    assert unloaded.get("/v1/segments", headers=headers()).status_code == 200


@pytest.mark.parametrize("loaded", [True, False])
def test_values_without_churn_probabilities_say_what_equity_at_risk_needs(
    tmp_path: Path, source: StaticSource, loaded: bool
) -> None:
    """Before: equity at risk 0.0 overall and in every group, risk_share 0, top_at_risk [] (as
    though nothing were at risk), and churn_status null."""
    with churnless_app(tmp_path, source, loaded) as client:
        segments = client.get("/v1/segments", headers=headers())
        equity = client.get("/v1/equity", headers=headers())
        value = client.get("/v1/customers/c000/value", headers=headers())
        segment = client.get("/v1/segments/champions/customers", headers=headers())
        for path, answer in [
            ("/v1/segments", segments),
            ("/v1/equity", equity),
            ("/v1/customers/{customer_id}/value", value),
            ("/v1/segments/{name}/customers", segment),
        ]:
            assert answer.status_code == 200, (path, answer.text)
            _conforms(client, "GET", path, answer)
    body = segments.json()
    assert "computed without a churn model" in body["churn_missing"]
    assert "guanxi train" in body["churn_missing"] and "guanxi value" in body["churn_missing"]
    groups = [body["overall"], *body["rfm_segments"], *body["value_tiers"]]
    assert all(g["equity_at_risk"] is None and g["risk_share"] is None for g in groups)
    assert body["overall"]["equity"] == 600.0 and body["overall"]["scored"] == 0
    figures = equity.json()
    assert figures["top_at_risk"] is None and figures["overall"]["equity_at_risk"] is None
    assert figures["churn_missing"] == body["churn_missing"]
    assert value.json()["churn_status"] == NO_CHURN_MODEL
    assert value.json()["equity_at_risk"] is None and value.json()["clv"] == 200.0
    assert {c["churn_status"] for c in segment.json()["customers"]} == {NO_CHURN_MODEL}


def test_the_value_routes_document_their_503_as_the_stopping_server_only(
    client: TestClient,
) -> None:
    """Before: they documented the 503 "models are not loaded yet", which they no longer answer."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, _ in VALUE_OPERATIONS:
        answer = paths[path]["get"]["responses"]["503"]
        example = answer["content"]["application/json"]["example"]["detail"]
        assert "not loaded" not in example and "server is stopping" in example, path
        assert "Retry-After" in answer["headers"]
    scores = paths["/v1/customers/{customer_id}/scores"]["get"]["responses"]["503"]
    assert "not loaded" in scores["content"]["application/json"]["example"]["detail"]


def test_without_a_model_the_value_table_is_read_once_per_write(
    unloaded: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: /ui/value (and then the value routes) read and indexed the whole value table at
    every request while no model was loaded; now once per write of it, and a table written later
    (a newer day, or the same day again) is shown at the next request."""
    reads: list[date] = []
    read = Store.read_values

    def counted(store: Store, as_of: date) -> pl.DataFrame | None:
        reads.append(as_of)
        return read(store, as_of)

    monkeypatch.setattr(Store, "read_values", counted)
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    store_values(home)
    for _ in range(3):
        page = unloaded.get("/ui/value", headers=headers("reviewer"))
        assert page.status_code == 200 and 'id="equity">600.00' in page.text
    for url in ("/v1/segments", "/v1/equity", "/v1/customers/c000/value"):
        assert unloaded.get(url, headers=headers()).status_code == 200
    assert unloaded.get("/ui/value/segments/champions.csv", headers=headers("reviewer")).is_success
    for _ in range(2):  # the customer pages it links to take the same table
        assert unloaded.get("/ui/customers/c000", headers=headers("reviewer")).is_success
    assert reads == [AS_OF]
    # the same day written again, CLVs doubled: read again, shown at once
    _write(home, AS_OF, 2.0)
    assert 'id="equity">1,200.00' in unloaded.get("/ui/value", headers=headers("reviewer")).text
    assert unloaded.get("/v1/segments", headers=headers()).json()["overall"]["equity"] == 1200.0
    assert reads == [AS_OF, AS_OF]
    # a newer day: that one is served
    later = AS_OF + timedelta(days=1)
    _write(home, later, 3.0)
    assert unloaded.get("/v1/segments", headers=headers()).json()["as_of"] == later.isoformat()
    assert 'id="equity">1,800.00' in unloaded.get("/ui/value", headers=headers("reviewer")).text
    assert reads == [AS_OF, AS_OF, later]


def _write(home: Path, day: date, factor: float) -> None:
    """Keep the hand-made value table as of ``day`` with every CLV times ``factor``, signed."""
    frame = value_frame().with_columns(pl.col("clv") * factor, as_of=pl.lit(day, pl.Date))
    Store(home, STORE_KEY.encode()).write_values(
        frame, day, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )


def test_a_loaded_state_frees_the_table_read_without_one(
    tmp_path: Path, source: StaticSource
) -> None:
    """The table read while nothing was loaded is forgotten once a state serves its own."""
    home = tmp_path / "home"
    store_values(home)
    source.failure = NO_MODEL
    with TestClient(create_app(make_settings(home), source)) as client:
        wait_failed_once(client)
        assert client.get("/v1/segments", headers=headers()).status_code == 200
        newest = client.app.state.newest_values  # type: ignore[attr-defined]
        assert newest.get(client.app.state.settings.store()) is not None  # type: ignore[attr-defined]
        source.failure = None
        wait_ready(client)
        assert client.get("/v1/segments", headers=headers()).status_code == 200
        assert newest._values is None


def test_a_loaded_states_value_requests_take_no_lock_for_nothing(
    tmp_path: Path, source: StaticSource
) -> None:
    """tidy27: every value request served from a loaded state's table cleared the app's
    NewestValues under its lock, though it held nothing: the requests of every thread took one
    lock in turn for nothing. Now the lock is taken only to forget a table read."""
    home = tmp_path / "home"
    store_values(home)
    with TestClient(create_app(make_settings(home), source)) as client:
        wait_ready(client)
        assert client.get("/v1/segments", headers=headers()).status_code == 200
        newest = client.app.state.newest_values  # type: ignore[attr-defined]
        lock, taken = newest._lock, []

        class Counted:
            def __enter__(self) -> bool:
                taken.append(True)
                return lock.__enter__()

            def __exit__(self, *exc: object) -> None:
                lock.__exit__(*exc)

        newest._lock = Counted()
        for _ in range(3):
            assert client.get("/v1/segments", headers=headers()).status_code == 200
        assert taken == []
        assert newest.get(client.app.state.settings.store()) is not None  # type: ignore[attr-defined]
        assert client.get("/v1/segments", headers=headers()).status_code == 200
        assert len(taken) == 2 and newest._values is None  # read, then forgotten under the lock


def test_each_app_makes_its_own_newest_values_at_start(
    tmp_path: Path, source: StaticSource
) -> None:
    """Before: the first value request made the app's NewestValues, under a lock of the module
    that every value request of every app took. Now create_app makes it beside the holder, and
    two apps on two stores each serve their own store's table, with no lock of serving.deps."""
    store_values(tmp_path / "a")
    _write(tmp_path / "b", AS_OF, 3.0)
    source.failure = NO_MODEL
    apps = [create_app(make_settings(tmp_path / home), source) for home in ("a", "b")]
    made = [app.state.newest_values for app in apps]  # before any request
    assert all(isinstance(newest, NewestValues) for newest in made) and made[0] is not made[1]
    equities = []
    for app, newest in zip(apps, made, strict=True):
        with TestClient(app) as client:
            wait_failed_once(client)
            equities.append(client.get("/v1/segments", headers=headers()).json())
        assert app.state.newest_values is newest
    assert [e["overall"]["equity"] for e in equities] == [600.0, 1800.0]
    lock = type(threading.Lock())
    assert not [name for name, v in vars(serving.deps).items() if isinstance(v, lock)]


def test_an_unsigned_store_tells_a_new_write_by_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key there is no manifest: the file's inode, time and size tell a new write."""
    store = Store(tmp_path / "home")
    reads: list[date] = []
    read = Store.read_values
    monkeypatch.setattr(Store, "read_values", lambda s, d: reads.append(d) or read(s, d))
    newest = NewestValues()
    assert newest.get(store) is None and reads == []
    store.write_values(value_frame(), AS_OF, horizon_days=365, discount_rate=0.1, basis="x", fit={})
    first = newest.get(store)
    assert first is not None and newest.get(store) is first and reads == [AS_OF]
    frame = value_frame().with_columns(pl.col("clv") * 2)
    store.write_values(frame, AS_OF, horizon_days=365, discount_rate=0.1, basis="x", fit={})
    again = newest.get(store)
    assert again is not None and again is not first and reads == [AS_OF, AS_OF]
    assert again.frame["clv"].sum() == 1200.0


def test_a_churn_model_whose_population_holds_nobody_says_so(client: TestClient) -> None:
    """A table read with a churn model but no customer in its population: equity at risk is
    unknown too, and each customer's own status says why (it is not replaced)."""
    frame = value_frame().with_columns(
        pl.lit(None, pl.Float64).alias("churn_probability"),
        pl.lit(None, pl.Float64).alias("equity_at_risk"),
        pl.lit("lapsed").alias("churn_status"),
    )
    store_values(client.app.state.settings.home, frame)  # type: ignore[attr-defined]
    assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
    body = client.get("/v1/segments", headers=headers()).json()
    assert "population" in body["churn_missing"] and "guanxi train" not in body["churn_missing"]
    assert body["overall"]["equity_at_risk"] is None and body["overall"]["equity"] == 600.0
    value = client.get("/v1/customers/c000/value", headers=headers()).json()
    assert value["churn_status"] == "lapsed" and value["equity_at_risk"] is None


def test_a_read_finishing_after_a_swap_is_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve28: a request reading the store's table while a state with its own was swapped in
    kept its read in the app's NewestValues: the loaded state's request saw nothing held yet (its
    check takes no lock), so a second copy of the table stayed in memory until another value
    request came, on a quiet server for hours. The request that read it now looks at the state
    again and forgets the read when a state serves its own."""
    home = tmp_path / "home"
    store_values(home)
    settings = make_settings(home)
    newest = NewestValues()
    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(newest_values=newest, settings=settings))
    )
    holder = StateHolder()
    reading, release = threading.Event(), threading.Event()
    load = serving.values.load_values

    def blocked(store: Store, day: date) -> object:
        reading.set()
        assert release.wait(10)
        return load(store, day)

    monkeypatch.setattr(serving.values, "load_values", blocked)
    read: list[object] = []
    unloaded = threading.Thread(target=lambda: read.append(served_values(request, holder)))  # type: ignore[arg-type]
    unloaded.start()
    assert reading.wait(10)  # the read holds the lock: nothing is held yet
    own = load(settings.store(), AS_OF)
    holder.swap(SimpleNamespace(values=own, snapshot=SimpleNamespace(as_of=AS_OF)))  # type: ignore[arg-type]
    assert served_values(request, holder) is own  # type: ignore[arg-type]
    release.set()
    unloaded.join(10)
    assert read and read[0] is not None and read[0] is not own  # served what it read
    assert newest._values is None and newest._written is None


@pytest.mark.parametrize("loaded", [True, False])
def test_segment_csv_of_a_churnless_table_says_no_churn_model(
    tmp_path: Path, source: StaticSource, loaded: bool
) -> None:
    """qa44 L3: both segment CSV exports left churn_status empty for a table computed without a
    churn model, while the JSON answers (the customer's and the segment's) say no_churn_model."""
    with churnless_app(tmp_path, source, loaded) as client:
        api = client.get("/v1/segments/champions/customers?format=csv", headers=headers())
        page = client.get("/ui/value/segments/champions.csv", headers=headers("reviewer"))
    for answer in (api, page):
        assert answer.status_code == 200, answer.text
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows, answer.text
        assert {r["churn_status"] for r in rows} == {NO_CHURN_MODEL}
        assert {r["churn_model_version"] for r in rows} == {""}
    assert api.text == page.text

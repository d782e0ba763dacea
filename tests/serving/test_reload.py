"""Readiness, start-up retries and reloads: a failed load keeps the old models serving."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.store import SnapshotNotFoundError
from models import registry
from models.tasks import task_names
from serving import lifecycle
from serving.app import create_app
from serving.deps import not_loaded
from serving.lifecycle import _followed_now, followed_version, pending_reloads, reload_state
from serving.loader import RegistrySource
from serving.state import ServedModel, StateHolder
from tests.serving.conftest import (
    Registry,
    StaticSource,
    headers,
    make_settings,
    until,
    wait_failed_once,
    wait_ready,
)

SCORES = "/v1/customers/c001/scores?tasks=churn&explain=2"


def _version(client: TestClient) -> str:
    r = client.get(SCORES, headers=headers())
    assert r.status_code == 200, r.text
    return str(r.json()["scores"]["churn"]["model_version"])


def test_not_ready_until_loaded_then_retries(tmp_path: Path, source: StaticSource) -> None:
    source.failure = ConnectionError("registry unreachable")
    app = create_app(make_settings(tmp_path / "h"), source)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert client.get(SCORES, headers=headers()).status_code == 503
        assert client.get("/v1/models", headers=headers()).status_code == 503
        # authentication comes first: no key is a 401 even before anything is loaded
        assert client.get(SCORES).status_code == 401
        assert client.get("/v1/models", headers={"X-API-Key": "guess"}).status_code == 401
        assert client.post("/v1/scores", json={"customer_ids": ["c001"]}).status_code == 401
        calls = len(source.calls)
        source.failure = None
        wait_ready(client)
        assert len(source.calls) > calls
        assert _version(client) == "1"


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    def found() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "load failed" in r.getMessage()]

    until(found, "no load failure logged")
    return found()


def test_nothing_trained_yet_is_logged_without_a_traceback(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    # `guanxi serve` before any `guanxi promote` logged a traceback at every retry
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    source.failure = registry.ModelNotFoundError("no task has a champion version: train one")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        assert client.get("/readyz").status_code == 503
        quiet = _failures(caplog)
        assert "no task has a champion version" in quiet[0].getMessage()
        assert not any(r.exc_info for r in quiet)
        caplog.clear()
        source.failure = ConnectionError("registry unreachable")  # unexpected: its traceback
        assert all(r.exc_info for r in _failures(caplog))
        source.failure = None
        wait_ready(client)


@pytest.mark.parametrize(
    ("failure", "command"),
    [
        (registry.ModelNotFoundError("no task has a champion version in /srv/x"), "guanxi promote"),
        (SnapshotNotFoundError("no snapshot in /srv/x/snapshots"), "guanxi features build"),
    ],
)
def test_nothing_to_serve_yet_says_what_to_run(
    tmp_path: Path, source: StaticSource, failure: Exception, command: str
) -> None:
    """An empty registry or store is not "loading": the API's 503 and the reviewer pages say
    what is missing and the command that makes it, never the paths of the log's reason; once
    it is there the server serves it without a restart."""
    source.failure = failure
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        r = client.get("/v1/models", headers=headers())
        assert r.status_code == 503 and command in r.json()["detail"], r.text
        page = client.get("/ui/", headers=headers("reviewer"))
        assert page.status_code == 503
        assert "Nothing to serve yet" in page.text and command in page.text
        assert "/srv/x" not in r.text + page.text
        # the overview's own error page offers to try again, not "Back to the overview" (itself)
        assert ">Try again</a>" in page.text and "Back to the overview" not in page.text
        other = client.get("/ui/customers", headers=headers("reviewer")).text
        assert ">Back to the overview</a>" in other and "Try again" not in other
        # before: "last load failed; retrying", a failure an operator of an empty store did
        # not have; now the API's 503 detail, the same sentence (no path either)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["detail"] == r.json()["detail"]
        source.failure = None
        wait_ready(client)
        assert client.get("/ui/", headers=headers("reviewer")).status_code == 200


def test_an_unexpected_load_failure_names_nothing(tmp_path: Path, source: StaticSource) -> None:
    source.failure = ConnectionError("registry at http://10.0.0.5 unreachable")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        r = client.get("/v1/models", headers=headers())
        assert r.status_code == 503 and "10.0.0.5" not in r.text
        page = client.get("/ui/", headers=headers("reviewer"))
        assert page.status_code == 503 and "Models are loading" in page.text
        assert "10.0.0.5" not in page.text
        # a load that did fail is still one for /readyz, without its reason's server
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "10.0.0.5" not in ready.text


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        (
            ConnectionError("registry at http://10.0.0.5 unreachable"),
            "the model registry could not be read: ConnectionError; the reason is in the "
            "server log",
        ),
        (
            MlflowException("API request to http://10.0.0.5/api/2.0/mlflow failed"),
            "the model registry could not be read: MlflowException; the reason is in the "
            "server log",
        ),
        (ValueError("model /srv/x refused"), "ValueError; the reason is in the server log"),
    ],
)
def test_after_a_failed_first_load_the_api_and_readyz_say_the_same_state(
    tmp_path: Path, source: StaticSource, failure: Exception, why: str
) -> None:
    """Brief serving47 item 2: after a failed first load GET /v1/models said "models are not
    loaded yet" (as though still loading) while /readyz said "last load failed; retrying"
    (without why). Both now say the one state, retried, and why in one line that names no
    server or path (the log has those)."""
    source.failure = failure
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        r = client.get("/v1/models", headers=headers())
        ready = client.get("/readyz")
    said = f"models are not loaded yet: last load failed; retrying ({why})"
    assert r.status_code == ready.status_code == 503
    assert r.json() == {"detail": said}
    assert ready.json() == {"ready": False, "detail": said}


class SaidHolder(StateHolder):
    """A holder that keeps what the API's 503 says each time a failed load sets last_error."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "last_error" and value is not None:
            self.said.append(not_loaded(self))


def test_a_failed_load_sets_last_error_after_why(tmp_path: Path, source: StaticSource) -> None:
    """Review48s L3: a failed load set holder.last_error before holder.missing and
    holder.failure, so a route reading the holder in between (the sync ones run in the thread
    pool) said "last load failed; retrying" without why, or with the failure before's. The why
    is set first: from the moment last_error says a load failed, the 503 says why."""
    source.failure = ValueError("model /srv/x refused")
    app = create_app(make_settings(tmp_path / "h"), source)
    holder = app.state.holder = SaidHolder()
    with TestClient(app) as client:
        wait_failed_once(client)
    assert holder.said[0] == (
        "models are not loaded yet: last load failed; retrying (ValueError; the reason is in the "
        "server log)"
    )


def test_reload_swaps_and_failed_reload_keeps_serving(
    client: TestClient, source: StaticSource, served: dict[str, ServedModel]
) -> None:
    source.models["churn"] = dataclasses.replace(served["churn"], version="2")
    r = client.post("/v1/admin/reload", headers=headers("admin"))
    assert r.status_code == 200, r.text
    assert {m["task"]: m["version"] for m in r.json()["models"]}["churn"] == "2"
    assert _version(client) == "2"

    source.failure = FileNotFoundError("model bundle file model.ubj is missing")
    r = client.post("/v1/admin/reload", headers=headers("admin"))
    assert r.status_code == 409
    assert "model.ubj" not in r.text and "request id" in r.json()["detail"]  # the log says why
    assert _version(client) == "2"
    assert client.get("/readyz").status_code == 200


def test_a_failed_reload_with_nothing_loaded_says_no_models_serve_yet(
    tmp_path: Path, source: StaticSource
) -> None:
    """With the registry unreachable from the start (nothing ever loaded), a reload's
    409 said "the previous models keep serving": there were none. It says no models are
    serving yet; once a load succeeded, a failed reload says the previous models keep serving."""
    source.failure = ConnectionError("registry at http://127.0.0.1:9 unreachable")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail.startswith(
            "reload failed, no models are serving yet; the reason is in the server log (request id "
        ), detail
        assert "previous models" not in detail and "127.0.0.1" not in detail
        source.failure = None
        wait_ready(client)
        source.failure = ConnectionError("registry at http://127.0.0.1:9 unreachable")
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith("reload failed, the previous models keep serving;")


def test_reload_during_requests_fails_none(
    client: TestClient, source: StaticSource, served: dict[str, ServedModel]
) -> None:
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get(SCORES, headers=headers())
            statuses.append(r.status_code)
            if r.status_code == 200:
                versions.add(r.json()["scores"]["churn"]["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            version = str(2 + i % 2)
            source.models["churn"] = dataclasses.replace(served["churn"], version=version)
            assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert versions <= {"1", "2", "3"}


def test_background_explains_every_customer(tmp_path: Path, source: StaticSource) -> None:
    app = create_app(make_settings(tmp_path / "h", precompute_reasons=True), source)
    with TestClient(app) as client:
        wait_ready(client)

        def explained() -> dict[str, float]:
            return client.get("/v1/models", headers=headers()).json()["snapshot"]["explained"]

        until(lambda: all(v == 1.0 for v in explained().values()), "not every customer explained")
        assert explained() == dict.fromkeys(task_names(), 1.0)


def test_registry_reload_paths(registry_env: Registry) -> None:
    """Champions from a real SQLite MLflow registry and the snapshot from the store."""
    reg = registry_env
    app = create_app(make_settings(reg.home))
    with TestClient(app) as client:
        wait_ready(client)
        models = client.get("/v1/models", headers=headers()).json()
        assert {m["task"]: m["version"] for m in models["models"]} == reg.champion
        assert all("champion" in m["aliases"] for m in models["models"])
        assert _version(client) == reg.champion["churn"]

        registry.set_alias("churn", registry.CHAMPION, reg.good)
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 200, r.text
        assert _version(client) == reg.good

        registry.set_alias("churn", registry.CHAMPION, reg.corrupt)
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409
        assert "checksum" not in r.text and "Stack trace" not in r.text
        assert _version(client) == reg.good

        registry.set_alias("churn", registry.CHAMPION, reg.incompatible)
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409
        assert "feature set" not in r.text
        assert _version(client) == reg.good


def test_models_say_a_promotion_not_reloaded_yet(
    registry_env: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa49 Low: after `guanxi promote` without a reload, GET /v1/models still listed the old
    version with its ``champion`` alias (as at load) and nothing said the registry had moved on.
    Each model's ``reload_pending`` says it: true once the registry's champion is another
    version than the one loaded, false again after a reload, null when the registry cannot be
    read (the answer is still a 200). Scoring never asks the registry."""
    reg = registry_env
    with TestClient(create_app(make_settings(reg.home))) as client:
        wait_ready(client)

        def pending() -> dict[str, bool | None]:
            r = client.get("/v1/models", headers=headers())
            assert r.status_code == 200, r.text
            return {m["task"]: m["reload_pending"] for m in r.json()["models"]}

        assert pending() == dict.fromkeys(reg.champion, False)
        registry.set_champion("churn", reg.good)  # what `guanxi promote` does, no reload
        assert pending() == {**dict.fromkeys(reg.champion, False), "churn": True}
        churn = client.get("/v1/models", headers=headers()).json()["models"]
        (old,) = [m for m in churn if m["task"] == "churn"]
        assert old["version"] == reg.champion["churn"] and old["aliases"] == ["champion"]
        assert _version(client) == reg.champion["churn"]  # the loaded model still scores

        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 200, r.text
        assert {m["task"]: m["reload_pending"] for m in r.json()["models"]} == dict.fromkeys(
            reg.champion, False
        )
        assert pending() == dict.fromkeys(reg.champion, False)

        # a registry that does not answer: not known, said as null, and no error
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
        mlflow.set_registry_uri("http://127.0.0.1:9")
        try:
            assert pending() == dict.fromkeys(reg.champion, None)
            assert _version(client) == reg.good
        finally:
            mlflow.set_registry_uri(reg.uri)


def test_one_look_at_the_registry_at_a_time(registry_env: Registry) -> None:
    """A registry slower than GET /v1/models waits leaves its look running in a thread: the
    next requests do not start more of them (they say null) until it has answered."""
    source = RegistrySource(make_settings(registry_env.home))
    assert source.followed_versions(["churn"], "champion") == {
        "churn": registry_env.champion["churn"]
    }
    with source.looking, pytest.raises(TimeoutError, match="previous look"):
        source.followed_versions(["churn"], "champion")
    assert source.followed_versions(["churn", "nope"], "champion")["nope"] is None


def test_both_callers_read_the_registry_through_one_look(
    registry_env: Registry, tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """GET /v1/models (``reload_pending``) and the value pages (``followed_version``) read the
    registry's aliases through one helper: the same source check, timeout and catch, and a log
    line that says which caller said what. A look not answered yet (the lock held) is not known
    to both, said in the log, and fails neither."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    champion = registry_env.champion["churn"]
    app = create_app(make_settings(registry_env.home))
    assert _followed_now(app, ["churn"], "for a test") == {"churn": champion}
    assert followed_version(app, "churn") == (True, champion)
    with TestClient(app) as client:
        wait_ready(client)
        with app.state.source.looking:  # the previous look has not answered yet
            assert _followed_now(app, ["churn"], "for a test") is None
            assert followed_version(app, "churn") == (False, None)
            r = client.get("/v1/models", headers=headers())
            assert r.status_code == 200, r.text
            assert {m["reload_pending"] for m in r.json()["models"]} == {None}
    busy = "TimeoutError: the registry has not answered the previous look yet"
    said = [r.getMessage() for r in caplog.records if "registry not read" in r.getMessage()]
    assert said == [
        f"registry not read for a test: {busy}",
        f"registry not read for a value page, both remedies said: {busy}",
        f"registry not read for reload_pending, said as null: {busy}",
    ]
    # a source that is not a registry has nothing to ask: not known, nothing logged
    caplog.clear()
    static = create_app(make_settings(tmp_path / "h"), source)
    assert _followed_now(static, ["churn"], "for a test") is None
    assert followed_version(static, "churn") == (False, None)
    assert not [r for r in caplog.records if "registry not read" in r.getMessage()]


def test_a_registry_slower_than_the_timeout_is_said_not_known(
    registry_env: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """qa49 Low: a registry that answers later than PENDING_TIMEOUT leaves GET /v1/models a 200
    whose ``reload_pending`` is null and the value pages "not known", and the log says why."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    app = create_app(make_settings(registry_env.home))
    with TestClient(app) as client:
        wait_ready(client)
        monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 0.05)

        def slow(tasks: list[str], alias: str) -> dict[str, str | None]:
            time.sleep(0.5)
            return dict.fromkeys(tasks, "1")

        monkeypatch.setattr(app.state.source, "followed_versions", slow)
        r = client.get("/v1/models", headers=headers())
        assert r.status_code == 200, r.text
        assert {m["reload_pending"] for m in r.json()["models"]} == {None}
        assert followed_version(app, "churn") == (False, None)
    said = [r.getMessage() for r in caplog.records if "registry not read" in r.getMessage()]
    assert said == [
        "registry not read for reload_pending, said as null: no answer within 0.05 s",
        "registry not read for a value page, both remedies said: no answer within 0.05 s",
    ]


def test_reload_pending_waits_no_longer_for_a_thread_than_the_timeout(
    registry_env: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """The PENDING_TIMEOUT bound of ``reload_pending`` covers waiting for a worker thread too:
    with the event loop's threads all busy, the listing still says "not known" (null) instead
    of waiting for a thread to come free, and the log says so."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    app = create_app(make_settings(registry_env.home))
    with TestClient(app) as client:
        wait_ready(client)
        state = app.state.holder.current

    async def listing() -> dict[str, bool | None]:
        loop = asyncio.get_running_loop()
        busy = ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(busy)
        free = threading.Event()
        occupied = loop.run_in_executor(None, free.wait)  # the loop's only thread
        later = threading.Timer(2 * lifecycle.PENDING_TIMEOUT + 1, free.set)  # never hang
        later.start()
        try:
            return await pending_reloads(app, state)
        finally:
            free.set()
            later.cancel()
            await occupied

    assert asyncio.run(listing()) == dict.fromkeys(state.tables, None)
    said = [r.getMessage() for r in caplog.records if "registry not read" in r.getMessage()]
    assert said == ["registry not read for reload_pending, said as null: no answer within 2 s"]


@pytest.mark.parametrize("tasks", [("churn",), None], ids=["GUANXI_TASKS", "every task"])
def test_a_reload_against_a_hung_registry_asks_it_once(
    registry_env: Registry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tasks: tuple[str, ...] | None,
) -> None:
    """qa44 M2: POST /v1/admin/reload against a hung MLflow server (SIGSTOP'd) answered its 409
    after 125 s with GUANXI_TASKS set: the load's look timed out (MLflow's 20 s x 3 attempts),
    then the load asked the registry again only to name a version whose files are gone. A
    look that fails on the connection is asked once, so a hung registry costs one look's time
    (those 20 s x 3 are MLflow's client settings, ``models.registry.ENV_DEFAULTS``)."""
    caplog.set_level(logging.WARNING)
    settings = make_settings(registry_env.home, **({"tasks": tasks} if tasks else {}))
    app = create_app(settings)
    with TestClient(app) as client:
        wait_ready(client)
        before = _version(client)
        calls: list[tuple[str, str]] = []
        hung = (
            "API request to http://127.0.0.1:5000/api/2.0/mlflow/registered-models/alias "
            "failed with timeout exception Read timed out. (read timeout=20)"
        )

        def unanswered(task: str, alias: str) -> None:
            calls.append((task, alias))
            raise MlflowException(hung)

        monkeypatch.setattr(registry, "get_version", unanswered)
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail.startswith(
            "reload failed, the previous models keep serving; the reason is in the server log "
            "(request id "
        )
        assert "127.0.0.1:5000" not in detail  # the reason goes to the log only
        assert calls == [("churn", "champion")]  # one look, not a second one after it
        assert _version(client) == before
    said = [r.getMessage() for r in caplog.records if "reload failed" in r.getMessage()]
    assert len(said) == 1 and "MlflowException: API request to" in said[0], said


def test_missing_champion_keeps_retrying(registry_env: Registry) -> None:
    app = create_app(make_settings(registry_env.home, tasks=("churn",), model_alias="nope"))
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 409
        assert "nope" not in r.text and "request id" in r.json()["detail"]


def test_boosters_without_their_pinned_digest_are_refused(registry_env: Registry) -> None:
    reg = registry_env
    client_ = MlflowClient()
    tag = registry.BOOSTER_DIGEST_TAG
    pinned = client_.get_model_version("churn", reg.good).tags[tag]
    assert len(pinned) == 64  # pinned at registration
    app = create_app(make_settings(reg.home))
    try:
        with TestClient(app) as client:
            wait_ready(client)
            before = _version(client)
            registry.set_alias("churn", registry.CHAMPION, reg.good)
            for change in ("removed", "changed"):
                if change == "removed":
                    client_.delete_model_version_tag("churn", reg.good, tag)
                else:
                    client_.set_model_version_tag("churn", reg.good, tag, "0" * 64)
                r = client.post("/v1/admin/reload", headers=headers("admin"))
                assert r.status_code == 409, change
                assert _version(client) == before  # the previous state keeps serving
                with pytest.raises(registry.ModelIntegrityError, match="pinned"):
                    registry.load_model("churn", version=reg.good)
    finally:
        client_.set_model_version_tag("churn", reg.good, tag, pinned)
    assert registry.load_model("churn", version=reg.good).version == reg.good


def test_what_is_missing_is_logged_once_then_on_change(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty server logged a warning at every start-up retry (every 10 s); /readyz and the
    API's 503 say what is missing meanwhile. An unexpected failure is logged every time."""
    caplog.set_level(logging.DEBUG, logger="serving.lifecycle")
    app = create_app(make_settings(tmp_path / "h"), source)
    lifecycle.prepare_loads(app)  # as the lifespan, without its background retries

    def load(failure: Exception) -> list[logging.LogRecord]:
        caplog.clear()
        source.failure = failure
        asyncio.run(reload_state(app))
        return [r for r in caplog.records if "load failed" in r.getMessage()]

    no_model = registry.ModelNotFoundError("no task has a champion version: train one")
    assert [r.levelno for r in load(no_model)] == [logging.WARNING]
    assert [r.levelno for r in load(no_model)] == [logging.DEBUG]
    assert app.state.holder.missing is not None  # still said to clients
    no_snapshot = SnapshotNotFoundError("no snapshot in the store")
    assert [r.levelno for r in load(no_snapshot)] == [logging.WARNING]
    assert [r.levelno for r in load(no_snapshot)] == [logging.DEBUG]
    (unexpected,) = load(ConnectionError("registry unreachable"))
    assert unexpected.levelno == logging.WARNING and unexpected.exc_info


def test_a_first_failure_with_nothing_served_says_so_and_that_it_retries(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """An exploratory test's L1: with nothing loaded the first failure said "load failed,
    keeping the current state" (there was none) and not that it is retried."""
    caplog.set_level(logging.DEBUG, logger="serving.lifecycle")
    app = create_app(make_settings(tmp_path / "h", retry_seconds=10.0), source)
    lifecycle.prepare_loads(app)  # as the lifespan, without its background retries
    source.failure = ConnectionError("registry unreachable")
    asyncio.run(reload_state(app))
    (first,) = [r for r in caplog.records if "load failed" in r.getMessage()]
    assert first.getMessage() == (
        "load failed, nothing served yet; retrying every 10 s: ConnectionError: registry "
        "unreachable"
    )
    assert first.levelno == logging.WARNING and first.exc_info


def test_a_registry_down_is_logged_with_its_traceback_once_then_a_line_a_retry(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """With the registry down each start-up retry (every 10 s) logged the failure's whole
    chained traceback (about 100 lines: 699 lines in 40 s). The traceback is logged for the
    first failure and again when the failure changes; each retry failing the same way is one
    line: its reason, how many loads failed in a row, that it retries every 10 s."""
    caplog.set_level(logging.DEBUG, logger="serving.lifecycle")
    app = create_app(make_settings(tmp_path / "h", retry_seconds=10.0), source)
    lifecycle.prepare_loads(app)  # as the lifespan, without its background retries

    def load(failure: Exception) -> list[logging.LogRecord]:
        caplog.clear()
        source.failure = failure
        asyncio.run(reload_state(app))
        return [r for r in caplog.records if "load failed" in r.getMessage()]

    down = ConnectionError("Max retries exceeded with url: /api/2.0/mlflow (Connection refused)")
    (first,) = load(down)
    assert first.levelno == logging.WARNING and first.exc_info
    for attempt in (2, 3):
        (again,) = load(down)
        assert again.levelno == logging.WARNING and not again.exc_info
        assert again.getMessage() == (
            f"load failed again ({attempt} in a row), nothing served yet: "
            "ConnectionError: Max retries exceeded with url: /api/2.0/mlflow (Connection "
            "refused); retrying every 10 s"
        )
    (changed,) = load(TimeoutError("Read timed out. (read timeout=20)"))
    assert changed.levelno == logging.WARNING and changed.exc_info  # another failure: in full
    source.failure = None
    assert asyncio.run(reload_state(app)) is None
    (after,) = load(down)  # a failure after a load that worked is new again
    assert after.exc_info and app.state.holder.failed_loads == 1


def test_tasks_left_out_are_named_once_then_on_change(
    registry_env: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="serving.loader")
    loader = RegistrySource(make_settings(registry_env.home))

    def load(alias: str) -> list[tuple[int, str]]:
        caplog.clear()
        with contextlib.suppress(registry.ModelNotFoundError):
            loader.load_models(task_names(), alias)
        return [
            (r.levelno, r.getMessage()) for r in caplog.records if "not served" in r.getMessage()
        ]

    assert load("nope") == []  # no task has one: the load fails and says so itself
    registry.set_alias("churn", "partial", registry_env.champion["churn"])
    try:
        others = ", ".join(t for t in task_names() if t != "churn")
        assert load("partial") == [(logging.WARNING, f"no partial version, not served: {others}")]
        assert load("partial") == [(logging.DEBUG, f"no partial version, not served: {others}")]
        registry.set_alias("repurchase", "partial", registry_env.champion["repurchase"])
        assert load("partial")[0][0] == logging.WARNING  # fewer left out: said again
    finally:
        for task in ("churn", "repurchase"):
            MlflowClient().delete_registered_model_alias(task, "partial")


class _HungRegistry:
    """A source whose model lookup blocks until released (a registry that accepts and never
    answers, then MLflow's client timeout), counting its lookups."""

    def __init__(self, source: StaticSource) -> None:
        self.source = source
        self.asked = threading.Event()
        self.release = threading.Event()
        self.lookups = 0

    def load_models(self, tasks, alias, gone=None):  # type: ignore[no-untyped-def]
        self.lookups += 1
        self.asked.set()
        assert self.release.wait(30), "the test never released the lookup"
        raise ConnectionError("Read timed out. (read timeout=20)")

    def load_snapshot(self):  # type: ignore[no-untyped-def]
        return self.source.load_snapshot()


def test_a_reload_during_the_first_load_answers_with_that_load(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload while the server had never loaded, against a hung registry, answered its 409
    after about two minutes: it waited for the background load's lookup (about a minute), then
    asked the registry again. It now waits for the load running and answers with its outcome:
    one lookup, the 409 as soon as it ends."""
    hung = _HungRegistry(source)
    # no background retry within the test: any second lookup is the reload's own
    app = create_app(make_settings(tmp_path / "h", retry_seconds=600.0), hung)
    arrived = threading.Event()

    async def arriving(app_: object) -> str | None:
        arrived.set()
        return await reload_state(app_)  # type: ignore[arg-type]

    monkeypatch.setattr("serving.routes.reload_state", arriving)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        assert hung.asked.wait(30), "the first load never asked the registry"
        answer = pool.submit(client.post, "/v1/admin/reload", headers=headers("admin"))
        assert arrived.wait(30), "the reload never reached the load"
        time.sleep(0.2)  # let it wait on the load running
        assert not answer.done()  # the load has not ended: nothing to answer with yet
        hung.release.set()
        r = answer.result(timeout=30)
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith("reload failed, no models are serving yet;")
        assert hung.lookups == 1  # the reload asked nothing of its own


class _BlockingSource:
    """A source whose first model lookup blocks until released, then answers what ``first``
    says (the models of the champion before a promotion, or a failure); the lookups after it
    answer at once with the promoted champion's models (``churn`` version 2)."""

    def __init__(self, source: StaticSource, first: Exception | None = None) -> None:
        self.source = source
        self.first = first
        self.before = dict(source.models)
        self.after = {**source.models}
        self.after["churn"] = dataclasses.replace(source.models["churn"], version="2")
        self.asked = threading.Event()
        self.release = threading.Event()
        self.lookups = 0

    def load_models(self, tasks, alias, gone=None):  # type: ignore[no-untyped-def]
        self.lookups += 1
        if self.lookups > 1:
            return {t: self.after[t] for t in tasks}
        self.asked.set()
        assert self.release.wait(30), "the test never released the lookup"
        if self.first is not None:
            raise self.first
        return {t: self.before[t] for t in tasks}

    def load_snapshot(self):  # type: ignore[no-untyped-def]
        return self.source.load_snapshot()


def _reload_during_first_load(
    tmp_path: Path, blocking: _BlockingSource, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """POST a reload while the first load's lookup blocks, release it; the reload's status and
    the churn version served after it."""
    app = create_app(make_settings(tmp_path / "h", retry_seconds=600.0), blocking)
    arrived = threading.Event()

    async def arriving(app_: object) -> str | None:
        arrived.set()
        return await reload_state(app_)  # type: ignore[arg-type]

    monkeypatch.setattr("serving.routes.reload_state", arriving)
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        assert blocking.asked.wait(30), "the first load never asked the registry"
        answer = pool.submit(client.post, "/v1/admin/reload", headers=headers("admin"))
        assert arrived.wait(30), "the reload never reached the load"
        time.sleep(0.2)  # let it wait on the load running
        assert not answer.done()
        blocking.release.set()
        r = answer.result(timeout=30)
        return r.status_code, (_version(client) if r.status_code == 200 else r.text)


def test_a_reload_during_the_first_load_that_succeeds_loads_the_promoted_champion(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload meaning "promote v2 then reload", arriving while the first load's lookup had
    read v1, answered 200 with the first load's outcome: v1 served, one lookup, nothing pending.
    A load that succeeded is not shared: the reload loads in turn and serves v2."""
    blocking = _BlockingSource(source)
    status, version = _reload_during_first_load(tmp_path, blocking, monkeypatch)
    assert (status, version) == (200, "2")
    assert blocking.lookups == 2


def test_a_reload_during_a_first_load_failing_on_a_local_file_loads_again(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Brief serving47 item 3: any OSError of a load counted as the registry's (UNREACHED), so a
    reload arriving while the first load failed on a local file it could not read answered with
    that failure (409) though the registry was fine. Only a registry or network failure is
    shared: the reload loads in turn."""
    unreadable = PermissionError(13, "Permission denied", "/srv/guanxi/store/as_of.parquet")
    blocking = _BlockingSource(source, unreadable)
    status, version = _reload_during_first_load(tmp_path, blocking, monkeypatch)
    assert (status, version) == (200, "2")
    assert blocking.lookups == 2


@pytest.mark.parametrize(
    ("failure", "shared"),
    [
        (PermissionError(13, "Permission denied", "/srv/guanxi/x.parquet"), False),
        (IsADirectoryError(21, "Is a directory", "/srv/guanxi/x.parquet"), False),
        (OSError(5, "Input/output error"), False),  # a local disk's, naming no file
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (MlflowException("API request failed"), True),
    ],
)
def test_only_a_registry_or_network_failure_is_unreached(failure: Exception, shared: bool) -> None:
    assert isinstance(failure, lifecycle.UNREACHED) is shared


def test_a_local_file_a_first_load_cannot_read_is_named(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """The log names the file a load could not read, /readyz and the API's 503 say a local
    file (not the registry) could not be read, without its path."""
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    source.failure = PermissionError(13, "Permission denied", "/srv/guanxi/store/as_of.parquet")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        ready = client.get("/readyz")
    assert ready.json()["detail"] == (
        "models are not loaded yet: last load failed; retrying (a local file could not be read: "
        "PermissionError; the server log names it)"
    )
    (said,) = {r.getMessage() for r in caplog.records if "load failed" in r.getMessage()}
    assert said == (
        "load failed, nothing served yet; retrying every 0.05 s: PermissionError: [Errno 13] "
        "Permission denied: '/srv/guanxi/store/as_of.parquet'"
    )


def test_a_reload_during_a_first_load_missing_its_snapshot_loads_again(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first load failing for what is missing (no snapshot yet) was shared with a reload
    arriving after `guanxi features build`: 409 though its own load would succeed. Such a
    failure (SAID_IN_FULL) is not shared: the reload loads in turn."""
    blocking = _BlockingSource(source, SnapshotNotFoundError("no snapshot in the store"))
    status, version = _reload_during_first_load(tmp_path, blocking, monkeypatch)
    assert (status, version) == (200, "2")
    assert blocking.lookups == 2


def test_a_load_ending_in_an_error_no_caller_waits_for_is_retrieved_and_logged(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """With every caller of a load cancelled, an error the load ended with (not a load
    failure: one of the swap) was never retrieved: asyncio's "Task exception was never
    retrieved", the error said nowhere. It is retrieved and logged with its traceback."""
    caplog.set_level(logging.DEBUG)
    app = create_app(make_settings(tmp_path / "h"), source)

    def broken_swap(app_: object, state: object) -> None:
        raise RuntimeError("swap broke")

    async def run() -> None:
        lifecycle.prepare_loads(app)
        caller = asyncio.ensure_future(reload_state(app))
        await asyncio.sleep(0)
        (load,) = app.state.loads
        caller.cancel()  # the request went away; the load goes on
        with contextlib.suppress(asyncio.CancelledError):
            await caller
        with contextlib.suppress(RuntimeError):
            await asyncio.wait_for(asyncio.shield(load), 30)
        await asyncio.sleep(0)
        assert not app.state.loads  # a load ended is not kept

    original = lifecycle._swap
    lifecycle._swap = broken_swap  # type: ignore[assignment]
    try:
        asyncio.run(run())
    finally:
        lifecycle._swap = original
    (logged,) = [r for r in caplog.records if "no request waited for" in r.getMessage()]
    assert logged.levelno == logging.ERROR and logged.exc_info
    assert str(logged.exc_info[1]) == "swap broke"
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_the_lifespan_sets_every_load_record_before_its_first_load(
    tmp_path: Path, source: StaticSource
) -> None:
    """Brief serving47 item 5: the waiters of each load (``app.state.waiting``) were made on
    first use, while the lock, the newest load and the loads running were set by the lifespan.
    All four are set by :func:`serving.lifecycle.prepare_loads`, which the lifespan calls
    before its first load, and which a test running reload_state without it calls itself."""
    source.failure = ConnectionError("registry unreachable")
    app = create_app(make_settings(tmp_path / "h", retry_seconds=600.0), source)

    async def run() -> None:
        async with lifecycle.lifespan(app):
            # before the background load has run a step
            assert app.state.waiting == {} and app.state.loading is None
            assert app.state.loads == set() and not app.state.load_lock.locked()

    asyncio.run(run())


def test_shutdown_cancels_every_load_running(tmp_path: Path, source: StaticSource) -> None:
    """Shutdown cancelled only the newest load task: a load queued before it behind the lock
    was left to go on after the lifespan ended. Every load running is kept and cancelled."""
    hung = _HungRegistry(source)
    app = create_app(make_settings(tmp_path / "h", retry_seconds=600.0), hung)

    async def run() -> set[asyncio.Task[object]]:
        async with lifecycle.lifespan(app):
            while not hung.asked.is_set():  # the first load asks the registry
                await asyncio.sleep(0.01)
            # as the loads of two reloads while a state serves: each after the one before
            lifecycle._start_load(app)
            lifecycle._start_load(app)
            kept = set(app.state.loads)
            assert len(kept) == 3  # the first load and the two queued behind it
        await asyncio.sleep(0)  # the cancellations delivered
        assert all(task.done() for task in kept)
        assert not app.state.loads  # each removed once ended
        return kept

    release = threading.Timer(0.5, hung.release.set)  # the hung lookup's thread ends later
    release.start()
    try:
        kept = asyncio.run(run())
    finally:
        release.join()
    assert all(task.cancelled() for task in kept)
    assert hung.lookups == 1  # the queued loads never asked the registry


def _chained() -> MlflowException:
    """A registry down as MLflow's REST client raises it (qa46's log): MlflowException during
    requests' ConnectionError, raised during urllib3's error, raised from the socket's refusal."""
    try:
        try:
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except ConnectionRefusedError as refused:
                raise OSError("Failed to establish a new connection") from refused
        except OSError:
            raise ConnectionError("Max retries exceeded with url: /api/2.0/mlflow")  # noqa: B904
    except ConnectionError as exc:
        failure = MlflowException("API request to http://127.0.0.1:5946 failed")
        failure.__context__ = exc
        return failure


def test_a_chained_failure_is_logged_with_one_traceback_and_each_cause_in_a_line(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """qa46 L4: the first load failing with the registry down logged MLflow's chained traceback
    whole: urllib3's, requests', MLflow's, ours, 120 lines. Logged once: the traceback of the
    failure the load raised (our frames down to MLflow's raise), and every exception it was
    raised from or during, one line each, down to the socket's refusal: the cause is kept."""
    caplog.set_level(logging.DEBUG, logger="serving.lifecycle")
    app = create_app(make_settings(tmp_path / "h", retry_seconds=10.0), source)
    lifecycle.prepare_loads(app)  # as the lifespan, without its background retries
    source.failure = _chained()
    asyncio.run(reload_state(app))
    (first,) = [r for r in caplog.records if "load failed" in r.getMessage()]
    assert first.getMessage() == (
        "load failed, nothing served yet; retrying every 10 s: MlflowException: API request to "
        "http://127.0.0.1:5946 failed\n"
        "  during ConnectionError: Max retries exceeded with url: /api/2.0/mlflow\n"
        "  during OSError: Failed to establish a new connection\n"
        "  from ConnectionRefusedError: [Errno 111] Connection refused"
    )
    text = logging.Formatter().format(first)
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "direct cause" not in text and "During handling" not in text, text
    assert text.endswith("MlflowException: API request to http://127.0.0.1:5946 failed"), text
    assert "in _load_once" in text  # our frames, down to the raise
    assert source.failure.__context__ is not None  # the failure itself is left whole
    # as handlers see it: the record keeps an exception of the failure's type whose traceback is
    # the failure's own, what traceback.format_exception(exc, chain=False) gives; a handler
    # formatting record.exc_info itself (a JSON one, say) logs that one traceback too
    assert first.exc_info is not None
    kind, logged, tb = first.exc_info
    assert kind is MlflowException and type(logged) is MlflowException
    assert logged is not source.failure and str(logged) == str(source.failure)
    own = "".join(traceback.format_exception(source.failure, chain=False))
    assert "".join(traceback.format_exception(kind, logged, tb)) == own

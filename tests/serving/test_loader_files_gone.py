"""A champion whose files are gone is named by the server: task, version, folder (qa49 M2)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from models import registry
from models.artifact import ModelBundle
from models.tasks import task_names
from models.versions import ModelFilesMissingError
from serving.app import create_app
from serving.lifecycle import reload_state
from serving.loader import RegistrySource
from serving.settings import get_settings
from tests.serving.conftest import (
    Registry,
    StaticSource,
    headers,
    make_settings,
    until,
    wait_failed_once,
    wait_ready,
)
from tests.serving.test_loader import _champion


def test_the_loader_names_the_champion_whose_files_are_gone(
    local_tracking: Path,
    tiny_bundle: ModelBundle,
    tiny_data,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The loader called the registry directly: MLflow's "No such artifact: 'MLmodel'", naming
    no task, version or folder. It loads through models.versions.load_version, as guanxi
    drift, cycle and promote do."""
    get_settings.cache_clear()
    monkeypatch.delenv("GUANXI_TASKS", raising=False)
    settings = get_settings()
    _champion(tiny_bundle, tiny_data[0], local_tracking)
    uri = MlflowClient().get_model_version_download_uri("churn", "1")
    files = Path(uri.removeprefix("file://"))
    files.rename(tmp_path / "moved")
    with pytest.raises(ModelFilesMissingError) as raised:
        RegistrySource(settings).load_models(settings.tasks, registry.CHAMPION)
    assert (raised.value.task, raised.value.version, raised.value.where) == (
        "churn",
        "1",
        str(files),
    )
    get_settings.cache_clear()


GONE = ModelFilesMissingError("churn", "1", "/srv/x/mlartifacts/churn/models/m-1")


def test_files_gone_are_logged_once_with_the_folder_and_said_to_clients_without_it(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """The log said `MlflowException: No such artifact: 'MLmodel'` and a traceback every 10 s;
    /readyz said "last load failed; retrying". The log names the task, version, folder and
    what to run, once (then again when it changes), without a traceback; /readyz and the API's
    503 name the task and version and what to run, not the folder."""
    caplog.set_level(logging.DEBUG, logger="serving.lifecycle")
    app = create_app(make_settings(tmp_path / "h"), source)
    app.state.load_lock = asyncio.Lock()  # as the lifespan, without its background retries

    def load() -> list[logging.LogRecord]:
        caplog.clear()
        source.failure = GONE
        asyncio.run(reload_state(app))
        return [r for r in caplog.records if "load failed" in r.getMessage()]

    (first,) = load()
    said = first.getMessage()
    assert first.levelno == logging.WARNING and not first.exc_info
    assert (
        "churn version 1: the champion's files are missing (looked in "
        "/srv/x/mlartifacts/churn/models/m-1): put them back there" in said
    )
    assert "`guanxi promote --task churn`" in said
    assert [r.levelno for r in load()] == [logging.DEBUG]


def test_readyz_says_which_champion_lost_its_files(tmp_path: Path, source: StaticSource) -> None:
    source.failure = GONE
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        detail = ready.json()["detail"]
        assert "the files of churn version 1 (the champion) are missing" in detail
        assert "/srv/x" not in detail
        r = client.get("/v1/models", headers=headers())
        assert r.status_code == 503 and r.json()["detail"] == detail


def test_one_champion_whose_files_are_gone_leaves_the_other_tasks_serving(
    registry_env: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """score43 (qa49 M2): one task's champion without its files made every task wait: /readyz
    503 and every endpoint 503. The other tasks serve; that task's requests are a 503 naming its
    version and what to run (not the folder), /readyz is ready and says which task is not
    served, and the task is served again by itself once its files are back."""
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    version = registry_env.champion["churn"]
    uri = MlflowClient().get_model_version_download_uri("churn", version)
    files = Path(uri.removeprefix("file://"))
    moved = tmp_path / "moved"
    files.rename(moved)
    try:
        with TestClient(create_app(make_settings(registry_env.home))) as client:
            wait_ready(client)
            ready = client.get("/readyz").json()
            said = (
                f"churn is not served: the files of churn version {version} (the champion) are "
                "missing where the registry keeps them"
            )
            assert ready["ready"] is True and ready["detail"].startswith(said)
            assert str(files) not in ready["detail"]
            models = client.get("/v1/models", headers=headers()).json()["models"]
            others = sorted(t for t in task_names() if t != "churn")
            assert sorted(m["task"] for m in models) == others
            scores = client.get("/v1/customers/c001/scores", headers=headers())
            assert scores.status_code == 200, scores.text
            assert sorted(scores.json()["scores"]) == others
            for r in (
                client.get("/v1/customers/c001/scores?tasks=churn", headers=headers()),
                client.post(
                    "/v1/scores",
                    headers=headers(),
                    json={"customer_ids": ["c001"], "tasks": ["repurchase", "churn"]},
                ),
                client.post(
                    "/v1/score",
                    headers=headers(),
                    json={"features": {"recency_days": 10.0}, "tasks": ["churn"]},
                ),
            ):
                assert r.status_code == 503 and r.json()["detail"] == ready["detail"], r.text
                assert r.headers["Retry-After"]
            (warned,) = [r for r in caplog.records if "not serving churn" in r.getMessage()]
            assert f"(looked in {files})" in warned.getMessage()

            moved.rename(files)  # put back: the server loads churn by itself
            until(
                lambda: client.get("/readyz").json()["detail"] is None,
                "churn was not served again",
            )
            models = client.get("/v1/models", headers=headers()).json()["models"]
            assert sorted(m["task"] for m in models) == sorted(task_names())
    finally:
        if moved.exists():
            moved.rename(files)


def test_the_load_fails_as_before_when_every_champion_lost_its_files(
    tmp_path: Path, source: StaticSource
) -> None:
    """A load with no task left (here every task's load says churn's files are gone) fails with
    churn's error: nothing is served, /readyz says it (the test above serves the others)."""
    from serving.loader import load_state

    source.failure = GONE
    with pytest.raises(ModelFilesMissingError) as raised:
        load_state(source, make_settings(tmp_path / "h"))
    assert raised.value is GONE


def test_a_reload_that_would_drop_a_served_task_for_its_lost_files_is_refused(
    registry_env: Registry, tmp_path: Path
) -> None:
    """Leaving a task out is for a task not served yet: a reload that finds the files of a
    champion this server serves gone is refused as before (409), and the model in memory keeps
    serving, rather than swapping a working task for a 503."""
    version = registry_env.champion["churn"]
    uri = MlflowClient().get_model_version_download_uri("churn", version)
    files = Path(uri.removeprefix("file://"))
    moved = tmp_path / "moved"
    with TestClient(create_app(make_settings(registry_env.home))) as client:
        wait_ready(client)
        files.rename(moved)
        try:
            r = client.post("/v1/admin/reload", headers=headers("admin"))
            assert r.status_code == 409, r.text
            scores = client.get("/v1/customers/c001/scores?tasks=churn", headers=headers())
            assert scores.status_code == 200, scores.text
            assert scores.json()["scores"]["churn"]["model_version"] == version
            assert client.get("/readyz").json() == {"ready": True, "detail": None}
        finally:
            moved.rename(files)

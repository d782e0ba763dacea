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
from models.versions import ModelFilesMissingError
from serving.app import create_app
from serving.lifecycle import reload_state
from serving.loader import RegistrySource
from serving.settings import get_settings
from tests.serving.conftest import StaticSource, headers, make_settings, wait_failed_once
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

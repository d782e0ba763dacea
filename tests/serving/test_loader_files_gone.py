"""A champion whose files are gone is named by the server: task, version, folder (qa49 M2)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from models import registry
from models.artifact import ModelBundle
from models.tasks import task_names
from models.versions import ModelFilesMissingError
from serving.app import create_app
from serving.lifecycle import prepare_loads, reload_state
from serving.loader import RegistrySource, load_state
from serving.settings import get_settings
from serving.state import ServedModel
from tests.serving.conftest import (
    Registry,
    StaticSource,
    headers,
    make_settings,
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
    prepare_loads(app)  # as the lifespan, without its background retries

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


class _ChurnLost(StaticSource):
    """A source whose churn model lost its files: all or nothing without ``gone``, as the
    :class:`serving.loader.Source` protocol says; with it, churn is put there."""

    def load_models(self, tasks, alias, gone=None):  # type: ignore[no-untyped-def]
        if gone is None:
            raise GONE
        gone["churn"] = GONE
        return {t: self.models[t] for t in tasks if t != "churn"}


def test_any_source_can_leave_out_a_task_whose_files_are_gone(
    tmp_path: Path, served: dict[str, ServedModel], source: StaticSource
) -> None:
    """The load left a task out only for a RegistrySource (an isinstance branch in
    serving.loader._load_models); any other source loaded all or nothing. Every source is asked
    the same way: the tasks whose files are gone are put in ``gone`` and the others serve."""
    lost = _ChurnLost(models=dict(served), snapshot=source.snapshot)
    state = load_state(lost, make_settings(tmp_path / "h"))
    assert state.gone == {"churn": GONE}
    assert sorted(state.tables) == sorted(t for t in served if t != "churn")


def test_readyz_says_which_champion_lost_its_files(tmp_path: Path, source: StaticSource) -> None:
    source.failure = GONE
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_failed_once(client)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        detail = ready.json()["detail"]
        assert detail == (
            "models are not loaded yet: the files of churn version 1 (the champion) are missing "
            "where the registry keeps "
            f"them (the server log names the folder): {_remedy('churn')}. The server loads it "
            "by itself once it is there; no restart is needed."
        )
        assert "/srv/x" not in detail
        r = client.get("/v1/models", headers=headers())
        assert r.status_code == 503 and r.json()["detail"] == detail


def _folder(task: str, version: str) -> Path:
    """The folder the registry keeps a version's files in."""
    uri = MlflowClient().get_model_version_download_uri(task, version)
    return Path(uri.removeprefix("file://"))


@contextlib.contextmanager
def _moved(registry_env: Registry, tmp_path: Path, tasks: list[str]) -> Iterator[dict[str, Path]]:
    """Move these tasks' champions' folders away; put back whatever the test has not."""
    folders = {t: _folder(t, registry_env.champion[t]) for t in tasks}
    for task, files in folders.items():
        files.rename(tmp_path / f"moved-{task}")
    try:
        yield folders
    finally:
        for task, files in folders.items():
            if (tmp_path / f"moved-{task}").exists():
                (tmp_path / f"moved-{task}").rename(files)


def _remedy(task: str) -> str:
    """What a client is told to run (qa43 M2): `guanxi promote --task churn` alone refuses
    while the lost version is still the champion ("Version 1 is already the churn champion"),
    so the sentence names the version to promote, or training again, as the server log does."""
    return (
        "put them back there, or promote another version whose files exist (`guanxi promote "
        f"--task {task} --version N`), or train again (`guanxi train --task {task} --events "
        f"PATH --as-of DAY`, then `guanxi promote --task {task}`)"
    )


def _said(task: str, version: str) -> str:
    return (
        f"{task} is not served: the files of {task} version {version} (the champion) are missing "
        f"where the registry keeps them (the server log names the folder): {_remedy(task)}, "
        "then reload (`POST /v1/admin/reload`, or restart the server)."
    )


def test_one_champion_whose_files_are_gone_leaves_the_other_tasks_serving(
    registry_env: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """score43 (qa49 M2): one task's champion without its files made every task wait: /readyz
    503 and every endpoint 503. The other tasks serve; that task's requests are a 503 naming its
    version and what to do (put the files back, then reload; not the folder), /readyz is ready
    and says which task is not served, and the log says it once with the folder. The server does
    not load the task by itself: it stays out until a reload (the test below)."""
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    version = registry_env.champion["churn"]
    with (
        _moved(registry_env, tmp_path, ["churn"]) as folders,
        TestClient(create_app(make_settings(registry_env.home))) as client,
    ):
        wait_ready(client)
        ready = client.get("/readyz").json()
        assert ready == {"ready": True, "detail": _said("churn", version)}
        assert str(folders["churn"]) not in ready["detail"]
        listed = client.get("/v1/models", headers=headers()).json()
        # /readyz and the task's own 503 said it; GET /v1/models listed the others without a word
        assert listed["not_served"] == {"churn": ready["detail"]}
        models = listed["models"]
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
        # a lost task beside a misspelt one: the typo is the client's to fix first (422)
        r = client.get("/v1/customers/c001/scores?tasks=churn&tasks=chrun", headers=headers())
        assert r.status_code == 422, r.text
        (warned,) = [r for r in caplog.records if "not serving churn" in r.getMessage()]
        assert f"(looked in {folders['churn']})" in warned.getMessage()
        assert "POST /v1/admin/reload" in warned.getMessage()


def test_two_champions_whose_files_are_gone_are_both_left_out(
    registry_env: Registry, tmp_path: Path
) -> None:
    """Each task whose champion's files are gone is left out with its own version, in one load
    (the tasks are loaded one by one, not the whole set again per lost task)."""
    lost = sorted(registry_env.champion)[:2]
    with (
        _moved(registry_env, tmp_path, lost),
        TestClient(create_app(make_settings(registry_env.home))) as client,
    ):
        wait_ready(client)
        said = [_said(t, registry_env.champion[t]) for t in task_names() if t in lost]
        assert client.get("/readyz").json() == {"ready": True, "detail": " ".join(said)}
        listed = client.get("/v1/models", headers=headers()).json()
        assert listed["not_served"] == {t: _said(t, registry_env.champion[t]) for t in lost}
        models = listed["models"]
        assert sorted(m["task"] for m in models) == sorted(set(task_names()) - set(lost))
        for task in lost:
            r = client.get(f"/v1/customers/c001/scores?tasks={task}", headers=headers())
            assert r.status_code == 503 and r.json()["detail"] == _said(
                task, registry_env.champion[task]
            )


def test_the_load_fails_as_before_when_every_champion_lost_its_files(
    registry_env: Registry, tmp_path: Path
) -> None:
    """With no task left to serve, the load fails as before, naming the first task's champion
    (in the tasks' order) and what to run: nothing is served, /readyz is 503 and says it (not
    "no model is promoted to champion yet", which the empty set of models would say)."""
    first = task_names()[0]
    version = registry_env.champion[first]
    with (
        _moved(registry_env, tmp_path, list(registry_env.champion)),
        TestClient(create_app(make_settings(registry_env.home))) as client,
    ):
        wait_failed_once(client)
        r = client.get("/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith(
            f"models are not loaded yet: the files of {first} version {version} (the champion) "
            "are missing"
        )
        assert client.get("/v1/models", headers=headers()).status_code == 503


def test_an_admin_reload_serves_a_left_out_task_once_its_files_are_back(
    registry_env: Registry, tmp_path: Path
) -> None:
    """A task left out stays out (the server does not look for its files by itself) until a
    reload: once its folder is back, POST /v1/admin/reload serves it again."""
    version = registry_env.champion["churn"]
    with (
        _moved(registry_env, tmp_path, ["churn"]) as folders,
        TestClient(create_app(make_settings(registry_env.home))) as client,
    ):
        wait_ready(client)
        assert client.get("/readyz").json()["detail"] == _said("churn", version)
        r = client.post("/v1/admin/reload", headers=headers("admin"))  # still gone: still out
        assert r.status_code == 200, r.text
        # the reload's answer says so too, not only /readyz: a 200 listing the others
        assert r.json()["not_served"] == {"churn": _said("churn", version)}
        assert "churn" not in [m["task"] for m in r.json()["models"]]
        assert client.get("/readyz").json()["detail"] == _said("churn", version)
        (tmp_path / "moved-churn").rename(folders["churn"])
        r = client.post("/v1/admin/reload", headers=headers("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["not_served"] == {}
        assert client.get("/v1/models", headers=headers()).json()["not_served"] == {}
        assert client.get("/readyz").json() == {"ready": True, "detail": None}
        scores = client.get("/v1/customers/c001/scores?tasks=churn", headers=headers())
        assert scores.status_code == 200, scores.text
        assert scores.json()["scores"]["churn"]["model_version"] == version


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


def _banner(page: str) -> str:
    """The text of the reviewer pages' banner of the tasks not served (empty without one)."""
    if 'id="not-served"' not in page:
        return ""
    inner = page.split('id="not-served"', 1)[1].split(">", 1)[1].split("</div>", 1)[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inner)).split())


def test_reviewer_pages_say_which_task_is_not_served(
    registry_env: Registry, tmp_path: Path
) -> None:
    """qa43 M3: with churn left out, /ui/models/churn showed "Champion · v1" like a served model,
    and the overview and customer pages simply lacked churn, saying nothing. Every reviewer page
    has a banner naming the task and why (/readyz's sentence); the model page of that task says
    it is not served."""
    version = registry_env.champion["churn"]
    with (
        _moved(registry_env, tmp_path, ["churn"]),
        TestClient(create_app(make_settings(registry_env.home))) as client,
    ):
        wait_ready(client)
        pages = {
            path: client.get(path, headers=headers("reviewer"))
            for path in ("/ui/", "/ui/customers", "/ui/customers/c001", "/ui/models/churn")
        }
        for path, r in pages.items():
            assert r.status_code == 200, (path, r.text)
            assert _banner(r.text) == _said("churn", version), path
        model = pages["/ui/models/churn"].text
        assert 'id="model-not-served"' in model
        head = model.split('id="model-not-served"', 1)[1].split("<", 1)[0]
        assert f"not served (v{version}'s files are gone" in head
        served = client.get("/ui/models/repurchase", headers=headers("reviewer")).text
        assert 'id="model-not-served"' not in served
    with TestClient(create_app(make_settings(registry_env.home))) as client:  # files back
        wait_ready(client)
        assert _banner(client.get("/ui/", headers=headers("reviewer")).text) == ""


def test_a_server_following_the_challenger_names_it_and_what_moves_it() -> None:
    """A server following ``GUANXI_MODEL_ALIAS=challenger`` said "(the champion)" and
    to promote another version (--version N), which moves the champion, not the alias it reads.
    The version loaded by the challenger alias says the challenger's way out."""
    from serving.lifecycle import missing, not_served

    lost = ModelFilesMissingError("churn", "4", "/srv/m-4", alias="challenger")
    said = not_served("churn", lost)
    assert said.startswith(
        "churn is not served: the files of churn version 4 (the challenger) are missing where the "
        f"registry keeps them (the server log names the folder): {lost.remedy('challenger')}, "
        "then reload"
    )
    assert "--version N" not in said and "--version N" not in (missing(lost) or "")
    # loaded by version, or by the champion: the champion's sentence, as before
    assert _remedy("churn") in not_served("churn", ModelFilesMissingError("churn", "4", "/srv"))

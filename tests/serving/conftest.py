"""Fixtures of the serving tests: tiny events, a real snapshot, real tiny XGBoost models.

Models are trained once per session on a hand-seeded snapshot of 80 customers; the registry
fixture logs them through :mod:`models.registry` into a SQLite MLflow under a session temp dir.
"""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import httpx
import mlflow
import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from features.contracts import FEATURE_SET_VERSION, event_schema
from features.snapshot import build_snapshot
from features.store import Store
from models import registry
from models.artifact import BACKING_KEY, RULE_BACKED, RULE_BACKING, ModelBundle
from models.registry import configure_tracking
from models.rules import category_inputs
from models.scoring import model_rows
from models.tasks import CATEGORY_INPUTS_KEY, get_task, model_frame, task_names
from serving.app import create_app
from serving.settings import Settings
from serving.state import LoadedSnapshot, ServedModel
from tests.processes import child_env, listening_port, stop, wait_status
from training.tracking import experiment_id
from training.train import fit_rule_booster

if TYPE_CHECKING:
    from tests.serving.ui_data import UIWorld

AS_OF = date(2024, 6, 30)
CATEGORIES = ["garden", "kitchen", "toys"]
KEYS = {
    "scorer": "scorer-key-0123456789abcdef0123456789",
    "reviewer": "review-key-0123456789abcdef0123456789",
    "admin": "admin-key-0123456789abcdef0123456789ab",
}
AUDIT_KEY = "audit-key-for-tests-0123456789abcdef"
SESSION_KEY = "session-key-for-tests-0123456789abcdef"
STORE_KEY = "store-key-for-tests-0123456789abcdef"
SAME_ORIGIN = {"Origin": "http://testserver"}
"""What a browser sends with a form of the test client's site (the login's CSRF check)."""


@pytest.fixture(autouse=True)
def overflow_in_cast_is_an_error() -> None:
    """Fail a serving test whose request makes numpy cast a value it cannot represent.

    ``RuntimeWarning: overflow encountered in cast`` means an input reached a narrower type
    (float32 for the boosters) and silently became infinite; in the app's threads the error is a
    500 the test sees. Only this numpy warning: pytest restores the filters after each test.
    """
    warnings.filterwarnings("error", "overflow encountered in cast", RuntimeWarning)


LOOK_WAIT: Final = 10.0
"""Seconds the :func:`released` fixture waits for each registry look's thread to end."""


class Released(threading.Event):
    """An event hung registry looks wait on, which can release them and wait for their threads.

    The looks started since it was made (their ``guanxi-registry`` threads) are waited for, at
    most :data:`LOOK_WAIT` seconds each, by :meth:`release`: one released logs its late answer
    when it ends, and under load that line fell into the next test's captured log (CI of db1e8b0
    failed so), or, set in a test's body and logged as the body's capture closed, into a closed
    stream ("--- Logging error ---" in the run's output, s47 and s48).
    """

    def __init__(self) -> None:
        super().__init__()
        self._before = set(threading.enumerate())

    def release(self) -> None:
        """Set the event and wait for the looks' threads to end, their late lines logged."""
        self.set()
        for thread in set(threading.enumerate()) - self._before:
            if thread.name == "guanxi-registry":
                thread.join(LOOK_WAIT)


@pytest.fixture
def released() -> Iterator[Released]:
    """A :class:`Released` the test's hung looks wait on, released at its end whatever happens.

    A test that releases its looks in its body calls :meth:`Released.release`, not ``set``, so
    their late lines are logged before the body ends.
    """
    looks = Released()
    yield looks
    looks.release()


def tiny_events(n_customers: int = 80, seed: int = 0) -> pl.DataFrame:
    """Seeded events: orders in three categories, visits, e-mails and complaints."""
    rng = np.random.default_rng(seed)
    rows = []
    kinds = ["order", "order", "visit", "email_sent", "email_open", "complaint"]
    for i in range(n_customers):
        for j in range(int(rng.integers(1, 9))):
            kind = str(rng.choice(kinds))
            ts = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=int(rng.integers(0, 180)))
            rows.append(
                {
                    "customer_id": f"c{i:03d}",
                    "ts": ts,
                    "event_type": kind,
                    "channel": "web",
                    "amount": float(rng.integers(5, 200)) if kind == "order" else None,
                    "margin": None,
                    "quantity": 1.0 if kind == "order" else None,
                    "category": str(rng.choice(CATEGORIES)) if kind == "order" else None,
                    "score": None,
                    "ref_id": f"r{i}-{j}",
                }
            )
    return pl.DataFrame(rows, schema=event_schema())


def train_bundle(
    task: str, snapshot: pl.DataFrame, seed: int = 0, feature_set_version: str = FEATURE_SET_VERSION
) -> ModelBundle:
    """A 15-tree depth-3 model on seeded labels that depend on a few features."""
    ranked = get_task(task).kind == "ranked"
    # a ranked model carries its category statistics, as training records them
    stats = category_inputs(tiny_events(), AS_OF, list(CATEGORIES), 90) if ranked else None
    X = model_frame(task, snapshot, None, list(CATEGORIES) if ranked else None, stats)  # noqa: N806
    rng = np.random.default_rng(seed)
    recency = X["recency_days"].fillna(200).to_numpy()
    orders = X["orders_total"].fillna(0).to_numpy()
    logit = 0.02 * (recency - 60) - 0.3 * orders if task == "churn" else 0.4 * orders - 1
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    y[:2] = [0, 1]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": seed, "nthread": 1},
        xgb.DMatrix(X.to_numpy(), label=y, missing=np.nan),
        num_boost_round=15,
    )
    calibration = (
        {"method": "isotonic", "x": [-3.0, 0.0, 3.0], "y": [0.05, 0.4, 0.9]}
        if task == "repurchase"
        else {"method": "sigmoid", "a": 0.9, "b": -0.1}
    )
    return ModelBundle(
        task=task,
        booster=booster,
        feature_names=list(X.columns),
        calibration=calibration,
        feature_set_version=feature_set_version,
        categories=list(CATEGORIES) if ranked else [],
        kind=get_task(task).kind,
        metadata={"grade": "B", "metrics": {"xgboost": {"roc_auc": 0.75}}, "seed": seed}
        | ({CATEGORY_INPUTS_KEY: stats} if stats is not None else {}),
    )


def rule_bundle(snapshot: pl.DataFrame, seed: int = 0) -> ModelBundle:
    """Cross-sell's rule-backed bundle as training builds it: the affinity rule's own score.

    A one-input booster on ``candidate_affinity`` (:func:`training.train.fit_rule_booster`),
    with the metadata training records (``backing: rule``).
    """
    stats = category_inputs(tiny_events(), AS_OF, list(CATEGORIES), 90)
    backing = get_task("cross_sell").rule_backing
    assert backing is not None
    X = model_frame("cross_sell", snapshot, [backing.input], list(CATEGORIES), stats)  # noqa: N806
    x = X[backing.input].to_numpy()
    return ModelBundle(
        task="cross_sell",
        booster=fit_rule_booster(x, seed=seed, nthread=1),
        feature_names=[backing.input],
        calibration={"method": "sigmoid", "a": 3.0, "b": -3.0},
        feature_set_version=FEATURE_SET_VERSION,
        categories=list(CATEGORIES),
        kind="ranked",
        metadata={
            BACKING_KEY: RULE_BACKING,
            "backing_name": backing.name,
            "grade": "C",
            "model_grade": "C",
            "metrics": {RULE_BACKED: {"roc_auc": 0.6}, "xgboost": {"roc_auc": 0.7}},
            CATEGORY_INPUTS_KEY: stats,
        },
    )


@pytest.fixture(scope="session")
def snapshot() -> pl.DataFrame:
    return build_snapshot(tiny_events(), None, AS_OF, categories=CATEGORIES)


@pytest.fixture(scope="session")
def bundles(snapshot: pl.DataFrame) -> dict[str, ModelBundle]:
    return {task: train_bundle(task, snapshot) for task in task_names()}


@pytest.fixture(scope="session")
def served(bundles: dict[str, ModelBundle]) -> dict[str, ServedModel]:
    return {
        task: ServedModel(bundle=b, name=task, version="1", aliases=("champion",))
        for task, b in bundles.items()
    }


@pytest.fixture(scope="session")
def loaded_snapshot(snapshot: pl.DataFrame) -> LoadedSnapshot:
    return LoadedSnapshot(as_of=AS_OF, feature_set_version=FEATURE_SET_VERSION, frame=snapshot)


@dataclass
class StaticSource:
    """A source serving fixed models and snapshot; ``failure`` makes loads raise."""

    models: dict[str, ServedModel]
    snapshot: LoadedSnapshot
    failure: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def load_models(self, tasks, alias, gone=None):  # type: ignore[no-untyped-def]
        # its models are in memory, no files to lose: ``gone`` stays empty (``failure`` raises)
        self.calls.append("models")
        if self.failure is not None:
            raise self.failure
        return {t: self.models[t] for t in tasks}

    def load_snapshot(self) -> LoadedSnapshot:
        return self.snapshot


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "api_keys": SecretStr(",".join(f"{k}:{role}" for role, k in KEYS.items())),
        "audit_key": SecretStr(AUDIT_KEY),
        "session_key": SecretStr(SESSION_KEY),
        "store_key": SecretStr(STORE_KEY),
        "api_docs": True,
        "cookie_secure": False,  # the test client speaks plain http
        "auth_free_failures": 1_000_000,  # route walks and fuzzing fail on purpose, many times
        "precompute_reasons": False,
        "retry_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def headers(role: str = "scorer") -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def names_said_twice(page: str) -> set[str]:
    """Return the names of a page's scroll boxes that are also a heading's text.

    A section is named by its heading, and a table's caption is its box's name: a box named as the
    heading above it is announced twice (three times with the caption) to a screen reader.
    """
    headings = {
        " ".join(re.sub(r"<[^>]+>", "", h).split())
        for h in re.findall(r"<h[1-6][^>]*>(.*?)</h[1-6]>", page, re.S)
    }
    boxes = set(re.findall(r'role="region" aria-label="([^"]*)"', page))
    return {html.unescape(b) for b in boxes} & {html.unescape(h) for h in headings}


POLLS: Final = 2400
"""How many times :func:`until` checks, 25 ms apart: about a minute when each check is quick.
It was 400 (about 10 s), which the app's background load of a real registry may outlast on a
CI machine running other work: a failure seen once in tests/reliability/test_faults.py, not
reproduced since, may have been one."""


def until(check: Callable[[], object], failed: str, attempts: int = POLLS) -> None:
    """Poll ``check`` until it returns something true (bounded by attempts, not by time).

    Parameters
    ----------
    check : callable
        What the app's background work makes true: a model loaded, a load failed, a line logged.
    failed : str
        The assertion's message when it never does.
    attempts : int, default :data:`POLLS`
        How many times to check, 25 ms apart.

    Raises
    ------
    AssertionError
        With ``failed``, when no check returned something true.
    """
    for _ in range(attempts):
        if check():
            return
        time.sleep(0.025)
    raise AssertionError(failed)


def wait_ready(client: TestClient, attempts: int = POLLS) -> None:
    """Poll /readyz until 200 (bounded by attempts, not by time)."""
    until(
        lambda: client.get("/readyz").status_code == 200, "service did not become ready", attempts
    )


def wait_failed_once(client: TestClient, attempts: int = POLLS) -> None:
    """Poll the app's state until a load has failed (bounded by attempts, not by time)."""
    holder = client.app.state.holder  # type: ignore[attr-defined]
    until(lambda: holder.last_error is not None, "no load failed", attempts)


@pytest.fixture
def source(served: dict[str, ServedModel], loaded_snapshot: LoadedSnapshot) -> StaticSource:
    return StaticSource(models=dict(served), snapshot=loaded_snapshot)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def app(settings: Settings, source: StaticSource) -> FastAPI:
    return create_app(settings, source)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        wait_ready(c)
        yield c


NO_MODEL = registry.ModelNotFoundError("no task has a champion version in /srv/x")
"""What the registry of a young store says: no champion (its path must never reach a page)."""


@pytest.fixture
def unloaded(tmp_path: Path, source: StaticSource) -> Iterator[TestClient]:
    """An app whose registry has no champion: nothing is ever loaded."""
    source.failure = NO_MODEL
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as client:
        wait_failed_once(client)
        yield client


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow registry with a champion per task and extra versions for reload tests."""

    home: Path
    uri: str
    champion: dict[str, str]
    good: str
    corrupt: str
    incompatible: str


def _register(bundle: ModelBundle, snapshot: pl.DataFrame, home: Path) -> str:
    X = model_rows(bundle, snapshot)  # noqa: N806
    with mlflow.start_run(experiment_id=experiment_id(bundle.task, home)):
        uri = registry.log_bundle(bundle, X.head(3))
    return registry.register_challenger(bundle.task, uri, {"grade": "B"})


@pytest.fixture(scope="session")
def registry_setup(
    tmp_path_factory: pytest.TempPathFactory,
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
) -> Registry:
    """Champions of every task, plus churn versions: a retrained one, a corrupt one, one of
    another feature-set version. The store holds the snapshot."""
    home = tmp_path_factory.mktemp("registry") / "home"
    with pytest.MonkeyPatch.context() as env:
        # session-scoped: whichever test asks first, the registry lives in its own home
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        uri = configure_tracking(home)
    try:
        champion = {}
        for task, bundle in bundles.items():
            champion[task] = _register(bundle, snapshot, home)
            registry.set_alias(task, registry.CHAMPION, champion[task])
        good = _register(train_bundle("churn", snapshot, seed=1), snapshot, home)
        corrupt = _register(train_bundle("churn", snapshot, seed=2), snapshot, home)
        for path in _artifact_dir("churn", corrupt).rglob("model.ubj"):
            path.write_bytes(b"not a booster")
        old = train_bundle("churn", snapshot, seed=3, feature_set_version="0")
        incompatible = _register(old, snapshot, home)
        Store(home).write_snapshot(snapshot, AS_OF)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    return Registry(home, uri, champion, good, corrupt, incompatible)


def _artifact_dir(task: str, version: str) -> Path:
    client = mlflow.MlflowClient()
    model_id = str(client.get_model_version(task, version).source).removeprefix("models:/")
    return Path(urlparse(client.get_logged_model(model_id).artifact_location).path)


@pytest.fixture
def registry_env(registry_setup: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """Point MLflow at the session registry; afterwards put every champion alias back."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_setup.uri)
    mlflow.set_tracking_uri(registry_setup.uri)
    mlflow.set_registry_uri(registry_setup.uri)
    try:
        yield registry_setup
    finally:
        for task, version in registry_setup.champion.items():
            registry.set_alias(task, registry.CHAMPION, version)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


# Reviewer pages in a real browser (test_ui_browser.py, test_value_browser.py, test_ui_crawl.py)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium "
    "(apt-get install -y chromium); CI installs it",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> UIWorld:
    """The reviewer pages' data (:mod:`tests.serving.ui_data`), built once per session."""
    from tests.serving.ui_data import build_ui_world  # it imports this module

    base = tmp_path_factory.getbasetemp() / "ui-world"
    base.mkdir(exist_ok=True)
    return build_ui_world(base)


NOTHING_PROMOTED = "models are not loaded yet: "
"""How ``/readyz`` begins once a load found the store or registry not filled yet: what is missing
follows (:func:`serving.deps.not_loaded`); "last load failed; retrying" is a failed load's."""


@contextlib.contextmanager
def serve_uvicorn(home: Path, uri: str, workdir: Path, ready: str | None = None) -> Iterator[str]:
    """``uvicorn serving.app:create_app_from_env --factory`` on port 0, serving ``home``
    with MLflow at ``uri``, until ``/readyz`` is 200 (or, given ``ready``, answers a ``detail``
    starting with it); yield its URL."""
    env = child_env(
        **{
            "GUANXI_HOME": str(home),
            "GUANXI_API_KEYS": ",".join(f"{key}:{role}" for role, key in KEYS.items()),
            "GUANXI_AUDIT_KEY": AUDIT_KEY,
            "GUANXI_SESSION_KEY": SESSION_KEY,
            "GUANXI_STORE_KEY": STORE_KEY,
            "GUANXI_COOKIE_SECURE": "false",  # plain http on loopback
            "GUANXI_API_DOCS": "true",
            "GUANXI_PRECOMPUTE_REASONS": "false",
            "MLFLOW_TRACKING_URI": uri,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
    )
    log = workdir / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving.app:create_app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-server-header",
        ],
        cwd=workdir,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{listening_port(proc, log)}"
        if ready is None:
            wait_status(f"{url}/readyz", 200, proc, log, attempts=300)
        else:
            for _ in range(600):  # as wait_status: polls 0.2 s apart, bounded by their number
                with contextlib.suppress(httpx.HTTPError):
                    detail = httpx.get(f"{url}/readyz", timeout=5).json().get("detail")
                    if str(detail).startswith(ready):
                        break
                time.sleep(0.2)
            else:
                raise AssertionError(f"/readyz never said {ready!r}: {log.read_text()[-2000:]}")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(world: UIWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The reviewer pages of the UI world, served by uvicorn, once ready."""
    with serve_uvicorn(world.home, world.uri, tmp_path_factory.mktemp("ui-server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(server: str, browser: Any) -> Iterator[Any]:
    """A Chromium page with JavaScript off (the pages must read without it)."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1400, "height": 900}
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)

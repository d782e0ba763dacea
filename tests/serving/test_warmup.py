"""The explainer's warm-up: ``/readyz`` says ready only once TreeSHAP's kernels are compiled.

The kernels of a process are numba dispatchers, compiled at most once per process, so each check
that the service compiled them before its first request runs in a new process: there nothing has
compiled them yet (numba's ``signatures`` are empty) and the warm-up is the only thing that can.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models import treeshap
from serving import lifecycle
from serving.app import create_app
from tests.serving.conftest import StaticSource, headers, make_settings, until, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SCORES_EXPLAINED = "/v1/customers/c001/scores?tasks=churn&explain=2"

FIRST_REQUEST = r"""
import json, sys
from pathlib import Path

from fastapi.testclient import TestClient

from features.contracts import FEATURE_SET_VERSION
from features.snapshot import build_snapshot
from models import treeshap
from serving.app import create_app
from serving.state import LoadedSnapshot, ServedModel
from tests.serving.conftest import (
    AS_OF, CATEGORIES, StaticSource, headers, make_settings, tiny_events, train_bundle, wait_ready,
)

kernels = (treeshap._row_kernel, treeshap._block_kernel)


def seen():
    # signatures compiled or loaded in this process; cache loads and compilations so far
    return [
        [len(k.signatures), sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
        for k in kernels
    ]


snapshot = build_snapshot(tiny_events(), None, AS_OF, categories=CATEGORIES)
models = {
    "churn": ServedModel(bundle=train_bundle("churn", snapshot), name="churn", version="1")
}
source = StaticSource(models, LoadedSnapshot(AS_OF, FEATURE_SET_VERSION, snapshot))
report = {"before": seen()}
settings = make_settings(Path(sys.argv[1]), tasks=["churn"])
with TestClient(create_app(settings, source)) as client:
    wait_ready(client)
    report["ready"] = seen()
    response = client.get(sys.argv[2], headers=headers())
    report["status"] = response.status_code
    report["reasons"] = len(response.json()["scores"]["churn"]["reasons"])
    report["after"] = seen()
print(json.dumps(report))
"""


def test_ready_only_when_compiled_and_the_first_request_compiles_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST, str(tmp_path / "home"), SCORES_EXPLAINED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["before"] == [[0, 0, 0], [0, 0, 0]]  # nothing compiled at the start
    row, block = report["ready"]
    # both kernels compiled or loaded before ready (the row kernel may have a second signature:
    # the load explains a read-only row for each model's base log-odds)
    assert row[0] >= 1 and block[0] >= 1
    assert report["status"] == 200 and report["reasons"] == 2  # the request explained
    assert report["after"] == report["ready"]  # without compiling or loading a kernel


def test_a_failed_warm_up_is_logged_and_the_service_gets_ready(
    tmp_path: Path,
    source: StaticSource,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail() -> None:
        raise RuntimeError("no compiler today")

    # a failure a user cannot arrange on purpose (numba or LLVM broken), so it is simulated
    monkeypatch.setattr(lifecycle.treeshap, "warm_up", fail)
    caplog.set_level(logging.ERROR, logger="serving.lifecycle")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_ready(client)
        r = client.get(SCORES_EXPLAINED, headers=headers())
        assert r.status_code == 200 and r.json()["scores"]["churn"]["reasons"]
    [failed] = [r for r in caplog.records if "warm-up failed" in r.getMessage()]
    assert failed.exc_info is not None and "no compiler today" in str(failed.exc_info[1])


def test_not_ready_while_warming_up(tmp_path: Path, source: StaticSource) -> None:
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        wait_ready(client)
        holder = client.app.state.holder  # type: ignore[attr-defined]
        holder.explainer_warm = False  # loaded, kernels not yet warm
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"ready": False, "detail": "warming up the explainer"}
        holder.explainer_warm = True
        assert client.get("/readyz").status_code == 200


def test_a_warm_up_in_a_warm_process_fits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    treeshap.warm_up()  # compiles or loads, unless this process already has the kernels

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the warm-up fitted a booster in a warm process")

    monkeypatch.setattr(treeshap.xgb, "train", no_fit)
    again = treeshap.warm_up()
    assert again.in_process and again.compiled == 0


def test_a_second_app_is_not_ready_until_its_warm_up_returns_at_once(
    tmp_path: Path,
    source: StaticSource,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    treeshap.warm_up()  # an earlier app of this process warmed the kernels
    release = threading.Event()
    real = treeshap.warm_up

    def held() -> treeshap.WarmUp:
        assert release.wait(60)
        return real()

    monkeypatch.setattr(lifecycle.treeshap, "warm_up", held)
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    with TestClient(create_app(make_settings(tmp_path / "h"), source)) as client:
        holder = client.app.state.holder  # type: ignore[attr-defined]
        # loaded, but this app's warm-up has not returned yet
        until(lambda: holder.current is not None, "no model loaded")
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"ready": False, "detail": "warming up the explainer"}
        release.set()
        wait_ready(client)
    [warm] = [r for r in caplog.records if r.getMessage().startswith("explainer warm in")]
    assert "already compiled in this process" in warm.getMessage()

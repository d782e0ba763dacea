"""``guanxi serve``: refusal without keys, and real subprocesses on a free loopback port."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn.logging
from typer.testing import CliRunner

from models.tasks import task_names
from pipelines.demo import next_steps, serve_later
from pipelines.serve import (
    ROOT_PATH_VARIABLE,
    _log_config,
    port_in_use,
    run_server,
    serve_command,
)
from serving.app import prefix_twice
from serving.settings import get_settings
from tests.processes import child_env, guanxi_serve, reserved_port, stop
from tests.serving.conftest import AUDIT_KEY, KEYS, SESSION_KEY, STORE_KEY, Registry

GUANXI = str(Path(sys.executable).with_name("guanxi"))


def test_refuses_to_start_without_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GUANXI_API_KEYS", "GUANXI_AUDIT_KEY", "GUANXI_DEV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUANXI_HOME", str(tmp_path))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, [])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "GUANXI_API_KEYS is empty" in result.output


@pytest.mark.parametrize("secrets_set", [True, False])
def test_guanxi_dev_in_the_environment_without_the_flag_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secrets_set: bool
) -> None:
    """GUANXI_DEV=true left in a production environment started the server in dev mode, silently:
    no secret checked (with none set, a random audit key and no API key), cookies not Secure."""
    monkeypatch.setenv("GUANXI_HOME", str(tmp_path))
    secrets = {
        "GUANXI_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
        "GUANXI_AUDIT_KEY": AUDIT_KEY,
        "GUANXI_SESSION_KEY": SESSION_KEY,
        "GUANXI_STORE_KEY": STORE_KEY,
    }
    for name, value in secrets.items():
        if secrets_set:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUANXI_DEV", "true")
    app = typer.Typer()
    app.command()(serve_command)
    with reserved_port() as port:
        result = CliRunner().invoke(app, ["--port", str(port)])
    get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot start: GUANXI_DEV is set but --dev was not given" in text, text
    assert "serving on" not in text and "generated" not in text


def test_a_port_in_use_is_refused_before_saying_it_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # it printed "guanxi serving on http://127.0.0.1:PORT", then each worker's bind error
    monkeypatch.setenv("GUANXI_HOME", str(tmp_path))
    monkeypatch.setenv("GUANXI_API_KEYS", ",".join(f"{k}:{role}" for role, k in KEYS.items()))
    monkeypatch.setenv("GUANXI_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.setenv("GUANXI_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("GUANXI_STORE_KEY", STORE_KEY)
    monkeypatch.delenv("GUANXI_DEV", raising=False)
    app = typer.Typer()
    app.command()(serve_command)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = CliRunner().invoke(app, ["--port", str(port)])
    get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"cannot start: cannot listen on 127.0.0.1:{port} (Address already in use)" in text
    assert "serving on" not in text
    assert port_in_use("127.0.0.1", port) is None  # free again once let go


def test_a_healthcheck_timeout_not_above_zero_is_refused_before_it_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUANXI_HOME", str(tmp_path))
    monkeypatch.setenv("GUANXI_WORKER_HEALTHCHECK_SECONDS", "0")
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--dev", "--port", "0", "--workers", "2"])
    get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot start: Input should be greater than 0" in text, text
    assert "serving on" not in text


def _serve_secrets(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Set every secret ``guanxi serve`` needs outside ``--dev``, an empty store at ``home``."""
    monkeypatch.setenv("GUANXI_HOME", str(home))  # empty: the models never load, no matter
    monkeypatch.setenv("GUANXI_API_KEYS", ",".join(f"{k}:{role}" for role, k in KEYS.items()))
    monkeypatch.setenv("GUANXI_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.setenv("GUANXI_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("GUANXI_STORE_KEY", STORE_KEY)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # run_server sets it; restored after
    monkeypatch.delenv("GUANXI_DEV", raising=False)


def test_the_announcement_comes_once_the_server_listens_under_its_path_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`guanxi demo` prints its next steps through ``announce``: after uvicorn's start lines.

    One server started (a few seconds) for a second thing: ``guanxi serve`` had no
    ``--root-path``, so only a hand-run ``uvicorn --factory ... --root-path /crm`` served the
    pages under a proxy's prefix. uvicorn puts the prefix before each request's path, so a proxy
    strips it (``/crm/ui/login`` is passed on as ``/ui/login``) and one that does not reaches
    ``/crm/crm/ui/login``, no route; the trailing slash of ``/crm/`` is dropped (the pages'
    addresses were ``/crm//ui/...``)."""
    _serve_secrets(monkeypatch, tmp_path)
    seen: list[str] = []
    answers: dict[str, httpx.Response] = {}

    def ask() -> None:
        try:
            for path in ("/healthz", "/ui/login", "/crm/healthz"):
                answers[path] = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: uvicorn shuts down, run_server returns

    def announce() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            seen.append(capfd.readouterr().err)  # listening: a connection is accepted
        # called in the server's event loop: asked from a thread, which the loop answers
        threading.Thread(target=ask, daemon=True).start()

    with reserved_port() as port:
        # the Ctrl-C arms the server's stop watchdog, which ends the process (here pytest's)
        # if the stop takes longer than the graceful timeout and 5 s: 10 minutes, not 25 s, so
        # that a slow machine fails no test
        run_server(
            host="127.0.0.1", port=port, workers=1, dev=False, announce=announce,
            timeout_graceful_shutdown=600, root_path="/crm/",
        )  # fmt: skip
    get_settings.cache_clear()
    assert len(seen) == 1
    assert seen[0].index("Application startup complete") < seen[0].index("Uvicorn running on")
    said = " ".join(seen[0].split())
    assert f"guanxi serving on http://127.0.0.1:{port} under the path prefix /crm (" in said
    assert "Shutting down" in capfd.readouterr().err  # stopped by the signal, not by a failure
    assert answers["/healthz"].status_code == 200
    login = answers["/ui/login"]
    assert login.status_code == 200 and 'action="/crm/ui/login"' in login.text, login.text
    # the prefix twice: a proxy passed it on, which must strip it
    assert answers["/crm/healthz"].status_code == 404
    assert answers["/crm/healthz"].json() == {"detail": prefix_twice("/crm")}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("crm", "'crm' does not start with '/': give the prefix as /crm"),
        ("/crm//x", "'/crm//x' has an empty part (two slashes)"),
        ("/cr m", "'/cr m' has the part 'cr m': each part between slashes must be letters"),
    ],
)
def test_a_root_path_that_is_no_prefix_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, said: str
) -> None:
    _serve_secrets(monkeypatch, tmp_path)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("pipelines.serve._run_one", lambda *_, **options: started.append(options))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--port", "0", "--root-path", given])
    get_settings.cache_clear()
    assert result.exit_code == 2 and not started, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "Invalid value for '--root-path'" in text and said in text, text


@pytest.mark.parametrize(("given", "passed"), [("/crm/", "/crm"), ("/", ""), ("/a/b", "/a/b")])
def test_guanxi_serve_passes_its_root_path_to_uvicorn_without_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, passed: str
) -> None:
    _serve_secrets(monkeypatch, tmp_path)
    monkeypatch.setattr("pipelines.serve.configure_tracking", lambda home: f"sqlite:///{home}/x")
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("pipelines.serve._run_one", lambda *_, **options: started.append(options))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--port", "0", "--workers", "1", "--root-path", given])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert started[0]["root_path"] == passed


@pytest.mark.parametrize(
    ("flag", "env", "passed"),
    [([], "/crm/", "/crm"), (["--root-path", "/flag"], "/crm", "/flag"), ([], "", "")],
)
def test_guanxi_serve_reads_its_root_path_from_the_environment_without_the_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: list[str], env: str, passed: str
) -> None:
    """web33: the prefix had to be on the command line, where every setting of the server is
    read from GUANXI_* variables (a container's, a systemd unit's EnvironmentFile)."""
    _serve_secrets(monkeypatch, tmp_path)
    monkeypatch.setattr("pipelines.serve.configure_tracking", lambda home: f"sqlite:///{home}/x")
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("pipelines.serve._run_one", lambda *_, **options: started.append(options))
    app = typer.Typer()
    app.command()(serve_command)
    args = ["--port", "0", "--workers", "1", *flag]
    result = CliRunner().invoke(app, args, env={ROOT_PATH_VARIABLE: env})
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert started[0]["root_path"] == passed


def test_a_root_path_in_the_environment_that_is_no_prefix_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _serve_secrets(monkeypatch, tmp_path)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("pipelines.serve._run_one", lambda *_, **options: started.append(options))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--port", "0"], env={ROOT_PATH_VARIABLE: "crm"})
    get_settings.cache_clear()
    assert result.exit_code == 2 and not started, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "(env var: 'GUANXI_ROOT_PATH')" in text, text
    assert "'crm' does not start with '/': give the prefix as /crm" in text, text


def test_the_demo_says_where_to_go_and_that_readyz_says_when() -> None:
    steps = next_steps("http://127.0.0.1:8000", "KEY", "C00001")
    assert "`curl http://127.0.0.1:8000/readyz` answers 200 once they are loaded" in steps
    assert "  curl -H 'X-API-Key: KEY' http://127.0.0.1:8000/v1/models\n" in steps
    assert "http://127.0.0.1:8000/ui/login (API key: KEY)" in steps


def test_the_demo_without_its_server_says_how_to_serve_its_store() -> None:
    """``guanxi demo --no-serve`` ended on the plan's path, leaving the user to find the
    command (and the store) that serves what it made."""
    assert serve_later(Path(".guanxi")).endswith("to serve this store: guanxi serve --dev")
    line = serve_later(Path("/tmp/my demo"))
    assert line.endswith("to serve this store: GUANXI_HOME='/tmp/my demo' guanxi serve --dev")


def _stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    stop(proc)
    return log.read_text()


def _wait(
    url: str, proc: subprocess.Popen[bytes], log: Path, path: str, attempts: int = 600
) -> None:
    for _ in range(attempts):
        if proc.poll() is not None:
            raise AssertionError(f"guanxi serve exited:\n{_stop(proc, log)}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered 200:\n{_stop(proc, log)}")


Served = tuple[str, subprocess.Popen[bytes], Path]
"""A ``guanxi serve`` subprocess: its URL, its process and its log."""


@pytest.fixture
def served_registry(registry_env: Registry, tmp_path: Path) -> Iterator[Served]:
    env = child_env(
        GUANXI_HOME=str(registry_env.home),
        GUANXI_API_KEYS=",".join(f"{k}:{role}" for role, k in KEYS.items()),
        GUANXI_AUDIT_KEY=AUDIT_KEY,
        GUANXI_SESSION_KEY=SESSION_KEY,
        GUANXI_STORE_KEY=STORE_KEY,
        GUANXI_MAX_BODY_BYTES="4096",
        GUANXI_PRECOMPUTE_REASONS="false",
        MLFLOW_TRACKING_URI=registry_env.uri,
    )
    proxy = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    # one worker: /readyz answers for the worker that gets it (tests/serving/test_workers.py
    # waits for both workers of a two-worker server)
    log = tmp_path / "serve.log"
    proc, port = guanxi_serve(env, log, workers=1, args=tuple(proxy))
    try:
        yield f"http://127.0.0.1:{port}", proc, log
    finally:
        stop(proc)


@pytest.mark.slow
def test_guanxi_serve_subprocess(served_registry: Served, registry_env: Registry) -> None:
    url, proc, log_path = served_registry
    _wait(url, proc, log_path, "/readyz")
    key = {"X-API-Key": KEYS["scorer"]}
    r = httpx.get(f"{url}/v1/customers/c001/scores?explain=3", headers=key)
    assert r.status_code == 200, r.text
    assert set(r.json()["scores"]) == set(task_names())
    assert "server" not in r.headers
    assert httpx.get(f"{url}/v1/customers/c001/scores").status_code == 401

    def chunks() -> Iterator[bytes]:
        yield b'{"customer_ids": ["'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"]}'

    r = httpx.post(f"{url}/v1/scores", headers=key, content=chunks())
    assert r.status_code == 413
    assert "guanxi_requests_total" in httpx.get(f"{url}/metrics").text

    # the access log: route templates and request ids, never an id or a search term
    reviewer = {"X-API-Key": KEYS["reviewer"], "X-Forwarded-For": "203.0.113.7"}
    ids = []
    for path in (
        "/v1/customers/c017/scores?tasks=churn",
        "/v1/customers/ghost-zz9/scores",
        "/ui/customers/c042",
        "/ui/customers?q=searched-term-xq7",
    ):
        r = httpx.get(url + path, headers=reviewer)
        assert r.status_code in (200, 404), (path, r.status_code)
        ids.append(r.headers["x-request-id"])
    log = _stop(proc, log_path)
    # the request ids are random hex, which may hold "c017" or "c042" by chance (it did in CI)
    without_ids = re.sub(r"request_id=[0-9a-f]+", "request_id=…", log)
    for value in ("c017", "ghost-zz9", "c042", "searched-term-xq7", "tasks=churn"):
        assert value not in without_ids, value
    for request_id in ids:
        [line] = [x for x in log.splitlines() if f"request_id={request_id}" in x]
        assert "203.0.113.7" in line  # --proxy-headers: the client behind the proxy
        # when, and which process: the worker's (before: neither)
        assert re.match(rf"{STAMP} \[{proc.pid}\] INFO: +203\.0\.113\.7 ", line), line
    assert '"GET /v1/customers/{customer_id}/scores" 200' in log
    assert '"GET /ui/customers/{customer_id}" 200' in log
    # stopped cleanly: the audit log it wrote (the reviewer pages' lines too) verifies
    env = child_env(GUANXI_HOME=str(registry_env.home), GUANXI_AUDIT_KEY=AUDIT_KEY)
    verify = subprocess.run([GUANXI, "audit", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0 and "ok" in verify.stdout, verify.stdout + verify.stderr


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"
"""A time of the server log (:data:`pipelines.serve.LOG_FORMAT`)."""


def test_each_server_log_line_says_when_and_which_process() -> None:
    """Before: uvicorn's format, ``INFO:     <message>``: a log kept in a file could not say
    when a reload failed or a request was answered, nor which worker wrote a line, though the
    supervisor's lines name workers by process id ("Child process [N] was replaced")."""
    config = _log_config(60, 20)
    spec = config["formatters"]["default"]
    formatter = uvicorn.logging.DefaultFormatter(spec["fmt"], spec["datefmt"], use_colors=False)
    record = logging.LogRecord("serving.access", logging.INFO, __file__, 1, "a line", None, None)
    line = formatter.format(record)
    assert re.fullmatch(rf"{STAMP} \[{os.getpid()}\] INFO: +a line", line), line
    assert config["loggers"]["serving"]["handlers"] == ["default"]  # guanxi's lines too


@pytest.mark.slow
def test_guanxi_serve_dev_prints_a_working_key(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = guanxi_serve(
        child_env(GUANXI_HOME=str(tmp_path)), log, workers=None, args=("--dev",)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        text = log.read_text()  # printed before uvicorn named its port
        match = re.search(r"API key \(X-API-Key\): (\S+)", text)
        assert match, text
        _wait(url, proc, log, "/healthz")
        # nothing to load in an empty store: alive, not ready, and the key is accepted
        assert httpx.get(f"{url}/readyz").status_code == 503
        r = httpx.get(f"{url}/v1/models", headers={"X-API-Key": match[1]})
        assert r.status_code == 503
        assert httpx.get(f"{url}/v1/models", headers={"X-API-Key": "guess"}).status_code == 401
    finally:
        stop(proc)


def _serve_without_uvicorn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], **env: str
) -> tuple[str, list[str]]:
    """Run ``guanxi serve`` up to its one worker (not started); return its output and the app."""
    secrets = ("GUANXI_API_KEYS", "GUANXI_AUDIT_KEY", "GUANXI_SESSION_KEY", "GUANXI_STORE_KEY")
    for name in (*secrets, "GUANXI_DEV", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)  # and restored after, whatever serve sets
    # no global MLflow tracking URI left behind for the tests that follow
    monkeypatch.setattr("pipelines.serve.configure_tracking", lambda home: f"sqlite:///{home}/x")
    for name, value in {"GUANXI_HOME": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    started: list[str] = []
    monkeypatch.setattr("pipelines.serve._run_one", lambda app, *_, **__: started.append(app))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--port", "0", "--workers", "1", *args])
    get_settings.cache_clear()
    return result.output, started


def test_serve_dev_prints_the_audit_key_it_made_once_labelled_dev_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--dev made an audit key and never showed it: `guanxi audit verify` could not check the
    audit log of a dev run. It prints it once, beside the admin key, saying dev only."""
    output, started = _serve_without_uvicorn(monkeypatch, tmp_path, ["--dev"])
    assert started, output
    (line,) = [line for line in output.splitlines() if "GUANXI_AUDIT_KEY" in line]
    assert line.startswith("dev mode only: ") and "guanxi audit verify" in line
    printed = line.rsplit(": ", 1)[1]
    assert printed == os.environ["GUANXI_AUDIT_KEY"]  # the key the workers write the log with
    assert get_settings().audit_key.get_secret_value() == printed
    admin = re.search(r"admin API key \(X-API-Key\): (\S+)", output)
    assert admin and os.environ["GUANXI_API_KEYS"] == f"{admin[1]}:admin"
    assert output.count(printed) == 1 and printed != admin[1]
    get_settings.cache_clear()


def test_serve_dev_prints_no_secret_the_user_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = ",".join(f"{k}:{role}" for role, k in KEYS.items())
    output, started = _serve_without_uvicorn(
        monkeypatch, tmp_path, ["--dev"], GUANXI_API_KEYS=keys, GUANXI_AUDIT_KEY=AUDIT_KEY
    )
    assert started and "API key" not in output and "audit key" not in output, output
    assert AUDIT_KEY not in output and not any(k in output for k in KEYS.values())


def test_serve_dev_says_when_its_keys_hold_no_admin_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    output, started = _serve_without_uvicorn(
        monkeypatch, tmp_path, ["--dev"], GUANXI_API_KEYS=f"{KEYS['scorer']}:scorer"
    )
    text = " ".join(output.split())
    assert started and "GUANXI_API_KEYS holds no admin key" in text, output
    assert "POST /v1/admin/reload answers 403" in text and KEYS["scorer"] not in text


def test_serve_dev_says_its_key_logs_in_to_the_reviewer_pages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`guanxi demo --no-serve` ends with `guanxi serve --dev`, which printed a key for
    X-API-Key and no word of the reviewer pages the demo's own server names: the line says
    where the key logs in."""
    output, started = _serve_without_uvicorn(monkeypatch, tmp_path, ["--dev"])
    (line,) = [line for line in output.splitlines() if "admin API key" in line]
    assert started and "reviewer pages at /ui/login" in line, output


def test_serve_dev_names_the_login_through_the_proxy_under_a_root_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """web32c: under --root-path /crm the key line named /ui/login alone, which a browser going
    through the proxy does not reach; it names /crm/ui/login too."""
    output, started = _serve_without_uvicorn(
        monkeypatch, tmp_path, ["--dev", "--root-path", "/crm/"]
    )
    (line,) = [line for line in output.splitlines() if "admin API key" in line]
    assert started and "at /ui/login; through the proxy: /crm/ui/login)" in line, output


def test_serve_outside_dev_prints_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Production mode generates nothing and prints no secret; it needs every one set."""
    keys = ",".join(f"{k}:{role}" for role, k in KEYS.items())
    output, started = _serve_without_uvicorn(
        monkeypatch,
        tmp_path,
        [],
        GUANXI_API_KEYS=keys,
        GUANXI_AUDIT_KEY=AUDIT_KEY,
        GUANXI_SESSION_KEY=SESSION_KEY,
        GUANXI_STORE_KEY=STORE_KEY,
    )
    assert started, output
    assert "dev mode" not in output and "key" not in output.lower()
    assert all(secret not in output for secret in (AUDIT_KEY, SESSION_KEY, *KEYS.values()))
    bare, nothing = _serve_without_uvicorn(monkeypatch, tmp_path, [])  # no secrets at all
    assert not nothing and "GUANXI_AUDIT_KEY must be set" in " ".join(bare.split())


SLOW_START = """\
import os
import time

# guanxi serve's own process marks the environment; its workers inherit the mark and sleep
# before anything runs in them, so none answers the supervisor's health check until then
if os.environ.get("SLOW_START_WORKER"):
    time.sleep(float(os.environ["SLOW_START_SECONDS"]))
else:
    os.environ["SLOW_START_WORKER"] = "1"
"""


def _slow_start_env(tmp_path: Path, seconds: float, **extra: str) -> dict[str, str]:
    """An environment whose ``guanxi serve`` workers start ``seconds`` late (a ``sitecustomize``
    that sleeps in every process the server starts: a worker importing and loading on a loaded
    machine, without the load)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_START)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    home = tmp_path / "home"
    home.mkdir()
    return child_env(
        GUANXI_HOME=str(home), PYTHONPATH=path, SLOW_START_SECONDS=str(seconds), **extra
    )


@pytest.mark.slow
def test_workers_slower_to_start_than_uvicorns_health_check_still_serve(tmp_path: Path) -> None:
    """F3 of session 19: uvicorn's supervisor killed two workers that had not answered its health
    check within its 5 s, and the ones it started instead, forever ("Child process [N] died");
    nothing served. Workers that take 15 s to start now come up and serve, none replaced.

    With uvicorn's 5 s (GUANXI_WORKER_HEALTHCHECK_SECONDS=5) this fails: the supervisor pings
    one worker at a time, so each is killed at most 10 s after it started, before it answers,
    and /healthz never answers (the bounded polls run out)."""
    log = tmp_path / "serve.log"
    env = _slow_start_env(tmp_path, 15)
    proc, port = guanxi_serve(env, log, workers=2, args=("--dev",))
    try:
        # nothing accepts until a worker is up: each poll waits out its 2 s request timeout
        _wait(f"http://127.0.0.1:{port}", proc, log, "/healthz", attempts=300)
        text = log.read_text()
        assert text.count("Application startup complete") >= 1, text
        assert "was replaced" not in text and "died" not in text, text
    finally:
        stop(proc)


@pytest.mark.slow
def test_a_worker_replaced_for_its_health_check_is_logged_with_the_reason(
    tmp_path: Path,
) -> None:
    """A worker that does not answer within GUANXI_WORKER_HEALTHCHECK_SECONDS (here 1 s, the
    workers starting 4 s late) is replaced, and the log says why and what to raise, where
    uvicorn said only "Child process [N] died"."""
    log = tmp_path / "serve.log"
    env = _slow_start_env(tmp_path, 4, GUANXI_WORKER_HEALTHCHECK_SECONDS="1")
    proc, _ = guanxi_serve(env, log, workers=2, args=("--dev",))
    try:
        for _ in range(600):
            if "was replaced" in log.read_text() or proc.poll() is not None:
                break
            time.sleep(0.2)
        text = log.read_text()
        assert re.search(
            r"Child process \[\d+\] was replaced: it exited, or it did not answer the "
            r"supervisor's health check within 1 s .*raise GUANXI_WORKER_HEALTHCHECK_SECONDS",
            text,
        ), text
        assert not re.search(r"Child process \[\d+\] died", text), text
    finally:
        stop(proc)

"""The systemd unit example (docs/examples/guanxi.service) runs ``guanxi serve`` as it is, and its
stop settings fit the server's own bound (docs/architecture.md "How the server stops")."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import typer
from typer.main import get_command

from pipelines.serve import GRACEFUL_SHUTDOWN_SECONDS, serve_command
from serving.supervisor import SHUTDOWN_SECONDS

UNIT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "guanxi.service"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys keep case
    unit.read_string(UNIT.read_text(encoding="utf-8"))
    return unit


def test_the_unit_runs_guanxi_serve_with_options_it_has() -> None:
    """Its ``ExecStart`` is ``guanxi serve`` with options the command parses (no typo, no option
    that was renamed), not in dev mode."""
    service = _unit()["Service"]
    program, first, *args = shlex.split(service["ExecStart"])
    assert Path(program).name == "guanxi" and first == "serve"
    app = typer.Typer()
    app.command("serve")(serve_command)
    params = get_command(app).make_context("guanxi serve", list(args)).params
    assert params["dev"] is False and params["workers"] >= 1


def test_the_unit_stops_within_guanxis_bound_before_systemd_kills() -> None:
    """SIGTERM to ``guanxi serve`` alone, its workers left to it; systemd's SIGKILL comes only
    after the graceful timeout and :data:`serving.supervisor.SHUTDOWN_SECONDS`, so guanxi's bound
    acts first and says what it cut short; the watchdog's 143 is a clean stop."""
    service = _unit()["Service"]
    args = shlex.split(service["ExecStart"])
    graceful = GRACEFUL_SHUTDOWN_SECONDS
    if "--timeout-graceful-shutdown" in args:
        graceful = int(args[args.index("--timeout-graceful-shutdown") + 1])
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > graceful + SHUTDOWN_SECONDS
    assert "143" in service["SuccessExitStatus"].split()
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"

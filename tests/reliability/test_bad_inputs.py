"""Bad input files through the CLI: a clear error naming the problem, exit 1, nothing stored.

Each file of the corpus goes through ``guanxi data validate`` and ``guanxi features build`` (the
whole ``guanxi`` app, in-process); the output must name the file and the problem (and the column
where there is one), the exit code must be 1, and ``GUANXI_HOME`` must stay empty. A slow test
does the same with real processes for two of the files.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.events import read_events
from pipelines.cli import _register, app
from serving.settings import get_settings
from tests.features.test_events import DATA, HEADER, NOW, write_csv
from tests.processes import GUANXI

FINE = "c1,2024-01-01,order,web,10,1,,o1"


@dataclass(frozen=True)
class Bad:
    """A corpus file builder and what the error must say."""

    build: Callable[[Path], Path]
    column: str | None
    message: str


def _latin1(d: Path) -> Path:
    return write_csv(
        d / "latin1.csv", HEADER, FINE, "Zoë,2024-01-02,visit,web,,,,".encode("latin-1")
    )


def _utf16(d: Path) -> Path:
    path = d / "utf16.csv"
    path.write_bytes(f"{HEADER}\n{FINE}\n".encode("utf-16"))
    return path


def _truncated_parquet(d: Path) -> Path:
    good = d / "good.parquet"
    read_events(DATA / "events_tiny.csv", now=NOW).write_parquet(good)
    path = d / "truncated.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


def _wrong_type(d: Path) -> Path:
    path = d / "wrong_type.parquet"
    frame = {"customer_id": ["c1"], "ts": [1_700_000_000], "event_type": ["visit"]}
    pl.DataFrame(frame).write_parquet(path)
    return path


def _future(d: Path) -> Path:
    return write_csv(d / "future.csv", HEADER, FINE, "c2,2099-01-01,visit,web,,,,")


def _control(d: Path) -> Path:
    return write_csv(d / "control.csv", HEADER, FINE, b"c\x1b[31mx,2024-01-01,visit,web,,,,")


def _one_line(d: Path) -> Path:
    path = d / "one_line.csv"
    with path.open("wb") as f:
        for _ in range(100):
            f.write(b"y" * (1 << 20))
    return path


CORPUS = {
    "latin-1 text": Bad(_latin1, "customer_id", "not valid UTF-8 (wrong encoding"),
    "utf-16 file": Bad(_utf16, None, "the header is not UTF-8 text"),
    "truncated parquet": Bad(_truncated_parquet, None, "unreadable Parquet file (truncated"),
    "column of the wrong type": Bad(_wrong_type, "ts", "stored as Int64, expected a timestamp"),
    "timestamp in the future": Bad(_future, "ts", "timestamp after the current time"),
    "control characters in an id": Bad(_control, "customer_id", "contains control characters"),
    "100 MB single line": Bad(_one_line, None, "the first line is longer than 1 MiB"),
}


AS_OF = ["--as-of", "2024-06-30"]


def _commands(path: Path) -> list[list[str]]:
    return [["data", "validate", str(path)], ["features", "build", "--events", str(path), *AS_OF]]


def _check(name: str, args: list[str], code: int, output: str, path: Path, home: Path) -> None:
    bad = CORPUS[name]
    text = " ".join(output.split())
    where = f"{name}: guanxi {' '.join(args[:2])} exited {code}\n{output[-3000:]}"
    assert code == 1, where
    assert bad.message in text and str(path) in text, where
    if bad.column is not None:
        assert f"│ {bad.column} │" in text, where
    assert "Traceback" not in output, where
    assert not home.exists() or list(home.rglob("*")) == [], where


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_file_fails_clearly_and_writes_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert datetime.now(UTC) > NOW
    path = CORPUS[name].build(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    get_settings.cache_clear()
    _register()
    try:
        for args in _commands(path):
            result = CliRunner().invoke(app, args, env={"COLUMNS": "400", "NO_COLOR": "1"})
            _check(name, args, result.exit_code, result.output, path, home)
    finally:
        get_settings.cache_clear()


@pytest.mark.slow
def test_real_processes_exit_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "GUANXI_HOME": str(home), "COLUMNS": "400", "NO_COLOR": "1"}
    runs = [
        ("utf-16 file", _commands(_utf16(tmp_path))[0]),
        ("truncated parquet", _commands(_truncated_parquet(tmp_path))[1]),
    ]

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*GUANXI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, [args for _, args in runs]))
    for (name, args), result in zip(runs, done, strict=True):
        path = Path(args[2] if args[0] == "data" else args[3])
        _check(name, args, result.returncode, result.stdout + result.stderr, path, home)

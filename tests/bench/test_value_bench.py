"""bench/value.py runs end to end on a small size (the figures themselves are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_value_benchmark_runs_and_reports_the_fit(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.value", "--sizes", "3000", "--no-lifetimes"]
    done = subprocess.run(
        [*cmd, "--data", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "3,000 customers" in done.stdout
    assert "fit BG/NBD + Gamma-Gamma" in done.stdout
    assert "lifetimes         skipped (--no-lifetimes)" in done.stdout
    assert "not measured (no 1M size)" in done.stdout

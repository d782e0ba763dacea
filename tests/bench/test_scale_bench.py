"""bench/scale.py runs end to end on tiny sizes (the figures themselves are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.scale import growth_exponent

ROOT = Path(__file__).resolve().parents[2]


def test_growth_exponent_by_hand() -> None:
    assert growth_exponent([1e5, 1e6, 1e7], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert growth_exponent([1e5, 1e6], [1.0, 100.0]) == pytest.approx(2.0)


def _run(tmp_path: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "bench.scale", "--data", str(tmp_path), "--trees", "5", *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_split_runs_are_fitted_together_and_a_run_prints_the_table_and_the_exponents(
    tmp_path: Path,
) -> None:
    """Two runs of the benchmark, each checked for all it shows (every run starts a process,
    registers five champions and starts one child per size: most of this file's time).

    Each run measures one size (a child process apiece, so two in all, not three). The first has
    no growth exponent. The second has one only by fitting the first's results with its own, and
    prints only its own rows in the table."""
    results = tmp_path / "runs.jsonl"
    first = _run(
        tmp_path, "--sizes", "300", "--spark-sizes", "--fit-size", "300", "--results", str(results)
    )
    assert "growth exponent polars snapshot: not measured (one size)" in first
    assert "earlier runs of" not in first
    assert first.count("| polars | 300 |") == 2
    assert len(results.read_text().splitlines()) == 1
    out = _run(
        tmp_path, "--sizes", "600", "--spark-sizes", "--fit-size", "300", "--results", str(results)
    )
    # this run's size has a snapshot row and a scores row; the earlier run has none
    assert out.count("| polars | 600 |") == 2 and "| polars | 300 |" not in out
    assert out.count("| snapshot |") == 1 and out.count("| scores |") == 1
    assert "earlier runs of" in out and "polars 300 customers" in out
    # one size of its own: the exponents come from the fit with the earlier run
    assert "growth exponent polars snapshot: not measured" not in out
    assert "growth exponent polars snapshot:" in out
    assert "growth exponent polars scores:" in out
    assert "spark" not in out.split("load average after")[1]
    assert len(results.read_text().splitlines()) == 2


@pytest.mark.slow
def test_scale_benchmark_runs_spark_local(tmp_path: Path) -> None:
    out = _run(tmp_path, "--sizes", "--spark-sizes", "300", "--buckets", "2")
    assert "| spark | 300 |" in out and "spark session start" in out
    assert "growth exponent spark snapshot: not measured (one size)" in out

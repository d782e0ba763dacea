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


def test_scale_benchmark_prints_the_table_and_the_exponents(tmp_path: Path) -> None:
    out = _run(tmp_path, "--sizes", "300", "600", "--spark-sizes")
    assert "| polars | 300 |" in out and "| polars | 600 |" in out
    assert out.count("| snapshot |") == 2 and out.count("| scores |") == 2
    assert "growth exponent polars snapshot:" in out
    assert "growth exponent polars scores:" in out
    assert "spark" not in out.split("load average after")[1]


def test_split_runs_are_fitted_together_from_the_results_file(tmp_path: Path) -> None:
    results = tmp_path / "runs.jsonl"
    split = ("--spark-sizes", "--fit-size", "300", "--results", str(results))
    first = _run(tmp_path, "--sizes", "300", *split)
    assert "growth exponent polars snapshot: not measured (one size)" in first
    second = _run(tmp_path, "--sizes", "600", *split)
    assert "| polars | 600 |" in second and "| polars | 300 |" not in second
    assert "earlier runs of" in second and "polars 300 customers" in second
    assert "growth exponent polars snapshot: not measured" not in second
    assert "growth exponent polars scores:" in second
    assert len(results.read_text().splitlines()) == 2


@pytest.mark.slow
def test_scale_benchmark_runs_spark_local(tmp_path: Path) -> None:
    out = _run(tmp_path, "--sizes", "--spark-sizes", "300", "--buckets", "2")
    assert "| spark | 300 |" in out and "spark session start" in out
    assert "growth exponent spark snapshot: not measured (one size)" in out

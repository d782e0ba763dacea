"""The benchmarks' reports say their counts as the rest of guanxi does: "1 run", "2 runs"."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import pytest

from bench import features, sources


def _source_runs(repeat: int) -> list[dict[str, Any]]:
    figures = {"wall_s": 1.0, "cpu_s": 1.0, "peak_mb": 100.0, "increment_mb": 10.0}
    return [
        {"reader": reader, **figures, "rows": 5, "digest": "d"}
        for _ in range(repeat)
        for reader in sources.READERS
    ]


def _feature_runs(repeat: int) -> list[dict[str, Any]]:
    figures = {"wall_s": 1.0, "cpu_s": 1.0, "peak_mb": 100.0, "increment_mb": 10.0}
    return [
        {
            "engine": engine,
            **figures,
            "baseline_mb": 90.0,
            "events": 9,
            "rows": 3,
            "peak_reset": True,
        }
        for _ in range(repeat)
        for engine in features.ENGINES
    ]


@pytest.mark.parametrize(("repeat", "said"), [(1, "1 run per"), (2, "2 runs per")])
def test_runs_are_counted_in_words(
    repeat: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sources._report(_source_runs(repeat), events=1_000)
    args = argparse.Namespace(repeat=repeat, as_of=dt.date(2025, 12, 31))
    features._report(_feature_runs(repeat), [], args)
    out = capsys.readouterr().out
    assert "(s) per" not in out
    assert f"1,000 events, {said} reader (best shown)" in out
    assert f"best of {said} engine (minimum of each figure):" in out

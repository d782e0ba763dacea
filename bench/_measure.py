"""Wall time, CPU time and peak memory of one step in a benchmark child process (stdlib only).

Kept free of project imports so that a child running in another virtualenv (a reference
library's) can measure itself the same way.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["measured"]

_T = TypeVar("_T")


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process to its current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(step: Callable[[], _T]) -> tuple[_T, dict[str, Any]]:
    """Run ``step`` once with its inputs already loaded; return its result and the figures.

    The figures are ``wall_s``, ``cpu_s`` (user + system, all threads), ``baseline_mb`` (RSS
    before the step), ``peak_mb`` (``VmHWM`` after it, the counter reset before it),
    ``increment_mb`` (peak minus baseline: the working memory of the step) and ``peak_reset``
    (False where the counter could not be reset: the peak is then the process's lifetime peak).
    """
    gc.collect()
    baseline = _status_kb("VmRSS") or 0
    reset = _reset_peak()
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    result = step()
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    peak = _status_kb("VmHWM") if reset else None
    if peak is None:  # not Linux or no reset: the lifetime peak, reading included
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, {
        "wall_s": wall,
        "cpu_s": cpu,
        "baseline_mb": baseline / 1024,
        "peak_mb": peak / 1024,
        "increment_mb": (peak - baseline) / 1024,
        "peak_reset": reset,
    }

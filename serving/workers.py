"""Several uvicorn workers of one server: what they share through the run's private directory.

``guanxi serve --workers N`` (N > 1) creates a fresh private directory for the run before any
worker starts (:func:`prepare_run_dir`, mode 0700, removed when the server stops; directories left
by runs whose parent died are removed at the next start) and passes it to every worker as
``GUANXI_RUN_DIR``. It holds:

``metrics/``
    prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``): every worker writes its
    counts there and ``/metrics``, whichever worker answers, sums them
    (:class:`serving.metrics.Metrics`).
``generation`` and ``loaded-<pid>``
    The reload generation (:class:`RunDir`). An admin reload loads the new state in the worker
    that received it, then writes the next generation; every other worker reads the file on a
    short timer (``GUANXI_RELOAD_POLL_SECONDS``), reloads on a change and writes which generation
    it serves to its ``loaded-<pid>`` file, which the admin call waits for.
``backoff.sqlite3``
    The authentication backoff of every client (:class:`serving.deps.Backoff`), so failures
    spread over workers still slow their client down.

With one worker there is no run directory and all of this stays in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from features.store import atomic_write, process_alive

__all__ = [
    "METRICS_DIR_ENV",
    "RUN_DIR_ENV",
    "RunDir",
    "WorkersLoaded",
    "prepare_run_dir",
]

RUN_DIR_ENV: Final = "GUANXI_RUN_DIR"
"""The environment variable naming the run's private directory."""

METRICS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess directory (read when it is imported: set before workers)."""

_PREFIX: Final = "guanxi-serve-"
_RUN_NAME = re.compile(rf"{_PREFIX}(\d+)-")
_LOADED = re.compile(r"loaded-(\d+)")


def prepare_run_dir(parent: Path | None = None) -> Path:
    """Create a run's private directory and export it (and its metrics directory) to workers.

    Directories of earlier runs whose ``guanxi serve`` process no longer runs are removed first.

    Parameters
    ----------
    parent : pathlib.Path, optional
        Where to create it; default the system's temporary directory.

    Returns
    -------
    pathlib.Path
        The new, empty directory (mode 0700) with an empty ``metrics`` directory inside; the caller
        removes it when the server stops.
    """
    parent = Path(parent or tempfile.gettempdir())
    for stale in parent.glob(f"{_PREFIX}*"):
        match = _RUN_NAME.match(stale.name)
        if match and stale.is_dir() and not process_alive(int(match[1])):
            shutil.rmtree(stale, ignore_errors=True)
    run = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))
    (run / "metrics").mkdir()
    os.environ[RUN_DIR_ENV] = str(run)
    os.environ[METRICS_DIR_ENV] = str(run / "metrics")
    return run


@dataclass(frozen=True)
class WorkersLoaded:
    """Which workers serve a reload generation.

    Parameters
    ----------
    generation : int
        The generation written.
    loaded : int
        Live workers serving it (the one that wrote it included).
    failed : int
        Live workers whose load of it failed (they keep their previous state).
    waiting : int
        Live workers still loading it when the wait ended.
    """

    generation: int
    loaded: int
    failed: int
    waiting: int


class RunDir:
    """The reload generation in a run's private directory.

    Parameters
    ----------
    path : pathlib.Path
        The run's directory (:func:`prepare_run_dir`).
    pid : int, optional
        This worker's process id (default the current process).
    """

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.path = Path(path)
        self.pid = pid or os.getpid()
        self._generation = self.path / "generation"

    @property
    def backoff_db(self) -> Path:
        """The SQLite file of the shared authentication backoff."""
        return self.path / "backoff.sqlite3"

    def generation(self) -> int:
        """Return the latest reload generation (0 before the first reload).

        Returns
        -------
        int
            The number in the ``generation`` file.
        """
        try:
            return int(self._generation.read_text())
        except FileNotFoundError:
            return 0

    def bump(self) -> int:
        """Write the next generation (one writer at a time, under a file lock).

        Returns
        -------
        int
            The new generation.
        """
        with (self.path / "generation.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            generation = self.generation() + 1
            atomic_write(self._generation, lambda p: p.write_text(str(generation)))
        return generation

    def mark_loaded(self, generation: int, ok: bool) -> None:
        """Record that this worker loaded ``generation`` (or failed to).

        Parameters
        ----------
        generation : int
            The generation this worker acted on.
        ok : bool
            Whether its load succeeded.
        """
        text = f"{generation} {'ok' if ok else 'failed'}"
        atomic_write(self.path / f"loaded-{self.pid}", lambda p: p.write_text(text))

    def workers(self) -> dict[int, tuple[int, bool]]:
        """Return the live workers' last generation and whether its load succeeded, by pid.

        Returns
        -------
        dict of int to (int, bool)
            Workers that have finished at least their first load, still running.
        """
        found: dict[int, tuple[int, bool]] = {}
        for path in self.path.glob("loaded-*"):
            match = _LOADED.fullmatch(path.name)
            if not match or not process_alive(int(match[1])):
                continue
            with contextlib.suppress(FileNotFoundError, ValueError):
                generation, outcome = path.read_text().split()
                found[int(match[1])] = (int(generation), outcome == "ok")
        return found

    async def wait_loaded(self, generation: int, seconds: float) -> WorkersLoaded:
        """Wait until every live worker has acted on ``generation``, or ``seconds`` have passed.

        Parameters
        ----------
        generation : int
            The generation written by :meth:`bump`.
        seconds : float
            The longest wait.

        Returns
        -------
        WorkersLoaded
            How many workers serve it, failed to load it, or are still loading.
        """
        deadline = time.monotonic() + seconds
        while True:
            workers = self.workers().values()
            loaded = sum(g >= generation and ok for g, ok in workers)
            failed = sum(g >= generation and not ok for g, ok in workers)
            waiting = len(workers) - loaded - failed
            if not waiting or time.monotonic() >= deadline:
                return WorkersLoaded(generation, loaded, failed, waiting)
            await asyncio.sleep(0.05)

"""Pieces the benchmarks share: synthetic champions, samples, tree memory.

Servers get their ports from ``tests.processes`` (port 0, or a port held for them) and are stopped
by its ``stop``, as in the tests.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import psutil
import xgboost as xgb

from features.contracts import FEATURE_SET_VERSION
from features.events import read_customers, read_events
from models import registry
from models.artifact import ModelBundle
from models.registry import configure_tracking
from models.scoring import model_rows
from models.tasks import get_task, model_frame, task_names
from pipelines.sample import generate_sample
from training.tracking import experiment_id

__all__ = [
    "TreePeak",
    "read_sample",
    "register_champions",
    "shares_memory",
    "synthetic_bundles",
]


def synthetic_bundles(
    snapshot: pl.DataFrame, trees: int, depth: int, eta: float = 0.05
) -> dict[str, ModelBundle]:
    """Fit one XGBoost model per task on a synthetic recency label: only speed is measured.

    Parameters
    ----------
    snapshot : polars.DataFrame
        Snapshot whose model rows train the boosters.
    trees, depth : int
        Boosting rounds and tree depth (model size drives explanation cost).
    eta : float, default 0.05
        Learning rate.

    Returns
    -------
    dict of str to ModelBundle
        Uncalibrated bundles by task.
    """
    rng = np.random.default_rng(0)
    bundles = {}
    for task in task_names():
        X = model_frame(task, snapshot)  # noqa: N806
        logit = -0.01 * X["recency_days"].fillna(365).to_numpy() + rng.normal(0, 1, len(X))
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": depth, "eta": eta, "nthread": 2},
            xgb.DMatrix(X.to_numpy(), label=(logit > np.median(logit)).astype(int)),
            num_boost_round=trees,
        )
        bundles[task] = ModelBundle(
            task=task,
            booster=booster,
            feature_names=list(X.columns),
            calibration={"method": "none"},
            feature_set_version=FEATURE_SET_VERSION,
            categories=sorted(set(X.index.get_level_values(-1)))
            if get_task(task).kind == "ranked"
            else [],
            metadata={"grade": "B"},
        )
    return bundles


def register_champions(
    home: Path, snapshot: pl.DataFrame, trees: int, depth: int, eta: float = 0.05
) -> None:
    """Register :func:`synthetic_bundles` as each task's champion in the SQLite MLflow of ``home``.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME``.
    snapshot : polars.DataFrame
        Training rows (see :func:`synthetic_bundles`).
    trees, depth : int
        Model size.
    eta : float, default 0.05
        Learning rate.
    """
    configure_tracking(home)
    for task, bundle in synthetic_bundles(snapshot, trees, depth, eta).items():
        X = model_rows(bundle, snapshot.head(50))  # noqa: N806
        with mlflow.start_run(experiment_id=experiment_id(task, home)):
            uri = registry.log_bundle(bundle, X.head(3))
        registry.set_alias(task, registry.CHAMPION, registry.register_challenger(task, uri, {}))


def read_sample(
    folder: Path, customers: int, seed: int, end: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate a sample into ``folder`` once, then read it through the validator.

    Parameters
    ----------
    folder : pathlib.Path
        Where the sample's ``events.parquet`` and ``customers.parquet`` are (or go).
    customers : int
        Sample customers.
    seed : int
        Sample seed.
    end : datetime.date
        The sample's last day.

    Returns
    -------
    tuple of polars.DataFrame
        Validated events and customers.
    """
    if not (folder / "events.parquet").is_file():
        generate_sample(customers, folder, seed=seed, end=end)
    now = datetime.now(UTC)
    return (
        read_events(folder / "events.parquet", now=now),
        read_customers(folder / "customers.parquet", now=now),
    )


# kcmp(2) by architecture: Linux asks whether two processes share one address space
_SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())
_KCMP_VM = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def shares_memory(pid: int, other: int) -> bool:
    """Tell whether two processes share one address space (Linux ``kcmp(KCMP_VM)``).

    A child forked with ``vfork`` or ``posix_spawn`` shares its parent's memory until it calls
    ``exec``: its RSS is the parent's, and adding both counts the same pages twice. Where the
    system cannot tell (not Linux, no ``kcmp``, no permission), the answer is ``False``, so the
    child is counted.

    Parameters
    ----------
    pid, other : int
        The two processes (a thread id counts as its process's).

    Returns
    -------
    bool
        True when both map the same memory.
    """
    if _SYS_KCMP is None:
        return False
    return bool(_LIBC.syscall(_SYS_KCMP, pid, other, _KCMP_VM, 0, 0) == 0)


class TreePeak:
    """Sample the RSS of a process tree every ``interval`` seconds in a thread; keep the peak.

    Use as a context manager around the step (``with TreePeak(pid) as peak: ...``), then read
    ``peak.mb``. It catches children such as Spark's JVM that ``VmHWM`` of one process misses;
    a peak shorter than ``interval`` can be missed. A child that still shares its parent's
    memory (spawned, not yet exec'd: the JVM starts ``chmod`` so) is not added a second time.
    Used as a context manager it also adds up the CPU seconds (user + system) the tree's
    processes spent during the step, ``peak.cpu_s``: each process's CPU at its last sample less
    its CPU when the step began (0 for a process started during it), so the CPU of a process
    after its last sample is missed. Unlike the wall time, this hardly depends on what else runs
    on the machine.

    Parameters
    ----------
    pid : int, optional
        The root process; this one by default.
    interval : float, default 0.2
        Seconds between samples.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.mb = 0.0
        self._cpu_at_start: dict[tuple[int, float], float] = {}
        self._cpu_now: dict[tuple[int, float], float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the tree since entering (up to the last sample; all of it once left)."""
        return sum(cpu - self._cpu_at_start.get(key, 0.0) for key, cpu in self._cpu_now.items())

    def _sample_tree(self) -> None:
        """Add the tree's RSS to the peak and note each process's CPU seconds so far."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in tree:
            try:
                with proc.oneshot():
                    if proc.pid == self.pid or not shares_memory(proc.ppid(), proc.pid):
                        total += proc.memory_info().rss
                    times = proc.cpu_times()
                    # (pid, start time): a pid the system reuses is another process
                    self._cpu_now[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:
                continue
        self.mb = max(self.mb, total / 2**20)

    def _sample(self) -> None:
        while True:
            self._sample_tree()
            if self._done.wait(self.interval):
                return

    def __enter__(self) -> TreePeak:
        self._sample_tree()
        self._cpu_at_start = dict(self._cpu_now)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample_tree()

    def until_exit(self, proc: subprocess.Popen[bytes]) -> float:
        """Sample until ``proc`` exits; return the peak in MB.

        Parameters
        ----------
        proc : subprocess.Popen
            The process whose tree is sampled (``pid`` should be its pid).

        Returns
        -------
        float
            The peak RSS of the tree.
        """
        while proc.poll() is None:
            self._sample_tree()
            time.sleep(self.interval)
        return self.mb

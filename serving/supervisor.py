"""What uvicorn's supervisor of several workers logs when it replaces one, with the reason.

With ``--workers`` above one, uvicorn's supervisor pings every worker twice a second and kills a
worker that does not answer within ``timeout_worker_healthcheck`` seconds, then starts another.
A worker still importing and loading its models on a loaded machine may not answer in time (the
thread that answers needs the CPU and the interpreter, and does not exist until the worker has
started); uvicorn then logs only "Child process [N] died", over and over, and nothing serves.
``guanxi serve`` passes ``GUANXI_WORKER_HEALTHCHECK_SECONDS`` (:class:`serving.settings.Settings`,
60 s by default) as that timeout and attaches :class:`WorkerReplacedNote` to uvicorn's
``uvicorn.error`` logger, so the line says why a worker may have been replaced and what to raise.

This module imports nothing heavy: uvicorn's logging config (which names the filter) is applied
in every worker too, before the app is imported.
"""

from __future__ import annotations

import logging
import re

__all__ = ["HEALTHCHECK_SETTING", "WorkerReplacedNote"]

HEALTHCHECK_SETTING = "GUANXI_WORKER_HEALTHCHECK_SECONDS"
"""The environment variable of the supervisor's health-check timeout."""

_DIED = re.compile(r"Child process \[(\d+)\] died")


class WorkerReplacedNote(logging.Filter):
    """Say, on uvicorn's "Child process [N] died" line, why and what the timeout was.

    uvicorn logs that line both for a worker that exited and for one it killed because it did not
    answer the health check in time; the record does not say which, so the line names both causes
    and the setting that lengthens the wait.

    Parameters
    ----------
    seconds : int
        The supervisor's health-check timeout (``timeout_worker_healthcheck``).
    """

    def __init__(self, seconds: int) -> None:
        super().__init__()
        self.seconds = seconds

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the "died" line (every record passes)."""
        match = _DIED.fullmatch(record.getMessage())
        if match:
            record.msg = (
                f"Child process [{match[1]}] was replaced: it exited, or it did not answer the "
                f"supervisor's health check within {self.seconds} s (a worker still starting on "
                f"a loaded machine; raise {HEALTHCHECK_SETTING} if this repeats)"
            )
            record.args = ()
        return True

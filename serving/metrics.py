"""Prometheus metrics of the service: requests and latency per route, scores and values served.

What is served is counted as the audit log records it, one per line: the API's scores per task
and model version (``guanxi_scores_served_total``), the scores the reviewer pages show
(``guanxi_page_scores_shown_total``), the customer values of the API and the pages
(``guanxi_values_served_total``, by value table version and surface) and the plan rows of
``POST /v1/targeting`` (``guanxi_plan_rows_served_total``, by value table day).

With several workers (``guanxi serve --workers N``) prometheus_client runs in multiprocess mode:
``PROMETHEUS_MULTIPROC_DIR`` (set by ``guanxi serve`` before the workers start, see
:mod:`serving.workers`) makes every worker write its values to files there, and :meth:`render`
sums every worker's files with a :class:`~prometheus_client.multiprocess.MultiProcessCollector`, so
``/metrics`` counts all requests whichever worker answers. Counters and histograms of a worker that
has exited stay counted; the in-progress gauge (``livesum``) counts live workers only.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from serving.workers import METRICS_DIR_ENV

__all__ = [
    "METHODS",
    "OTHER_METHOD",
    "PAGE_SCORES_HELP",
    "PLAN_ROWS_HELP",
    "SCORES_HELP",
    "SURFACES",
    "VALUES_HELP",
    "Metrics",
]

SCORES_HELP = (
    "Customer scores served by the API's score routes, by task and model version (those the "
    "reviewer pages show are guanxi_page_scores_shown_total, customer values "
    "guanxi_values_served_total)."
)
"""The help of ``guanxi_scores_served_total``: what it counts and what it does not (before, it
said "Customer scores served", and an operator comparing it with the audit log, where the
reviewer pages' scores are, found fewer; then the pages' scores and the values were audited but
counted nowhere)."""

PAGE_SCORES_HELP = (
    "Customer scores the reviewer pages showed (the customer list's rows, a customer's page), by "
    "task and model version; each is a line of the audit log, as the API's scores are."
)
"""The help of ``guanxi_page_scores_shown_total``."""

VALUES_HELP = (
    "Customer values (CLV) served, by value table version and surface: api (the value routes) "
    "or page (the reviewer pages and their CSV export); each is a line of the audit log."
)
"""The help of ``guanxi_values_served_total``."""

PLAN_ROWS_HELP = (
    "Plan rows POST /v1/targeting answered (a customer with its offer and expected value), by "
    "the value table's day (as_of); each is a line of the audit log (task targeting:<offer>)."
)
"""The help of ``guanxi_plan_rows_served_total``: not by offer, since a request names its own
offers, and a label whose values a caller picks would grow the series without bound (the audit
log has the offer of each row)."""

SURFACES = ("api", "page")
"""The ``surface`` label's values of ``guanxi_values_served_total``."""

METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
"""The ``method`` label's values of ``guanxi_requests_total`` (the methods of RFC 9110 and
PATCH), besides :data:`OTHER_METHOD`.

A method is any token a client sends: labelled as sent, ``FOO1``, ``FOO2``... each made a series
(a 405) that no restart of the scrape ends. uvicorn's httptools parser refuses most unknown
methods before the app sees them, but its h11 parser (``--http h11``, or where httptools is not
installed) and other ASGI servers pass any."""

OTHER_METHOD: Final = "other"
"""The ``method`` label of a request whose method is not in :data:`METHODS`."""


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app).

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set when prometheus_client was imported)
    the values live in that directory's files and :meth:`render` sums every worker's.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = os.environ.get(METRICS_DIR_ENV)
        self.requests = Counter(
            "guanxi_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "guanxi_request_latency_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.scores = Counter(
            "guanxi_scores_served",
            SCORES_HELP,
            ["task", "model_version"],
            registry=self.registry,
        )
        self.page_scores = Counter(
            "guanxi_page_scores_shown",
            PAGE_SCORES_HELP,
            ["task", "model_version"],
            registry=self.registry,
        )
        self.values = Counter(
            "guanxi_values_served",
            VALUES_HELP,
            ["value_version", "surface"],
            registry=self.registry,
        )
        self.plan_rows = Counter(
            "guanxi_plan_rows_served",
            PLAN_ROWS_HELP,
            ["as_of"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "guanxi_requests_in_progress",
            "HTTP requests being answered (summed over live workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def count_request(self, route: str, method: str, status: int) -> None:
        """Count one request, as its response starts (before the client can have it).

        Parameters
        ----------
        route : str
            The matched route template.
        method : str
            The HTTP method (:data:`OTHER_METHOD` when not in :data:`METHODS`).
        status : int
            The response status code.
        """
        label = method if method in METHODS else OTHER_METHOD
        self.requests.labels(route, label, str(status)).inc()

    def observe_latency(self, route: str, seconds: float) -> None:
        """Record one request's latency.

        Parameters
        ----------
        route : str
            The matched route template.
        seconds : float
            Time from receiving the request to the end of the response.
        """
        self.latency.labels(route).observe(seconds)

    def observe_scores(self, task: str, model_version: str, count: int) -> None:
        """Count scores served.

        Parameters
        ----------
        task : str
            The task scored.
        model_version : str
            The registry version of the model that scored.
        count : int
            How many customers were scored.
        """
        if count:
            self.scores.labels(task, model_version).inc(count)

    def observe_page_scores(self, task: str, model_version: str, count: int) -> None:
        """Count scores a reviewer page showed.

        Parameters
        ----------
        task : str
            The task scored.
        model_version : str
            The registry version of the model that scored.
        count : int
            How many customers' scores of that task the page showed.
        """
        if count:
            self.page_scores.labels(task, model_version).inc(count)

    def observe_values(self, value_version: str, surface: str, count: int) -> None:
        """Count customer values served.

        Parameters
        ----------
        value_version : str
            The served value table's version.
        surface : {"api", "page"}
            Served by the value routes or by a reviewer page (:data:`SURFACES`).
        count : int
            How many customers' values were served.

        Raises
        ------
        ValueError
            For a surface not in :data:`SURFACES`.
        """
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
        if count:
            self.values.labels(value_version, surface).inc(count)

    def observe_plan_rows(self, as_of: str, count: int) -> None:
        """Count plan rows ``POST /v1/targeting`` answered.

        Parameters
        ----------
        as_of : str
            The day of the value table planned from (ISO 8601).
        count : int
            How many rows the answer held.
        """
        if count:
            self.plan_rows.labels(as_of).inc(count)

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format (every worker's, summed)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """Drop this worker's live gauge (its counters stay counted); call at shutdown."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self.multiprocess_dir)

"""Prometheus metrics of one app: requests and latency per route, scores served per model."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app).

    Metrics are per process: with several workers each keeps its own counts.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "Customer scores served by task and model version.",
            ["task", "model_version"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record its latency.

        Parameters
        ----------
        route : str
            The matched route template.
        method : str
            The HTTP method.
        status : int
            The response status code.
        seconds : float
            Time from receiving the request to the end of the response.
        """
        self.requests.labels(route, method, str(status)).inc()
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

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)

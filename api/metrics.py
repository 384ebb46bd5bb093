"""Prometheus metrics of one app: requests by route and status, latency, index size."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.middleware import MetricsMiddleware
from api.wiring import AppState


def install_metrics(app: FastAPI, state: AppState) -> CollectorRegistry:
    """Count and time every request in a registry of this app's own (tests build many apps).

    Server errors are counted too (:class:`~api.middleware.MetricsMiddleware` sees the
    exception on its way to the 500 handler). Add this last: it must be the outermost
    middleware so that it sees the answers of the others (a 413 for a body over the limit).
    The registry is kept as ``app.state.metrics`` for the ``/metrics`` route.
    """
    registry = CollectorRegistry()
    requests = Counter("tunescope_http_requests_total", "HTTP requests",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("tunescope_http_request_seconds", "HTTP request latency",
                        ["route"], registry=registry,
                        buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
    Gauge("tunescope_index_vectors", "Vectors in the search index",
          registry=registry).set_function(lambda: state.service.index.count)

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        requests.labels(method, route, str(status)).inc()
        latency.labels(route).observe(seconds)

    app.add_middleware(MetricsMiddleware, observe=observe)
    app.state.metrics = registry
    return registry

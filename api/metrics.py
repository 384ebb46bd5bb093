"""Prometheus metrics of one app: requests by route and status, latency, index size."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.wiring import AppState


def install_metrics(app: FastAPI, state: AppState) -> CollectorRegistry:
    """Count and time every request in a registry of this app's own (tests build many apps).

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

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(request.method, name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - t0)
        return response

    app.state.metrics = registry
    return registry

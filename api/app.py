"""The HTTP API (FastAPI, versioned under ``/v1``) and the web page at ``/``.

``create_app`` only assembles: the state (:mod:`api.wiring`), the routers (:mod:`api.routes`),
the error table (:mod:`api.errors`) and the metrics (:mod:`api.metrics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.deps import KeyRequired
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.routes import ROUTERS
from api.routes.ops import STATIC_DIR
from api.settings import Settings, get_settings
from api.wiring import build_state

if TYPE_CHECKING:
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search import SearchService

DESCRIPTION = ("Music retrieval: search a catalog by text, by audio clip, by example tracks; "
               "listen; recommend. Writes need an `X-API-Key` header.")


def create_app(settings: Settings | None = None, encoder: Encoder | None = None, *,
               service: SearchService | None = None, prior: PriorPipeline | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; ``get_settings()`` when omitted.
        encoder: the text-audio encoder; built from ``settings.encoder`` when omitted.
        service: a ready search service (benchmarks inject a prebuilt index this way).
        prior: the diffusion prior of generative search; the one trained for the encoder
            when omitted (loaded on first use).
    """
    settings = settings or get_settings()
    state = build_state(settings, encoder, service=service, prior=prior)
    app = FastAPI(title="tunescope", version="1.0.0", description=DESCRIPTION)
    app.state.tunescope = state
    install_metrics(app, state)
    install_error_handlers(app)
    read_deps = [KeyRequired] if settings.read_requires_key else []
    for router, is_read in ROUTERS:
        app.include_router(router, dependencies=read_deps if is_read else [])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

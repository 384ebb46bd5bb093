"""The HTTP API (FastAPI, versioned under ``/v1``) and the web page at ``/``.

``create_app`` only assembles: the state (:mod:`api.wiring`), the routers (:mod:`api.routes`),
the error table (:mod:`api.errors`) and the metrics (:mod:`api.metrics`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.backfill import start_in_process_worker
from api.deps import KeyRequired
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.middleware import install_middleware
from api.routes import ROUTERS
from api.routes.ops import STATIC_DIR
from api.settings import Settings, get_settings
from api.wiring import build_state, warm_up

if TYPE_CHECKING:
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search import SearchService

DESCRIPTION = ("Music retrieval: search a catalog by text, by audio clip, by example tracks; "
               "listen; recommend. Writes need an `X-API-Key` header.")


def create_app(settings: Settings | None = None, encoder: Encoder | None = None, *,
               service: SearchService | None = None, prior: PriorPipeline | None = None,
               warm: bool = False) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; ``get_settings()`` when omitted.
        encoder: the text-audio encoder; built from ``settings.encoder`` when omitted.
        service: a ready search service (benchmarks inject a prebuilt index this way).
        prior: the diffusion prior of generative search; the one trained for the encoder
            when omitted (loaded on first use).
        warm: warm the models up in the background when the server starts (``serve`` does);
            ``/v1/health`` answers 503 "starting" until that is done. Otherwise ready at once.
    """
    settings = settings or get_settings()
    state = build_state(settings, encoder, service=service, prior=prior)
    if not warm:
        state.ready.set()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=warm_up, args=(state,), name="warm-up", daemon=True).start()
        worker = start_in_process_worker(state)
        yield
        if worker is not None:  # the job in progress goes back to the queue, not lost
            worker[1].set()
            worker[0].join(30)

    app = FastAPI(title="tunescope", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.tunescope = state
    install_error_handlers(app)
    install_middleware(app)
    install_metrics(app, state)  # last: the outermost middleware sees every answer
    read_deps = [KeyRequired] if settings.read_requires_key else []
    for router, is_read in ROUTERS:
        app.include_router(router, dependencies=read_deps if is_read else [])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

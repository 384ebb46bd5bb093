"""FastAPI dependencies as ``Annotated`` aliases.

The app's state, the catalog's session factory, the search service, the caller's key and the
shared search parameters.

Routes declare what they need in their signature (``state: StateDep``) instead of closing over
objects inside ``create_app``, which is what lets each resource live in its own router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from api.schemas.filters import search_options
from api.security import check_key
from api.wiring import AppState
from retrieval.search import SearchOptions, SearchService

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="The server's API key (TUNESCOPE_API_KEY).")


def get_state(request: Request) -> AppState:
    """The state ``create_app`` built for this app."""
    return request.app.state.tunescope


StateDep = Annotated[AppState, Depends(get_state)]


def get_service(state: StateDep) -> SearchService:
    """The app's search service."""
    return state.service


ServiceDep = Annotated[SearchService, Depends(get_service)]


def get_session_factory(state: StateDep) -> Callable[[], Session]:
    """The catalog's session factory.

    The data-access functions of ``index.repo`` are units of work that open, commit and close
    their own session, so a route hands them the factory rather than one request-long session
    (which would hold a connection, and on SQLite a lock, while the encoder runs).
    """
    return state.session_factory


SessionFactoryDep = Annotated[Callable[[], Session], Depends(get_session_factory)]
SearchOptionsDep = Annotated[SearchOptions, Depends(search_options)]


def require_key(state: StateDep, api_key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """The caller must present the configured key.

    Every write route declares it; ``create_app`` adds it to the read routers only when the
    server is configured so (``read_requires_key``), so the OpenAPI schema marks a read as
    keyed exactly when it is.
    """
    check_key(state.settings, api_key)


KeyRequired = Depends(require_key)

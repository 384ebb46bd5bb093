"""Operations and the page: health, metrics, the filter form's description, the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SessionFactoryDep, StateDep
from api.schemas.filters import describe
from index.repo.tracks import count_tracks
from retrieval.search import FILTER_FIELDS

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/v1/health", tags=["ops"],
            responses={503: {"description": "Starting: the models are still warming up."}})
def health(db: SessionFactoryDep, state: StateDep, response: Response) -> dict[str, Any]:
    """Readiness and what is loaded: ``ok``, or ``starting`` (503) while models warm up."""
    service = state.service
    ready = state.ready.is_set()
    if not ready:
        response.status_code = 503
    return {"status": "ok" if ready else "starting", "tracks": count_tracks(db),
            "encoder": service.encoder.id,
            "index": {"factory": service.index.factory, "count": service.index.count}}


@router.get("/v1/filters", tags=["ops"])
def filters() -> dict[str, Any]:
    """The metadata filters every search endpoint takes (the web page builds its form from it)."""
    return {"filters": [describe(f) for f in FILTER_FIELDS]}


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

"""Generation jobs: ask for new tracks (``POST /v1/generate``) and follow a job's progress.

A job is queued in the catalog's own table and worked by a backfill worker (the server's
thread, or ``tunescope worker`` processes); each keeper is stored and searchable the moment it
is made, so ``GET /v1/jobs/{id}`` lists tracks before the job is done.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Response

from api.backfill_queue import enqueue_generation, generation_request
from api.deps import KeyRequired, SessionFactoryDep, StateDep
from api.schemas.backfill import GenerateRequest, JobAccepted, JobPublic
from api.schemas.errors import ERRORS
from api.schemas.filters import MAX_TRACK_ID
from api.schemas.tracks import TrackPublic
from index.repo.backfill import job_progress
from index.repo.tracks import get_track, load_tracks
from retrieval.search import TrackNotFoundError

router = APIRouter(tags=["jobs"], responses=ERRORS)

JobId = Annotated[int, Path(ge=1, le=MAX_TRACK_ID, description="The id a search's `backfill` "
                            "or POST /v1/generate answered with.")]

# OpenAPI link: the job id an accepted request answers with is the path parameter of read_job.
_LINKS = {202: {"description": "Queued (or an equivalent job found)", "links": {
    "ReadJob": {"operationId": "read_job", "parameters": {"job_id": "$response.body#/job_id"}}}}}


@router.get("/v1/jobs/{job_id}", response_model=JobPublic, summary="A generation job",
            operation_id="read_job")
def read_job(job_id: JobId, db: SessionFactoryDep) -> JobPublic:
    """The job's status, attempts, progress and the tracks stored for it so far."""
    p = job_progress(db, job_id)
    if p is None:
        raise HTTPException(404, f"no job {job_id}")
    tracks = load_tracks(db, p.stored_track_ids)
    return JobPublic(id=p.id, status=p.status, query=p.query,  # type: ignore[arg-type]
                     attempts=p.attempts, max_attempts=p.max_attempts, progress=p.progress,
                     error=p.error, created_at=p.created_at, updated_at=p.updated_at,
                     finished_at=p.finished_at,
                     tracks=[TrackPublic.of(tracks[t]) for t in p.stored_track_ids if t in tracks])


@router.post("/v1/generate", status_code=202, response_model=JobAccepted,
             summary="Generate tracks for a query", dependencies=[KeyRequired], responses=_LINKS)
def generate(body: Annotated[GenerateRequest, Body()], state: StateDep,
             response: Response) -> JobAccepted:
    """Queue a generation job (202); poll ``Location`` (``GET /v1/jobs/{id}``) for its tracks.

    An equivalent request (same query, candidates, duration, attributes and example track)
    pending or finished within ``TUNESCOPE_BACKFILL_RECENT_S`` answers with that job
    (``created: false``). The job waits in the queue until a backfill worker runs (the
    server's own when ``TUNESCOPE_BACKFILL_GENERATE`` is set, or ``tunescope worker``). The
    hourly cap on weak-search backfill does not apply: this is a keyed, deliberate request.
    """
    if body.like_track_id is not None and get_track(state.session_factory,
                                                    body.like_track_id) is None:
        raise TrackNotFoundError(body.like_track_id)
    attributes = body.attributes.model_dump(exclude_none=True)
    request = generation_request(n=body.n, duration_s=body.duration_s, attributes=attributes,
                                 like_track_id=body.like_track_id)
    job, created = enqueue_generation(state.session_factory, body.query.strip(), request,
                                      recent_window_s=state.settings.backfill_recent_s)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobAccepted(job_id=job.id, status=job.status, created=created)  # type: ignore[arg-type]

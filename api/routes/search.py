"""Search: by text, by an audio clip, generatively from the prior's seeds, and "more like this".

The search *strategy* is a path, not a parameter: ``GET /v1/search`` embeds the text and
searches from that one point; ``GET /v1/search/generative`` samples several plausible targets
from the diffusion prior and searches from all of them. ``mode`` is only ever the musical-mode
filter (``mode=minor``), and the generative steering parameters exist only where they apply.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from api.backfill_queue import backfill_for, prior_nn_for
from api.deps import SearchOptionsDep, ServiceDep, SessionFactoryDep, StateDep
from api.routes.common import page_response
from api.schemas.errors import ERRORS
from api.schemas.filters import TrackId, TrackIdPath
from api.schemas.search import NOT_BLANK, SearchResponse
from api.uploads import MAX_QUERY_CLIP_S, MAX_QUERY_UPLOAD_BYTES, read_query_clip
from retrieval.errors import RetrievalError, WeightsNotFoundError
from retrieval.search import Hit, InvalidQueryError, SearchOptions, SearchResult
from retrieval.search.options import is_blank

router = APIRouter(tags=["search"], responses=ERRORS)

QueryText = Annotated[str, Query(min_length=1, max_length=500, pattern=NOT_BLANK,
                                 description="What to find (not blank).",
                                 examples=["a lively jig on the flute"])]


@router.get("/v1/search", response_model=SearchResponse, summary="Search by text")
def search(q: QueryText, o: SearchOptionsDep, db: SessionFactoryDep, state: StateDep
           ) -> SearchResponse:
    """Tracks whose sound matches a description, filtered, diversified and paged.

    For several plausible readings of a broad request, use ``/v1/search/generative``. A weak
    match on the first page queues generation when backfill is enabled (``backfill``); the
    verdict then also reads the prior's samples (``weak_match_detail.signals.prior_nn``).
    """
    if any(v.strip().lower() == "generative" for v in o.filters.mode):
        raise InvalidQueryError("mode filters the musical mode (major, minor...); generative "
                                "search is GET /v1/search/generative")
    result = state.service.search_text(q, o, prior_nn=prior_nn_for(state, q, o))
    return page_response(db, result, {"text": q, "mode": "text"}, o,
                         backfill_for(state, q, result.weak, o))


@router.get("/v1/search/generative", response_model=SearchResponse,
            summary="Search from the diffusion prior's seeds")
def search_generative(
    q: QueryText,
    o: SearchOptionsDep,
    db: SessionFactoryDep,
    state: StateDep,
    seeds: Annotated[int, Query(ge=1, le=64, description="Prior samples searched.")] = 8,
    guidance: Annotated[float | None, Query(ge=0, le=20, description="Guidance scale "
                                            "(default: the prior's).")] = None,
    negative: Annotated[list[Annotated[str, Query(max_length=500)]],
                        Query(max_length=20, description="Texts to steer away from.")] = [],  # noqa: B006
    like: Annotated[list[TrackId], Query(max_length=20, description="Example track ids to "
                                         "steer toward (never returned).")] = [],  # noqa: B006
    unlike: Annotated[list[TrackId], Query(max_length=20, description="Track ids to steer "
                                           "away from (never returned).")] = [],  # noqa: B006
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="Sampling seed (results are "
                                                   "deterministic per seed).")] = 0,
) -> SearchResponse:
    """Tracks near several plausible targets the prior samples for the description.

    The seeds' spread measures how broad the request is and is echoed as ``query.spread``.
    The weak-match verdict also reads how close the seeds sit to their nearest catalog tracks;
    a weak first page queues generation when backfill is enabled.
    """
    result, echo = generative_page(state, q, o, seeds=seeds, guidance=guidance,
                                   negative=negative, like=like, unlike=unlike, seed=seed)
    return page_response(db, result, echo, o, backfill_for(state, q, result.weak, o))


def generative_page(state: Any, q: str, options: SearchOptions, *, seeds: int,
                    guidance: float | None, negative: list[str], like: list[int],
                    unlike: list[int], seed: int) -> tuple[SearchResult, dict[str, Any]]:
    """Sample, search, fuse: a page of hits scored by fused relevance and the query echo.

    Raises:
        RetrievalError: no prior exists for the service's encoder.
    """
    from retrieval.search.generative import GenerativeConfig, generative_search

    service = state.service
    negative = [n for n in negative if not is_blank(n)]
    try:
        prior = state.get_prior()
    except WeightsNotFoundError as e:
        raise RetrievalError(f"generative search is not available for encoder "
                             f"{service.encoder.id!r}: {e}") from e
    config = GenerativeConfig(seeds=seeds, guidance=guidance, seed=seed)
    r = generative_search(service, prior, [q, *like], [*negative, *unlike], options=options,
                          config=config)
    hits = [Hit(int(i), float(s)) for i, s in zip(r.ids, r.scores, strict=True)]
    echo = {"text": q, "mode": "generative", "seeds": seeds, "negative": negative,
            "like": list(like), "unlike": list(unlike),
            "guidance": prior.default_guidance if guidance is None else guidance,
            "seed": seed, "spread": round(r.spread, 6)}
    return SearchResult(hits=hits, weak_match=r.weak_match, best_score=r.best_score,
                        strategy="generative", weak=r.weak), echo


@router.post("/v1/search/audio", response_model=SearchResponse, summary="Search by an audio clip")
def search_audio(
    file: Annotated[UploadFile, File(description="A clip: wav, flac, ogg or mp3; at most "
                                     f"{MAX_QUERY_UPLOAD_BYTES // 2**20} MiB, cropped to "
                                     f"{MAX_QUERY_CLIP_S:.0f} s.")],
    o: SearchOptionsDep,
    db: SessionFactoryDep,
    service: ServiceDep,
) -> SearchResponse:
    """Tracks that sound like the uploaded clip."""
    wave = read_query_clip(file, service.encoder.sample_rate)
    return page_response(db, service.search_audio(wave, o),
                         {"mode": "audio", "filename": file.filename or ""}, o)


@router.get("/v1/tracks/{track_id}/similar", response_model=SearchResponse,
            summary="More like this")
def similar(track_id: TrackIdPath, o: SearchOptionsDep, db: SessionFactoryDep,
            service: ServiceDep) -> SearchResponse:
    """Tracks that sound like a catalog track (the track itself excluded)."""
    return page_response(db, service.similar(track_id, o),
                         {"mode": "similar", "track_id": track_id}, o)

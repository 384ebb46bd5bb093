"""What several routers share: turning a page of hits into the response body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from api.schemas.backfill import BackfillStatus, WeakMatchDetail
from api.schemas.search import ResultItem, SearchResponse
from api.schemas.tracks import TrackPublic
from index.repo.tracks import load_tracks
from retrieval.search import SearchOptions, SearchResult
from retrieval.search.weak_match import WeakMatch


def weak_detail(weak: WeakMatch | None, weak_match: bool) -> WeakMatchDetail:
    """The verdict's public view.

    A result made without a detector (never one of the service's, which always judges) says so.
    """
    if weak is None:
        return WeakMatchDetail(score=float(weak_match), threshold=0.5,
                               reason="no weak-match detector judged this result", signals={})
    return WeakMatchDetail.of(weak)


def page_response(factory: Callable[[], Session], result: SearchResult, query: dict[str, Any],
                  options: SearchOptions, backfill: BackfillStatus | None = None
                  ) -> SearchResponse:
    """The response body of a page of hits: each hit's track, its score, the query echo.

    A hit whose track vanished between the search and this read (a concurrent delete) is
    dropped rather than answered with a dangling id.
    """
    tracks = load_tracks(factory, [h.track_id for h in result.hits])
    items = [ResultItem(score=round(h.score, 6), track=TrackPublic.of(tracks[h.track_id]))
             for h in result.hits if h.track_id in tracks]
    return SearchResponse(query=query, results=items, weak_match=result.weak_match,
                          weak_match_detail=weak_detail(result.weak, result.weak_match),
                          backfill=backfill, k=options.k, offset=options.offset)

"""The catalog map: every indexed track in 2-D, and where a text query would land on it.

The map is computed once per index version (:mod:`retrieval.catalog_map`) and its JSON body
kept with it, so the page can ask for it after every change: an unchanged map answers 304 to
the ``If-None-Match`` the browser sends with the ``ETag`` it was given.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import StateDep
from api.schemas.catalog_map import CatalogMapResponse, LocateResponse, MapLocation
from api.schemas.errors import ERRORS
from api.schemas.search import NOT_BLANK
from retrieval.catalog_map import CatalogMap, CatalogMapCache
from retrieval.errors import WeightsNotFoundError

router = APIRouter(tags=["catalog"], responses=ERRORS)

_holder_lock = threading.Lock()


class MapHolder:
    """One app's map cache and the JSON body of its latest map.

    The body is kept because serialising tens of thousands of points costs more than
    projecting them, and the page asks again after each change it sees.
    """

    def __init__(self) -> None:
        self.cache = CatalogMapCache()
        self._body: tuple[str, bytes] | None = None
        self._lock = threading.Lock()

    def body(self, m: CatalogMap) -> bytes:
        """The JSON of ``m``, serialised once per index version."""
        with self._lock:
            if self._body is None or self._body[0] != m.index_version:
                self._body = (m.index_version,
                              CatalogMapResponse.of(m).model_dump_json().encode())
            return self._body[1]


def get_holder(request: Request) -> MapHolder:
    """The app's :class:`MapHolder`, made on first use."""
    with _holder_lock:
        holder = getattr(request.app.state, "catalog_map", None)
        if holder is None:
            holder = request.app.state.catalog_map = MapHolder()
        return holder


HolderDep = Annotated[MapHolder, Depends(get_holder)]
MapQuery = Annotated[str, Query(min_length=1, max_length=500, pattern=NOT_BLANK,
                                description="The text to place on the map (not blank).",
                                examples=["a slow air on the fiddle"])]


def _etag(version: str) -> str:
    return '"' + hashlib.blake2b(version.encode(), digest_size=12).hexdigest() + '"'


@router.get("/v1/catalog/map", response_model=CatalogMapResponse, summary="The catalog map",
            responses={304: {"description": "Not modified: the map of this ETag is current."}})
def catalog_map(request: Request, state: StateDep, holder: HolderDep) -> Response:
    """Every indexed track projected to 2-D (PCA fitted on catalog tracks), with a density grid.

    Generated tracks are projected with the catalog's basis, so they appear where they belong
    without moving any other point. ``density.thin`` marks the cells where the catalog is thin.
    """
    m = holder.cache.get(state.service)
    etag = _etag(m.index_version)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    sent = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    if etag in sent:
        return Response(status_code=304, headers=headers)
    return Response(holder.body(m), media_type="application/json", headers=headers)


@router.get("/v1/catalog/map/locate", response_model=LocateResponse,
            summary="Where a text query lands on the map")
def locate(
    q: MapQuery,
    state: StateDep,
    holder: HolderDep,
    seeds: Annotated[int, Query(ge=0, le=64, description="Prior samples to place (0: none).")] = 8,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="Sampling seed.")] = 0,
) -> LocateResponse:
    """The text's embedding and the diffusion prior's samples for it, on the map's projection.

    The text point sits where the encoder puts *descriptions*, which need not be among the
    tracks (text and audio embeddings occupy different regions of a joint space); the prior's
    samples are audio embeddings, so they show where matching tracks would be. ``prior`` is
    empty, and ``prior_available`` false, when no prior exists for the encoder.
    """
    service = state.service
    m = holder.cache.get(service)
    text = service.embed_texts([q])
    xy, density = m.locate(text)
    prior_points: list[MapLocation] = []
    available = True
    if seeds:
        try:
            prior = state.get_prior()
        except WeightsNotFoundError:
            available = False
        else:
            samples = prior.sample(text, num_samples=seeds, seed=seed)
            pxy, pd = m.locate(samples)
            prior_points = [MapLocation(x=round(float(a), 5), y=round(float(b), 5),
                                        density=round(float(d), 3))
                            for (a, b), d in zip(pxy, pd, strict=True)]
    return LocateResponse(index_version=m.index_version,
                          query=MapLocation(x=round(float(xy[0, 0]), 5),
                                            y=round(float(xy[0, 1]), 5),
                                            density=round(float(density[0]), 3)),
                          prior=prior_points, prior_available=available)

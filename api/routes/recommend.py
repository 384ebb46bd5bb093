"""Recommend: tracks like the positive examples and unlike the negative ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from api.deps import ServiceDep, SessionFactoryDep
from api.routes.common import page_response
from api.schemas.errors import ERRORS
from api.schemas.search import RecommendRequest, SearchResponse

router = APIRouter(tags=["search"], responses=ERRORS)


@router.post("/v1/recommend", response_model=SearchResponse)
def recommend(body: Annotated[RecommendRequest, Body()], db: SessionFactoryDep,
              service: ServiceDep) -> SearchResponse:
    """Tracks like the positive examples and unlike the negative ones (ids or texts)."""
    o = body.options()
    result = service.recommend(body.positive, body.negative, body.strategy, o)
    return page_response(db, result, {"mode": "recommend", "positive": body.positive,
                                           "negative": body.negative,
                                           "strategy": body.strategy}, o)

"""Search requests and the page of results every search endpoint returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.backfill import BackfillStatus, WeakMatchDetail
from api.schemas.filters import NOT_BLANK, DiversityBody, TrackId
from api.schemas.tracks import TrackPublic

__all__ = ["NOT_BLANK", "RecommendRequest", "ResultItem", "SearchResponse"]

ExampleText = Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]


class ResultItem(BaseModel):
    """One hit: the track and how close it is."""

    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    track: TrackPublic


class SearchResponse(BaseModel):
    """One page of results."""

    query: dict[str, Any] = Field(description="The query as understood (echo of the inputs).")
    results: list[ResultItem]
    weak_match: bool = Field(description="True when the catalog probably lacks what was asked "
                                         "for (``weak_match_detail`` says why).")
    weak_match_detail: WeakMatchDetail
    backfill: BackfillStatus | None = Field(None, description="The generation queued for a weak "
                                            "match when backfill is enabled (first page only); "
                                            "null otherwise.")
    k: int
    offset: int


class RecommendRequest(DiversityBody):
    """Positive and negative examples: track ids or texts (Qdrant's recommend API)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "positive": [12, "a lively jig on the flute"], "negative": [40],
        "strategy": "average_vector", "k": 10}})

    positive: list[TrackId | ExampleText] = Field(min_length=1, max_length=50)
    negative: list[TrackId | ExampleText] = Field(default=[], max_length=50)
    strategy: Literal["average_vector", "best_score"] = "average_vector"

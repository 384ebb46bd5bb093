"""Search requests and the page of results every search endpoint returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from api.schemas.filters import MAX_TRACK_ID, DiversityBody
from api.schemas.tracks import TrackPublic

# Strict: JSON ``true`` is not track 1, ``"12"`` is not track 12 (a text example is a string).
StrictTrackId = Annotated[StrictInt, Field(ge=1, le=MAX_TRACK_ID)]
ExampleText = Annotated[str, Field(min_length=1, max_length=500)]


class ResultItem(BaseModel):
    """One hit: the track and how close it is."""

    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    track: TrackPublic


class SearchResponse(BaseModel):
    """One page of results."""

    query: dict[str, Any] = Field(description="The query as understood (echo of the inputs).")
    results: list[ResultItem]
    weak_match: bool = Field(description="True when even the best match is far from the query "
                                         "(the catalog may not hold what was asked for).")
    k: int
    offset: int


class RecommendRequest(DiversityBody):
    """Positive and negative examples: track ids or texts (Qdrant's recommend API)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "positive": [12, "a lively jig on the flute"], "negative": [40],
        "strategy": "average_vector", "k": 10}})

    positive: list[StrictTrackId | ExampleText] = Field(min_length=1, max_length=50)
    negative: list[StrictTrackId | ExampleText] = Field(default=[], max_length=50)
    strategy: Literal["average_vector", "best_score"] = "average_vector"

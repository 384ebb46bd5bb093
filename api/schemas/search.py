"""Search requests and the page of results every search endpoint returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.filters import DiversityBody, TrackId
from api.schemas.tracks import TrackPublic

# One non-blank character, blank as JSON Schema's \s means it (retrieval.search.options.BLANK_CHARS),
# spelled out so that pydantic's, Python's and ECMAScript's regex engines all read it alike.
NOT_BLANK = r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
ExampleText = Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]


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

    positive: list[TrackId | ExampleText] = Field(min_length=1, max_length=50)
    negative: list[TrackId | ExampleText] = Field(default=[], max_length=50)
    strategy: Literal["average_vector", "best_score"] = "average_vector"

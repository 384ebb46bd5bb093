"""The query types of the search service: what to return, and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from retrieval.errors import InvalidQueryError, TrackNotFoundError
from retrieval.search.filters import Filters
from retrieval.search.weak_match import WeakMatch

__all__ = ["Example", "Hit", "InvalidQueryError", "SearchConfig", "SearchOptions",
           "SearchResult", "Strategy", "TrackNotFoundError"]

Strategy = Literal["average_vector", "best_score"]
Example = int | str  # a track id or a text


@dataclass(frozen=True)
class SearchConfig:
    """Tuning of the search service.

    Attributes:
        weak_match_threshold: the fixed threshold on the best cosine used when no weak-match
            detector is fitted for the encoder (:func:`retrieval.search.weak_match.load_detector`);
            a weak match is a result state, never an error: callers may offer generation.
        max_k: largest page size accepted.
        max_offset: deepest page start accepted (deep paging is an exhaustive scan in disguise).
        exact_fraction: filters allowing at most this fraction of the catalog use exact search.
        exact_max: ... or at most this many ids, whatever the fraction.
        overfetch: safety factor on the candidates expected to survive a filter.
        pool_factor: candidates per returned hit when diversity is on.
        text_cache_size: text embeddings kept (least recently used dropped). A session's
            texts repeat: the same negative prompt on every critique, the query on every
            page; a MiniLM call costs ~10-20 ms on one thread, a cache hit microseconds.
    """

    weak_match_threshold: float = 0.3
    max_k: int = 100
    max_offset: int = 1000
    exact_fraction: float = 0.02
    exact_max: int = 20_000
    overfetch: float = 2.0
    pool_factor: int = 3
    text_cache_size: int = 1024


@dataclass(frozen=True)
class SearchOptions:
    """What to return: page, filters, exclusions and diversity."""

    k: int = 10
    offset: int = 0
    filters: Filters = field(default_factory=Filters)
    exclude_ids: frozenset[int] = frozenset()
    mmr_lambda: float | None = None
    max_per_piece: int | None = None
    max_per_artist: int | None = None


@dataclass(frozen=True)
class Hit:
    """One ranked track of a result: its id and its score (higher is better, on the method's scale)."""

    track_id: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    """One page of hits (best first), the weak-match verdict and how the page was found.

    ``weak_match`` is ``weak.weak`` when the detector's verdict is present (the service always
    fills it); both are kept because the flag is what most callers read.
    """

    hits: list[Hit]
    weak_match: bool
    best_score: float | None
    strategy: str = "ann"
    weak: WeakMatch | None = None

    def __post_init__(self) -> None:
        if self.weak is not None and self.weak.weak != self.weak_match:
            raise ValueError(f"weak_match={self.weak_match} contradicts the verdict {self.weak}")


# What counts as blank in a query: the whitespace of JSON Schema's (ECMAScript's) ``\s``. Python's
# ``str.strip()`` also strips control characters such as U+001F and U+0085, so "\x1f" would be
# blank here yet valid by the API's schema; one definition keeps the service and the contract
# in agreement.
BLANK_CHARS = ("\t\n\v\f\r \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
               + "\u2028\u2029\u202f\u205f\u3000\ufeff")


def is_blank(text: str) -> bool:
    """True when ``text`` holds nothing but :data:`BLANK_CHARS`."""
    return not text.strip(BLANK_CHARS)

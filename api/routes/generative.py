"""``GET /v1/search?mode=generative``: the prior's seeds searched, fused and diversified.

The route logic lives here so ``api/app.py`` only wires it: :func:`generative_search_response`
answers a request given the app's search service, and :func:`load_prior` finds the prior
trained for the service's encoder (one prior per encoder id), once per process.

``mode`` is also the name of the musical-mode filter (``mode=minor``); the search modes
(``text``, ``generative``) are never musical modes, so :func:`split_mode` takes them out of
the filter values.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from api.wiring import load_prior
from retrieval.errors import RetrievalError, WeightsNotFoundError
from retrieval.search import Hit, SearchOptions, SearchResult, SearchService

SEARCH_MODES = ("text", "generative")


def split_mode(options: SearchOptions) -> tuple[str, SearchOptions]:
    """``("generative" | "text", options without the search mode in the mode filter)``."""
    values = options.filters.mode
    chosen = [v for v in values if v.strip().lower() in SEARCH_MODES]
    if not chosen:
        return "text", options
    rest = tuple(v for v in values if v.strip().lower() not in SEARCH_MODES)
    search_mode = chosen[-1].strip().lower()
    return search_mode, replace(options, filters=replace(options.filters, mode=rest))


def generative_search_response(service: SearchService, q: str, options: SearchOptions, *,
                               seeds: int = 8, guidance: float | None = None,
                               negative: list[str] | None = None,
                               like: list[int] | None = None, unlike: list[int] | None = None,
                               seed: int = 0, prior: Any = None
                               ) -> tuple[SearchResult, dict[str, Any]]:
    """Answer a generative search.

    Args:
        service: the app's search service.
        q: the text query.
        options: paging, filters, exclusions (``mmr`` overrides the default diversity).
        seeds: K prior samples (1-64).
        guidance: positive guidance scale (None: the prior's default).
        negative: texts to steer away from (repeatable query parameter).
        like / unlike: example track ids to steer toward / away from (conditions of the same
            joint space as the text; they never appear in the page).
        seed: random seed of the first sample (results are deterministic per seed).
        prior: a prior to use instead of the one found for the encoder (tests).

    Returns:
        ``(a page of hits scored by the fused relevance (0..1, best candidate 1), the query echo with the seed
        spread)``; ``SearchResult.best_score`` is the best hit's cosine to the text query.

    Raises:
        RetrievalError: no prior for the encoder, or bad parameters (mapped to HTTP 400).
    """
    from retrieval.search.generative import GenerativeConfig, generative_search

    if guidance is not None and not 0.0 <= guidance <= 20.0:
        raise RetrievalError(f"guidance must be between 0 and 20, got {guidance}")
    negative = [n for n in (negative or []) if n.strip()]
    try:
        prior = prior or load_prior(service.encoder.id)
    except WeightsNotFoundError as e:
        raise RetrievalError(f"generative search is not available for encoder "
                             f"{service.encoder.id!r}: {e}") from e
    config = GenerativeConfig(seeds=seeds, guidance=guidance, seed=seed)
    like, unlike = list(like or []), list(unlike or [])
    r = generative_search(service, prior, [q, *like], [*negative, *unlike], options=options,
                          config=config)
    hits = [Hit(int(i), float(s)) for i, s in zip(r.ids, r.scores, strict=True)]
    echo = {"text": q, "mode": "generative", "seeds": seeds, "negative": negative,
            "like": like, "unlike": unlike,
            "guidance": prior.default_guidance if guidance is None else guidance,
            "seed": seed, "spread": round(r.spread, 6)}
    return SearchResult(hits=hits, weak_match=r.weak_match, best_score=r.best_score,
                        strategy="generative"), echo

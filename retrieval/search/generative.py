"""Generative retrieval: prior seeds -> neighbours of each -> fused ranking -> diverse page.

A text query is ambiguous ("Irish music" is jigs and reels and airs); searching from one query
point returns one corner of the answer. Here the diffusion prior draws K plausible *audio*
embeddings for the query (steered toward positive prompts or example tracks and away from
negative ones) and its conditional mean. The mean pairwise cosine distance of the seeds is the
query's uncertainty (its *spread*, reported). The neighbours of the seeds, of the query point
and of the mean form the candidate pool; the default ``adaptive`` fusion scores it by the query
point for narrow requests and by the mean for broad ones (weighted by how far the query moves
the prior's mean from its unconditional mean, or by the spread; the terms added as reciprocal
ranks), plus how close each candidate is to any seed, and maximal
marginal relevance picks a page that covers the regions the seeds found. ``likelihood`` scores
the same pool by the prior's own likelihood ratio (:meth:`PriorPipeline.log_ratio`), slower
and measured no better on broad queries. The older rules (reciprocal rank fusion over the
seeds' lists, mean or max cosine to the seeds) remain selectable for comparison.

Everything is a function of arrays and two callables (``neighbours`` and ``vectors``), so the
same ranking code runs against the search service (:func:`generative_search`), or against a
plain embedding matrix in the evaluation (:func:`matrix_backend`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from retrieval.encoders.base import l2_normalize
from retrieval.errors import InvalidQueryError, RetrievalError
from retrieval.search.diversity import mmr
from retrieval.search.fusion import (
    Neighbours,
    Vectors,
    adaptive_scores,
    breadth_weight,
    fuse,
    query_breadth,
    rank_candidates,
    seed_spread,
)
from retrieval.search.generative_config import (
    Breadth,
    Combine,
    Fusion,
    GenerativeConfig,
    GenerativeResult,
)
from retrieval.search.options import SearchOptions
from retrieval.search.weak_match import TOP_N, WeakMatch

if TYPE_CHECKING:  # the prior pulls torch; the search service SQLAlchemy + FAISS
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search.service import SearchService

__all__ = ["Breadth", "Combine", "Fusion", "GenerativeConfig", "GenerativeResult", "Neighbours",
           "Vectors", "adaptive_scores", "breadth_weight", "fuse", "generative_rank",
           "generative_search", "matrix_backend", "mmr", "prior_neighbour_cosines",
           "query_breadth", "rank_candidates", "sample_seeds", "seed_spread", "service_backend",
           "steer_query"]


def steer_query(query: np.ndarray, negatives: np.ndarray | None, weight: float) -> np.ndarray:
    """The plain query point pushed away from negatives: ``(1 + w) q - w mean(neg)``, unit.

    With ``w = 1`` this is ``2q - neg``, the recommend API's average-vector rule, so the text
    part of a generative ranking honours a negative prompt as plain search would.
    """
    if negatives is None or not len(negatives):
        return query
    neg = np.asarray(negatives, np.float32).reshape(-1, len(query)).mean(0)
    return l2_normalize(((1 + weight) * query - weight * neg)[None, :])[0]


def sample_seeds(prior: PriorPipeline, positives: np.ndarray, negatives: np.ndarray | None,
                 config: GenerativeConfig) -> tuple[np.ndarray, np.ndarray, float | None]:
    """K unit seeds ``[K, dim]``, the conditional mean ``[dim]`` and the request's specificity.

    For conditions ``[P, dim]`` / ``[N, dim]``; the specificity is None for a prior without a
    mean head.

    With a mean head, the mean and the specificity come from one pass of the head
    (:meth:`PriorPipeline.conditional_mean`); without one, the mean is the sampler's first-step
    estimate.
    """
    sample = {"num_samples": config.seeds, "seed": config.seed, "guidance": config.guidance,
              "negative_guidance": config.negative_guidance,
              "num_inference_steps": config.steps}
    if prior.model.mean_net is None:
        seeds, mean = prior.sample(positives, negatives, return_mean=True, **sample)
        return seeds, mean, None
    seeds = prior.sample(positives, negatives, **sample)
    mean, specificity = prior.conditional_mean(positives, negatives,
                                               negative_guidance=config.negative_guidance,
                                               mean_guidance=config.mean_guidance)
    return seeds, mean, specificity


def generative_rank(prior: PriorPipeline, positives: np.ndarray, negatives: np.ndarray | None,
                    neighbours: Neighbours, vectors: Vectors, need: int,
                    config: GenerativeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditions -> prior seeds and mean -> the ranked candidates (service and evaluation).

    Args:
        prior: the pipeline the seeds are sampled from.
        positives: unit condition embeddings ``[P, dim]`` (texts, example tracks).
        negatives: unit embeddings ``[N, dim]`` to steer away from (or None).
        neighbours: the backend's neighbour search (:func:`service_backend` or :func:`matrix_backend`).
        vectors: the same backend's vector lookup.
        need: ids wanted (offset + k of the page).
        config: sampling, fusion and diversity settings.

    Returns:
        ``(ids [<=need], scores [<=need], seeds [K, dim])``.
    """
    pos = np.asarray(positives, np.float32).reshape(-1, prior.dim)
    seeds, mean, specificity = sample_seeds(prior, pos, negatives, config)
    w_neg = (prior.default_negative_guidance if config.negative_guidance is None
             else config.negative_guidance)
    query = steer_query(l2_normalize(pos.mean(0, keepdims=True))[0], negatives, w_neg)

    def likelihood(vecs: np.ndarray) -> np.ndarray:
        return prior.log_ratio(vecs, pos, negatives, negative_guidance=w_neg,
                               timesteps=config.likelihood_timesteps,
                               noises=config.likelihood_noises, seed=config.seed)

    ids, scores = rank_candidates(seeds, query, neighbours, vectors, need, config, mean,
                                  likelihood, specificity)
    return ids, scores, seeds


def matrix_backend(matrix: np.ndarray, ids: np.ndarray | None = None
                   ) -> tuple[Neighbours, Vectors]:
    """Exact ``neighbours``/``vectors`` over an in-memory matrix ``[N, dim]`` of unit rows.

    ``ids`` maps rows to track ids (default: the row numbers). Used by the evaluation and by
    tests; the service path goes through the FAISS index instead.
    """
    m = np.asarray(matrix, np.float32)
    row_ids = np.arange(len(m)) if ids is None else np.asarray(ids, np.int64)
    row_of = {int(t): r for r, t in enumerate(row_ids)}

    def neighbours(q: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        s = q @ m.T
        n = min(n, len(m))
        top = np.argpartition(-s, n - 1, axis=1)[:, :n]
        out_i, out_s = [], []
        for row, cand in zip(s, top, strict=True):
            order = cand[np.argsort(-row[cand], kind="stable")]
            out_i.append(row_ids[order])
            out_s.append(row[order])
        return out_i, out_s

    def vectors(track_ids: np.ndarray) -> np.ndarray:
        return m[[row_of[int(t)] for t in track_ids]]

    return neighbours, vectors


def service_backend(service: SearchService, options: SearchOptions) -> tuple[Neighbours,
                                                                             Vectors]:
    """``neighbours``/``vectors`` through the search service: its index, filters, exclusions.

    Without filters or exclusions all seeds go to the index in one batched call; otherwise each
    seed is one :meth:`SearchService.search_vector` call with diversity off, so filters are
    honoured exactly as in plain search (over-fetch, exact fallback).
    """
    def neighbours(q: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if options.filters.is_empty() and not options.exclude_ids:
            # Nothing to filter: one batched index call for all the seeds.
            s, i = service.index.search(q, min(n, max(service.index.count, 1)))
            planner = service.planner
            out = [planner.clean(ids, sc, None) for ids, sc in zip(i, s, strict=True)]
            return [o[0] for o in out], [o[1] for o in out]
        per = SearchOptions(k=min(n, service.config.max_k), filters=options.filters,
                      exclude_ids=options.exclude_ids)
        out_i, out_s = [], []
        for v in q:
            r = service.search_vector(v, per)
            out_i.append(np.fromiter((h.track_id for h in r.hits), np.int64, len(r.hits)))
            out_s.append(np.fromiter((h.score for h in r.hits), np.float32, len(r.hits)))
        return out_i, out_s

    def vectors(ids: np.ndarray) -> np.ndarray:
        return service.index.reconstruct(np.asarray(ids, np.int64))

    return neighbours, vectors


def prior_neighbour_cosines(service: SearchService, prior: PriorPipeline,
                            positives: Sequence[int | str], options: SearchOptions,
                            config: GenerativeConfig | None = None) -> np.ndarray:
    """Per prior seed, the cosine to its nearest catalog track passing the filters ``[K]``.

    The weak-match detector's ``prior_nn`` signal for a search that did not sample the prior
    itself (plain search deciding whether to queue backfill). The seeds are the ones
    :func:`generative_search` would draw with the same config. Seeds with no neighbour (nothing
    passes the filters) are left out.

    Raises:
        RetrievalError: a prior trained for another encoder.
    """
    config = config or GenerativeConfig()
    if prior.encoder_id is not None and prior.encoder_id != service.encoder.id:
        raise RetrievalError(f"the prior was trained for encoder {prior.encoder_id!r}, the "
                             f"search service uses {service.encoder.id!r}")
    seeds, _, _ = sample_seeds(prior, service.example_vectors(list(positives)), None, config)
    neighbours, _ = service_backend(service, options)
    _, scores = neighbours(seeds.astype(np.float32), 1)
    return np.array([float(s[0]) for s in scores if len(s)], np.float64)


def generative_search(service: SearchService, prior: PriorPipeline,
                      positives: Sequence[int | str], negatives: Sequence[int | str] = (), *,
                      options: SearchOptions | None = None,
                      config: GenerativeConfig | None = None) -> GenerativeResult:
    """Answer a query with prior seeds instead of one query point.

    Args:
        service: the search service of the prior's encoder.
        prior: a prior trained for ``service.encoder`` (its card's encoder id must match).
        positives: texts and/or example track ids to steer toward (at least one).
        negatives: texts and/or track ids to steer away from (negative guidance); example
            tracks are never returned.
        options: page size/offset, filters, exclusions (its ``mmr_lambda`` overrides the
            config's when set).
        config: seeds, guidance, fusion.

    Raises:
        RetrievalError: no positive, or a prior trained for another encoder.
    """
    options = options or SearchOptions()
    config = config or GenerativeConfig()
    if options.mmr_lambda is not None:
        config = replace(config, mmr_lambda=options.mmr_lambda)
    if not positives:
        raise InvalidQueryError("generative search needs at least one positive (text or track)")
    if prior.encoder_id is not None and prior.encoder_id != service.encoder.id:
        raise RetrievalError(f"the prior was trained for encoder {prior.encoder_id!r}, the "
                             f"search service uses {service.encoder.id!r}")
    service.validate(options)  # same limits on k/offset/filters as plain search
    pos = service.example_vectors(list(positives))
    neg = service.example_vectors(list(negatives)) if negatives else None
    example_ids = [e for e in (*positives, *negatives) if isinstance(e, int)]
    if example_ids:
        options = replace(options, exclude_ids=frozenset(options.exclude_ids) | set(example_ids))
    neighbours, vectors = service_backend(service, options)
    pooled: list[tuple[list[np.ndarray], list[np.ndarray]]] = []

    def recorded(q: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        # The ranking's one batched call (seeds first, then the query and the mean): kept for
        # the weak verdict, which needs no index call of its own.
        out = neighbours(q, n)
        pooled.append(out)
        return out

    ids, scores, seeds = generative_rank(prior, pos, neg, recorded, vectors,
                                         options.offset + options.k, config)
    query = l2_normalize(pos.mean(0, keepdims=True))[0]
    cos = vectors(ids) @ query if len(ids) else np.zeros(0, np.float32)
    best = float(cos.max()) if len(cos) else None
    texts = [p for p in positives if isinstance(p, str)]
    weak = _weak_verdict(service, query, ids, seeds, pooled[0] if pooled else ([], []), vectors,
                         service.named_support(" ".join(texts)) if texts else None)
    page = slice(options.offset, options.offset + options.k)
    return GenerativeResult(
        ids=ids[page], scores=scores[page], cosines=cos[page].astype(np.float32),
        spread=seed_spread(seeds), seeds=seeds, weak_match=weak.weak, best_score=best,
        weak=weak)


def _weak_verdict(service: SearchService, query: np.ndarray, ranked: np.ndarray,
                  seeds: np.ndarray, pool: tuple[list[np.ndarray], list[np.ndarray]],
                  vectors: Vectors, named: float | None = None) -> WeakMatch:
    """The detector's verdict on a generative result.

    ``top_scores``: the best cosines to the plain query over the whole candidate pool (every
    seed's, the query's and the mean's neighbours, plus the ranked ids), so they are on the
    scale plain search reports. ``prior_nn``: per seed, the cosine to its nearest catalog track
    that passes the filters (the first of its neighbour list). ``named``: what the texts name,
    found in the catalog (:meth:`SearchService.named_support`).
    """
    ids_l, scores_l = pool
    k = len(seeds)
    prior_nn = np.array([float(s[0]) for s in scores_l[:k] if len(s)], np.float64)
    cand = np.unique(np.concatenate([np.asarray(ranked, np.int64),
                                     *(np.asarray(i, np.int64) for i in ids_l)]))
    top = np.sort(vectors(cand) @ query)[::-1][:TOP_N] if len(cand) else np.zeros(0)
    return service.detector.assess(top, prior_nn if len(prior_nn) else None, named)

"""Fusion: the candidate pool of K prior seeds (and the query point) ranked into one list.

The ``adaptive`` rule (the default), the prior's ``likelihood`` ratio and the older rules
(reciprocal rank fusion, mean or max cosine to the seeds); the final page is diversified by the
same MMR as plain search (:func:`retrieval.search.diversity.mmr`). Everything is a function of
arrays and two callables (:data:`Neighbours`, :data:`Vectors`), so the same code ranks against
the search service or an in-memory matrix (the evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from retrieval.encoders.base import l2_normalize
from retrieval.errors import RetrievalError
from retrieval.search.diversity import mmr
from retrieval.search.generative_config import GenerativeConfig

#: ``neighbours(queries [Q, dim], n) -> (ids [Q][<=n], scores [Q][<=n])``, best first.
Neighbours = Callable[[np.ndarray, int], tuple[list[np.ndarray], list[np.ndarray]]]
#: ``vectors(ids [n]) -> [n, dim]`` unit rows of catalog tracks.
Vectors = Callable[[np.ndarray], np.ndarray]


def seed_spread(seeds: np.ndarray) -> float:
    """Mean pairwise cosine distance of unit rows ``[K, dim]`` (0 for K < 2)."""
    s = np.asarray(seeds, np.float32)
    k = len(s)
    if k < 2:
        return 0.0
    sims = s @ s.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (k * (k - 1)))


def fuse(lists: Sequence[np.ndarray], weights: Sequence[float], rrf_k: float = 60.0
         ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted reciprocal rank fusion: ``score(c) = sum_l w_l / (rrf_k + rank_l(c))``.

    Args:
        lists: ranked id arrays, best first (ranks start at 1).
        weights: one weight per list.
        rrf_k: the RRF constant (small values trust the top ranks more).

    Returns:
        ``(ids [n], scores [n])`` over the union of the lists, best first (ties by first
        appearance, so the order is deterministic).
    """
    score: dict[int, float] = {}
    for ids, w in zip(lists, weights, strict=True):
        for rank, i in enumerate(np.asarray(ids).tolist(), start=1):
            score[i] = score.get(i, 0.0) + w / (rrf_k + rank)
    if not score:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids = np.fromiter(score, np.int64, len(score))
    vals = np.fromiter(score.values(), np.float64, len(score))
    order = np.argsort(-vals, kind="stable")
    return ids[order], vals[order].astype(np.float32)


def breadth_weight(spread: float, center: float, slope: float) -> float:
    """``sigmoid(slope * (spread - center))``: how much a query is treated as broad."""
    return float(1.0 / (1.0 + np.exp(-slope * (spread - center))))


def query_breadth(seeds: np.ndarray, query: np.ndarray | None, config: GenerativeConfig,
                  specificity: float | None = None) -> float:
    """The weight ``a`` of the prior's mean for this query (1 without a text point).

    From the request's ``specificity`` (:meth:`PriorPipeline.conditional_mean`) when
    ``config.breadth`` asks for it and the prior has a mean head to give it, else from the
    seeds' spread. One value per query, shared by the scores and the MMR lambda.
    """
    if query is None:
        return 1.0
    if config.breadth == "specificity" and specificity is not None:
        return breadth_weight(specificity, config.specificity_center, -config.specificity_slope)
    return breadth_weight(seed_spread(seeds), config.spread_center, config.spread_slope)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6) if len(x) else x


def _rrf_term(x: np.ndarray, k: float) -> np.ndarray:
    """``1 / (k + rank)`` of each value within ``x`` (rank 1 = largest; ties by position)."""
    ranks = np.empty(len(x), np.float64)
    ranks[np.argsort(-x, kind="stable")] = np.arange(1, len(x) + 1)
    return 1.0 / (k + ranks)


def adaptive_scores(vecs: np.ndarray, seeds: np.ndarray, query: np.ndarray | None,
                    mean: np.ndarray | None, config: GenerativeConfig,
                    breadth: float | None = None) -> np.ndarray:
    """Relevance of candidates ``[n, dim]``: text point and conditional mean, mixed by breadth.

    ``score = (1 - a) f(cos(query, c)) + a f(cos(mean, c)) + kde_weight f(kde(c))`` with
    ``a`` the breadth weight (``breadth``: the query's specificity, or the seeds' spread) and
    ``f`` a z-score over the candidate pool (``combine="z"``) or the reciprocal rank
    ``1 / (rrf_k + rank)`` within it (``"rank"``):
    the two cosines live on different scales (text-to-audio cosines are lower than
    audio-to-audio), and neither raw value can be added to the other.

    Why this rule (measured on the validation split, see RESULTS.md): the literal text point
    ranks narrow requests ("a jig", "bagpipes") best, the conditional mean ranks broad ones
    ("early music", "music to dance to") best, and no fixed mix matched both; the query's
    specificity (or, less well, the seeds' spread) tells them apart. Without a mean (a prior
    without a mean head) the seeds' normalised average stands in for it. ``breadth``: ``a``
    when the caller has it (:func:`query_breadth`).
    """
    if mean is None:
        mean = l2_normalize(seeds.mean(0, keepdims=True))[0]
    a = query_breadth(seeds, query, config) if breadth is None else breadth
    term = _z if config.combine == "z" else (lambda x: _rrf_term(x, config.rrf_k))
    score = a * term(vecs @ mean)
    if query is not None:
        score = score + (1 - a) * term(vecs @ query)
    if config.kde_weight:
        sims = vecs @ seeds.T
        top = sims.max()
        kde = config.kde_tau * np.log(np.mean(np.exp((sims - top) / config.kde_tau), 1))
        score = score + config.kde_weight * term(kde)
    return score.astype(np.float32)


def rank_candidates(seeds: np.ndarray, query: np.ndarray | None, neighbours: Neighbours,
                    vectors: Vectors, need: int, config: GenerativeConfig,
                    mean: np.ndarray | None = None,
                    likelihood: Callable[[np.ndarray], np.ndarray] | None = None,
                    specificity: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The fused, diversified order of candidates for K seeds (and the plain query).

    Args:
        seeds: unit prior samples ``[K, dim]``.
        query: the plain query embedding ``[dim]`` (or None), already steered away from
            negatives (:func:`steer_query`).
        neighbours: see :data:`Neighbours` (one batched call for all the seeds).
        vectors: see :data:`Vectors`.
        need: how many ids to return (offset + k of the page).
        config: fusion and diversity settings.
        mean: the prior's conditional mean ``[dim]`` (``adaptive`` and ``likelihood``
            fusion; its neighbours join the candidate pool).
        likelihood: ``likelihood`` fusion: candidate vectors ``[n, dim]`` -> scores ``[n]``
            (:meth:`PriorPipeline.log_ratio` for the query's conditions).
        specificity: the request's specificity, for ``breadth="specificity"``
            (:func:`query_breadth`; None: the seeds' spread decides).

    Returns:
        ``(ids [<=need], scores [<=need])``: scores are the fused scores over the best
        candidate's (0..1].
    """
    points = [seeds]
    if query is not None:
        points.append(query[None, :])
    if mean is not None and config.fusion in ("adaptive", "likelihood"):
        points.append(mean[None, :])
    queries = np.concatenate(points)
    n = max(config.per_seed, need)
    ids_l, _ = neighbours(queries.astype(np.float32), n)
    if not any(len(x) for x in ids_l):  # nothing passes the filters, or the catalog is empty
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    a = query_breadth(seeds, query, config, specificity)
    ids, vecs, scores = _fused_order(ids_l, seeds, query, mean, vectors, config, a, likelihood)
    if len(ids) == 0:
        return ids, scores
    return _diversified_page(ids, vecs, scores, need, config, query, a)


def _fused_order(ids_l: list[np.ndarray], seeds: np.ndarray, query: np.ndarray | None,
                 mean: np.ndarray | None, vectors: Vectors, config: GenerativeConfig,
                 breadth: float, likelihood: Callable[[np.ndarray], np.ndarray] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pool ranked by ``config.fusion``, best first.

    Args:
        ids_l: the neighbour lists of the query points (seeds, then the query, then the mean).
        seeds: unit prior samples ``[K, dim]``.
        query: the plain query embedding ``[dim]`` (or None).
        mean: the prior's conditional mean ``[dim]`` (or None).
        vectors: see :data:`Vectors`.
        config: the fusion settings.
        breadth: the query's breadth weight (:func:`query_breadth`).
        likelihood: the ``likelihood`` fusion's scorer (see :func:`rank_candidates`).

    Returns:
        ``(ids [n], vecs [n, dim], scores [n])`` in fused order; float32 scores on the
        fusion's own scale.

    Raises:
        RetrievalError: ``likelihood`` fusion without a ``likelihood`` scorer.
    """
    k = len(seeds)
    if config.fusion == "rrf":
        weights = [1.0] * k + ([config.query_weight] if query is not None else [])
        ids, scores = fuse(ids_l, weights, config.rrf_k)
        vecs = vectors(ids) if len(ids) else np.zeros((0, seeds.shape[1]), np.float32)
        return ids, vecs, scores
    ids = np.unique(np.concatenate([np.asarray(x, np.int64) for x in ids_l]))
    vecs = vectors(ids) if len(ids) else np.zeros((0, seeds.shape[1]), np.float32)
    if config.fusion == "adaptive":
        s = adaptive_scores(vecs, seeds, query, mean, config, breadth)
    elif config.fusion == "likelihood":
        if likelihood is None:
            raise RetrievalError("likelihood fusion needs the prior's likelihood scorer")
        s = likelihood(vecs).astype(np.float32)
    else:
        sims = vecs @ seeds.T
        s = sims.mean(1) if config.fusion == "mean_sim" else sims.max(1)
        if query is not None and config.query_weight:
            s = (k * s + config.query_weight * (vecs @ query)) / (k + config.query_weight)
    order = np.argsort(-s, kind="stable")
    return ids[order], vecs[order], s[order].astype(np.float32)


def _diversified_page(ids: np.ndarray, vecs: np.ndarray, scores: np.ndarray, need: int,
                      config: GenerativeConfig, query: np.ndarray | None, breadth: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``need`` of a non-empty fused order, diversified by MMR.

    Scores are rescaled to 0..1 (best candidate = 1) whatever the fusion's own scale, so the
    MMR trade-off and the caller see one scale. A broad query (``breadth`` near 1) moves the
    MMR lambda toward ``config.mmr_lambda_broad``.

    Args:
        ids: candidate ids ``[n]`` in fused order (n >= 1).
        vecs: their unit vectors ``[n, dim]``.
        scores: their fused scores ``[n]``.
        need: how many to return.
        config: the MMR settings.
        query: the plain query (None: no breadth adjustment of lambda).
        breadth: the query's breadth weight.

    Returns:
        ``(ids [<=need], scores [<=need])``.
    """
    lo, hi = float(scores.min()), float(scores.max())
    rel = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    lam = config.mmr_lambda
    if lam is not None and config.mmr_lambda_broad is not None and query is not None:
        lam = lam + (config.mmr_lambda_broad - lam) * breadth
    if lam is None:
        pos = np.arange(min(need, len(ids)))
    else:
        pos = mmr(rel, vecs, need, lam, config.mmr_window)
    return ids[pos], rel[pos].astype(np.float32)

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from retrieval.encoders.base import l2_normalize
from retrieval.errors import RetrievalError

if TYPE_CHECKING:  # the prior pulls torch; the search service only SQLAlchemy + FAISS
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search import SearchOptions, SearchService

Fusion = Literal["adaptive", "likelihood", "rrf", "mean_sim", "max_sim"]
Combine = Literal["z", "rank"]
Breadth = Literal["spread", "specificity"]
#: ``neighbours(queries [Q, dim], n) -> (ids [Q][<=n], scores [Q][<=n])``, best first.
Neighbours = Callable[[np.ndarray, int], tuple[list[np.ndarray], list[np.ndarray]]]
#: ``vectors(ids [n]) -> [n, dim]`` unit rows of catalog tracks.
Vectors = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GenerativeConfig:
    """How seeds become a result page.

    Attributes:
        seeds: K, prior samples per query.
        guidance: positive guidance scale (None: the prior's default from its card).
        negative_guidance: negative guidance scale (None: the prior's default).
        steps: denoising steps (None: the prior's default).
        per_seed: neighbours fetched per seed (the fusion's candidate pool is their union).
        fusion: ``adaptive`` (the default, see :func:`adaptive_scores`): the query's own cosine
            and the prior's conditional mean's, mixed by the seeds' spread; ``likelihood``: the
            prior's likelihood ratio of each candidate given the query (``log p(c | q) -
            log p(c)``, estimated from denoising errors); ``rrf`` (reciprocal
            rank fusion over the seeds' lists), ``mean_sim`` (mean cosine to the seeds) or
            ``max_sim`` (best cosine to any seed).
        rrf_k: the RRF constant (60 in Cormack et al.; small values trust the top ranks more),
            also of ``combine="rank"``.
        query_weight: weight of the plain query's own list in the fusion, relative to one seed
            (0 = seeds only). The query keeps the page anchored on the literal request while
            the seeds add the regions it implies.
        spread_center / spread_slope: ``adaptive`` weighs the conditional mean by
            ``sigmoid(slope * (spread - center))``: a narrow query (seeds agree) keeps its
            literal text point, a broad one (seeds spread out) moves to the prior's mean.
        breadth: what tells a broad query from a narrow one: ``spread`` (the seeds' spread,
            above) or ``specificity``, ``1 - cos(mu(q), mu(null))``: how far the query moves the
            prior's conditional mean from the unconditional one. A single attribute ("bagpipes")
            moves it far, a broad request ("folk music") little. Measured on validation it
            separates single-attribute from broad queries better than the spread (AUC 0.75 vs
            0.66); the weight is then ``sigmoid(specificity_slope * (specificity_center -
            specificity))``. Needs a prior with a mean head (falls back to the spread).
        kde_weight / kde_tau: weight of a soft-max kernel score over the seeds in
            ``adaptive``: ``tau log mean_k exp(cos(seed_k, c) / tau)``, high for a candidate
            near *any* seed, so regions only some seeds found still rank.
        combine: how ``adaptive`` adds its terms: ``z`` (z-scores over the candidate pool) or
            ``rank`` (weighted reciprocal ranks within the pool, ``w / (rrf_k + rank)``).
        mean_guidance: scale of the positives' pull on the conditional mean (1: the prior's
            plain conditional mean; see :meth:`PriorPipeline.sample`).
        mmr_lambda: relevance vs. novelty in the final page (None: fused order as is).
        mmr_lambda_broad: the MMR lambda of a fully broad query (None: ``mmr_lambda`` for
            all); ``adaptive`` moves from ``mmr_lambda`` to it with the breadth weight, so a
            query is diversified as much as it is ambiguous: a broad request has many relevant
            tracks to spread over, a narrow one few.
        mmr_window: each MMR pick is made among the best ``mmr_window`` remaining candidates
            by fused score, so novelty never pulls in a candidate from far down the list, and
            pages do not depend on how many are asked for.
        likelihood_timesteps / likelihood_noises: the Monte Carlo grid of ``likelihood``.
        seed: the random seed of the first prior sample (seed ``i`` uses ``seed + i``).

    Defaults (``combine`` rank, ``rrf_k`` 30, ``breadth`` specificity (center 0.3, slope 40),
    ``kde_weight`` 0.25, ``mmr_lambda`` 0.9) were chosen on the validation split by a rule
    fixed in advance: the setting closest to the better baseline's nDCG@10 on every query
    set, among those whose broad-query pages are more diverse than the regression baseline's
    and cover more facets than either baseline (``tunescope eval-prior --sweep``, which
    applies that rule). Each setting is the mean of 3 sampling draws.
    - First round: 144 settings (96 z-score, 48 rank), with 60 broad queries and 19
      single-attribute ones.
    - Second round, after the single-attribute queries grew to 59 (2026-11-29): 32 rank
      settings (``rrf_k`` 30 / 60, ``spread_center`` 0.5-0.65, ``kde_weight`` 0 / 0.25,
      ``mmr_lambda`` 0.9 / none). With 59 attribute queries the first round's pick trailed
      direct text search on them by 0.022, and this one by 0.015.
    - Third round, the same day: ``breadth`` spread vs specificity (``specificity_center``
      0.25 / 0.3 / 0.35, ``specificity_slope`` 20 / 40). Specificity at 0.3 / 40 has worst
      gap -0.012 (broad -0.002, attributes -0.012), against -0.015 for the spread.
    Each pick was then checked on the test split and on renders with an unseen soundfont
    (RESULTS.md).
    Why ranks: the text and mean cosines are differently shaped (a flat text list on a broad
    query, a peaked one on a caption), and a z-score lets a few outlying cosines decide; a
    reciprocal rank counts only the order.
    """

    seeds: int = 8
    guidance: float | None = None
    negative_guidance: float | None = None
    steps: int | None = None
    per_seed: int = 30
    fusion: Fusion = "adaptive"
    rrf_k: float = 30.0
    query_weight: float = 1.0
    spread_center: float = 0.55
    spread_slope: float = 10.0
    breadth: Breadth = "specificity"
    specificity_center: float = 0.3
    specificity_slope: float = 40.0
    kde_weight: float = 0.25
    combine: Combine = "rank"
    mean_guidance: float = 1.0
    kde_tau: float = 0.05
    mmr_lambda: float | None = 0.9
    mmr_lambda_broad: float | None = None
    mmr_window: int = 10
    likelihood_timesteps: int = 16
    likelihood_noises: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.seeds <= 64:
            raise RetrievalError(f"seeds must be between 1 and 64, got {self.seeds}")
        if self.fusion not in ("adaptive", "likelihood", "rrf", "mean_sim", "max_sim"):
            raise RetrievalError(f"unknown fusion {self.fusion!r}; use adaptive, likelihood, "
                                 "rrf, mean_sim or max_sim")
        if not (1 <= self.likelihood_timesteps <= 100 and 1 <= self.likelihood_noises <= 16):
            raise RetrievalError("likelihood_timesteps must be 1-100 and likelihood_noises 1-16, "
                                 f"got {self.likelihood_timesteps}, {self.likelihood_noises}")
        if self.breadth not in ("spread", "specificity"):
            raise RetrievalError(f"unknown breadth {self.breadth!r}; use spread or specificity")
        if self.combine not in ("z", "rank"):
            raise RetrievalError(f"unknown combine {self.combine!r}; use z or rank")
        if self.rrf_k < 0:
            raise RetrievalError(f"rrf_k must be at least 0, got {self.rrf_k}")
        if self.mmr_window < 1:
            raise RetrievalError(f"mmr_window must be at least 1, got {self.mmr_window}")
        if self.kde_tau <= 0:
            raise RetrievalError(f"kde_tau must be positive, got {self.kde_tau}")
        if not 0.0 <= self.mean_guidance <= 10.0:
            raise RetrievalError(f"mean_guidance must be in [0, 10], got {self.mean_guidance}")
        if self.steps is not None and not 1 <= self.steps <= 200:
            raise RetrievalError(f"steps must be between 1 and 200, got {self.steps}")
        if self.per_seed < 1:
            raise RetrievalError(f"per_seed must be at least 1, got {self.per_seed}")
        for name in ("mmr_lambda", "mmr_lambda_broad"):
            lam = getattr(self, name)
            if lam is not None and not 0.0 <= lam <= 1.0:
                raise RetrievalError(f"{name} must be in [0, 1], got {lam}")


@dataclass(frozen=True)
class GenerativeResult:
    """One page of generative hits.

    Attributes:
        ids: track ids, best first ``[<=k]``.
        scores: fused scores of those ids, normalised so the best candidate scores 1.
        cosines: cosine of each hit to the plain query embedding (comparable with plain search).
        spread: mean pairwise cosine distance of the seeds (the query's uncertainty).
        seeds: the prior samples ``[K, dim]``.
        weak_match: the best candidate's cosine to the query is below the threshold.
        best_score: that cosine (None when nothing was found).
    """

    ids: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    spread: float
    seeds: np.ndarray
    weak_match: bool
    best_score: float | None


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


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float,
        window: int | None = None) -> np.ndarray:
    """Maximal marginal relevance: positions of ``k`` picks, trading score for novelty.

    Args:
        scores: relevance ``[n]`` on a 0..1 scale (it is weighed against cosine similarity).
        vectors: unit rows ``[n, dim]``.
        k: picks.
        lam: 1 = pure relevance, 0 = pure novelty.
        window: pick only among the ``window`` best remaining candidates by score (None: all).
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = vectors @ vectors.T
    max_sim = np.zeros(n)
    remaining = np.ones(n, bool)
    by_score = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    while len(chosen) < min(k, n):
        eligible = remaining.copy()
        if window is not None:
            eligible[:] = False
            eligible[by_score[remaining[by_score]][:window]] = True
        val = np.where(eligible, lam * scores - (1 - lam) * max_sim, -np.inf)
        j = int(np.argmax(val))
        chosen.append(j)
        remaining[j] = False
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen, np.int64)


def breadth_weight(spread: float, center: float, slope: float) -> float:
    """``sigmoid(slope * (spread - center))``: how much a query is treated as broad."""
    return float(1.0 / (1.0 + np.exp(-slope * (spread - center))))


def query_breadth(seeds: np.ndarray, query: np.ndarray | None, config: GenerativeConfig,
                  specificity: float | None = None) -> float:
    """The weight ``a`` of the prior's mean for this query (1 without a text point).

    From the request's ``specificity`` (:meth:`PriorPipeline.conditional_mean`) when
    ``config.breadth`` asks for it and the prior has a mean head to give it, else from the
    seeds' spread. One value per query, shared by the scores and the MMR lambda."""
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
    k = len(seeds)
    a = query_breadth(seeds, query, config, specificity)
    if config.fusion in ("adaptive", "likelihood"):
        ids = np.unique(np.concatenate([np.asarray(x, np.int64) for x in ids_l]))
        vecs = vectors(ids) if len(ids) else np.zeros((0, seeds.shape[1]), np.float32)
        if config.fusion == "adaptive":
            s = adaptive_scores(vecs, seeds, query, mean, config, a)
        elif likelihood is None:
            raise RetrievalError("likelihood fusion needs the prior's likelihood scorer")
        else:
            s = likelihood(vecs).astype(np.float32)
        order = np.argsort(-s, kind="stable")
        ids, vecs, scores = ids[order], vecs[order], s[order]
    elif config.fusion == "rrf":
        weights = [1.0] * k + ([config.query_weight] if query is not None else [])
        ids, scores = fuse(ids_l, weights, config.rrf_k)
        vecs = vectors(ids) if len(ids) else np.zeros((0, seeds.shape[1]), np.float32)
    else:
        ids = np.unique(np.concatenate([np.asarray(x, np.int64) for x in ids_l]))
        vecs = vectors(ids) if len(ids) else np.zeros((0, seeds.shape[1]), np.float32)
        sims = vecs @ seeds.T
        s = sims.mean(1) if config.fusion == "mean_sim" else sims.max(1)
        if query is not None and config.query_weight:
            s = (k * s + config.query_weight * (vecs @ query)) / (k + config.query_weight)
        order = np.argsort(-s, kind="stable")
        ids, vecs, scores = ids[order], vecs[order], s[order].astype(np.float32)
    if len(ids) == 0:
        return ids, scores
    lo, hi = float(scores.min()), float(scores.max())
    rel = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    lam = config.mmr_lambda
    if lam is not None and config.mmr_lambda_broad is not None and query is not None:
        lam = lam + (config.mmr_lambda_broad - lam) * a
    if lam is None:
        pos = np.arange(min(need, len(ids)))
    else:
        pos = mmr(rel, vecs, need, lam, config.mmr_window)
    # Scores on 0..1 (best candidate = 1) whatever the fusion's own scale.
    return ids[pos], rel[pos].astype(np.float32)


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
    """K unit seeds ``[K, dim]``, the conditional mean ``[dim]`` and the request's specificity
    (None for a prior without a mean head) for conditions ``[P, dim]`` / ``[N, dim]``.

    With a mean head, the mean and the specificity come from one pass of the head
    (:meth:`PriorPipeline.conditional_mean`); without one, the mean is the sampler's first-step
    estimate."""
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
        positives: unit condition embeddings ``[P, dim]`` (texts, example tracks).
        negatives: unit embeddings ``[N, dim]`` to steer away from (or None).
        neighbours / vectors: the backend (:func:`service_backend` or :func:`matrix_backend`).
        need: ids wanted (offset + k of the page).

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
    from retrieval.search import SearchOptions as Options

    def neighbours(q: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if options.filters.is_empty() and not options.exclude_ids:
            # Nothing to filter: one batched index call for all the seeds.
            s, i = service.index.search(q, min(n, max(service.index.count, 1)))
            out = [service._clean(ids, sc, None, np.zeros(0, np.int64)) for ids, sc in zip(
                i, s, strict=True)]
            return [o[0] for o in out], [o[1] for o in out]
        per = Options(k=min(n, service.config.max_k), filters=options.filters,
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
    from retrieval.search import InvalidQueryError, SearchOptions

    options = options or SearchOptions()
    config = config or GenerativeConfig()
    if options.mmr_lambda is not None:
        config = replace(config, mmr_lambda=options.mmr_lambda)
    if not positives:
        raise InvalidQueryError("generative search needs at least one positive (text or track)")
    if prior.encoder_id is not None and prior.encoder_id != service.encoder.id:
        raise RetrievalError(f"the prior was trained for encoder {prior.encoder_id!r}, the "
                             f"search service uses {service.encoder.id!r}")
    service._validate(options)  # same limits on k/offset/filters as plain search
    pos = service._example_vectors(list(positives))
    neg = service._example_vectors(list(negatives)) if negatives else None
    example_ids = [e for e in (*positives, *negatives) if isinstance(e, int)]
    if example_ids:
        options = replace(options, exclude_ids=frozenset(options.exclude_ids) | set(example_ids))
    neighbours, vectors = service_backend(service, options)
    ids, scores, seeds = generative_rank(prior, pos, neg, neighbours, vectors,
                                         options.offset + options.k, config)
    query = l2_normalize(pos.mean(0, keepdims=True))[0]
    cos = vectors(ids) @ query if len(ids) else np.zeros(0, np.float32)
    best = float(cos.max()) if len(cos) else None
    page = slice(options.offset, options.offset + options.k)
    return GenerativeResult(
        ids=ids[page], scores=scores[page], cosines=cos[page].astype(np.float32),
        spread=seed_spread(seeds), seeds=seeds,
        weak_match=best is None or best < service.config.weak_match_threshold,
        best_score=best)

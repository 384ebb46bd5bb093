"""Settings and result of generative search (numpy only: cheap to import at CLI start).

:class:`GenerativeConfig` documents how every default was chosen; the ranking that reads it is
:mod:`retrieval.search.fusion`, the search that returns :class:`GenerativeResult` is
:mod:`retrieval.search.generative`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from retrieval.errors import RetrievalError
from retrieval.search.weak_match import WeakMatch

Fusion = Literal["adaptive", "likelihood", "rrf", "mean_sim", "max_sim"]
Combine = Literal["z", "rank"]
Breadth = Literal["spread", "specificity"]


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
        weak_match: the detector's verdict (``weak.weak``).
        best_score: the best ranked candidate's cosine to the query (None when nothing was found).
        weak: the weak-match verdict, from the candidate pool's best cosines to the query and
            each seed's cosine to its nearest catalog track (``prior_nn``).
    """

    ids: np.ndarray
    scores: np.ndarray
    cosines: np.ndarray
    spread: float
    seeds: np.ndarray
    weak_match: bool
    best_score: float | None
    weak: WeakMatch | None = None

"""Re-ranking candidates with the platform's encoder: near the prior's samples, near the query.

Every backend's candidates, whatever conditioned them, are judged in one space: the encoder's
audio embedding of each candidate against (a) the diffusion prior's samples for the query --
where the catalog's audio for this query would sit -- and (b) the query's text embedding.

Aggregating over the prior's samples: **max** (the default) rather than mean. The prior's samples
for a query are draws from a distribution that is often multi-modal ("a waltz" is a piano
waltz, an accordion waltz, an orchestra waltz). For unit vectors the mean cosine to the samples
is the cosine to their centroid (times its length), so "mean" rewards a candidate sitting
between the modes -- a blend no real piece sounds like -- over one squarely on a mode; "max"
rewards matching some mode well. Measured on a synthetic two-mode prior
(``benchmarks/bench_generators.py --rerank``, numbers in ``benchmarks/RESULTS.md``), "mean"
ranks the between-modes blend first and "max" ranks every on-mode candidate above it. The price
of max is variance: one stray sample can carry a candidate, which is why the prior is asked for
several samples (``k >= 8``) and why the query term stays in the score. ``aggregate="mean"`` is
kept for comparison and for unimodal priors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from generation.errors import GenerationError
from generation.generators.base import Candidate
from retrieval.encoders.base import Encoder, l2_normalize

Aggregate = Literal["max", "mean"]


@dataclass(frozen=True)
class RerankScores:
    """Per-candidate scores, in the candidates' order.

    Attributes:
        target: float32 ``[n]``, max (or mean) cosine to the prior's samples.
        query: float32 ``[n]``, cosine to the query's text embedding; ``None`` without one.
        total: float32 ``[n]``, ``(1 - weight) * target + weight * query`` (``target`` alone
            without a query).
        embeddings: float32 ``[n, dim]``, the candidates' unit audio embeddings (the novelty
            gate and the store need them too: computed once).
    """

    target: np.ndarray
    query: np.ndarray | None
    total: np.ndarray
    embeddings: np.ndarray


def embed_candidates(candidates: Sequence[Candidate], encoder: Encoder) -> np.ndarray:
    """The encoder's audio embeddings of the candidates, resampled to its rate first.

    Returns:
        float32 ``[n, encoder.dim]``, unit rows.
    """
    import soxr

    waves = [c.audio if c.sample_rate == encoder.sample_rate else
             soxr.resample(c.audio, c.sample_rate, encoder.sample_rate).astype(np.float32)
             for c in candidates]
    if not waves:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return l2_normalize(encoder.embed_audio(waves))


def score_candidates(candidates: Sequence[Candidate], encoder: Encoder, targets: np.ndarray,
                     query_vec: np.ndarray | None = None, weight: float = 0.5, *,
                     aggregate: Aggregate = "max") -> RerankScores:
    """Score candidates against the prior's samples and the query (see the module docstring).

    Args:
        candidates: ``n`` candidates, any sample rates.
        encoder: the encoder whose space ``targets`` and ``query_vec`` are in.
        targets: float32 ``[k, encoder.dim]``, the prior's samples (normalised here).
        query_vec: float32 ``[encoder.dim]``, the query's text embedding, or ``None``.
        weight: share of the query term in ``total``, in ``[0, 1]``.
        aggregate: ``"max"`` or ``"mean"`` over the ``k`` samples.

    Raises:
        GenerationError: shapes that do not match the encoder, a weight outside ``[0, 1]``, an
            unknown aggregate.
    """
    t = _unit_rows(targets, encoder.dim, "targets")
    if aggregate not in ("max", "mean"):
        raise GenerationError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
    if not 0.0 <= weight <= 1.0:
        raise GenerationError(f"weight must be in [0, 1], got {weight}")
    emb = embed_candidates(candidates, encoder)
    sims = emb @ t.T  # [n, k]
    target = (sims.max(axis=1) if aggregate == "max" else sims.mean(axis=1)).astype(np.float32)
    if query_vec is None:
        return RerankScores(target, None, target.copy(), emb)
    q = _unit_rows(np.asarray(query_vec).reshape(1, -1), encoder.dim, "query_vec")[0]
    query = (emb @ q).astype(np.float32)
    total = ((1.0 - weight) * target + weight * query).astype(np.float32)
    return RerankScores(target, query, total, emb)


def rerank(candidates: Sequence[Candidate], encoder: Encoder, targets: np.ndarray,
           query_vec: np.ndarray | None, weight: float, *, aggregate: Aggregate = "max"
           ) -> list[tuple[Candidate, float]]:
    """Candidates best first, with their total score (:func:`score_candidates`).

    Ties keep the generation order (a stable sort), so equal scores rank the lower seed first.

    Returns:
        ``[(candidate, total)]`` sorted by ``total``, descending.
    """
    if not candidates:
        return []
    scores = score_candidates(candidates, encoder, targets, query_vec, weight, aggregate=aggregate)
    order = np.argsort(-scores.total, kind="stable")
    return [(candidates[i], float(scores.total[i])) for i in order]


def _unit_rows(x: np.ndarray, dim: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != dim:
        raise GenerationError(f"{name} must have shape [k >= 1, {dim}] (the encoder's dim), got {a.shape}")
    if not np.isfinite(a).all() or not (np.linalg.norm(a, axis=1) > 0).all():
        raise GenerationError(f"{name} must be finite and non-zero")
    return l2_normalize(a)

"""Diversity and paging over a ranked candidate list: the one MMR, per-group caps, pages.

Plain search and generative search both end here, so "more diverse" means the same thing in
both. Both run on the full ranked candidate list, so page 2 is always the continuation of
page 1 for the same query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from retrieval.search.options import Hit, SearchOptions, SearchResult
from retrieval.search.weak_match import WeakMatch

#: ``admit(position) -> bool``: whether a candidate may join the page (and, if so, count it).
Admit = Callable[[int], bool]


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float,
        window: int | None = None, *, floor: float | None = 0.0,
        admit: Admit | None = None) -> np.ndarray:
    """Maximal marginal relevance: positions of up to ``k`` picks, trading score for novelty.

    Each step picks ``argmax(lam * score - (1 - lam) * redundancy)`` over the eligible
    candidates (first position on ties), where redundancy is the highest cosine to a pick.

    Args:
        scores: relevance ``[n]``; it is weighed against cosine similarity, so on a 0..1 or
            cosine scale. Used as given (its dtype is part of the arithmetic).
        vectors: unit rows ``[n, dim]``.
        k: picks wanted.
        lam: 1 = pure relevance, 0 = pure novelty.
        window: pick only among the ``window`` best remaining candidates by score (None: all),
            so novelty never pulls in a candidate from far down the list.
        floor: the redundancy before any pick and its lower bound (0: a candidate opposite
            every pick is not rewarded for it); None: no bound, redundancy is the plain highest
            cosine to a pick (0 before the first). Generative search uses 0, plain search None.
        admit: per-group caps (:class:`GroupCaps`): a candidate it refuses is dropped, neither
            picked nor counted as redundancy.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = vectors @ vectors.T
    max_sim = np.full(n, -np.inf if floor is None else floor)
    remaining = np.ones(n, bool)
    by_score = np.argsort(-scores, kind="stable") if window is not None else None
    chosen: list[int] = []
    while len(chosen) < k and remaining.any():
        if by_score is None:
            eligible = remaining
        else:
            eligible = np.zeros(n, bool)
            eligible[by_score[remaining[by_score]][:window]] = True
        redundancy = max_sim if floor is not None else np.where(np.isfinite(max_sim), max_sim,
                                                                0.0)
        val = np.where(eligible, lam * scores - (1 - lam) * redundancy, -np.inf)
        j = int(np.argmax(val))
        remaining[j] = False
        if admit is not None and not admit(j):
            continue
        chosen.append(j)
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen, np.int64)


class GroupCaps:
    """At most N hits per piece and per artist, counted as the page is filled.

    Args:
        ids: the candidates' track ids (positions are what :meth:`admit` takes).
        lookup: track id -> its metadata (``piece_id``, ``artist``), or None when unknown
            (an unknown track is never capped).
        caps: ``(metadata attribute, cap)`` pairs; a cap of None or 0 is no cap.
    """

    def __init__(self, ids: np.ndarray, lookup: Callable[[int], Any],
                 caps: Sequence[tuple[str, int | None]]) -> None:
        self._ids = ids
        self._lookup = lookup
        self._caps = [(f, c) for f, c in caps if c]
        self._counts: dict[tuple[str, str], int] = {}

    def __bool__(self) -> bool:
        return bool(self._caps)

    def admit(self, j: int) -> bool:
        """Whether position ``j`` fits under every cap; when it does, it is counted."""
        meta = self._lookup(int(self._ids[j]))
        values = [(f, cap, getattr(meta, f, None) if meta else None) for f, cap in self._caps]
        for f, cap, v in values:
            if v is not None and self._counts.get((f, v), 0) >= cap:
                return False
        for f, _, v in values:
            if v is not None:
                self._counts[(f, v)] = self._counts.get((f, v), 0) + 1
        return True


def diversify(ids: np.ndarray, scores: np.ndarray, o: SearchOptions, lookup: Callable[[int], Any],
              vectors: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Positions into ``ids`` (ranked) in result order, honouring MMR and the per-group caps.

    ``vectors(ids)``: the candidates' unit rows (read only when MMR is on).
    """
    need = o.offset + o.k
    caps = GroupCaps(ids, lookup, (("piece_id", o.max_per_piece),
                                   ("artist", o.max_per_artist)))
    if o.mmr_lambda is None:
        chosen = []
        for j in range(len(ids)):
            if len(chosen) >= need:
                break
            if caps.admit(j):
                chosen.append(j)
        return np.asarray(chosen, np.int64)
    return mmr(scores, vectors(ids), need, o.mmr_lambda, floor=None, admit=caps.admit)


def page(ids: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
         o: SearchOptions, how: str, lookup: Callable[[int], Any],
         vectors: Callable[[np.ndarray], np.ndarray], weak: WeakMatch) -> SearchResult:
    """The page ``o.offset:o.offset + o.k`` of the diversified ranking, with the weak verdict.

    ``weak`` is judged by the caller on the ranking's best cosines, not on this page: page 2
    of a query is exactly as weak as page 1.
    """
    ids = np.asarray(ids, np.int64)
    scores = np.asarray(scores, np.float32)
    order = diversify(ids, scores, o, lookup, vectors) if len(ids) else np.zeros(0, np.int64)
    best = float(scores[order[0]]) if len(order) else None
    hits = [Hit(int(ids[j]), float(scores[j])) for j in order[o.offset:o.offset + o.k]]
    return SearchResult(hits=hits, weak_match=weak.weak, best_score=best, strategy=how,
                        weak=weak)

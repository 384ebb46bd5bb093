"""The candidate planner: how a filter's allowed ids meet the ANN index.

- no filter: a plain ANN search, over-fetched by the number of excluded ids;
- a broad filter: ANN search for ``need / fraction * overfetch`` candidates, post-filtered,
  with ``k`` growing x4 until the page is full -- filtering ANN candidates never leaves a page
  short as long as the catalog holds enough matches;
- a selective filter (few allowed ids, or the growing search would scan much of the index):
  exact search restricted to the allowed ids (:meth:`VectorIndex.search` with ``exact=True``).
  This is where naive post-filtering returns empty pages; here it is the cheapest path too.
"""

from __future__ import annotations

import math

import numpy as np

from index.vectors import VectorIndex
from retrieval.search.options import SearchConfig, SearchOptions
from retrieval.search.table import TrackTable

_NO_IDS = np.zeros(0, np.int64)


class CandidatePlanner:
    """Picks ANN, grown ANN or exact-subset search for each query, and cleans the hits."""

    def __init__(self, index: VectorIndex, table: TrackTable, config: SearchConfig) -> None:
        self.index = index
        self.table = table
        self.config = config

    def candidates(self, vector: np.ndarray, o: SearchOptions, need: int
                   ) -> tuple[np.ndarray, np.ndarray, str]:
        """Up to ``need`` best (ids, scores) passing filters and exclusions, and the strategy used.

        Best first; the strategy is ``ann``, ``ann-grown`` or ``exact-subset``.
        """
        q = vector[None, :]
        n_total = max(self.index.count, 1)
        excluded = np.fromiter(o.exclude_ids, np.int64, len(o.exclude_ids))
        allowed = self.table.match(o.filters)
        if allowed is not None and len(excluded):
            allowed = np.setdiff1d(allowed, excluded, assume_unique=True)
        if allowed is not None and len(allowed) == 0:
            ids, scores, how = np.zeros(0, np.int64), np.zeros(0, np.float32), "ann"
        elif allowed is not None and (
                len(allowed) <= max(self.config.exact_fraction * n_total, 4 * need)
                or len(allowed) <= self.config.exact_max and self.index.is_exact):
            ids, scores = self._exact(q, allowed, need, excluded)
            how = "exact-subset"
        else:
            ids, scores, how = self._grown(q, allowed, excluded, need, n_total)
        return ids[:need], scores[:need], how

    def _exact(self, q: np.ndarray, allowed: np.ndarray, need: int, excluded: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        s, i = self.index.search(q, min(need, len(allowed)), allowed=allowed, exact=True)
        return self.clean(i[0], s[0], None, excluded)

    def _grown(self, q: np.ndarray, allowed: np.ndarray | None, excluded: np.ndarray,
               need: int, n_total: int) -> tuple[np.ndarray, np.ndarray, str]:
        """ANN search over-fetched for the filter's selectivity, grown x4 until it fills the page.

        Exact instead when growing further would scan a large part of the index.
        """
        how = "ann"
        frac = 1.0 if allowed is None else len(allowed) / n_total
        kk = math.ceil((need + len(excluded)) / frac * (self.config.overfetch if
                                                        allowed is not None else 1.0))
        while True:
            kk = min(kk, n_total)
            s, i = self.index.search(q, kk)
            ids, scores = self.clean(i[0], s[0], allowed, excluded)
            if len(ids) >= need or kk >= n_total:
                break
            if allowed is not None and kk * 4 > n_total / 4:
                # Growing further would scan a large part of the index: exact is cheaper.
                ids, scores = self._exact(q, allowed, need, excluded)
                return ids, scores, "exact-subset"
            kk *= 4
            how = "ann-grown"
        return ids, scores, how

    def clean(self, ids: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None,
              excluded: np.ndarray = _NO_IDS) -> tuple[np.ndarray, np.ndarray]:
        """Index hits without padding (-1), disallowed, excluded or deleted tracks."""
        keep = ids >= 0
        if allowed is not None:
            keep &= np.isin(ids, allowed)
        if len(excluded):
            keep &= ~np.isin(ids, excluded)
        # A track deleted from the catalog is gone from the table first: never return it.
        keep &= np.fromiter((int(t) in self.table for t in ids), bool, len(ids))
        return ids[keep], scores[keep]

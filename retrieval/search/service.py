"""The search service: query -> embedding(s) -> vector index -> filters -> diverse, paged hits.

Modes: text, audio clip, track id ("more like this") and several positive and negative
examples at once, after Qdrant's recommend API (``average_vector`` or ``best_score``).
Filters are answered by the column store (:mod:`retrieval.search.table`), the candidates
found by the planner (:mod:`retrieval.search.planner`), and diversity and paging run on the
ranked candidate list (:mod:`retrieval.search.diversity`). Every result carries the
weak-match verdict of the encoder's detector (:mod:`retrieval.search.weak_match`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from index.vectors import IndexConfig, VectorIndex
from retrieval.encoders.base import Encoder, l2_normalize
from retrieval.errors import InvalidQueryError, RetrievalError, TrackNotFoundError
from retrieval.search.diversity import page
from retrieval.search.options import (
    Example,
    SearchConfig,
    SearchOptions,
    SearchResult,
    Strategy,
    is_blank,
)
from retrieval.search.planner import CandidatePlanner
from retrieval.search.table import TrackTable
from retrieval.search.weak_match import TOP_N, WeakMatch, WeakMatchDetector, load_detector

log = logging.getLogger(__name__)


class SearchService:
    """Answers every search mode against one encoder's vector index and track table.

    Args:
        encoder: the text-audio encoder whose index this is.
        index: its vector index.
        table: the column store of the catalog's metadata.
        config: tuning (limits, fallback weak-match threshold).
        detector: the weak-match detector; the one fitted for ``encoder.id`` when omitted
            (or the fixed-threshold fallback at ``config.weak_match_threshold``). Tests inject
            one to pin the verdict.
    """

    def __init__(self, encoder: Encoder, index: VectorIndex, table: TrackTable,
                 config: SearchConfig | None = None,
                 detector: WeakMatchDetector | None = None) -> None:
        if index.dim != encoder.dim:
            raise RetrievalError(f"index dimension {index.dim} != encoder {encoder.id!r} "
                                 f"dimension {encoder.dim}")
        self.encoder = encoder
        self.index = index
        self.table = table
        self.config = config or SearchConfig()
        self.detector = detector if detector is not None else load_detector(
            encoder.id, fallback_threshold=self.config.weak_match_threshold)
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()

    @classmethod
    def open(cls, encoder: Encoder, session_factory: Callable[[], Session],
             index_dir: Path | str, *, index_config: IndexConfig | None = None,
             config: SearchConfig | None = None,
             detector: WeakMatchDetector | None = None) -> SearchService:
        """Bring the encoder's index in line with the catalog and load the track table."""
        index = VectorIndex.open(index_dir, encoder.id, encoder.dim, session_factory,
                                 config=index_config)
        with session_factory() as session:
            table = TrackTable.load(session, encoder.id)
        return cls(encoder, index, table, config, detector)

    @property
    def planner(self) -> CandidatePlanner:
        """The candidate planner over the current index, table and config."""
        return CandidatePlanner(self.index, self.table, self.config)

    # ------------------------------------------------------------------ catalog changes

    def add_track(self, meta: Any, vector: np.ndarray) -> None:
        """Make a newly embedded track searchable at once (``meta``: a ``TrackMeta``)."""
        self.index.add([meta.id], np.asarray(vector, np.float32)[None, :])
        self.table.upsert(meta)

    def remove_track(self, track_id: int) -> bool:
        """Stop returning a track; True when it was searchable."""
        present = self.index.remove([track_id]) > 0
        present = track_id in self.table or present
        self.table.remove(track_id)
        return present

    # ------------------------------------------------------------------ query modes

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings ``[n, dim]`` through an LRU cache.

        Safe because an encoder is deterministic: its id names its exact weights.
        """
        out: list[np.ndarray | None] = []
        with self._text_lock:
            for t in texts:
                v = self._text_cache.get(t)
                if v is not None:
                    self._text_cache.move_to_end(t)
                out.append(v)
        missing = sorted({t for t, v in zip(texts, out, strict=True) if v is None})
        if missing:
            fresh = dict(zip(missing, np.asarray(self.encoder.embed_text(missing), np.float32),
                             strict=True))
            with self._text_lock:
                for t, v in fresh.items():
                    self._text_cache[t] = v
                    self._text_cache.move_to_end(t)
                while len(self._text_cache) > self.config.text_cache_size:
                    self._text_cache.popitem(last=False)
            out = [fresh[t] if v is None else v for t, v in zip(texts, out, strict=True)]
        if not out:
            return np.zeros((0, self.encoder.dim), np.float32)
        return np.stack(out).astype(np.float32)  # a copy: callers may modify it

    def search_text(self, text: str, options: SearchOptions | None = None, *,
                    prior_nn: np.ndarray | None = None) -> SearchResult:
        """Tracks that sound like a description ("a slow melancholy air on the fiddle").

        ``prior_nn``: per prior seed of the query, the cosine to its nearest catalog track
        (:func:`retrieval.search.generative.prior_neighbour_cosines`), for the weak verdict.
        """
        if not text or is_blank(text):
            raise InvalidQueryError("the text query is empty")
        vec = self.embed_texts([text])[0]
        return self.search_vector(vec, options, prior_nn=prior_nn, named=self.named_support(text))

    def named_support(self, text: str) -> float:
        """How much of the catalog has what ``text`` names (:mod:`retrieval.search.named`).

        Counted in the column store, so generated tracks count too: once backfill made
        bagpipe tracks, "bagpipe music" is no longer a hole.
        """
        from retrieval.search.filters import Filters
        from retrieval.search.named import named_support

        def count(named: dict[str, list[str]]) -> int:
            ids = self.table.match(Filters.from_values(named))
            return len(self.table) if ids is None else len(ids)

        return named_support(text, count, len(self.table))

    def search_audio(self, waveform: np.ndarray, options: SearchOptions | None = None
                     ) -> SearchResult:
        """Tracks that sound like a clip (mono float32 at ``encoder.sample_rate``)."""
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim != 1 or waveform.size == 0:
            raise InvalidQueryError(f"expected a non-empty mono waveform, got shape "
                                    f"{waveform.shape}")
        vec = self.encoder.embed_audio([waveform])[0]
        return self.search_vector(vec, options)

    def similar(self, track_id: int, options: SearchOptions | None = None) -> SearchResult:
        """More like this: neighbours of a catalog track, the track itself excluded."""
        options = options or SearchOptions()
        vec = self.track_vectors([track_id])[0]
        return self.search_vector(vec, _with_excluded(options, [track_id]))

    def recommend(self, positives: Sequence[Example], negatives: Sequence[Example] = (),
                  strategy: Strategy = "average_vector",
                  options: SearchOptions | None = None) -> SearchResult:
        """Tracks like the positives and unlike the negatives (Qdrant's recommend API).

        ``average_vector`` searches once from ``2 * mean(positives) - mean(negatives)``: cheap,
        and good when the positives agree. ``best_score`` searches around every positive and
        scores each candidate by its best positive similarity, or by minus its best negative
        similarity when a negative is closer: better when the positives are diverse (a reel
        *and* a chorale), at one search per positive. Example tracks are never returned.
        """
        options = options or SearchOptions()
        if not positives:
            raise InvalidQueryError("recommend needs at least one positive example")
        if strategy not in ("average_vector", "best_score"):
            raise InvalidQueryError(f"unknown strategy {strategy!r}; use 'average_vector' or "
                                    "'best_score'")
        pos = self.example_vectors(positives)
        neg = self.example_vectors(negatives) if negatives else None
        example_ids = [e for e in (*positives, *negatives) if isinstance(e, int)]
        options = _with_excluded(options, example_ids)
        if strategy == "average_vector":
            q = 2 * pos.mean(0) - (neg.mean(0) if neg is not None else pos.mean(0))
            return self.search_vector(l2_normalize(q[None, :])[0], options)
        return self._best_score(pos, neg, options)

    def _best_score(self, pos: np.ndarray, neg: np.ndarray | None, options: SearchOptions
                    ) -> SearchResult:
        """Recommend's ``best_score``: the union of every positive's neighbours, each by its best match.

        A candidate scores its best positive similarity, or minus its best negative one when
        that is closer.
        """
        need = max(self._pool_size(options), TOP_N)  # TOP_N: what the weak verdict reads
        cand: dict[int, float] = {}
        planner = self.planner
        for p in pos:
            ids, _, _ = planner.candidates(p, options, need)
            cand.update(dict.fromkeys(ids.tolist(), 0.0))
        ids = np.fromiter(cand, np.int64, len(cand))
        if len(ids) == 0:
            return self._page([], [], options, "best_score", self.detector.assess([]))
        v = self.index.reconstruct(ids)
        best_pos = (v @ pos.T).max(1)
        scores = best_pos
        if neg is not None:
            best_neg = (v @ neg.T).max(1)
            scores = np.where(best_pos >= best_neg, best_pos, -best_neg)
        order = np.argsort(-scores, kind="stable")
        weak = self.detector.assess(scores[order][:TOP_N])
        return self._page(ids[order], scores[order], options, "best_score", weak)

    def track_vectors(self, track_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors ``[n, dim]`` of catalog tracks; unknown ids raise TrackNotFoundError."""
        for t in track_ids:
            if t not in self.index or t not in self.table:
                raise TrackNotFoundError(t)
        return self.index.reconstruct(list(track_ids))

    def example_vectors(self, examples: Sequence[Example]) -> np.ndarray:
        """Unit vectors of example track ids (stored) and texts (embedded): ids first."""
        texts = [e for e in examples if isinstance(e, str)]
        ids = [e for e in examples if isinstance(e, int)]
        parts = []
        if ids:
            parts.append(self.track_vectors(ids))
        if texts:
            if any(is_blank(t) for t in texts):
                raise InvalidQueryError("an example text is empty")
            parts.append(self.embed_texts(texts))
        return np.concatenate(parts).astype(np.float32)

    # ------------------------------------------------------------------ the core

    def search_vector(self, vector: np.ndarray, options: SearchOptions | None = None, *,
                      prior_nn: np.ndarray | None = None, named: float | None = None) -> SearchResult:
        """Rank the catalog against one unit query vector ``[dim]``.

        ``prior_nn``: as in :meth:`search_text`; ``named``: :meth:`named_support` of the
        query's text (None for a query without one).
        """
        options = options or SearchOptions()
        self.validate(options)
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape[0] != self.index.dim:
            raise InvalidQueryError(f"query vector has dimension {vector.shape[0]}, the index "
                                    f"{self.index.dim}")
        pool = self._pool_size(options)
        # At least TOP_N candidates for the weak verdict; the page reads only the first
        # ``pool``, so a page is the same whatever the verdict needed.
        ids, scores, how = self.planner.candidates(vector, options, max(pool, TOP_N))
        weak = self.detector.assess(scores[:TOP_N], prior_nn, named)
        return self._page(ids[:pool], scores[:pool], options, how, weak)

    def validate(self, o: SearchOptions) -> None:
        """Raise InvalidQueryError for options outside the config's limits.

        The same limits hold for plain and generative search.

        An empty range (``tempo_min`` above ``tempo_max``) is not an error: it is a filter that
        no track passes, answered with an empty page, as the API's schema promises (a schema
        cannot say "min <= max", so refusing it would refuse a request the contract accepts).
        """
        c = self.config
        if not 1 <= o.k <= c.max_k:
            raise InvalidQueryError(f"k must be between 1 and {c.max_k}, got {o.k}")
        if not 0 <= o.offset <= c.max_offset:
            raise InvalidQueryError(f"offset must be between 0 and {c.max_offset}, "
                                    f"got {o.offset}")
        if o.mmr_lambda is not None and not 0.0 <= o.mmr_lambda <= 1.0:
            raise InvalidQueryError(f"mmr_lambda must be in [0, 1], got {o.mmr_lambda}")
        for name in ("max_per_piece", "max_per_artist"):
            v = getattr(o, name)
            if v is not None and v < 1:
                raise InvalidQueryError(f"{name} must be at least 1, got {v}")

    def _pool_size(self, o: SearchOptions) -> int:
        need = o.offset + o.k
        diverse = o.mmr_lambda is not None or o.max_per_piece or o.max_per_artist
        return need * self.config.pool_factor if diverse else need

    def _page(self, ids: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
              o: SearchOptions, how: str, weak: WeakMatch) -> SearchResult:
        return page(ids, scores, o, how, self.table.get, self.index.reconstruct, weak)


def _with_excluded(o: SearchOptions, ids: Iterable[int]) -> SearchOptions:
    return SearchOptions(k=o.k, offset=o.offset, filters=o.filters,
                         exclude_ids=frozenset(o.exclude_ids) | frozenset(ids),
                         mmr_lambda=o.mmr_lambda, max_per_piece=o.max_per_piece,
                         max_per_artist=o.max_per_artist)

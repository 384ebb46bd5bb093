"""The search service: query -> embedding(s) -> vector index -> filters -> diverse, paged hits.

Modes: text, audio clip, track id ("more like this") and several positive and negative
examples at once, after Qdrant's recommend API (``average_vector`` or ``best_score``).

Filters are answered from an in-memory column store of the catalog's filterable metadata
(:class:`TrackTable`), not from SQL per query: a filter becomes a sorted array of allowed track
ids in a few milliseconds even on a million tracks. How that array meets the ANN index depends
on how selective it is:

- no filter: a plain ANN search, over-fetched by the number of excluded ids;
- a broad filter: ANN search for ``need / fraction * overfetch`` candidates, post-filtered,
  with ``k`` growing x4 until the page is full -- filtering ANN candidates never leaves a page
  short as long as the catalog holds enough matches;
- a selective filter (few allowed ids, or the growing search would scan much of the index):
  exact search restricted to the allowed ids (:meth:`VectorIndex.search` with ``exact=True``).
  This is where naive post-filtering returns empty pages; here it is the cheapest path too.

Diversity (MMR and at most N per piece/artist) and pagination run on the ranked candidate
list, so page 2 is always the continuation of page 1 for the same query.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from collections.abc import Sequence as _Seq

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from index.models import Embedding, Track
from index.vectors import IndexConfig, VectorIndex
from retrieval.encoders.base import Encoder, l2_normalize
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

Strategy = Literal["average_vector", "best_score"]
CATEGORICAL = ("collection", "tags", "instruments", "key", "mode", "meter", "origin", "artist")


class InvalidQueryError(RetrievalError):
    """A query that cannot be answered as asked (bad k, empty examples...)."""


class TrackNotFoundError(RetrievalError):
    """A track id that the catalog (or this encoder's index) does not hold."""

    def __init__(self, track_id: int) -> None:
        super().__init__(f"track {track_id} not found")
        self.track_id = track_id


@dataclass(frozen=True)
class SearchConfig:
    """Tuning of the search service.

    Attributes:
        weak_match_threshold: a query whose best cosine score is below this is a *weak match*
            (a result state, never an error: callers may offer generation instead).
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
class Filters:
    """Metadata filters: values within a field match any of them, fields combine with AND.

    Text values match case-insensitively; ``tags`` and ``instruments`` match when the track
    carries any of the given values. Ranges are inclusive; a track without the value (no tempo
    known) never matches a range on it.
    """

    collection: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    mode: tuple[str, ...] = ()
    meter: tuple[str, ...] = ()
    origin: tuple[str, ...] = ()
    artist: tuple[str, ...] = ()
    tempo_min: float | None = None
    tempo_max: float | None = None
    duration_min: float | None = None
    duration_max: float | None = None

    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in CATEGORICAL) and all(
            v is None for v in (self.tempo_min, self.tempo_max, self.duration_min,
                                self.duration_max))


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
    track_id: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    """One page of hits (best first), the weak-match flag and how the page was found."""

    hits: list[Hit]
    weak_match: bool
    best_score: float | None
    strategy: str = "ann"


@dataclass
class TrackMeta:
    """The filterable and diversity-relevant fields of one track."""

    id: int
    collection: str | None = None
    tags: Sequence[str] = ()
    instruments: Sequence[str] = ()
    key: str | None = None
    mode: str | None = None
    meter: str | None = None
    origin: str | None = None
    artist: str | None = None
    piece_id: str | None = None
    tempo_bpm: float | None = None
    duration_s: float | None = None

    @classmethod
    def from_track(cls, t: Track) -> TrackMeta:
        return cls(id=t.id, collection=t.collection, tags=tuple(t.tags or ()),
                   instruments=tuple(t.instruments or ()), key=t.key, mode=t.mode,
                   meter=t.meter, origin=t.origin, artist=t.artist, piece_id=t.piece_id,
                   tempo_bpm=t.tempo_bpm, duration_s=t.duration_s)


def _norm(v: str) -> str:
    return v.strip().casefold()


class TrackTable:
    """In-memory column store of track metadata: inverted lists per value, numeric arrays.

    Kept in step with the catalog by :class:`SearchService` on every add and delete.
    """

    def __init__(self, rows: Iterable[TrackMeta] = ()) -> None:
        self._rows: dict[int, TrackMeta] = {}
        self._inv: dict[str, dict[str, set[int]]] = {f: {} for f in CATEGORICAL}
        self._lock = threading.RLock()
        self._cols: dict[str, np.ndarray] | None = None
        self._inv_cache: dict[tuple[str, str], np.ndarray] = {}
        for r in rows:
            self.upsert(r)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._rows

    def get(self, track_id: int) -> TrackMeta | None:
        return self._rows.get(track_id)

    def upsert(self, meta: TrackMeta) -> None:
        with self._lock:
            self.remove(meta.id)
            self._rows[meta.id] = meta
            for f, values in self._values(meta):
                for v in values:
                    self._inv[f].setdefault(v, set()).add(meta.id)
            self._changed()

    def remove(self, track_id: int) -> None:
        with self._lock:
            meta = self._rows.pop(track_id, None)
            if meta is None:
                return
            for f, values in self._values(meta):
                for v in values:
                    self._inv[f].get(v, set()).discard(track_id)
            self._changed()

    def _changed(self) -> None:
        self._cols = None
        self._inv_cache.clear()

    @staticmethod
    def _values(meta: TrackMeta) -> Iterable[tuple[str, list[str]]]:
        for f in CATEGORICAL:
            v = getattr(meta, f)
            if v is None:
                continue
            items = [v] if isinstance(v, str) else list(v)
            yield f, [_norm(x) for x in items if isinstance(x, str) and x.strip()]

    def _columns(self) -> dict[str, np.ndarray]:
        if self._cols is None:
            ids = np.fromiter(self._rows.keys(), np.int64, len(self._rows))
            order = np.argsort(ids)
            rows = list(self._rows.values())

            def num(name: str) -> np.ndarray:
                a = np.array([getattr(r, name) if getattr(r, name) is not None else np.nan
                              for r in rows], np.float64)
                return a[order]

            self._cols = {"id": ids[order], "tempo_bpm": num("tempo_bpm"),
                          "duration_s": num("duration_s")}
        return self._cols

    def _ids_for(self, f: str, value: str) -> np.ndarray:
        key = (f, value)
        if key not in self._inv_cache:
            self._inv_cache[key] = np.sort(np.fromiter(self._inv[f].get(value, ()), np.int64))
        return self._inv_cache[key]

    def match(self, filters: Filters) -> np.ndarray | None:
        """Sorted ids passing ``filters``; ``None`` when the filters are empty (all pass)."""
        if filters.is_empty():
            return None
        with self._lock:
            result: np.ndarray | None = None
            for f in CATEGORICAL:
                values = getattr(filters, f)
                if not values:
                    continue
                parts = [self._ids_for(f, _norm(v)) for v in values]
                ids = np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0]
                result = ids if result is None else np.intersect1d(result, ids, True)
            cols = self._columns()
            mask = None
            for col, lo, hi in (("tempo_bpm", filters.tempo_min, filters.tempo_max),
                                ("duration_s", filters.duration_min, filters.duration_max)):
                if lo is None and hi is None:
                    continue
                with np.errstate(invalid="ignore"):
                    m = ~np.isnan(cols[col])
                    if lo is not None:
                        m &= cols[col] >= lo
                    if hi is not None:
                        m &= cols[col] <= hi
                mask = m if mask is None else mask & m
            if mask is not None:
                ids = cols["id"][mask]
                result = ids if result is None else np.intersect1d(result, ids, True)
            return result if result is not None else cols["id"]

    @classmethod
    def load(cls, session: Session, encoder_id: str) -> TrackTable:
        """The metadata of every track embedded by ``encoder_id``."""
        rows = session.execute(
            select(Track.id, Track.collection, Track.tags, Track.instruments, Track.key,
                   Track.mode, Track.meter, Track.origin, Track.artist, Track.piece_id,
                   Track.tempo_bpm, Track.duration_s)
            .join(Embedding, Embedding.track_id == Track.id)
            .where(Embedding.encoder_id == encoder_id)).all()
        return cls(TrackMeta(id=r[0], collection=r[1], tags=tuple(r[2] or ()),
                             instruments=tuple(r[3] or ()), key=r[4], mode=r[5], meter=r[6],
                             origin=r[7], artist=r[8], piece_id=r[9], tempo_bpm=r[10],
                             duration_s=r[11]) for r in rows)


Example = int | str  # a track id or a text


class SearchService:
    """Answers every search mode against one encoder's vector index and track table."""

    def __init__(self, encoder: Encoder, index: VectorIndex, table: TrackTable,
                 config: SearchConfig | None = None) -> None:
        if index.dim != encoder.dim:
            raise RetrievalError(f"index dimension {index.dim} != encoder {encoder.id!r} "
                                 f"dimension {encoder.dim}")
        self.encoder = encoder
        self.index = index
        self.table = table
        self.config = config or SearchConfig()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_lock = threading.Lock()

    @classmethod
    def open(cls, encoder: Encoder, session_factory: Callable[[], Session],
             index_dir: Path | str, *, index_config: IndexConfig | None = None,
             config: SearchConfig | None = None) -> SearchService:
        """Bring the encoder's index in line with the catalog and load the track table."""
        index = VectorIndex.open(index_dir, encoder.id, encoder.dim, session_factory,
                                 config=index_config)
        with session_factory() as session:
            table = TrackTable.load(session, encoder.id)
        return cls(encoder, index, table, config)

    # ------------------------------------------------------------------ catalog changes

    def add_track(self, meta: TrackMeta, vector: np.ndarray) -> None:
        """Make a newly embedded track searchable at once."""
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
        """Unit text embeddings ``[n, dim]`` through an LRU cache (an encoder is deterministic:
        its id names its exact weights)."""
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

    def search_text(self, text: str, options: SearchOptions | None = None) -> SearchResult:
        """Tracks that sound like a description ("a slow melancholy air on the fiddle")."""
        if not text or not text.strip():
            raise InvalidQueryError("the text query is empty")
        vec = self.embed_texts([text])[0]
        return self.search_vector(vec, options)

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
        pos = self._example_vectors(positives)
        neg = self._example_vectors(negatives) if negatives else None
        example_ids = [e for e in (*positives, *negatives) if isinstance(e, int)]
        options = _with_excluded(options, example_ids)
        if strategy == "average_vector":
            q = 2 * pos.mean(0) - (neg.mean(0) if neg is not None else pos.mean(0))
            return self.search_vector(l2_normalize(q[None, :])[0], options)
        need = self._pool_size(options)
        cand: dict[int, float] = {}
        for p in pos:
            ids, _ = self._candidates(p, options, need)
            cand.update(dict.fromkeys(ids.tolist(), 0.0))
        ids = np.fromiter(cand, np.int64, len(cand))
        if len(ids) == 0:
            return self._page([], [], options, "best_score")
        v = self.index.reconstruct(ids)
        best_pos = (v @ pos.T).max(1)
        scores = best_pos
        if neg is not None:
            best_neg = (v @ neg.T).max(1)
            scores = np.where(best_pos >= best_neg, best_pos, -best_neg)
        order = np.argsort(-scores, kind="stable")
        return self._page(ids[order], scores[order], options, "best_score")

    def track_vectors(self, track_ids: Sequence[int]) -> np.ndarray:
        """Stored vectors ``[n, dim]`` of catalog tracks; unknown ids raise TrackNotFoundError."""
        for t in track_ids:
            if t not in self.index or t not in self.table:
                raise TrackNotFoundError(t)
        return self.index.reconstruct(list(track_ids))

    def _example_vectors(self, examples: Sequence[Example]) -> np.ndarray:
        texts = [e for e in examples if isinstance(e, str)]
        ids = [e for e in examples if isinstance(e, int)]
        parts = []
        if ids:
            parts.append(self.track_vectors(ids))
        if texts:
            if any(not t.strip() for t in texts):
                raise InvalidQueryError("an example text is empty")
            parts.append(self.embed_texts(texts))
        return np.concatenate(parts).astype(np.float32)

    # ------------------------------------------------------------------ the core

    def search_vector(self, vector: np.ndarray, options: SearchOptions | None = None
                      ) -> SearchResult:
        """Rank the catalog against one unit query vector ``[dim]``."""
        options = options or SearchOptions()
        self._validate(options)
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape[0] != self.index.dim:
            raise InvalidQueryError(f"query vector has dimension {vector.shape[0]}, the index "
                                    f"{self.index.dim}")
        ids, scores, how = self._candidates(vector, options, self._pool_size(options),
                                            with_strategy=True)
        return self._page(ids, scores, options, how)

    def _validate(self, o: SearchOptions) -> None:
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
        f = o.filters
        for lo, hi, what in ((f.tempo_min, f.tempo_max, "tempo"),
                             (f.duration_min, f.duration_max, "duration")):
            if lo is not None and hi is not None and lo > hi:
                raise InvalidQueryError(f"{what} range is empty: min {lo} > max {hi}")

    def _pool_size(self, o: SearchOptions) -> int:
        need = o.offset + o.k
        diverse = o.mmr_lambda is not None or o.max_per_piece or o.max_per_artist
        return need * self.config.pool_factor if diverse else need

    def _candidates(self, vector: np.ndarray, o: SearchOptions, need: int,
                    with_strategy: bool = False) -> Any:
        """Up to ``need`` best (ids, scores) passing filters and exclusions, best first."""
        q = vector[None, :]
        n_total = max(self.index.count, 1)
        excluded = np.fromiter(o.exclude_ids, np.int64, len(o.exclude_ids))
        allowed = self.table.match(o.filters)
        how = "ann"
        if allowed is not None and len(excluded):
            allowed = np.setdiff1d(allowed, excluded, assume_unique=True)
        if allowed is not None and len(allowed) == 0:
            ids, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        elif allowed is not None and (
                len(allowed) <= max(self.config.exact_fraction * n_total, 4 * need)
                or len(allowed) <= self.config.exact_max and self.index.is_exact):
            how = "exact-subset"
            s, i = self.index.search(q, min(need, len(allowed)), allowed=allowed, exact=True)
            ids, scores = self._clean(i[0], s[0], None, excluded)
        else:
            frac = 1.0 if allowed is None else len(allowed) / n_total
            kk = math.ceil((need + len(excluded)) / frac * (self.config.overfetch if
                                                            allowed is not None else 1.0))
            while True:
                kk = min(kk, n_total)
                s, i = self.index.search(q, kk)
                ids, scores = self._clean(i[0], s[0], allowed, excluded)
                if len(ids) >= need or kk >= n_total:
                    break
                if allowed is not None and kk * 4 > n_total / 4:
                    # Growing further would scan a large part of the index: exact is cheaper.
                    how = "exact-subset"
                    s, i = self.index.search(q, min(need, len(allowed)), allowed=allowed,
                                             exact=True)
                    ids, scores = self._clean(i[0], s[0], None, excluded)
                    break
                kk *= 4
                how = "ann-grown"
        ids, scores = ids[:need], scores[:need]
        return (ids, scores, how) if with_strategy else (ids, scores)

    def _clean(self, ids: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None,
               excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = ids >= 0
        if allowed is not None:
            keep &= np.isin(ids, allowed)
        if len(excluded):
            keep &= ~np.isin(ids, excluded)
        # A track deleted from the catalog is gone from the table first: never return it.
        keep &= np.fromiter((int(t) in self.table for t in ids), bool, len(ids))
        return ids[keep], scores[keep]

    def _page(self, ids: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
              o: SearchOptions, how: str) -> SearchResult:
        ids = np.asarray(ids, np.int64)
        scores = np.asarray(scores, np.float32)
        order = self._diversify(ids, scores, o) if len(ids) else np.zeros(0, np.int64)
        best = float(scores[order[0]]) if len(order) else None
        page = order[o.offset:o.offset + o.k]
        hits = [Hit(int(ids[j]), float(scores[j])) for j in page]
        weak = best is None or best < self.config.weak_match_threshold
        return SearchResult(hits=hits, weak_match=weak, best_score=best, strategy=how)

    def _diversify(self, ids: np.ndarray, scores: np.ndarray, o: SearchOptions) -> np.ndarray:
        """Positions into ``ids`` in result order, honouring MMR and the per-group caps."""
        need = o.offset + o.k
        caps: list[tuple[str, int]] = [(f, c) for f, c in (("piece_id", o.max_per_piece),
                                                          ("artist", o.max_per_artist)) if c]
        counts: dict[tuple[str, str], int] = {}

        def allowed_by_caps(j: int) -> bool:
            meta = self.table.get(int(ids[j]))
            for f, cap in caps:
                v = getattr(meta, f, None) if meta else None
                if v is not None and counts.get((f, v), 0) >= cap:
                    return False
            return True

        def take(j: int) -> None:
            meta = self.table.get(int(ids[j]))
            for f, _ in caps:
                v = getattr(meta, f, None) if meta else None
                if v is not None:
                    counts[(f, v)] = counts.get((f, v), 0) + 1

        if o.mmr_lambda is None:
            chosen = []
            for j in range(len(ids)):
                if len(chosen) >= need:
                    break
                if allowed_by_caps(j):
                    take(j)
                    chosen.append(j)
            return np.asarray(chosen, np.int64)
        # MMR: relevance traded against similarity to what is already chosen.
        lam = o.mmr_lambda
        vecs = self.index.reconstruct(ids)
        sim = vecs @ vecs.T
        max_sim = np.full(len(ids), -np.inf)
        remaining = np.ones(len(ids), bool)
        chosen = []
        while len(chosen) < need and remaining.any():
            redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
            mmr = np.where(remaining, lam * scores - (1 - lam) * redundancy, -np.inf)
            j = int(np.argmax(mmr))
            remaining[j] = False
            if not allowed_by_caps(j):
                continue
            take(j)
            chosen.append(j)
            max_sim = np.maximum(max_sim, sim[j])
        return np.asarray(chosen, np.int64)


def _with_excluded(o: SearchOptions, ids: Iterable[int]) -> SearchOptions:
    return SearchOptions(k=o.k, offset=o.offset, filters=o.filters,
                         exclude_ids=frozenset(o.exclude_ids) | frozenset(ids),
                         mmr_lambda=o.mmr_lambda, max_per_piece=o.max_per_piece,
                         max_per_artist=o.max_per_artist)

# ---- TEMPORARY (reshape-api worktree only; replaced by retrieval/search/fields.py at merge)

#: ``categorical``: one value per track; ``list``: a track holds several (tags, instruments);
#: ``range``: a numeric column filtered by an inclusive min/max.
FilterKind = Literal["categorical", "list", "range"]


@dataclass(frozen=True)
class FilterField:
    """One filterable column of the catalog.

    Attributes:
        name: key in :class:`Filters` and in the API's JSON body ("collection", "tempo"); a
            range field appears as ``<name>_min`` / ``<name>_max``.
        column: attribute of :class:`index.models.Track` and of ``TrackMeta`` ("tempo_bpm").
        kind: see :data:`FilterKind`.
        help: one line for OpenAPI and the web page.
        param: query-parameter name when it differs from ``name`` ("instrument": one value
            per repeated parameter reads better in the singular).
        lo / hi: range kinds: the smallest / largest bound the API accepts.
        unit: range kinds: the unit shown beside the bounds ("BPM", "s").
    """

    name: str
    column: str
    kind: FilterKind
    help: str
    param: str | None = None
    lo: float = 0.0
    hi: float = 1e6
    unit: str = ""

    @property
    def query_name(self) -> str:
        """The query-parameter name: ``param`` when given, else ``name``."""
        return self.param or self.name

    @property
    def keys(self) -> tuple[str, ...]:
        """This field's attribute names in :class:`Filters` (``tempo_min``, ``tempo_max``)."""
        return (f"{self.name}_min", f"{self.name}_max") if self.kind == "range" else (self.name,)


FILTER_FIELDS: tuple[FilterField, ...] = (
    FilterField("collection", "collection", "categorical", "Source collection (e.g. oneill, bach)."),
    FilterField("tags", "tags", "list", "Tracks carrying any of these tags."),
    FilterField("instruments", "instruments", "list", "Tracks featuring any of these instruments.",
                param="instrument"),
    FilterField("key", "key", "categorical", "Tonic of the key (e.g. D, G)."),
    FilterField("mode", "mode", "categorical", "Mode (major, minor, dorian...)."),
    FilterField("meter", "meter", "categorical", "Time signature (e.g. 6/8)."),
    FilterField("origin", "origin", "categorical", "catalog (ingested) or generated."),
    FilterField("artist", "artist", "categorical", "Artist or composer."),
    FilterField("tempo", "tempo_bpm", "range", "Tempo in beats per minute.", lo=0.0, hi=1000.0,
                unit="BPM"),
    FilterField("duration", "duration_s", "range", "Duration in seconds.", lo=0.0, hi=1e6,
                unit="s"),
)


def value_fields(fields: Sequence[FilterField]) -> tuple[FilterField, ...]:
    """The categorical and list fields (answered from inverted lists), in declaration order."""
    return tuple(f for f in fields if f.kind != "range")


def range_fields(fields: Sequence[FilterField]) -> tuple[FilterField, ...]:
    """The range fields (answered from numeric columns), in declaration order."""
    return tuple(f for f in fields if f.kind == "range")


def _from_values(cls: type, values: dict) -> Filters:
    kw = {}
    for k, v in values.items():
        kw[k] = v if k.endswith(("_min", "_max")) else ((v,) if isinstance(v, str) else tuple(v or ()))
    return cls(**kw)


Filters.from_values = classmethod(_from_values)  # type: ignore[attr-defined]

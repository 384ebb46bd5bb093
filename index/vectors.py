"""The vector index: one FAISS index per encoder id, whose ids are track ids.

The catalog database is the source of truth; an index on disk is a cache of its ``embeddings``
rows for one encoder. That is why every saved index carries a manifest (encoder id, dimension,
count, factory string and a database *watermark*): at start :meth:`VectorIndex.open` compares
the manifest with the database and either applies the difference (new or deleted tracks) or
rebuilds from scratch, so a crash between a database write and an index save never serves
stale results for long.

The index type is a FAISS factory string, the one tuning surface (see :func:`choose_factory`).
Every index is wrapped in ``IDMap2`` so FAISS ids are track ids. Types that cannot delete in
place (HNSW, IVF under ``IDMap2``) keep a set of *tombstones* that every search excludes
through an ``IDSelector``; once tombstones pass a fraction of the index it is rebuilt, so
they never grow without bound.

Example:
    >>> vi = VectorIndex.create("enc@1", dim=4)
    >>> vi.add(np.array([7]), np.eye(4, dtype=np.float32)[:1])
    >>> vi.search(np.eye(4, dtype=np.float32)[:1], k=1)[1].tolist()
    [[7]]
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from index.errors import CatalogError
from index.models import Embedding

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
# Rebuild (instead of patching) when this fraction of the index is tombstoned or changed.
REBUILD_FRACTION = 0.2


@dataclass(frozen=True)
class IndexConfig:
    """How to build and query an index.

    Attributes:
        factory: a FAISS factory string without the ``IDMap2`` prefix (``"Flat"``, ``"HNSW32"``,
            ``"IVF1024,Flat"``, ``"IVF4096,PQ64"``...); ``None`` chooses by catalog size.
        device: ``"auto"`` (GPU when faiss-gpu and a CUDA device exist), ``"cpu"`` or ``"cuda"``.
        ef_search: HNSW beam width at query time (recall vs speed).
        ef_construction: HNSW beam width at build time.
        nprobe: IVF lists visited per query.
        threads: FAISS OpenMP threads (0 keeps the library default).
    """

    factory: str | None = None
    device: str = "auto"
    ef_search: int = 128
    ef_construction: int = 80
    nprobe: int = 64
    threads: int = 0


@dataclass
class Watermark:
    """What the database held for one encoder when the index was last in sync with it.

    ``max_embedding_id`` finds new rows cheaply (``id > watermark``); ``count`` catches
    deletions, which leave no trace in the maximum.
    """

    max_embedding_id: int = 0
    count: int = 0


@dataclass
class Manifest:
    """The JSON written beside each index file; it names the file, so swapping it is the commit."""

    encoder_id: str
    dim: int
    count: int
    factory: str
    watermark: Watermark
    index_file: str
    tombstones: list[int] = field(default_factory=list)
    faiss_version: str = faiss.__version__
    saved_at: float = 0.0
    version: int = MANIFEST_VERSION

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["watermark"] = Watermark(**data["watermark"])
        return cls(**data)


def choose_factory(n: int, dim: int) -> str:
    """The factory string for a catalog of ``n`` vectors when none is configured.

    The rule, readable on purpose:

    - below 50,000 vectors: ``Flat`` -- exact, and an exact scan of 50k x 512 floats still
      answers in a few milliseconds, so approximation buys nothing;
    - up to 5 million: ``HNSW32`` -- the best recall/speed trade-off on a CPU (recall@10 >= 0.95
      at >10x the speed of exact search on 1M vectors, see ``benchmarks/RESULTS.md``), at
      ~256 extra bytes per vector;
    - above: ``IVF{4*sqrt(n)},SQ8`` -- HNSW's full-precision vectors no longer fit
      comfortably in memory; 8-bit scalar quantisation keeps one byte per dimension at
      near-exact distances (PQ at ``dim/8`` bytes costs too much recall on 512-d embeddings:
      ~0.75 recall@10 in the benchmark). Configure ``IVF...,PQ...np`` when memory rules.

    Args:
        n: number of vectors the index will hold.
        dim: their dimension.
    """
    if n < 50_000:
        return "Flat"
    if n <= 5_000_000:
        return "HNSW32"
    nlist = 1 << int(round(math.log2(4 * math.sqrt(n))))
    return f"IVF{nlist},SQ8"


def _safe_name(encoder_id: str) -> str:
    """A file name for an encoder id (ids may contain ``/``, ``@``, ``:``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)


def _gpu_available(device: str) -> bool:
    if device == "cpu":
        return False
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "cuda" and n == 0:
        raise CatalogError("device='cuda' was asked for, but FAISS sees no GPU (install faiss-gpu)")
    return n > 0


def _as_ids(ids: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def _as_vectors(x: Any, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise CatalogError(f"vectors of shape {x.shape} do not match the index dimension {dim}")
    return x


class VectorIndex:
    """A FAISS index over track ids for one encoder, with tombstones, manifest and sync.

    Thread safety: a lock serialises writes against searches, because FAISS indexes are not safe
    for concurrent add and search; searches themselves run in parallel with each other.
    """

    def __init__(self, encoder_id: str, dim: int, factory: str, index: faiss.Index,
                 config: IndexConfig | None = None) -> None:
        self.encoder_id = encoder_id
        self.dim = dim
        self.factory = factory
        self.config = config or IndexConfig()
        self._index = index
        self._tombstones: set[int] = set()
        self._watermark = Watermark()
        self._lock = threading.RLock()
        self._gpu_index: faiss.Index | None = None
        self._id_pos: tuple[np.ndarray, np.ndarray] | None = None  # (sorted ids, positions)
        if self.config.threads:
            faiss.omp_set_num_threads(self.config.threads)
        self._apply_search_params()

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(cls, encoder_id: str, dim: int, *, factory: str | None = None,
               expected_size: int = 0, config: IndexConfig | None = None) -> VectorIndex:
        """An empty index; ``factory`` (or ``config.factory``) wins over the size rule."""
        config = config or IndexConfig()
        factory = factory or config.factory or choose_factory(expected_size, dim)
        try:
            inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as e:
            raise CatalogError(f"invalid FAISS factory string {factory!r}: {e}") from e
        hnsw = _hnsw_of(inner)
        if hnsw is not None:
            hnsw.hnsw.efConstruction = config.ef_construction
        return cls(encoder_id, dim, factory, faiss.IndexIDMap2(inner), config)

    @classmethod
    def build(cls, encoder_id: str, ids: np.ndarray, vectors: np.ndarray, *,
              factory: str | None = None, config: IndexConfig | None = None,
              train_size: int = 100_000, seed: int = 0) -> VectorIndex:
        """An index holding ``vectors`` ``[n, dim]`` under ``ids`` ``[n]``, trained if needed."""
        vectors = _as_vectors(vectors, np.asarray(vectors).shape[-1])
        vi = cls.create(encoder_id, vectors.shape[1], factory=factory,
                        expected_size=len(vectors), config=config)
        vi.train(vectors, train_size=train_size, seed=seed)
        vi.add(ids, vectors)
        return vi

    def train(self, vectors: np.ndarray, *, train_size: int = 100_000, seed: int = 0) -> None:
        """Train quantisers (IVF/PQ) on a random sample; a no-op for Flat and HNSW."""
        if self._index.is_trained:
            return
        vectors = _as_vectors(vectors, self.dim)
        if len(vectors) == 0:
            raise CatalogError(f"index {self.factory!r} needs training vectors, got none")
        if len(vectors) > train_size:
            rng = np.random.default_rng(seed)
            vectors = vectors[np.sort(rng.choice(len(vectors), train_size, replace=False))]
        ivf = _ivf_of(self._index.index)
        if ivf is not None and len(vectors) < ivf.nlist:
            raise CatalogError(
                f"factory {self.factory!r} needs at least {ivf.nlist} training vectors, "
                f"got {len(vectors)}; use 'Flat' or fewer lists")
        self._index.train(vectors)
        if ivf is not None:
            # reconstruct() (MMR, exact subsets, rebuilds) needs a direct map.
            ivf.set_direct_map_type(faiss.DirectMap.Array)

    # ------------------------------------------------------------------ properties

    @property
    def count(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def watermark(self) -> Watermark:
        return self._watermark

    @property
    def supports_remove(self) -> bool:
        """Whether deletes are physical (Flat) rather than tombstones (HNSW, IVF).

        ``IDMap2.remove_ids`` renumbers the inner index as a flat array would; HNSW cannot
        delete at all and IVF keeps its own labels, so both use tombstones instead.
        """
        return self.is_exact

    @property
    def is_exact(self) -> bool:
        """Whether a plain search is exhaustive (a Flat index)."""
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexFlat)

    def ids(self) -> np.ndarray:
        """The live track ids, sorted."""
        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._tombstones:
            all_ids = all_ids[~np.isin(all_ids, np.fromiter(self._tombstones, np.int64))]
        return np.sort(all_ids)

    def __contains__(self, track_id: object) -> bool:
        if not isinstance(track_id, int | np.integer) or int(track_id) in self._tombstones:
            return False
        return bool(self._stored(_as_ids([track_id]))[0])

    def __len__(self) -> int:
        return self.count

    # ------------------------------------------------------------------ writes

    def add(self, ids: Any, vectors: Any) -> None:
        """Add (or replace) vectors ``[n, dim]`` under track ids ``[n]``.

        Replacing an id that an HNSW/IVF index already holds forces a rebuild from the index's own
        stored vectors, since HNSW cannot delete; re-embedding under the same encoder id is rare
        (an encoder id names fixed weights), so this stays cheap in practice.
        """
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dim)
        if len(ids) != len(vectors):
            raise CatalogError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids):
            raise CatalogError("duplicate track ids in one add() call")
        if len(ids) == 0:
            return
        with self._lock:
            present = ids[self._stored(ids)].tolist()
            if present and not self.supports_remove:
                keep = self.ids()
                keep = keep[~np.isin(keep, ids)]
                old = self.reconstruct(keep)
                self._rebuild_from(np.concatenate([keep, ids]), np.concatenate([old, vectors]))
                return
            if present:
                self._index.remove_ids(np.asarray(present, dtype=np.int64))
            self._tombstones.difference_update(int(i) for i in ids)
            if not self._index.is_trained:
                self.train(vectors)
            self._index.add_with_ids(vectors, ids)
            self._invalidate()

    def remove(self, ids: Any) -> int:
        """Delete track ids; returns how many were present. Deleted ids never come back."""
        ids = _as_ids(ids)
        with self._lock:
            present = [int(i) for i in ids[self._stored(ids)] if int(i) not in self._tombstones]
            if not present:
                return 0
            if self.supports_remove:
                self._index.remove_ids(np.asarray(present, dtype=np.int64))
            else:
                self._tombstones.update(present)
                if len(self._tombstones) > REBUILD_FRACTION * max(1, self._index.ntotal):
                    keep = self.ids()
                    self._rebuild_from(keep, self.reconstruct(keep))
            self._invalidate()
            return len(present)

    def _rebuild_from(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        fresh = VectorIndex.build(self.encoder_id, ids, vectors, factory=self.factory,
                                  config=self.config)
        self._index = fresh._index
        self._tombstones = set()
        self._invalidate()
        self._apply_search_params()

    def _invalidate(self) -> None:
        self._gpu_index = None
        self._id_pos = None

    def _apply_search_params(self) -> None:
        hnsw = _hnsw_of(self._index.index)
        if hnsw is not None:
            hnsw.hnsw.efSearch = self.config.ef_search
        ivf = _ivf_of(self._index.index)
        if ivf is not None:
            ivf.nprobe = min(self.config.nprobe, ivf.nlist)

    # ------------------------------------------------------------------ reads

    def search(self, queries: Any, k: int, *, allowed: np.ndarray | None = None,
               exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest live vectors to each query by inner product (cosine for unit rows).

        Args:
            queries: float32 ``[q, dim]`` (or ``[dim]``).
            k: neighbours per query; rows are padded with id -1 / score -inf when fewer exist.
            allowed: when given, only these track ids may be returned.
            exact: with ``allowed``, scan exactly those ids (brute force over the subset) rather
                than the approximate structure -- what selective filters need, since an ANN
                search restricted to a small subset loses recall or returns short pages.

        Returns:
            ``(scores [q, k] float32, ids [q, k] int64)``, best first.
        """
        queries = _as_vectors(queries, self.dim)
        if k <= 0:
            raise CatalogError(f"k must be positive, got {k}")
        if allowed is not None:
            allowed = _as_ids(allowed)
            if self._tombstones:
                allowed = allowed[~np.isin(allowed, np.fromiter(self._tombstones, np.int64))]
            if exact:
                return self._exact_subset(queries, allowed, k)
        with self._lock:
            params = self._params(allowed, k)
            if params is None and self._index.ntotal and self._use_gpu():
                return self._gpu_search(queries, k)
            if self._index.ntotal == 0:
                return _empty(len(queries), k)
            scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def _params(self, allowed: np.ndarray | None, k: int = 0) -> faiss.SearchParameters | None:
        sel = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(allowed)
        elif self._tombstones:
            sel = faiss.IDSelectorNot(
                faiss.IDSelectorBatch(np.fromiter(self._tombstones, np.int64)))
        inner = self._index.index
        # Deep HNSW searches (over-fetching for filters) need a beam wider than k itself,
        # or recall at depth collapses (0.63 at k=640 with efSearch=k in the tests).
        wide = _hnsw_of(inner) is not None and 2 * k > self.config.ef_search
        if sel is None and not wide:
            return None
        if _hnsw_of(inner) is not None:
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.config.ef_search, min(2 * k, 4096))
        elif _ivf_of(inner) is not None:
            params = faiss.SearchParametersIVF()
            params.nprobe = min(self.config.nprobe, _ivf_of(inner).nlist)
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
            params._keep = sel  # the selector must outlive the call; SWIG does not hold it
        return params

    def _exact_subset(self, queries: np.ndarray, allowed: np.ndarray,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the allowed ids, from the index's own stored vectors."""
        with self._lock:
            allowed = allowed[self._present_mask(allowed)]
            if len(allowed) == 0:
                return _empty(len(queries), k)
            if self.is_exact:
                params = self._params(allowed)
                return self._index.search(queries, k, params=params)
            ivf = _ivf_of(self._index.index)
            if ivf is not None:
                # Visit every list, restricted to the subset: exact for IVF,Flat, and as exact
                # as the codes allow for PQ/SQ (which keep no full-precision vectors).
                params = faiss.SearchParametersIVF()
                params.nprobe = ivf.nlist
                params.sel = sel = faiss.IDSelectorBatch(allowed)
                params._keep = sel
                return self._index.search(queries, k, params=params)
            vectors = self.reconstruct(allowed)
        scores = queries @ vectors.T
        kk = min(k, len(allowed))
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        out_s, out_i = _empty(len(queries), k)
        out_s[:, :kk] = np.take_along_axis(top_scores, order, axis=1)
        out_i[:, :kk] = allowed[top]
        return out_s, out_i

    def _stored(self, ids: np.ndarray) -> np.ndarray:
        """Which ids the FAISS index physically holds (tombstoned ones included)."""
        sorted_ids, _ = self._positions()
        if len(sorted_ids) == 0:
            return np.zeros(len(ids), bool)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return sorted_ids[pos] == ids

    def _present_mask(self, ids: np.ndarray) -> np.ndarray:
        ok = self._stored(ids)
        if self._tombstones:
            ok &= ~np.isin(ids, np.fromiter(self._tombstones, np.int64))
        return ok

    def _positions(self) -> tuple[np.ndarray, np.ndarray]:
        if self._id_pos is None:
            id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            order = np.argsort(id_map, kind="stable")
            self._id_pos = (id_map[order], order.astype(np.int64))
        return self._id_pos

    def reconstruct(self, ids: Any) -> np.ndarray:
        """Stored vectors ``[n, dim]`` for track ids (approximate for PQ/SQ indexes)."""
        ids = _as_ids(ids)
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            sorted_ids, order = self._positions()
            pos = np.searchsorted(sorted_ids, ids)
            last = len(sorted_ids) - 1
            bad = (pos > last) | (sorted_ids[np.minimum(pos, last)] != ids)
            if bad.any():
                raise CatalogError(f"track id {int(ids[bad][0])} is not in the index "
                                   f"for encoder {self.encoder_id!r}")
            internal = order[pos]
            storage = _flat_storage(self._index.index)
            if storage is not None:
                xb = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)
                return np.asarray(xb).reshape(-1, self.dim)[internal].copy()
            return np.stack([self._index.index.reconstruct(int(i)) for i in internal])

    # ------------------------------------------------------------------ GPU

    def _use_gpu(self) -> bool:
        if self.config.device == "cpu" or _hnsw_of(self._index.index) is not None:
            return False
        return _gpu_available(self.config.device)

    def _gpu_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._gpu_index is None:
            res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(res, 0, self._index)
            self._gpu_index._res = res
        return self._gpu_index.search(queries, k)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path | str, watermark: Watermark | None = None) -> Path:
        """Write the index (CPU form) and its manifest atomically; returns the manifest path.

        The index goes to a fresh uniquely named file first; only then is the manifest, which
        names that file, swapped in with ``os.replace``. A reader therefore sees either the old
        pair or the new pair, never a half-written index.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if watermark is not None:
            self._watermark = watermark
        name = _safe_name(self.encoder_id)
        manifest_path = directory / f"{name}.json"
        old = _read_manifest(manifest_path)
        index_file = f"{name}.{time.time_ns()}.faiss"
        with self._lock:
            tmp = directory / f".{index_file}.tmp"
            faiss.write_index(self._index, str(tmp))
            _fsync(tmp)
            os.replace(tmp, directory / index_file)
            manifest = Manifest(
                encoder_id=self.encoder_id, dim=self.dim, count=self.count,
                factory=self.factory, watermark=self._watermark, index_file=index_file,
                tombstones=sorted(self._tombstones), saved_at=time.time())
        fd, tmp_manifest = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(manifest), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_manifest, manifest_path)
        if old is not None and old.index_file != index_file:
            (directory / old.index_file).unlink(missing_ok=True)
        return manifest_path

    @classmethod
    def load(cls, directory: Path | str, encoder_id: str,
             config: IndexConfig | None = None) -> VectorIndex | None:
        """The saved index for ``encoder_id``; ``None`` when there is none or it is unreadable."""
        directory = Path(directory)
        manifest = _read_manifest(directory / f"{_safe_name(encoder_id)}.json")
        if manifest is None or manifest.encoder_id != encoder_id:
            return None
        try:
            index = faiss.read_index(str(directory / manifest.index_file))
        except RuntimeError as e:
            log.warning("index file %s unreadable (%s); it will be rebuilt", manifest.index_file, e)
            return None
        if index.d != manifest.dim or not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
            if index.d != manifest.dim or not isinstance(index, faiss.IndexIDMap2):
                return None
        vi = cls(encoder_id, manifest.dim, manifest.factory, index, config)
        vi._tombstones = set(manifest.tombstones)
        vi._watermark = manifest.watermark
        return vi

    # ------------------------------------------------------------------ database sync

    @classmethod
    def open(cls, directory: Path | str, encoder_id: str, dim: int,
             session_factory: Callable[[], Session], *, config: IndexConfig | None = None,
             save: bool = True) -> VectorIndex:
        """The index for ``encoder_id``, brought in line with the database.

        Loads the saved index, compares its watermark with the ``embeddings`` rows of this
        encoder and applies the difference (rows added since, tracks deleted since); rebuilds
        from the database when there is no usable index, the dimension or factory rule
        disagrees, or the difference is a large part of the index. Saves when anything changed.
        """
        config = config or IndexConfig()
        vi = cls.load(directory, encoder_id, config)
        with session_factory() as session:
            current = db_watermark(session, encoder_id)
            if vi is not None and vi.dim != dim:
                log.info("index dimension %d != encoder dimension %d: rebuilding", vi.dim, dim)
                vi = None
            if vi is not None and config.factory and config.factory != vi.factory:
                log.info("factory %s != saved %s: rebuilding", config.factory, vi.factory)
                vi = None
            if vi is not None and asdict(vi.watermark) == asdict(current):
                return vi
            changed = vi is None or vi._sync(session, current)
            if changed:
                vi = cls.rebuild(session, encoder_id, dim, config=config)
            vi._watermark = current
        if save:
            vi.save(directory)
        return vi

    def _sync(self, session: Session, current: Watermark) -> bool:
        """Apply the database's changes since the watermark; True when a rebuild is better."""
        db_ids = np.fromiter(session.scalars(
            select(Embedding.track_id).where(Embedding.encoder_id == self.encoder_id)), np.int64)
        live = self.ids()
        gone = np.setdiff1d(live, db_ids, assume_unique=True)
        new_rows = select(Embedding.track_id, Embedding.vector).where(
            Embedding.encoder_id == self.encoder_id,
            Embedding.id > self._watermark.max_embedding_id)
        n_new = session.execute(select(func.count()).select_from(new_rows.subquery())).scalar_one()
        missing = np.setdiff1d(db_ids, live, assume_unique=True)
        changes = len(gone) + max(n_new, len(missing))
        if changes > REBUILD_FRACTION * max(len(live), 1) and changes > 1000:
            return True
        self.remove(gone)
        # New rows plus any id the index lacks (e.g. a save lost in a crash).
        rows = session.execute(new_rows).all()
        if len(missing):
            have = {r[0] for r in rows}
            extra = [int(i) for i in missing if int(i) not in have]
            for start in range(0, len(extra), 10_000):
                chunk = extra[start:start + 10_000]
                rows += session.execute(select(Embedding.track_id, Embedding.vector).where(
                    Embedding.encoder_id == self.encoder_id,
                    Embedding.track_id.in_(chunk))).all()
        if rows:
            ids = np.array([r[0] for r in rows], np.int64)
            vecs = _decode_rows([r[1] for r in rows], self.dim)
            self.add(ids, vecs)
        log.info("index %s synced: +%d -%d", self.encoder_id, len(rows), len(gone))
        return False

    @classmethod
    def rebuild(cls, session: Session, encoder_id: str, dim: int, *,
                config: IndexConfig | None = None) -> VectorIndex:
        """A fresh index from every ``embeddings`` row of ``encoder_id``."""
        ids, vectors = load_embeddings(session, encoder_id, dim)
        config = config or IndexConfig()
        vi = cls.create(encoder_id, dim, factory=config.factory, expected_size=len(ids),
                        config=config)
        if len(ids):
            vi.train(vectors)
            vi.add(ids, vectors)
        vi._watermark = db_watermark(session, encoder_id)
        log.info("index %s rebuilt: %d vectors, %s", encoder_id, len(ids), vi.factory)
        return vi


# ---------------------------------------------------------------------- database helpers

def db_watermark(session: Session, encoder_id: str) -> Watermark:
    """The database side of the manifest check for one encoder."""
    max_id, count = session.execute(
        select(func.coalesce(func.max(Embedding.id), 0), func.count(Embedding.id))
        .where(Embedding.encoder_id == encoder_id)).one()
    return Watermark(max_embedding_id=int(max_id), count=int(count))


def iter_embeddings(session: Session, encoder_id: str, dim: int,
                    batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(track_ids [b], vectors [b, dim])`` batches of one encoder's rows, in id order."""
    last = 0
    while True:
        rows = session.execute(
            select(Embedding.id, Embedding.track_id, Embedding.vector, Embedding.dim)
            .where(Embedding.encoder_id == encoder_id, Embedding.id > last)
            .order_by(Embedding.id).limit(batch)).all()
        if not rows:
            return
        for r in rows:
            if r[3] != dim:
                raise CatalogError(f"embedding of track {r[1]} has dim {r[3]}, encoder "
                                   f"{encoder_id!r} expects {dim}")
        last = rows[-1][0]
        yield np.array([r[1] for r in rows], np.int64), _decode_rows([r[2] for r in rows], dim)


def load_embeddings(session: Session, encoder_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row of one encoder: ``(track_ids [n], vectors [n, dim])``."""
    parts = list(iter_embeddings(session, encoder_id, dim))
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _decode_rows(blobs: list[bytes], dim: int) -> np.ndarray:
    buf = b"".join(blobs)
    if len(buf) != 4 * dim * len(blobs):
        raise CatalogError(f"embedding blobs are not {dim} float32 values each")
    return np.frombuffer(buf, dtype="<f4").reshape(len(blobs), dim).astype(np.float32)


# ---------------------------------------------------------------------- FAISS helpers

def _hnsw_of(index: faiss.Index) -> faiss.IndexHNSW | None:
    index = faiss.downcast_index(index)
    return index if isinstance(index, faiss.IndexHNSW) else None


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _flat_storage(index: faiss.Index) -> faiss.IndexFlat | None:
    """The full-precision vector array behind Flat and HNSW,Flat indexes, if any."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlat):
        return index
    if isinstance(index, faiss.IndexHNSW):
        storage = faiss.downcast_index(index.storage)
        if isinstance(storage, faiss.IndexFlat):
            return storage
    return None


def _empty(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((q, k), -np.inf, np.float32), np.full((q, k), -1, np.int64)


def _read_manifest(path: Path) -> Manifest | None:
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        log.warning("manifest %s unreadable (%s); the index will be rebuilt", path, e)
        return None


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())

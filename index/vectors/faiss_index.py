"""The FAISS wrapper: one index per encoder id, whose ids are track ids.

Every index is wrapped in ``IDMap2`` so FAISS ids are track ids. Types that cannot delete in
place (HNSW, IVF under ``IDMap2``) keep a set of *tombstones* that every search excludes
through an ``IDSelector``; once tombstones pass a fraction of the index it is rebuilt, so
they never grow without bound.

Persistence lives in :mod:`.manifest` and database sync in :mod:`.sync`; ``save``, ``load``,
``open`` and ``rebuild`` stay methods here so callers keep one object to talk to.

Example:
    >>> vi = VectorIndex.create("enc@1", dim=4)
    >>> vi.add(np.array([7]), np.eye(4, dtype=np.float32)[:1])
    >>> vi.search(np.eye(4, dtype=np.float32)[:1], k=1)[1].tolist()
    [[7]]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from index.errors import CatalogError, IndexFileError
from index.vectors.arrays import as_ids as _as_ids
from index.vectors.arrays import as_vectors as _as_vectors
from index.vectors.arrays import empty_result as _empty
from index.vectors.factory import (
    IndexConfig,
    choose_factory,
    flat_storage,
    gpu_available,
    hnsw_of,
    ivf_of,
)
from index.vectors.manifest import Manifest, Watermark, read_pair, save_pair

log = logging.getLogger(__name__)

# Rebuild (instead of patching) when this fraction of the index is tombstoned or changed.
REBUILD_FRACTION = 0.2


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
        # False for an index loaded from a manifest without a checksum (version 1).
        self.verified = True
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
        hnsw = hnsw_of(inner)
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
        ivf = ivf_of(self._index.index)
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
        """What the database held for this index's encoder when the index was last in sync.

        Saved in the manifest; :mod:`index.vectors.sync` compares it with the ``embeddings``
        rows at start to decide between serving, catching up and rebuilding.
        """
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

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
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

    def remove(self, ids: npt.ArrayLike) -> int:
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
        hnsw = hnsw_of(self._index.index)
        if hnsw is not None:
            hnsw.hnsw.efSearch = self.config.ef_search
        ivf = ivf_of(self._index.index)
        if ivf is not None:
            ivf.nprobe = min(self.config.nprobe, ivf.nlist)

    # ------------------------------------------------------------------ reads

    def search(self, queries: npt.ArrayLike, k: int, *, allowed: np.ndarray | None = None,
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
        wide = hnsw_of(inner) is not None and 2 * k > self.config.ef_search
        if sel is None and not wide:
            return None
        if hnsw_of(inner) is not None:
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.config.ef_search, min(2 * k, 4096))
        elif ivf_of(inner) is not None:
            params = faiss.SearchParametersIVF()
            params.nprobe = min(self.config.nprobe, ivf_of(inner).nlist)
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
            ivf = ivf_of(self._index.index)
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

    def reconstruct(self, ids: npt.ArrayLike) -> np.ndarray:
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
            storage = flat_storage(self._index.index)
            if storage is not None:
                xb = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)
                return np.asarray(xb).reshape(-1, self.dim)[internal].copy()
            return np.stack([self._index.index.reconstruct(int(i)) for i in internal])

    # ------------------------------------------------------------------ GPU

    def _use_gpu(self) -> bool:
        if self.config.device == "cpu" or hnsw_of(self._index.index) is not None:
            return False
        return gpu_available(self.config.device)

    def _gpu_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._gpu_index is None:
            res = faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(res, 0, self._index)
            self._gpu_index._res = res
        return self._gpu_index.search(queries, k)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path | str, watermark: Watermark | None = None) -> Path:
        """Write the index (CPU form) and its manifest atomically; returns the manifest path.

        The lock is held for the write so the manifest's count and tombstones describe exactly
        the vectors in the file (see :func:`index.vectors.manifest.save_pair` for the swap).
        """
        if watermark is not None:
            self._watermark = watermark
        with self._lock:
            manifest = Manifest(
                encoder_id=self.encoder_id, dim=self.dim, count=self.count,
                factory=self.factory, watermark=self._watermark, index_file="",
                tombstones=sorted(self._tombstones), saved_at=time.time())
            return save_pair(directory, self._index, manifest)

    @classmethod
    def load(cls, directory: Path | str, encoder_id: str,
             config: IndexConfig | None = None) -> VectorIndex | None:
        """The saved index for ``encoder_id``; ``None`` when there is none or it is unusable.

        An unusable one (unreadable, checksum mismatch, implausible vectors) is logged as a
        warning naming the file; the caller rebuilds from the database, never serves it.
        """
        try:
            return cls.load_checked(directory, encoder_id, config)
        except IndexFileError as e:
            log.warning("%s; it will be rebuilt from the database", e)
            return None

    @classmethod
    def load_checked(cls, directory: Path | str, encoder_id: str,
                     config: IndexConfig | None = None) -> VectorIndex | None:
        """Like :meth:`load`, but says why a saved index is unusable instead of logging it.

        Returns ``None`` when none is saved; ``verified`` says whether a checksum was checked.

        Raises:
            IndexFileError: the saved index must not be served; ``reason`` says why.
        """
        pair = read_pair(directory, encoder_id)
        if pair is None:
            return None
        manifest, index = pair
        vi = cls(encoder_id, manifest.dim, manifest.factory, index, config)
        vi._tombstones = set(manifest.tombstones)
        vi._watermark = manifest.watermark
        vi.verified = manifest.checksum is not None
        problem = vi.check_vectors(manifest.count)
        if problem:
            raise IndexFileError(Path(directory) / manifest.index_file, f"damaged ({problem})")
        return vi

    def check_vectors(self, expected_count: int | None = None, sample: int = 64) -> str | None:
        """Why this index looks damaged, or ``None``: a cheap plausibility check, not a proof.

        Ids and vectors must agree in number (and with ``expected_count``, the manifest's), and
        ``sample`` stored vectors spread over the index must be finite and of unit norm, as
        every catalog embedding is: this catches what a checksum cannot (a version 1 manifest,
        an index saved from bad memory). PQ/SQ codes are approximate: a wider tolerance.
        """
        with self._lock:
            n, n_ids = int(self._index.ntotal), int(self._index.id_map.size())
            if n_ids != n:
                return f"{n_ids} ids for {n} vectors"
            if expected_count is not None and self.count != expected_count:
                return f"{self.count} live vectors, the manifest says {expected_count}"
            if n == 0:
                return None
            id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            ids = np.unique(id_map[np.linspace(0, n - 1, min(n, sample)).astype(np.int64)])
            try:
                vectors = self.reconstruct(ids)
            except (RuntimeError, CatalogError) as e:
                return f"vectors cannot be read back ({str(e).splitlines()[0]})"
        if not np.isfinite(vectors).all():
            return "non-finite vectors"
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        tolerance = 0.01 if flat_storage(self._index.index) is not None else 0.25
        bad = np.flatnonzero(np.abs(norms - 1.0) > tolerance)
        if len(bad):
            return f"vector of track {int(ids[bad[0]])} has norm {norms[bad[0]]:.3g}, not 1"
        return None

    # ------------------------------------------------------------------ database sync

    @classmethod
    def open(cls, directory: Path | str, encoder_id: str, dim: int,
             session_factory: Callable[[], Session], *, config: IndexConfig | None = None,
             save: bool = True) -> VectorIndex:
        """The index for ``encoder_id``, brought in line with the database (see ``sync``)."""
        from index.vectors.sync import open_index  # sync builds on this module

        return open_index(directory, encoder_id, dim, session_factory, config=config, save=save)

    @classmethod
    def rebuild(cls, session: Session, encoder_id: str, dim: int, *,
                config: IndexConfig | None = None) -> VectorIndex:
        """A fresh index from every ``embeddings`` row of ``encoder_id``."""
        from index.vectors.sync import rebuild_index

        return rebuild_index(session, encoder_id, dim, config=config)

"""What the backfill pipeline needs from the catalog: its vectors, the gate's bar, a track's vector.

Read at the start of every job, not once per process, so tracks ingested or generated while a
worker runs are in the matrix the next candidate is compared with (a second job must not make
a near-copy of the first job's keepers). The bar (:func:`~generation.backfill.novelty.different_work_threshold`)
depends on the ``origin = 'catalog'`` tracks only and is recomputed only when they change.

The tracks a job already stored (an earlier attempt of the same job) are left out of its own
matrix: a retried job must not find its own keepers and reject them as copies.

Reading every vector is O(catalog) per job: ~1 ms for the 1,500-track demo catalog, ~2 s and
2 GB for a million 512-d tracks, where an ANN index (the search service's) would be the
source to pass instead; anything with the :class:`Catalog` methods will do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from generation.backfill.novelty import different_work_threshold
from generation.errors import GenerationError
from index.models import Embedding, Track, TrackProvenance


@dataclass(frozen=True)
class CatalogVectors:
    """The catalog as the acoustic gate sees it.

    Attributes:
        ids: int64 ``[n]`` track ids (catalog and generated tracks).
        vectors: float32 ``[n, dim]`` their unit embeddings.
        threshold: the gate's bar (cosine), or None when the catalog cannot set one.
        note: why there is no bar (fewer than two catalog works, an empty catalog).
        catalog_tracks: how many ``origin = 'catalog'`` tracks set the bar.
    """

    ids: np.ndarray
    vectors: np.ndarray
    threshold: float | None
    note: str = ""
    catalog_tracks: int = 0


class Catalog(Protocol):
    """The three reads the pipeline makes (:class:`DatabaseCatalog` is the one implementation)."""

    def vectors(self, exclude_job: int | None = None) -> CatalogVectors:
        """Every track's vector and the gate's bar, without the tracks of ``exclude_job``."""
        ...

    def track_vector(self, track_id: int) -> np.ndarray:
        """One track's unit embedding ``[dim]`` (a "more like this" positive)."""
        ...

    def stored_candidates(self, job_id: int) -> set[int]:
        """Candidate indexes of ``job_id`` already stored (by an earlier attempt)."""
        ...


class DatabaseCatalog:
    """:class:`Catalog` over the catalog database, for one encoder.

    Args:
        factory: session factory of a migrated catalog.
        encoder_id: whose vectors to read.
        dim: their dimension.
        percentile: the bar's percentile of different-work similarities.
    """

    def __init__(self, factory: Callable[[], Session], encoder_id: str, dim: int, *,
                 percentile: float = 99.0) -> None:
        self.factory, self.encoder_id, self.dim, self.percentile = factory, encoder_id, dim, percentile
        self._bar: tuple[tuple[int, int, int], float | None, str] | None = None
        self._lock = threading.Lock()

    def vectors(self, exclude_job: int | None = None) -> CatalogVectors:
        """Read the vectors now (see the module docstring); the bar is cached until the catalog changes."""
        from index.vectors import load_embeddings  # faiss loads only when a gate is used

        with self.factory() as session:
            ids, vecs = load_embeddings(session, self.encoder_id, self.dim)
            works = dict(session.execute(select(Track.id, Track.piece_id)
                                         .where(Track.origin == "catalog")).all())
            own = set() if exclude_job is None else set(session.scalars(
                select(TrackProvenance.track_id).where(TrackProvenance.job_id == exclude_job)))
        if own:
            keep = np.array([int(i) not in own for i in ids], bool)
            ids, vecs = ids[keep], vecs[keep]
        is_cat = np.array([int(i) in works for i in ids], bool)
        threshold, note = self._threshold(ids[is_cat], vecs[is_cat], works)
        return CatalogVectors(ids, vecs, threshold, note, int(is_cat.sum()))

    def _threshold(self, ids: np.ndarray, vecs: np.ndarray, works: dict[int, str | None]
                   ) -> tuple[float | None, str]:
        key = (len(ids), int(ids.sum()) if len(ids) else 0, int(ids.max()) if len(ids) else 0)
        with self._lock:
            if self._bar is not None and self._bar[0] == key:
                return self._bar[1], self._bar[2]
            try:
                bar: float | None = different_work_threshold(vecs, [works[int(i)] for i in ids],
                                                             percentile=self.percentile)
                note = ""
            except GenerationError as e:  # fewer than two works: nothing to calibrate on
                bar, note = None, f"no acoustic bar: {e} ({len(ids)} catalog tracks)"
            self._bar = (key, bar, note)
            return bar, note

    def track_vector(self, track_id: int) -> np.ndarray:
        """The stored embedding of ``track_id`` for this encoder.

        Raises:
            GenerationError: the track has no vector of this encoder (unknown id, not embedded).
        """
        with self.factory() as session:
            blob = session.scalar(select(Embedding.vector).where(
                Embedding.track_id == int(track_id), Embedding.encoder_id == self.encoder_id))
        if blob is None:
            raise GenerationError(f"track {track_id} has no {self.encoder_id} embedding "
                                  "(unknown track, or not embedded yet): cannot generate like it")
        v = np.frombuffer(blob, "<f4").astype(np.float32)
        if v.shape != (self.dim,):
            raise GenerationError(f"track {track_id}'s embedding has {v.size} values, not {self.dim}")
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def stored_candidates(self, job_id: int) -> set[int]:
        """Candidate indexes already stored for ``job_id``."""
        with self.factory() as session:
            return set(session.scalars(select(TrackProvenance.candidate_index)
                                       .where(TrackProvenance.job_id == job_id)))

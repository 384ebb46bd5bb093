"""Tracks and their embeddings: reads, the embedding write, and the one way to delete a track.

Functions take a session factory when they are a unit of work of their own (they open, commit
and close a session), and a session when they are a step of the caller's transaction
(``add_embedding`` runs inside ingestion's batch, so the track and its vector commit together).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from index.errors import CatalogError
from index.models import Embedding, Track
from index.store import AudioStore

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]


def get_track(factory: SessionFactory, track_id: int) -> Track | None:
    """The track with this id, detached from its session; ``None`` when there is none."""
    with factory() as session:
        track = session.get(Track, track_id)
        if track is not None:
            session.expunge(track)
        return track


def load_tracks(factory: SessionFactory, ids: Iterable[int]) -> dict[int, Track]:
    """The tracks among ``ids`` that exist, by id (missing ids are simply absent)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    with factory() as session:
        tracks = list(session.scalars(select(Track).where(Track.id.in_(wanted))))
        session.expunge_all()
    return {t.id: t for t in tracks}


def count_tracks(factory: SessionFactory) -> int:
    """How many tracks the catalog holds."""
    with factory() as session:
        return int(session.scalar(select(func.count(Track.id))) or 0)


def add_embedding(session: Session, track_id: int, encoder_id: str,
                  vector: np.ndarray) -> Embedding:
    """Stage ``track_id``'s vector for ``encoder_id`` in the caller's transaction.

    Stored as little-endian float32 bytes, the format :mod:`index.vectors` decodes; refusing a
    non-finite or non-1-D vector here keeps a bad row from poisoning every later index build.

    Raises:
        CatalogError: the vector is not a finite 1-D array of numbers.
    """
    v = np.asarray(vector, dtype="<f4")
    if v.ndim != 1 or len(v) == 0 or not np.isfinite(v).all():
        raise CatalogError(f"embedding of track {track_id} for {encoder_id!r} must be a finite "
                           f"1-D vector, got shape {v.shape}")
    row = Embedding(track_id=track_id, encoder_id=encoder_id, dim=len(v), vector=v.tobytes())
    session.add(row)
    return row


def delete_track(factory: SessionFactory, store: AudioStore, track_id: int) -> Track | None:
    """Delete a track and its embeddings in one transaction, then its audio file if unshared.

    The file goes only after the commit, and only when no other track points at it: a file
    without a row is harmless in a content-addressed store, a row without its file is not.
    A failure to remove the file is logged, never raised, since the delete is committed by then.

    Returns:
        The deleted track (detached), or ``None`` when there was no such track.
    """
    with factory() as session:
        track = session.get(Track, track_id)
        if track is None:
            return None
        session.expunge(track)
        session.execute(delete(Embedding).where(Embedding.track_id == track_id))
        session.execute(delete(Track).where(Track.id == track_id))
        session.commit()
    with factory() as session:
        shared = session.scalar(
            select(func.count(Track.id)).where(Track.audio_path == track.audio_path))
    if not shared:
        try:
            store.remove(track.audio_path)
        except (OSError, CatalogError) as e:
            log.warning("audio file %s of deleted track %d not removed (%s)",
                        track.audio_path, track_id, e)
    return track

"""Tracks: read, count and delete (embeddings and the stored audio with them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from index.models import Embedding, Track
from index.store import AudioStore


def get_track(session: Session, track_id: int) -> Track | None:
    """The track with this id, or None."""
    return session.get(Track, track_id)


def load_tracks(session: Session, ids: Sequence[int]) -> dict[int, Track]:
    """``{id: track}`` for the ids that exist."""
    if not ids:
        return {}
    return {t.id: t for t in session.scalars(select(Track).where(Track.id.in_(list(ids))))}


def count_tracks(session: Session) -> int:
    """Tracks in the catalog."""
    return int(session.scalar(select(func.count(Track.id))) or 0)


def delete_track(factory: Callable[[], Session], store: AudioStore, track_id: int) -> Track | None:
    """Delete a track and its embeddings in one transaction, then its audio if unshared."""
    with factory() as session:
        t = session.get(Track, track_id)
        if t is None:
            return None
        session.execute(delete(Embedding).where(Embedding.track_id == track_id))
        session.execute(delete(Track).where(Track.id == track_id))
        session.commit()
        shared = session.scalar(select(func.count()).where(Track.audio_path == t.audio_path))
    if not shared:
        store.remove(t.audio_path)
    return t

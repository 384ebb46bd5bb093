"""Embedding catalog tracks with an encoder and storing the vectors in the database.

Two entry points share one batch routine:
- :func:`make_embedding_stage` returns the ``on_batch`` hook of :func:`index.ingest.ingest`, so a
  track and its embedding are committed in the same transaction (a fresh catalog arrives
  embedded);
- :func:`embed_missing` embeds every track that lacks a vector for an encoder (resumable: it
  commits per batch, and a re-run picks up where a killed run stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from index.audio import decode
from index.errors import CatalogError
from index.models import Embedding, Track
from index.store import AudioStore
from retrieval.encoders.base import Encoder
from retrieval.errors import RetrievalError


def vector_to_bytes(v: np.ndarray) -> bytes:
    """Float32 little-endian bytes of ``v`` ``[dim]``: the storage format of ``Embedding.vector``.

    Read back by :func:`index.vectors.load_embeddings`; the byte order is explicit, not the
    machine's.
    """
    return np.asarray(v, dtype="<f4").tobytes()


def embed_tracks(session: Session, tracks: Sequence[Track], encoder: Encoder, store: AudioStore,
                 max_seconds: float | None = None) -> int:
    """Decode ``tracks`` from the store at the encoder's rate, embed, add Embedding rows.

    Args:
        session: the open catalog session the Embedding rows are added to (not committed here).
        tracks: the tracks to embed, all in one batch.
        encoder: the encoder whose id and dim the rows carry.
        store: the audio store the tracks' files are read from.
        max_seconds: embed at most this much of each track (None: the whole track).

    Raises:
        RetrievalError: a track's file cannot be decoded.

    Returns:
        The number of embeddings added.
    """
    if not tracks:
        return 0
    waves = []
    for t in tracks:
        try:
            waves.append(decode(store.path_for(t.audio_path), encoder.sample_rate,
                                duration_s=max_seconds))
        except CatalogError as e:
            raise RetrievalError(f"track {t.id} ({t.audio_path}) cannot be decoded for embedding: {e}") from e
    vecs = encoder.embed_audio(waves)
    for t, v in zip(tracks, vecs, strict=True):
        session.add(Embedding(track_id=t.id, encoder_id=encoder.id, dim=encoder.dim,
                              vector=vector_to_bytes(v)))
    return len(tracks)


def make_embedding_stage(encoder: Encoder, store: AudioStore) -> Callable[[Session, list[Track]], None]:
    """The ``on_batch`` hook for ingestion: embeds each batch inside its transaction."""

    def on_batch(session: Session, tracks: list[Track]) -> None:
        session.flush()  # track ids are needed for the embedding rows
        embed_tracks(session, tracks, encoder, store)

    return on_batch


def missing_track_ids(session: Session, encoder_id: str) -> list[int]:
    """Ids of tracks without an embedding for ``encoder_id``, in id order."""
    have = select(Embedding.track_id).where(Embedding.encoder_id == encoder_id)
    return list(session.scalars(select(Track.id).where(Track.id.not_in(have)).order_by(Track.id)))


def embed_missing(factory: sessionmaker[Session], encoder: Encoder, store: AudioStore, *,
                  batch_size: int = 16, progress: Callable[[int, int], None] | None = None) -> int:
    """Embed every track that lacks a vector for this encoder; commit per batch.

    Returns:
        The number of tracks embedded by this call.
    """
    if batch_size < 1:
        raise RetrievalError(f"batch size must be >= 1, got {batch_size}")
    with factory() as session:
        todo = missing_track_ids(session, encoder.id)
    done = 0
    for s in range(0, len(todo), batch_size):
        ids = todo[s:s + batch_size]
        with factory() as session, session.begin():
            tracks = list(session.scalars(select(Track).where(Track.id.in_(ids)).order_by(Track.id)))
            embed_tracks(session, tracks, encoder, store)
        done += len(ids)
        if progress:
            progress(done, len(todo))
    return done

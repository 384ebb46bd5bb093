"""The two write workflows of the API: add an uploaded recording, delete a track.

Each one changes the database (the source of truth), the audio store, the search service's
index and column store, and the saved index, in that order and under the app's write lock.
Routes call these; they hold no SQL and no index bookkeeping themselves.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException
from sqlalchemy.orm import Session

from api.uploads import safe_filename
from api.wiring import AppState
from index.audio import decode
from index.errors import DecodeError
from index.models import Track
from index.repo.tracks import add_embedding, get_track
from index.repo.tracks import delete_track as delete_track_rows
from index.vectors import db_watermark, persist
from retrieval.search import TrackMeta, TrackNotFoundError

log = logging.getLogger(__name__)


def add_upload(state: AppState, data: bytes, filename: str | None, fields: dict[str, Any]) -> Track:
    """Run the catalog's own ingestion on one uploaded file, embedding in the same transaction.

    Raises:
        DecodeError: the file was quarantined (the reason says why).
        HTTPException: 409 when the same content is already in the catalog.
    """
    from index.ingest import ingest

    svc = state.service
    vectors: dict[int, np.ndarray] = {}

    def embed(session: Session, tracks: list[Track]) -> None:
        for t in tracks:
            wave = decode(state.store.path_for(t.audio_path), svc.encoder.sample_rate)
            v = svc.encoder.embed_audio([wave])[0]
            add_embedding(session, t.id, svc.encoder.id, v)
            vectors[t.id] = v

    with tempfile.TemporaryDirectory(prefix="tunescope-upload-") as tmp:
        path = Path(tmp) / safe_filename(filename)
        if not path.suffix:
            path = path.with_suffix(".wav")
        path.write_bytes(data)
        meta_path = None
        if fields:
            meta_path = Path(tmp) / "metadata.jsonl"
            meta_path.write_text(json.dumps({"path": path.name, **fields}) + "\n")
        with state.write_lock:
            summary = ingest([path], state.session_factory, state.store, metadata=meta_path,
                             min_duration_s=state.settings.min_duration_s,
                             max_duration_s=state.settings.max_duration_s, on_batch=embed,
                             progress=False)
            if summary.quarantined:
                raise DecodeError(summary.quarantined[0].reason)
            if summary.duplicates:
                raise HTTPException(409, f"{filename!r} is already in the catalog (same content)")
            track = get_track(state.session_factory, summary.track_ids[0])
            assert track is not None  # just committed under the write lock
            svc.add_track(TrackMeta.from_track(track), vectors[track.id])
            save_index(state)
    return track


def delete_track(state: AppState, track_id: int) -> None:
    """Remove a track from the catalog, the index and the store; it never returns.

    The database commit is the write: once it is done the track is deleted, whatever happens
    next. Removing it from the in-memory index cannot fail; saving the index can (a full or
    read-only disk), and then the saved index is merely behind the database, which the next
    start repairs from the watermark. So the answer is success either way.

    Raises:
        TrackNotFoundError: no such track.
    """
    with state.write_lock:
        if delete_track_rows(state.session_factory, state.store, track_id) is None:
            raise TrackNotFoundError(track_id)
        state.service.remove_track(track_id)
        save_index(state)


def add_generated(state: AppState, track_id: int, vector: np.ndarray, encoder_id: str) -> bool:
    """Make a keeper the backfill worker just committed searchable now, then save the index.

    The commit (track, embedding, provenance) is the write; this only catches the served index
    up, as :func:`add_upload` does. A keeper embedded by another encoder than the service's is
    left to the index of that encoder (the database sync path finds it); False then.
    """
    svc = state.service
    if encoder_id != svc.encoder.id:
        log.info("generated track %d embedded by %s, not the served %s: not indexed here",
                 track_id, encoder_id, svc.encoder.id)
        return False
    track = get_track(state.session_factory, track_id)
    if track is None:  # deleted in between: nothing to show
        return False
    with state.write_lock:
        svc.add_track(TrackMeta.from_track(track), vector)
        save_index(state)
    return True


def save_index(state: AppState) -> bool:
    """Persist small indexes after each write; big ones resync from the DB watermark at start.

    Best effort (:func:`index.vectors.persist`): a failed save is logged and reported as
    False, never raised, because the write it follows is already committed to the database,
    the source of truth.
    """
    idx = state.service.index
    if idx.count > 50_000:
        return False
    with state.session_factory() as session:
        watermark = db_watermark(session, idx.encoder_id)
    return persist(idx, state.settings.index_dir, watermark)

"""Tracks: metadata, audio (with HTTP Range), upload and delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, HTTPException, Response, UploadFile
from pydantic import BeforeValidator, Field

from api import catalog_writes
from api.deps import KeyRequired, SessionFactoryDep, StateDep
from api.ranges import ranged_file
from api.schemas.errors import ERRORS, error_responses
from api.schemas.filters import TrackIdPath
from api.schemas.tracks import TrackPublic
from api.uploads import read_upload
from index.models import Track
from index.repo.tracks import get_track as find_track
from retrieval.search import TrackNotFoundError

router = APIRouter(tags=["tracks"], responses=ERRORS)

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
                 "opus": "audio/ogg", "mp3": "audio/mpeg"}


def blank_is_none(value: object) -> object:
    """A multipart field has no null: an empty or literal ``null`` value means "not given"."""
    return None if isinstance(value, str) and value.strip().lower() in ("", "null") else value


Tempo = Annotated[Annotated[float, Field(ge=0, le=1000)] | None, BeforeValidator(blank_is_none)]


def _track(db: SessionFactoryDep, track_id: int) -> Track:
    t = find_track(db, track_id)
    if t is None:
        raise TrackNotFoundError(track_id)
    return t


@router.get("/v1/tracks/{track_id}", response_model=TrackPublic)
def get_track(track_id: TrackIdPath, db: SessionFactoryDep) -> TrackPublic:
    """One track's metadata."""
    return TrackPublic.of(_track(db, track_id))


_AUDIO = {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                      for t in (*dict.fromkeys(CONTENT_TYPES.values()), "application/octet-stream")}}


@router.get("/v1/tracks/{track_id}/audio", response_class=Response,
            responses={200: {**_AUDIO, "description": "The whole file"},
                       206: {**_AUDIO, "description": "Partial content (HTTP Range)"}})
def get_audio(track_id: TrackIdPath, db: SessionFactoryDep, state: StateDep,
              # ``str``, not ``str | None``: the header is optional, never a JSON null.
              range_header: Annotated[str, Header(
                  alias="Range", description="One byte range (`bytes=0-99`, `bytes=100-`, "
                  "`bytes=-500`); anything else is a 416.")] = None,  # type: ignore[assignment]
              ) -> Response:
    """The track's audio; honours ``Range: bytes=...`` so players can seek."""
    t = _track(db, track_id)
    path = state.store.path_for(t.audio_path)
    if not path.is_file():
        raise HTTPException(404, f"audio file of track {track_id} is missing from the store")
    ctype = CONTENT_TYPES.get((t.audio_format or "").lower(), "application/octet-stream")
    return ranged_file(path, ctype, range_header)


@router.post("/v1/tracks", status_code=201, response_model=TrackPublic,
             responses=error_responses(409), dependencies=[KeyRequired])
def add_track(
    state: StateDep,
    file: Annotated[UploadFile, File(description="The recording (wav/flac/ogg/mp3).")],
    title: Annotated[str | None, Form(max_length=512)] = None,
    artist: Annotated[str | None, Form(max_length=512)] = None,
    collection: Annotated[str | None, Form(max_length=256)] = None,
    tags: Annotated[str | None, Form(max_length=2000, description="';'-separated")] = None,
    instruments: Annotated[str | None, Form(max_length=2000)] = None,
    key: Annotated[str | None, Form(max_length=16)] = None,
    mode: Annotated[str | None, Form(max_length=32)] = None,
    meter: Annotated[str | None, Form(max_length=16)] = None,
    tempo_bpm: Annotated[Tempo, Form(description="Beats per minute.")] = None,
) -> TrackPublic:
    """Ingest one recording: validate, store, embed, index. Searchable on return."""
    fields = {k: v for k, v in dict(title=title, artist=artist, collection=collection,
                                     tags=tags, instruments=instruments, key=key, mode=mode,
                                     meter=meter, tempo_bpm=tempo_bpm).items()
              if v not in (None, "")}
    data = read_upload(file)
    return TrackPublic.of(catalog_writes.add_upload(state, data, file.filename, fields))


@router.delete("/v1/tracks/{track_id}", status_code=204, dependencies=[KeyRequired])
def delete_track(track_id: TrackIdPath, state: StateDep) -> Response:
    """Remove a track from the catalog, the index and the store; it never returns."""
    catalog_writes.delete_track(state, track_id)
    return Response(status_code=204)

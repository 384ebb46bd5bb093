"""The HTTP API (FastAPI, versioned under ``/v1``) and the web page at ``/``.

``create_app`` is the composition root of the server: it opens the catalog, loads the encoder
(unless one is injected, as the tests do), brings the vector index in line with the database
and wires the search service into the routes. Errors are mapped to JSON in one place
(``_install_error_handlers``): every bad input is a 4xx saying what is wrong, never a 500.
"""

from __future__ import annotations

import hmac
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import (
    Body,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.routes.generative import generative_search_response, split_mode
from api.settings import Settings, get_settings
from index.audio import decode
from index.errors import CatalogError, DecodeError
from index.models import Embedding, Track
from index.store import AudioStore
from retrieval.encoders.base import Encoder
from retrieval.errors import RetrievalError
from retrieval.search import (
    Filters,
    InvalidQueryError,
    SearchOptions,
    SearchResult,
    SearchService,
    TrackMeta,
    TrackNotFoundError,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_QUERY_CLIP_S = 30.0  # a longer query clip is cropped: the encoder pools windows anyway
MAX_TRACK_ID = 2**63 - 1
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg",
                 "opus": "audio/ogg", "mp3": "audio/mpeg"}

TrackId = Annotated[int, Field(ge=1, le=MAX_TRACK_ID)]
# Module level on purpose: route annotations are strings (postponed evaluation) that FastAPI
# resolves in this module's globals, so a dependency defined inside create_app would be missed.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Required for writes (and reads when keyed).")


# ---------------------------------------------------------------------- schemas

class TrackPublic(BaseModel):
    """A track as every endpoint returns it."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "id": 12, "title": "The Silver Spear", "artist": "Trad.", "collection": "oneill",
        "tags": ["reel"], "instruments": ["fiddle"], "key": "D", "mode": "major",
        "meter": "4/4", "tempo_bpm": 112.0, "duration_s": 31.5, "origin": "catalog",
        "ensemble": "solo", "tune_type": "reel", "piece_id": "oneill-1001",
        "audio_url": "/v1/tracks/12/audio"}})

    id: int
    title: str
    artist: str | None = None
    collection: str | None = None
    tags: list[str] = []
    instruments: list[str] = []
    key: str | None = None
    mode: str | None = None
    meter: str | None = None
    tempo_bpm: float | None = None
    duration_s: float | None = None
    origin: str | None = None
    ensemble: str | None = None
    tune_type: str | None = None
    piece_id: str | None = None
    audio_url: str

    @classmethod
    def of(cls, t: Track) -> TrackPublic:
        return cls(id=t.id, title=t.title or Path(t.source_path or "").stem, artist=t.artist,
                   collection=t.collection, tags=list(t.tags or []),
                   instruments=list(t.instruments or []), key=t.key, mode=t.mode, meter=t.meter,
                   tempo_bpm=t.tempo_bpm, duration_s=t.duration_s, origin=t.origin,
                   ensemble=t.ensemble, tune_type=t.tune_type, piece_id=t.piece_id,
                   audio_url=f"/v1/tracks/{t.id}/audio")


class ResultItem(BaseModel):
    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    track: TrackPublic


class SearchResponse(BaseModel):
    """One page of results."""

    query: dict[str, Any] = Field(description="The query as understood (echo of the inputs).")
    results: list[ResultItem]
    weak_match: bool = Field(description="True when even the best match is far from the query "
                                         "(the catalog may not hold what was asked for).")
    k: int
    offset: int


class FilterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: list[str] = []
    tags: list[str] = []
    instruments: list[str] = []
    key: list[str] = []
    mode: list[str] = []
    meter: list[str] = []
    origin: list[str] = []
    artist: list[str] = []
    tempo_min: float | None = Field(None, ge=0, le=1000)
    tempo_max: float | None = Field(None, ge=0, le=1000)
    duration_min: float | None = Field(None, ge=0, le=1e6)
    duration_max: float | None = Field(None, ge=0, le=1e6)


class RecommendRequest(BaseModel):
    """Positive and negative examples: track ids or texts (Qdrant's recommend API)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "positive": [12, "a lively jig on the flute"], "negative": [40],
        "strategy": "average_vector", "k": 10}})

    positive: list[TrackId | Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        min_length=1, max_length=50)
    negative: list[TrackId | Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default=[], max_length=50)
    strategy: Literal["average_vector", "best_score"] = "average_vector"
    k: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1000)
    filters: FilterBody = FilterBody()
    exclude: list[TrackId] = Field(default=[], max_length=1000)
    mmr: float | None = Field(None, ge=0, le=1)
    max_per_piece: int | None = Field(None, ge=1, le=100)
    max_per_artist: int | None = Field(None, ge=1, le=100)


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable code: not_found, invalid_request, unauthorized...")
    detail: str = Field(description="What is wrong, naming the bad value.")


ERRORS = {400: {"model": ErrorResponse}, 401: {"model": ErrorResponse},
          403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
          413: {"model": ErrorResponse}, 416: {"model": ErrorResponse},
          422: {"model": ErrorResponse}}


# ---------------------------------------------------------------------- query parameters

def search_options(
    k: Annotated[int, Query(ge=1, le=100, description="Results per page.")] = 10,
    offset: Annotated[int, Query(ge=0, le=1000, description="Results to skip.")] = 0,
    collection: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    tags: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    instrument: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    key: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    mode: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    meter: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    origin: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    artist: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    tempo_min: Annotated[float | None, Query(ge=0, le=1000)] = None,
    tempo_max: Annotated[float | None, Query(ge=0, le=1000)] = None,
    duration_min: Annotated[float | None, Query(ge=0, le=1e6)] = None,
    duration_max: Annotated[float | None, Query(ge=0, le=1e6)] = None,
    exclude: Annotated[list[int], Query(max_length=1000, description="Already seen ids.")] = [],  # noqa: B006
    mmr: Annotated[float | None, Query(ge=0, le=1, description="MMR lambda: 1 = pure "
                                       "relevance, lower = more diverse.")] = None,
    max_per_piece: Annotated[int | None, Query(ge=1, le=100)] = None,
    max_per_artist: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> SearchOptions:
    """Paging, filters, exclusions and diversity shared by every search endpoint."""
    return SearchOptions(
        k=k, offset=offset,
        filters=Filters(collection=tuple(collection), tags=tuple(tags),
                        instruments=tuple(instrument), key=tuple(key), mode=tuple(mode),
                        meter=tuple(meter), origin=tuple(origin), artist=tuple(artist),
                        tempo_min=tempo_min, tempo_max=tempo_max, duration_min=duration_min,
                        duration_max=duration_max),
        exclude_ids=frozenset(exclude), mmr_lambda=mmr, max_per_piece=max_per_piece,
        max_per_artist=max_per_artist)


# ---------------------------------------------------------------------- state

@dataclass
class AppState:
    settings: Settings
    session_factory: Callable[[], Session]
    store: AudioStore
    service: SearchService
    write_lock: threading.Lock


def _open_state(settings: Settings, encoder: Encoder | None,
                service: SearchService | None) -> AppState:
    from index.db import open_catalog

    factory = open_catalog(settings.resolved_database_url)
    if encoder is None and service is None:
        from api.wiring import build_encoder

        encoder = build_encoder(settings)
    if service is None:
        # One FAISS thread per query: the server's parallelism is its concurrent requests, and
        # OpenMP teams spun up inside each request thread oversubscribe the CPU (10x slower).
        from index.vectors import IndexConfig

        service = SearchService.open(encoder, factory, settings.index_dir,
                                     index_config=IndexConfig(device=settings.device, threads=1))
    return AppState(settings, factory, AudioStore(settings.audio_dir), service, threading.Lock())


# ---------------------------------------------------------------------- the app

def create_app(settings: Settings | None = None, encoder: Encoder | None = None, *,
               service: SearchService | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; ``get_settings()`` when omitted.
        encoder: the text-audio encoder; loaded from ``settings.encoder`` when omitted.
        service: a ready search service (benchmarks inject a prebuilt index this way).
    """
    settings = settings or get_settings()
    state = _open_state(settings, encoder, service)
    app = FastAPI(
        title="tunescope", version="1.0.0",
        description="Music retrieval: search a catalog by text, by audio clip, by example "
                    "tracks; listen; recommend. Writes need an `X-API-Key` header.")
    app.state.tunescope = state
    registry = _install_metrics(app, state)
    _install_error_handlers(app)

    def check_key(given: str | None) -> None:
        if not settings.api_key:
            raise HTTPException(403, "writes are disabled: the server has no API key "
                                     "configured (set TUNESCOPE_API_KEY)")
        if not given:
            raise HTTPException(401, "missing X-API-Key header")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(403, "invalid API key")

    def require_write_key(api_key: Annotated[str | None, Depends(api_key_header)]) -> None:
        check_key(api_key)

    def require_read_key(api_key: Annotated[str | None, Depends(api_key_header)]) -> None:
        if settings.read_requires_key:
            check_key(api_key)

    svc = state.service
    read = [Depends(require_read_key)]

    def respond(result: SearchResult, query: dict[str, Any], o: SearchOptions
                ) -> SearchResponse:
        tracks = _load_tracks(state, [h.track_id for h in result.hits])
        items = [ResultItem(score=round(h.score, 6), track=TrackPublic.of(tracks[h.track_id]))
                 for h in result.hits if h.track_id in tracks]
        return SearchResponse(query=query, results=items, weak_match=result.weak_match,
                              k=o.k, offset=o.offset)

    @app.get("/v1/search", response_model=SearchResponse, responses=ERRORS, dependencies=read,
             tags=["search"], summary="Search by text")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="What to find.",
                                examples=["a lively jig on the flute"])],
        o: Annotated[SearchOptions, Depends(search_options)],
        seeds: Annotated[int, Query(ge=1, le=64, description="mode=generative: prior "
                                    "samples searched.")] = 8,
        guidance: Annotated[float | None, Query(ge=0, le=20, description="mode=generative: "
                                                "guidance scale.")] = None,
        negative: Annotated[list[str], Query(max_length=20, description="mode=generative: "
                                             "texts to steer away from.")] = [],  # noqa: B006
        like: Annotated[list[int], Query(max_length=20, description="mode=generative: example "
                                         "track ids to steer toward.")] = [],  # noqa: B006
        unlike: Annotated[list[int], Query(max_length=20, description="mode=generative: "
                                           "track ids to steer away from.")] = [],  # noqa: B006
        seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> SearchResponse:
        """Tracks whose sound matches a description, filtered, diversified and paged.

        ``mode=generative`` searches from the diffusion prior's seeds instead (the musical-mode
        filter keeps its other values), steered by ``negative`` texts and by example tracks
        (``like`` / ``unlike``, never returned themselves)."""
        search_mode, o = split_mode(o)
        if search_mode == "generative":
            result, echo = generative_search_response(svc, q, o, seeds=seeds, guidance=guidance,
                                                      negative=negative, like=like,
                                                      unlike=unlike, seed=seed)
            return respond(result, echo, o)
        if like or unlike or any(n.strip() for n in negative):
            raise InvalidQueryError("negative, like and unlike steer mode=generative; plain "
                                    "search takes positives and negatives at /v1/recommend")
        return respond(svc.search_text(q, o), {"text": q, "mode": "text"}, o)

    @app.post("/v1/search/audio", response_model=SearchResponse, responses=ERRORS,
              dependencies=read, tags=["search"], summary="Search by an audio clip")
    def search_audio(
        file: Annotated[UploadFile, File(description="A clip: wav, flac, ogg or mp3; at most "
                                         f"{MAX_UPLOAD_BYTES // 2**20} MiB, cropped to "
                                         f"{MAX_QUERY_CLIP_S:.0f} s.")],
        o: Annotated[SearchOptions, Depends(search_options)],
    ) -> SearchResponse:
        """Tracks that sound like the uploaded clip."""
        data = _read_upload(file)
        wave = decode(data, svc.encoder.sample_rate, duration_s=None)
        if wave.size == 0:
            raise InvalidQueryError(f"the clip {file.filename!r} holds no samples")
        wave = wave[: int(MAX_QUERY_CLIP_S * svc.encoder.sample_rate)]
        return respond(svc.search_audio(wave, o),
                       {"mode": "audio", "filename": file.filename or ""}, o)

    @app.get("/v1/tracks/{track_id}", response_model=TrackPublic, responses=ERRORS,
             dependencies=read, tags=["tracks"])
    def get_track(track_id: Annotated[int, _track_id_path()]) -> TrackPublic:
        """One track's metadata."""
        return TrackPublic.of(_get_track(state, track_id))

    @app.get("/v1/tracks/{track_id}/audio", dependencies=read, tags=["tracks"],
             responses={**ERRORS, 200: {"content": {"audio/wav": {}}},
                        206: {"description": "Partial content (HTTP Range)"}})
    def get_audio(track_id: Annotated[int, _track_id_path()],
                  range_header: Annotated[str | None, Header(alias="Range")] = None
                  ) -> Response:
        """The track's audio; honours ``Range: bytes=...`` so players can seek."""
        t = _get_track(state, track_id)
        path = state.store.path_for(t.audio_path)
        if not path.is_file():
            raise HTTPException(404, f"audio file of track {track_id} is missing from the store")
        ctype = CONTENT_TYPES.get((t.audio_format or "").lower(), "application/octet-stream")
        return _ranged_file(path, ctype, range_header)

    @app.get("/v1/tracks/{track_id}/similar", response_model=SearchResponse, responses=ERRORS,
             dependencies=read, tags=["search"], summary="More like this")
    def similar(track_id: Annotated[int, _track_id_path()],
                o: Annotated[SearchOptions, Depends(search_options)]) -> SearchResponse:
        """Tracks that sound like a catalog track (the track itself excluded)."""
        return respond(svc.similar(track_id, o), {"mode": "similar", "track_id": track_id}, o)

    @app.post("/v1/recommend", response_model=SearchResponse, responses=ERRORS,
              dependencies=read, tags=["search"])
    def recommend(body: Annotated[RecommendRequest, Body()]) -> SearchResponse:
        """Tracks like the positive examples and unlike the negative ones."""
        f = body.filters
        o = SearchOptions(
            k=body.k, offset=body.offset, exclude_ids=frozenset(body.exclude),
            filters=Filters(**{name: tuple(getattr(f, name)) for name in (
                "collection", "tags", "instruments", "key", "mode", "meter", "origin", "artist")},
                tempo_min=f.tempo_min, tempo_max=f.tempo_max, duration_min=f.duration_min,
                duration_max=f.duration_max),
            mmr_lambda=body.mmr, max_per_piece=body.max_per_piece,
            max_per_artist=body.max_per_artist)
        result = svc.recommend(body.positive, body.negative, body.strategy, o)
        return respond(result, {"mode": "recommend", "positive": body.positive,
                                "negative": body.negative, "strategy": body.strategy}, o)

    @app.post("/v1/tracks", status_code=201, response_model=TrackPublic, responses={
        **ERRORS, 409: {"model": ErrorResponse}}, tags=["tracks"],
        dependencies=[Depends(require_write_key)])
    def add_track(
        file: Annotated[UploadFile, File(description="The recording (wav/flac/ogg/mp3).")],
        title: Annotated[str | None, Form(max_length=512)] = None,
        artist: Annotated[str | None, Form(max_length=512)] = None,
        collection: Annotated[str | None, Form(max_length=256)] = None,
        tags: Annotated[str | None, Form(max_length=2000, description="';'-separated")] = None,
        instruments: Annotated[str | None, Form(max_length=2000)] = None,
        key: Annotated[str | None, Form(max_length=16)] = None,
        mode: Annotated[str | None, Form(max_length=32)] = None,
        meter: Annotated[str | None, Form(max_length=16)] = None,
        tempo_bpm: Annotated[float | None, Form(ge=0, le=1000)] = None,
    ) -> TrackPublic:
        """Ingest one recording: validate, store, embed, index. Searchable on return."""
        fields = {k: v for k, v in dict(title=title, artist=artist, collection=collection,
                                         tags=tags, instruments=instruments, key=key, mode=mode,
                                         meter=meter, tempo_bpm=tempo_bpm).items()
                  if v not in (None, "")}
        track = _ingest_upload(state, file, fields)
        return TrackPublic.of(track)

    @app.delete("/v1/tracks/{track_id}", status_code=204, responses=ERRORS, tags=["tracks"],
                dependencies=[Depends(require_write_key)])
    def delete_track(track_id: Annotated[int, _track_id_path()]) -> Response:
        """Remove a track from the catalog, the index and the store; it never returns."""
        with state.write_lock:
            t = _get_track(state, track_id)
            svc.remove_track(track_id)
            with state.session_factory() as session:
                session.execute(delete(Embedding).where(Embedding.track_id == track_id))
                session.execute(delete(Track).where(Track.id == track_id))
                session.commit()
            with state.session_factory() as session:
                shared = session.scalar(select(func.count()).where(
                    Track.audio_path == t.audio_path))
            if not shared:
                state.store.remove(t.audio_path)
            _maybe_save(state)
        return Response(status_code=204)

    @app.get("/v1/health", tags=["ops"])
    def health() -> dict[str, Any]:
        """Liveness and what is loaded."""
        with state.session_factory() as session:
            n = session.scalar(select(func.count(Track.id)))
        return {"status": "ok", "tracks": n, "encoder": svc.encoder.id,
                "index": {"factory": svc.index.factory, "count": svc.index.count}}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _track_id_path() -> Any:
    from fastapi import Path as PathParam

    return PathParam(ge=1, le=MAX_TRACK_ID, description="Track id.")


# ---------------------------------------------------------------------- helpers

def _get_track(state: AppState, track_id: int) -> Track:
    with state.session_factory() as session:
        t = session.get(Track, track_id)
    if t is None:
        raise TrackNotFoundError(track_id)
    return t


def _load_tracks(state: AppState, ids: list[int]) -> dict[int, Track]:
    if not ids:
        return {}
    with state.session_factory() as session:
        return {t.id: t for t in session.scalars(select(Track).where(Track.id.in_(ids)))}


def _read_upload(file: UploadFile) -> bytes:
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload {file.filename!r} is larger than "
                                 f"{MAX_UPLOAD_BYTES // 2**20} MiB")
    if not data:
        raise HTTPException(422, f"upload {file.filename!r} is empty")
    return data


def _safe_filename(name: str | None) -> str:
    stem = Path(name or "upload").name
    stem = "".join(c if c.isalnum() or c in "._- " else "_" for c in stem).strip() or "upload"
    return stem[:200]


def _ingest_upload(state: AppState, file: UploadFile, fields: dict[str, Any]) -> Track:
    """Run the catalog's own ingestion on one uploaded file, embedding in the same transaction."""
    import json

    from index.ingest import ingest

    data = _read_upload(file)
    svc = state.service
    vectors: dict[int, np.ndarray] = {}

    def embed(session: Session, tracks: list[Track]) -> None:
        for t in tracks:
            wave = decode(state.store.path_for(t.audio_path), svc.encoder.sample_rate)
            v = svc.encoder.embed_audio([wave])[0]
            session.add(Embedding(track_id=t.id, encoder_id=svc.encoder.id, dim=len(v),
                                  vector=np.asarray(v, "<f4").tobytes()))
            vectors[t.id] = v

    with tempfile.TemporaryDirectory(prefix="tunescope-upload-") as tmp:
        path = Path(tmp) / _safe_filename(file.filename)
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
                raise HTTPException(409, f"{file.filename!r} is already in the catalog "
                                         "(same content)")
            track = _get_track(state, summary.track_ids[0])
            svc.add_track(TrackMeta.from_track(track), vectors[track.id])
            _maybe_save(state)
    return track


def _maybe_save(state: AppState) -> None:
    """Persist small indexes after each write; big ones resync from the DB watermark at start."""
    idx = state.service.index
    if idx.count <= 50_000:
        from index.vectors import db_watermark

        with state.session_factory() as session:
            idx.save(state.settings.index_dir, db_watermark(session, idx.encoder_id))


def _ranged_file(path: Path, ctype: str, range_header: str | None) -> Response:
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes"}
    if not range_header:
        return FileResponse(path, media_type=ctype, headers=headers)
    start, end = _parse_range(range_header, size)
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body, status_code=206, media_type=ctype, headers=headers)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` to inclusive offsets; one range only."""
    unit, _, spec = header.partition("=")
    bad = HTTPException(416, f"unsatisfiable Range {header!r} for {size} bytes",
                        headers={"Content-Range": f"bytes */{size}"})
    if unit.strip().lower() != "bytes" or "," in spec:
        raise bad
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise bad
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise bad from None
    if start < 0 or start >= size or end < start:
        raise bad
    return start, min(end, size - 1)


def _install_error_handlers(app: FastAPI) -> None:
    """Every root error of the lower packages mapped to a status code, in one place."""

    def err(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": code, "detail": detail}, status_code=status,
                            headers=headers)

    @app.exception_handler(TrackNotFoundError)
    def _not_found(_: Request, e: TrackNotFoundError) -> JSONResponse:
        return err(404, "not_found", str(e))

    @app.exception_handler(InvalidQueryError)
    def _invalid(_: Request, e: InvalidQueryError) -> JSONResponse:
        return err(422, "invalid_request", str(e))

    @app.exception_handler(RetrievalError)
    def _retrieval(_: Request, e: RetrievalError) -> JSONResponse:
        return err(400, "retrieval_error", str(e))

    @app.exception_handler(DecodeError)
    def _decode(_: Request, e: DecodeError) -> JSONResponse:
        return err(422, "bad_audio", str(e))

    @app.exception_handler(CatalogError)
    def _catalog(_: Request, e: CatalogError) -> JSONResponse:
        return err(400, "catalog_error", str(e))

    @app.exception_handler(ValueError)
    def _value(_: Request, e: ValueError) -> JSONResponse:
        return err(422, "invalid_request", str(e))

    @app.exception_handler(RequestValidationError)
    def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        parts = []
        for x in e.errors():
            where = ".".join(str(p) for p in x.get("loc", ()) if p != "body") or "request"
            parts.append(f"{where}: {x.get('msg', 'invalid')}")
        return err(422, "invalid_request", "; ".join(parts)[:2000])

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405:
                 "method_not_allowed", 409: "conflict", 413: "too_large", 416: "bad_range"}
        return err(e.status_code, codes.get(e.status_code, "error"), str(e.detail),
                   getattr(e, "headers", None))


def _install_metrics(app: FastAPI, state: AppState) -> CollectorRegistry:
    """Prometheus metrics in a registry of this app's own (tests build many apps)."""
    registry = CollectorRegistry()
    requests = Counter("tunescope_http_requests_total", "HTTP requests",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("tunescope_http_request_seconds", "HTTP request latency",
                        ["route"], registry=registry,
                        buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
    Gauge("tunescope_index_vectors", "Vectors in the search index",
          registry=registry).set_function(lambda: state.service.index.count)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(request.method, name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - t0)
        return response

    return registry

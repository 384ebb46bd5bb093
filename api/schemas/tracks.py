"""The public shape of a track."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from index.models import Track


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
        """The public view of a catalog row (a track without a title shows its file's stem)."""
        return cls(id=t.id, title=t.title or Path(t.source_path or "").stem, artist=t.artist,
                   collection=t.collection, tags=list(t.tags or []),
                   instruments=list(t.instruments or []), key=t.key, mode=t.mode, meter=t.meter,
                   tempo_bpm=t.tempo_bpm, duration_s=t.duration_s, origin=t.origin,
                   ensemble=t.ensemble, tune_type=t.tune_type, piece_id=t.piece_id,
                   audio_url=f"/v1/tracks/{t.id}/audio")

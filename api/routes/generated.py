"""Generated tracks: how each was made (provenance) and its score as MIDI or MusicXML.

Both answer 404 in the one error format for a catalog track: only generated tracks have a
provenance, and only symbolic generators leave a score (``Track.extra["score"]``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import SessionFactoryDep
from api.schemas.backfill import ProvenancePublic
from api.schemas.errors import ERRORS
from api.schemas.filters import TrackIdPath
from generation.errors import GenerationError
from index.models import Track
from index.repo.backfill import get_provenance
from index.repo.tracks import get_track
from retrieval.search import TrackNotFoundError

router = APIRouter(tags=["tracks"], responses=ERRORS)

SCORE_FORMATS: dict[str, tuple[str, str]] = {
    "midi": ("audio/midi", "mid"),
    "musicxml": ("application/vnd.recordare.musicxml+xml", "musicxml"),
}
_SCORE_CONTENT = {"content": {ctype: {"schema": {"type": "string", "format": "binary"}}
                              for ctype, _ in SCORE_FORMATS.values()},
                  "description": "The score file (attachment)."}


def _track(db: SessionFactoryDep, track_id: int) -> Track:
    t = get_track(db, track_id)
    if t is None:
        raise TrackNotFoundError(track_id)
    return t


@router.get("/v1/tracks/{track_id}/provenance", response_model=ProvenancePublic,
            summary="How a generated track was made")
def read_provenance(track_id: TrackIdPath, db: SessionFactoryDep) -> ProvenancePublic:
    """Prompt, generator and weights, seed, re-ranking scores, novelty gates, neighbours."""
    t = _track(db, track_id)
    p = get_provenance(db, track_id)
    if p is None:
        raise HTTPException(404, f"track {track_id} is a {t.origin or 'catalog'} track without "
                                 "generation provenance (only generated tracks have one)")
    return ProvenancePublic(
        track_id=track_id, job_id=p.job_id, candidate_index=p.candidate_index, prompt=p.prompt,
        generator_id=p.generator_id, weights_id=p.weights_id, seed=p.seed,
        scores=dict(p.scores or {}), gates=dict(p.gates or {}),
        neighbour_track_ids=[int(x) for x in p.neighbour_track_ids or []],
        prior_samples_shape=[int(p.prior_count or 0), int(p.prior_dim or 0)])


@router.get("/v1/tracks/{track_id}/score", response_class=Response,
            summary="A generated track's score", responses={200: _SCORE_CONTENT})
def read_score(track_id: TrackIdPath, db: SessionFactoryDep,
               format: Annotated[Literal["midi", "musicxml"],  # noqa: A002 - the API's name
                                 Query(description="midi (.mid) or musicxml.")] = "midi",
               ) -> Response:
    """The notes the generator wrote for this track, as a file download."""
    t = _track(db, track_id)
    if t.origin != "generated":
        raise HTTPException(404, f"track {track_id} is a catalog track: only generated tracks "
                                 "have a score to download")
    score = (t.extra or {}).get("score")
    if not isinstance(score, Mapping):
        raise HTTPException(404, f"generated track {track_id} has no score (its generator "
                                 "made audio only)")
    ctype, ext = SCORE_FORMATS[format]
    data = score_to_midi(score) if format == "midi" else score_to_musicxml(score, t.title)
    return Response(data, media_type=ctype, headers={
        "Content-Disposition": f'attachment; filename="track-{track_id}.{ext}"'})


# ------------------------------------------------------------------ score files
# A minimal export of the ``tunescope-events/1`` score (one piano part per voice). The full one,
# with the rendered instruments and the drone, is generation.symbolic.score_export (being
# written alongside); when it lands these two give way to it.

def _events(score: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if score.get("format") != "tunescope-events/1":
        raise GenerationError(f"not a tunescope-events/1 score (format {score.get('format')!r})")
    try:
        arrays = (np.asarray(score["onset_ql"], np.float64), np.asarray(score["dur_ql"], np.float64),
                  np.asarray(score["pitch"], np.int64), np.asarray(score["voice"], np.int64))
    except (KeyError, TypeError, ValueError) as e:
        raise GenerationError(f"malformed tunescope-events/1 score: {e}") from e
    if len({len(a) for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise GenerationError("malformed tunescope-events/1 score: list lengths differ")
    return arrays


def _meter(score: Mapping[str, Any]) -> tuple[int, int]:
    try:
        num, den = (int(x) for x in str(score.get("meter") or "4/4").split("/"))
    except ValueError as e:
        raise GenerationError(f"malformed meter {score.get('meter')!r} in the score") from e
    return num, den


def score_to_midi(score: Mapping[str, Any]) -> bytes:
    """A Standard MIDI File of the score: tempo, time signature, one piano track per voice."""
    import pretty_midi

    onset, dur, pitch, voice = _events(score)
    qbpm = float(score.get("qbpm") or 120.0)
    sec = 60.0 / qbpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=qbpm)
    num, den = _meter(score)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    start = float(onset.min()) if len(onset) else 0.0  # the audio starts on the first note
    for v in np.unique(voice):
        inst = pretty_midi.Instrument(program=0, name=f"voice {int(v) + 1}")
        for o, d, p in zip(onset[voice == v], dur[voice == v], pitch[voice == v], strict=True):
            t0 = (o - start) * sec
            inst.notes.append(pretty_midi.Note(88, int(np.clip(p, 0, 127)), t0,
                                               t0 + max(d, 1e-3) * sec))
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def score_to_musicxml(score: Mapping[str, Any], title: str | None = None) -> bytes:
    """MusicXML of the score: one part per voice on a 1/12-quarter grid, chords merged."""
    from music21 import chord, metadata, meter, note, stream, tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    onset, dur, pitch, voice = _events(score)
    num, den = _meter(score)
    start = float(onset.min()) if len(onset) else 0.0
    top = stream.Score()
    top.metadata = metadata.Metadata(title=title or "Generated")
    for v in np.unique(voice):
        part = stream.Part()
        part.insert(0, meter.TimeSignature(f"{num}/{den}"))
        part.insert(0, tempo.MetronomeMark(number=round(float(score.get("qbpm") or 120.0))))
        chords: dict[float, list[tuple[float, int]]] = {}
        for o, d, p in zip(onset[voice == v], dur[voice == v], pitch[voice == v], strict=True):
            chords.setdefault(_grid(o - start), []).append((_grid(max(d, 1 / 12)), int(p)))
        for o, items in sorted(chords.items()):
            pitches = sorted({p for _, p in items})
            el = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(pitches)
            el.quarterLength = min(d for d, _ in items)
            part.insert(o, el)
        top.insert(0, part)
    try:
        return GeneralObjectExporter(top.makeNotation()).parse()
    except Exception as e:  # noqa: BLE001 - music21 raises many types on what it cannot spell
        raise GenerationError(f"cannot write MusicXML for this score: {e}") from e


def _grid(ql: float) -> float:
    """Quarter notes on the token grid (1/12), so music21 can spell every value."""
    return round(float(ql) * 12) / 12

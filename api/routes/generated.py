"""Generated tracks: how each was made (provenance) and its score as MIDI or MusicXML.

Both answer 404 in the one error format for a catalog track: only generated tracks have a
provenance, and only symbolic generators leave a score (``Track.extra["score"]``). The files
are written by :mod:`generation.symbolic.score_export`, as ``tunescope generate`` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import SessionFactoryDep
from api.schemas.backfill import ProvenancePublic
from api.schemas.errors import ERRORS
from api.schemas.filters import TrackIdPath
from generation.symbolic.score_export import score_to_midi, score_to_musicxml
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

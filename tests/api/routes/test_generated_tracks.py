"""Generated tracks through the real store: provenance, score downloads, the origin filter.

Each generated track is stored exactly as the backfill worker stores a keeper
(``index.repo.backfill.store_generated``) and indexed as the server's worker indexes it
(``api.catalog_writes.add_generated``).
"""

from __future__ import annotations

import io

import mido
import numpy as np
import pretty_midi
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from music21 import converter

from api.catalog_writes import add_generated
from index.repo import backfill as q
from tests.api.conftest import tiny_prior, wav_bytes
from tests.api.tiny_encoder import TinyEncoder
from tests.generation.backfill_fakes import keeper

# A waltz bar and a half: a melody (voice 0) over a held chord (voice 1), as played.
SCORE = {"format": "tunescope-events/1", "meter": "3/4", "qbpm": 90.0, "transpose": 2,
         "onset_ql": [0.0, 1.0, 2.0, 3.0, 3.0, 3.0], "dur_ql": [1.0, 1.0, 1.0, 1.5, 1.5, 1.5],
         "pitch": [62, 64, 66, 50, 54, 57], "voice": [0, 0, 0, 1, 1, 1], "length_ql": 4.5,
         "tokens": [1, 2, 3]}


def store(app: FastAPI, query: str, index: int, score: dict | None) -> int:
    """One keeper stored and indexed as the worker does it; its track id."""
    state = app.state.tunescope
    job, _ = q.enqueue(state.session_factory, query, query, {"n": 1}, recent_window_s=0)
    k = keeper(query, index, dim=32)
    metadata = {**k.metadata, **({"score": score} if score is not None else {})}
    tid = q.store_generated(state.session_factory, state.store, job, k.audio, metadata,
                            k.embedding, "tiny-test@32", k.provenance)
    assert add_generated(state, tid, k.embedding, "tiny-test@32")
    return tid


@pytest.fixture(scope="module")
def generated(app: FastAPI) -> dict[str, int]:
    return {"scored": store(app, "a waltz for accordion", 0, SCORE),
            "plain": store(app, "a drone for bagpipes", 1, None)}


def test_provenance_of_a_generated_track(client: TestClient, generated: dict[str, int]) -> None:
    tid = generated["scored"]
    r = client.get(f"/v1/tracks/{tid}/provenance")
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["track_id"] == tid and p["candidate_index"] == 0 and p["job_id"] >= 1
    assert p["prompt"] == "a waltz for accordion" and p["generator_id"] == "fake-sine"
    assert p["weights_id"] == "none" and isinstance(p["seed"], int)
    assert p["scores"] == {"query": 0.5} and p["gates"] == {"max_similarity": 0.1, "copied_run": 0}
    assert p["neighbour_track_ids"] == [1, 2] and p["prior_samples_shape"] == [2, 32]


def test_catalog_tracks_have_no_provenance_or_score(client: TestClient,
                                                    generated: dict[str, int]) -> None:
    for path in ("/v1/tracks/1/provenance", "/v1/tracks/1/score",
                 "/v1/tracks/1/score?format=musicxml"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
        assert "catalog track" in r.json()["detail"]
    r = client.get(f"/v1/tracks/{generated['plain']}/score")
    assert r.status_code == 404 and "has no score" in r.json()["detail"]
    r = client.get("/v1/tracks/987654/score")
    assert r.status_code == 404 and r.json()["detail"] == "track 987654 not found"
    r = client.get(f"/v1/tracks/{generated['scored']}/score", params={"format": "wav"})
    assert r.status_code == 422 and "format" in r.json()["detail"]


def test_midi_download(client: TestClient, generated: dict[str, int]) -> None:
    tid = generated["scored"]
    r = client.get(f"/v1/tracks/{tid}/score")  # midi is the default
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == f'attachment; filename="track-{tid}.mid"'
    pm = pretty_midi.PrettyMIDI(io.BytesIO(r.content))
    melody, chord = pm.instruments
    assert [n.pitch for n in melody.notes] == [62, 64, 66]
    assert sorted(n.pitch for n in chord.notes) == [50, 54, 57]
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90.0, rel=1e-4)  # µs per beat
    assert (pm.time_signature_changes[0].numerator, pm.time_signature_changes[0].denominator) \
        == (3, 4)
    assert melody.notes[1].start == pytest.approx(60 / 90, rel=1e-4)  # a quarter at 90/min
    mid = mido.MidiFile(file=io.BytesIO(r.content))
    assert sum(m.type == "note_on" and m.velocity > 0 for t in mid.tracks for m in t) == 6


def test_musicxml_download(client: TestClient, generated: dict[str, int]) -> None:
    tid = generated["scored"]
    r = client.get(f"/v1/tracks/{tid}/score", params={"format": "musicxml"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.recordare.musicxml+xml"
    assert r.headers["content-disposition"] == f'attachment; filename="track-{tid}.musicxml"'
    score = converter.parseData(r.content.decode("utf-8"), format="musicxml")
    melody, chords = score.parts
    assert [n.pitch.midi for n in melody.flatten().notes] == [62, 64, 66]
    (chord,) = chords.flatten().notes
    assert sorted(p.midi for p in chord.pitches) == [50, 54, 57]
    assert chord.quarterLength == 1.5 and chord.offset == 3.0
    assert melody.flatten().getElementsByClass("TimeSignature")[0].ratioString == "3/4"
    assert score.metadata.bestTitle == "a waltz for accordion #0"  # the track's title


def _ids(r) -> set[int]:  # noqa: ANN001 - an httpx response
    assert r.status_code == 200, r.text
    return {i["track"]["id"] for i in r.json()["results"]}


def test_origin_filter_on_every_search_endpoint(client: TestClient, app: FastAPI,
                                                generated: dict[str, int]) -> None:
    mine = set(generated.values())
    app.state.tunescope.prior = tiny_prior(TinyEncoder())
    clip = {"file": ("c.wav", wav_bytes(), "audio/wav")}
    try:
        for origin in ("generated", "catalog"):
            p = {"origin": origin, "k": 50}
            answers = {
                "text": _ids(client.get("/v1/search", params={**p, "q": "a waltz"})),
                "generative": _ids(client.get("/v1/search/generative",
                                              params={**p, "q": "a waltz", "seeds": 3})),
                "audio": _ids(client.post("/v1/search/audio", params=p, files=clip)),
                "similar": _ids(client.get("/v1/tracks/2/similar", params=p)),
                "recommend": _ids(client.post("/v1/recommend", json={
                    "positive": [2, "a waltz"], "k": 50, "filters": {"origin": [origin]}})),
            }
            for name, ids in answers.items():
                if origin == "generated":
                    assert ids == mine, (name, ids)  # both, and nothing else
                else:
                    assert ids and not ids & mine, (name, ids)
    finally:
        app.state.tunescope.prior = None
    # a generated track is also found without the filter, flagged by its origin
    r = client.post("/v1/search/audio", params={"k": 50}, files=clip).json()
    origins = {i["track"]["id"]: i["track"]["origin"] for i in r["results"]}
    assert all(origins[t] == "generated" for t in mine)
    assert np.count_nonzero([o == "catalog" for o in origins.values()]) == 18

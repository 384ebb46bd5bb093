"""POST /v1/generate and GET /v1/jobs/{id}: auth, validation, dedupe, progress after a worker."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.backfill import load_pipeline
from api.catalog_writes import add_generated
from generation.backfill.worker import Keeper, run_worker
from tests.api.conftest import API_KEY

KEY = {"X-API-Key": API_KEY}
PIPELINE = "tests.generation.backfill_fakes:tiny_pipeline"


def work_the_queue(app: FastAPI) -> None:
    """One worker, in this thread, until the queue is empty: what the server's thread does."""
    state = app.state.tunescope
    pipeline = load_pipeline(PIPELINE, state.settings)

    def on_stored(track_id: int, keeper: Keeper) -> None:
        add_generated(state, track_id, keeper.embedding, pipeline.encoder_id)

    stats = run_worker(state.session_factory, state.store, pipeline.generate, worker_id="test",
                       lease_s=30, heartbeat_s=5, stop_event=threading.Event(),
                       encoder_id=pipeline.encoder_id, exit_when_idle=True, on_stored=on_stored)
    assert stats.failed == 0 and stats.claimed >= 1, stats


def test_generate_needs_the_key(client: TestClient) -> None:
    body = {"query": "a waltz for accordion"}
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 401 and r.json() == {"error": "unauthorized",
                                                 "detail": "missing X-API-Key header"}
    r = client.post("/v1/generate", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


@pytest.mark.parametrize(("body", "needle"), [
    ({"query": "x", "n": 0}, "n:"),
    ({"query": "x", "n": 17}, "n:"),
    ({"query": "x", "n": True}, "n:"),
    ({"query": "x", "duration_s": 4.9}, "duration_s:"),
    ({"query": "x", "duration_s": 61}, "duration_s:"),
    ({"query": "   "}, "query:"),
    ({"n": 2}, "query:"),
    ({"query": "x", "attributes": {"tempo_class": "hurried"}}, "attributes.tempo_class:"),
    ({"query": "x", "attributes": {"meter": "3/5"}}, "attributes.meter:"),
    ({"query": "x", "attributes": {"mode": "happy"}}, "attributes.mode:"),
    ({"query": "x", "attributes": {"colour": "red"}}, "attributes.colour:"),
    ({"query": "x", "seed": 3}, "seed:"),
    ({"query": "x", "like_track_id": 0}, "like_track_id:"),
])
def test_generate_refuses_bad_requests_naming_the_field(client: TestClient, body: dict,
                                                        needle: str) -> None:
    r = client.post("/v1/generate", json=body, headers=KEY)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and needle in r.json()["detail"], r.json()


def test_generate_like_track_must_exist(client: TestClient) -> None:
    r = client.post("/v1/generate", json={"query": "x", "like_track_id": 987654}, headers=KEY)
    assert r.status_code == 404 and r.json() == {"error": "not_found",
                                                 "detail": "track 987654 not found"}


def test_unknown_job_is_a_json_404(client: TestClient) -> None:
    r = client.get("/v1/jobs/987654")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "no job 987654"}


def test_generate_then_a_worker_then_the_job_shows_its_tracks(client: TestClient,
                                                              app: FastAPI) -> None:
    body = {"query": "a slow air for harp", "n": 2, "duration_s": 6,
            "attributes": {"meter": "3/4", "tempo_class": "slow"}, "like_track_id": 3}
    r = client.post("/v1/generate", json=body, headers=KEY)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status"] == "queued" and accepted["created"] is True
    job_id = accepted["job_id"]
    assert r.headers["location"] == f"/v1/jobs/{job_id}"
    again = client.post("/v1/generate", json=body, headers=KEY).json()
    assert again == {"job_id": job_id, "status": "queued", "created": False}
    other = client.post("/v1/generate", json={**body, "n": 3}, headers=KEY).json()
    assert other["created"] and other["job_id"] != job_id  # n changes what is made

    queued = client.get(f"/v1/jobs/{job_id}").json()
    assert queued["status"] == "queued" and queued["tracks"] == [] and queued["attempts"] == 0
    assert queued["query"] == "a slow air for harp" and queued["finished_at"] is None

    work_the_queue(app)

    done = client.get(f"/v1/jobs/{job_id}").json()
    assert done["status"] == "done" and done["attempts"] == 1 and done["error"] is None
    assert done["progress"]["stage"] == "done" and done["progress"]["stored"] == 2
    assert done["finished_at"] and done["updated_at"] >= done["created_at"]
    tracks = done["tracks"]
    assert [t["title"] for t in tracks] == ["a slow air for harp #0", "a slow air for harp #1"]
    assert all(t["origin"] == "generated" for t in tracks)
    # each keeper is searchable at once, and found among generated tracks only
    gen = client.get("/v1/search", params={"q": "air", "origin": "generated", "k": 50}).json()
    found = {i["track"]["id"] for i in gen["results"]}
    assert {t["id"] for t in tracks} <= found
    # the job kept what was asked for
    with app.state.tunescope.session_factory() as session:
        from index.models import BackfillJob

        request = session.get(BackfillJob, job_id).request
    assert request == {"n": 2, "duration_s": 6.0, "attributes": {"meter": "3/4",
                                                                 "tempo_class": "slow"},
                       "like_track_id": 3, "filters": {}}

"""Weak matches in every search response, and the backfill job a weak first page queues.

The verdicts are pinned by injecting detectors (``WeakMatchDetector.fallback`` at a threshold
every cosine is below, or above): which queries the tiny encoder finds weak is not the point
here, what the API does with a verdict is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from api.app import create_app
from api.settings import Settings
from index.db import open_catalog
from index.models import BackfillJob
from retrieval.search import SearchService
from retrieval.search.weak_match import WeakMatchDetector
from tests.api.conftest import API_KEY, build_catalog, tiny_prior, wav_bytes
from tests.api.tiny_encoder import TinyEncoder

PIPELINE = "tests.generation.backfill_fakes:tiny_pipeline"
DETAIL_KEYS = {"score", "threshold", "reason", "signals"}


def always_weak(encoder_id: str) -> WeakMatchDetector:
    return WeakMatchDetector.fallback(encoder_id, threshold=2.0)  # every cosine is below 2


def backfill_app(home: Path, detector: WeakMatchDetector | None = None, **settings: object
                 ) -> FastAPI:
    """The real app over ``home``'s catalog with backfill configured (no worker thread runs:
    the lifespan is never entered, so queued jobs stay queued for the test to inspect)."""
    s = Settings(home=home, api_key=API_KEY, backfill_generate=PIPELINE, **settings)
    enc = TinyEncoder()
    service = SearchService.open(enc, open_catalog(s.resolved_database_url), s.index_dir,
                                 detector=detector or always_weak(enc.id))
    return create_app(s, service=service, prior=tiny_prior(enc, mean_head=True))


def job_count(app: FastAPI) -> int:
    with app.state.tunescope.session_factory() as session:
        return int(session.scalar(select(func.count(BackfillJob.id))))


@pytest.fixture
def weak_client(tmp_path: Path) -> Iterator[TestClient]:
    build_catalog(tmp_path, n=12)
    yield TestClient(backfill_app(tmp_path))


def test_every_search_endpoint_says_why_it_is_weak_or_not(client: TestClient, app: FastAPI
                                                          ) -> None:
    app.state.tunescope.prior = tiny_prior(TinyEncoder())
    try:
        answers = {
            "text": client.get("/v1/search", params={"q": "a lively reel", "k": 3}),
            "generative": client.get("/v1/search/generative",
                                     params={"q": "a lively reel", "seeds": 4, "k": 3}),
            "audio": client.post("/v1/search/audio", params={"k": 3},
                                 files={"file": ("c.wav", wav_bytes(), "audio/wav")}),
            "similar": client.get("/v1/tracks/5/similar", params={"k": 3}),
            "recommend": client.post("/v1/recommend", json={"positive": [5, "a reel"], "k": 3}),
            "conversation": client.post("/v1/conversations", json={"text": "a reel"}),
        }
    finally:
        app.state.tunescope.prior = None
    for name, r in answers.items():
        assert r.status_code in (200, 201), (name, r.text)
        body = r.json()
        d = body["weak_match_detail"]
        assert d.keys() == DETAIL_KEYS and d["reason"], name
        assert body["weak_match"] is (d["score"] >= d["threshold"]), (name, d)
        assert {"top1", "top10", "gap"} <= d["signals"].keys(), name
        assert body["backfill"] is None, name  # backfill is not configured on this app
    # only generative search sampled the prior, so only it reads the seeds' neighbours
    assert "prior_nn" in answers["generative"].json()["weak_match_detail"]["signals"]
    assert "prior_nn" not in answers["text"].json()["weak_match_detail"]["signals"]
    # the detail's top1 is the best score plain search shows
    text_body = answers["text"].json()
    assert text_body["weak_match_detail"]["signals"]["top1"] == pytest.approx(
        text_body["results"][0]["score"], abs=1e-3)
    with app.state.tunescope.session_factory() as session:  # and nothing was queued
        assert session.scalar(select(func.count(BackfillJob.id))) == 0


def test_a_weak_query_queues_one_job_however_often_it_is_asked(weak_client: TestClient) -> None:
    app = weak_client.app
    first = weak_client.get("/v1/search", params={"q": "a Waltz for  accordion"}).json()
    assert first["weak_match"] and first["backfill"]["created"] is True
    job_id = first["backfill"]["job_id"]
    assert first["backfill"]["status"] == "queued" and isinstance(job_id, int)
    for params in ({"q": "a waltz for accordion"}, {"q": "A WALTZ FOR ACCORDION", "k": 3}):
        again = weak_client.get("/v1/search", params=params).json()["backfill"]
        assert again == {"job_id": job_id, "status": "queued", "created": False}
    gen = weak_client.get("/v1/search/generative", params={"q": "a waltz for accordion",
                                                           "seeds": 8}).json()
    assert gen["backfill"] == {"job_id": job_id, "status": "queued", "created": False}
    # with backfill at stake plain search samples the prior too: the same seeds, the same signal
    plain = weak_client.get("/v1/search", params={"q": "a waltz for accordion"}).json()
    nn = plain["weak_match_detail"]["signals"]["prior_nn"]
    assert nn == gen["weak_match_detail"]["signals"]["prior_nn"] and -1.0 <= nn <= 1.0
    assert job_count(app) == 1
    # the job asks for what the settings say, for the query as typed
    with app.state.tunescope.session_factory() as session:
        job = session.get(BackfillJob, job_id)
        assert job.query == "a Waltz for  accordion"
        assert job.request == {"n": 4, "duration_s": 20.0, "attributes": {},
                               "like_track_id": None, "filters": {}}
    # other filters are another request; page 2 and generated-only searches queue nothing
    minor = weak_client.get("/v1/search", params={"q": "a waltz for accordion",
                                                  "mode": "minor"}).json()["backfill"]
    assert minor["created"] and minor["job_id"] != job_id
    page2 = weak_client.get("/v1/search", params={"q": "something else", "offset": 5}).json()
    assert page2["backfill"] is None and "prior_nn" not in page2["weak_match_detail"]["signals"]
    assert weak_client.get("/v1/search", params={"q": "something else", "origin": "generated"}
                           ).json()["backfill"] is None
    assert job_count(app) == 2
    with app.state.tunescope.session_factory() as session:
        job = session.get(BackfillJob, minor["job_id"])
        assert job.request["filters"] == {"mode": ["minor"]}
    # a weak conversation turn queues for its words too
    conv = weak_client.post("/v1/conversations", json={"text": "a polka for banjo"})
    assert conv.status_code == 201 and conv.json()["backfill"]["created"] is True
    assert job_count(app) == 3


def test_the_hourly_cap_answers_limited(tmp_path: Path) -> None:
    build_catalog(tmp_path, n=8)
    app = backfill_app(tmp_path, backfill_max_per_hour=6, backfill_candidates=4)
    c = TestClient(app)
    first = c.get("/v1/search", params={"q": "a march for bagpipes"}).json()["backfill"]
    assert first["status"] == "queued" and first["created"]
    # 4 candidates pending + 4 more would pass 6: no new job
    second = c.get("/v1/search", params={"q": "a hornpipe for harp"}).json()
    assert second["results"] and second["backfill"] == {"job_id": None, "status": "limited",
                                                        "created": False}
    # the query that already has its job is still pointed at it
    again = c.get("/v1/search", params={"q": "a march for bagpipes"}).json()["backfill"]
    assert again == {"job_id": first["job_id"], "status": "queued", "created": False}
    assert job_count(app) == 1


def test_no_backfill_when_it_is_not_configured_or_the_match_is_good(tmp_path: Path) -> None:
    build_catalog(tmp_path, n=6)
    enc = TinyEncoder()
    s = Settings(home=tmp_path)
    off = TestClient(create_app(s, service=SearchService.open(
        enc, open_catalog(s.resolved_database_url), s.index_dir, detector=always_weak(enc.id))))
    r = off.get("/v1/search", params={"q": "a waltz"}).json()
    assert r["weak_match"] and r["backfill"] is None
    good = backfill_app(tmp_path, detector=WeakMatchDetector.fallback(enc.id, threshold=-2.0))
    r = TestClient(good).get("/v1/search", params={"q": "a waltz"}).json()
    assert not r["weak_match"] and r["backfill"] is None
    assert job_count(good) == 0


def test_a_broken_queue_never_fails_the_search(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    build_catalog(tmp_path, n=6)
    app = backfill_app(tmp_path)
    with app.state.tunescope.session_factory() as session:  # the queue's table is gone
        session.execute(text("DROP TABLE backfill_jobs"))
        session.commit()
    r = TestClient(app).get("/v1/search", params={"q": "a waltz"})
    assert r.status_code == 200 and r.json()["results"] and r.json()["backfill"] is None
    assert "could not queue backfill" in caplog.text

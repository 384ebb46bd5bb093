"""/v1/search, /v1/search/generative, /v1/search/audio and /v1/tracks/{id}/similar."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from retrieval.prior.pipeline import PriorPipeline
from tests.api.conftest import tiny_prior, wav_bytes
from tests.api.tiny_encoder import TinyEncoder

TRACK_KEYS = {"id", "title", "artist", "collection", "tags", "instruments", "key", "mode",
              "meter", "tempo_bpm", "duration_s", "origin", "audio_url"}


def test_search_shape_and_every_track_field(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "a lively reel", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["text"] == "a lively reel" and isinstance(body["weak_match"], bool)
    assert len(body["results"]) == 5
    for item in body["results"]:
        assert TRACK_KEYS <= item["track"].keys() and isinstance(item["score"], float)
    titles = {i["track"]["title"] for i in client.get(
        "/v1/search", params={"q": "x", "k": 50}).json()["results"]}
    assert "tune_03" in titles  # no title in the metadata: the file stem


def test_filters_paging_and_exclusion(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "tune", "k": 10, "collection": "bach",
                                          "instrument": "flute"}).json()
    assert r["results"] and all(i["track"]["collection"] == "bach" and
                                "flute" in i["track"]["instruments"] for i in r["results"])
    p1 = client.get("/v1/search", params={"q": "tune", "k": 4}).json()["results"]
    p2 = client.get("/v1/search", params={"q": "tune", "k": 4, "offset": 4}).json()["results"]
    both = client.get("/v1/search", params={"q": "tune", "k": 8}).json()["results"]
    assert [i["track"]["id"] for i in p1 + p2] == [i["track"]["id"] for i in both]
    seen = [i["track"]["id"] for i in p1]
    r = client.get("/v1/search", params={"q": "tune", "k": 4, "exclude": seen}).json()
    assert not set(seen) & {i["track"]["id"] for i in r["results"]}
    r = client.get("/v1/search", params={"q": "tune", "tempo_min": 100, "tempo_max": 120}).json()
    assert all(100 <= i["track"]["tempo_bpm"] <= 120 for i in r["results"]) and r["results"]


def test_similar_and_audio(client: TestClient) -> None:
    r = client.get("/v1/tracks/5/similar", params={"k": 3}).json()
    assert len(r["results"]) == 3 and 5 not in [i["track"]["id"] for i in r["results"]]
    scores = [i["score"] for i in r["results"]]
    assert scores == sorted(scores, reverse=True)
    r = client.post("/v1/search/audio", params={"k": 3},
                    files={"file": ("clip.wav", wav_bytes(freq=110 * 2 ** (7 / 6)), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["track"]["id"] == 8  # the same tone as tune_07


def test_an_empty_range_is_an_empty_page(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "x", "tempo_min": 9, "tempo_max": 1})
    assert r.status_code == 200 and r.json()["results"] == [] and r.json()["weak_match"]


def test_errors_are_json_4xx_naming_the_value(client: TestClient) -> None:
    cases = [
        (client.get("/v1/tracks/999999"), 404, "999999"),
        (client.get("/v1/search", params={"q": "x", "k": 0}), 422, "k"),
        (client.get("/v1/search"), 422, "q"),
        (client.get("/v1/tracks/999999/similar"), 404, "999999"),
        (client.post("/v1/recommend", json={"positive": []}), 422, "positive"),
        (client.post("/v1/recommend", json={"positive": [999999]}), 404, "999999"),
        (client.post("/v1/search/audio", files={"file": ("x.wav", b"not audio", "audio/wav")}),
         422, ""),
        (client.get("/v1/tracks/abc"), 422, "track_id"),
    ]
    for r, status, needle in cases:
        assert r.status_code == status, (r.status_code, r.text)
        body = r.json()
        assert body["error"] and needle in body["detail"], body


@pytest.fixture
def with_prior(app: FastAPI):  # noqa: ANN201 - yields the injected prior
    prior = tiny_prior(TinyEncoder())
    app.state.tunescope.prior = prior
    yield prior
    app.state.tunescope.prior = None


def test_mode_is_the_musical_mode_only(client: TestClient) -> None:
    minor = client.get("/v1/search", params={"q": "a tune", "mode": "minor", "k": 50}).json()
    assert minor["results"] and all(i["track"]["mode"] == "minor" for i in minor["results"])
    old = client.get("/v1/search", params={"q": "a tune", "mode": "generative"})
    assert old.status_code == 422 and "/v1/search/generative" in old.json()["detail"]
    spec = client.get("/openapi.json").json()["paths"]
    plain = {p["name"] for p in spec["/v1/search"]["get"]["parameters"]}
    gen = {p["name"] for p in spec["/v1/search/generative"]["get"]["parameters"]}
    assert "mode" in plain and "mode" in gen  # the musical filter, on both
    assert {"seeds", "guidance", "negative", "like", "unlike"} <= gen - plain


def test_generative_search(client: TestClient, with_prior: PriorPipeline) -> None:
    params = {"q": "a lively reel", "seeds": 4, "guidance": 1.5,
              "negative": ["slow air", "flute"], "k": 5}
    r = client.get("/v1/search/generative", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [item["track"]["id"] for item in body["results"]]
    assert len(ids) == 5 == len(set(ids))
    q = body["query"]
    assert q["mode"] == "generative" and q["seeds"] == 4 and q["negative"] == ["slow air", "flute"]
    assert 0.0 <= q["spread"] <= 2.0
    assert client.get("/v1/search/generative", params=params).json() == body  # deterministic per seed
    plain = client.get("/v1/search", params={"q": "a lively reel", "k": 5}).json()
    assert plain["query"]["mode"] == "text"


def test_generative_search_without_a_prior(client: TestClient, app: FastAPI) -> None:
    assert app.state.tunescope.prior is None  # and none is trained for the tiny encoder
    r = client.get("/v1/search/generative", params={"q": "a reel"})
    assert r.status_code == 400 and "train-prior" in r.json()["detail"]


def test_generative_search_steered_by_example_tracks(client: TestClient,
                                                     with_prior: PriorPipeline) -> None:
    ids = [item["track"]["id"] for item in client.get(
        "/v1/search", params={"q": "a reel", "k": 3}).json()["results"]]
    liked, disliked = ids[0], ids[1]
    r = client.get("/v1/search/generative", params={"q": "a reel", "seeds": 4,
                                                    "like": [liked], "unlike": [disliked], "k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [item["track"]["id"] for item in body["results"]]
    assert liked not in got and disliked not in got  # examples are never returned
    assert body["query"]["like"] == [liked] and body["query"]["unlike"] == [disliked]
    unknown = client.get("/v1/search/generative", params={"q": "a reel", "like": [987654]})
    assert unknown.status_code == 404 and "987654" in unknown.text
    big = client.get("/v1/search/generative", params={"q": "a reel", "like": [10**23]})
    assert big.status_code == 422 and big.json()["error"] == "invalid_request"

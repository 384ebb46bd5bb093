"""The HTTP API through TestClient: shapes, filters, range requests, auth, errors, metrics."""

from __future__ import annotations

import io
from pathlib import Path

import soundfile as sf
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import API_KEY, SR, TinyEncoder, tone

TRACK_KEYS = {"id", "title", "artist", "collection", "tags", "instruments", "key", "mode",
              "meter", "tempo_bpm", "duration_s", "origin", "audio_url"}


def wav_bytes(seconds: float = 1.5, freq: float = 220.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(freq, seconds), SR, format="WAV")
    return buf.getvalue()


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


def test_similar_recommend_audio(client: TestClient) -> None:
    r = client.get("/v1/tracks/5/similar", params={"k": 3}).json()
    assert len(r["results"]) == 3 and 5 not in [i["track"]["id"] for i in r["results"]]
    scores = [i["score"] for i in r["results"]]
    assert scores == sorted(scores, reverse=True)
    r = client.post("/v1/recommend", json={"positive": [5, "reel"], "negative": [12], "k": 4,
                                           "strategy": "best_score"})
    assert r.status_code == 200, r.text
    assert not {5, 12} & {i["track"]["id"] for i in r.json()["results"]}
    r = client.post("/v1/search/audio", params={"k": 3},
                    files={"file": ("clip.wav", wav_bytes(freq=110 * 2 ** (7 / 6)), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["track"]["id"] == 8  # the same tone as tune_07


def test_track_and_ranged_audio(client: TestClient) -> None:
    t = client.get("/v1/tracks/1").json()
    assert t["audio_url"] == "/v1/tracks/1/audio"
    full = client.get("/v1/tracks/1/audio")
    assert full.status_code == 200 and full.headers["content-type"] == "audio/flac"
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get("/v1/tracks/2/audio", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.headers["content-type"] == "audio/wav"
    whole = client.get("/v1/tracks/2/audio").content
    assert part.content == whole[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(whole)}"
    tail = client.get("/v1/tracks/2/audio", headers={"Range": "bytes=-5"})
    assert tail.content == whole[-5:]
    bad = client.get("/v1/tracks/2/audio", headers={"Range": f"bytes={len(whole) + 5}-"})
    assert bad.status_code == 416 and bad.json()["error"] == "bad_range"


def test_errors_are_json_4xx_naming_the_value(client: TestClient) -> None:
    cases = [
        (client.get("/v1/tracks/999999"), 404, "999999"),
        (client.get("/v1/search", params={"q": "x", "k": 0}), 422, "k"),
        (client.get("/v1/search"), 422, "q"),
        (client.get("/v1/search", params={"q": "x", "tempo_min": 9, "tempo_max": 1}), 422,
         "tempo range"),
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


def test_writes_need_the_key(catalog_home: Path, client: TestClient) -> None:
    files = {"file": ("new_tune.wav", wav_bytes(2.0, 333.0), "audio/wav")}
    assert client.post("/v1/tracks", files=files).status_code == 401
    assert client.post("/v1/tracks", files=files,
                       headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.delete("/v1/tracks/1").status_code == 401
    r = client.post("/v1/tracks", files=files, data={"collection": "uploads", "tags": "a;b"},
                    headers={"X-API-Key": API_KEY})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["title"] == "new_tune" and new["collection"] == "uploads"
    assert new["tags"] == ["a", "b"]
    clip = {"file": ("q.wav", wav_bytes(1.0, 333.0), "audio/wav")}
    hits = client.post("/v1/search/audio", files=clip).json()["results"]
    assert hits[0]["track"]["id"] == new["id"]  # searchable at once
    again = client.post("/v1/tracks", files=files, headers={"X-API-Key": API_KEY})
    assert again.status_code == 409
    junk = client.post("/v1/tracks", files={"file": ("x.wav", b"RIFF0000junk", "audio/wav")},
                       headers={"X-API-Key": API_KEY})
    assert junk.status_code == 422 and junk.json()["detail"]
    d = client.delete(f"/v1/tracks/{new['id']}", headers={"X-API-Key": API_KEY})
    assert d.status_code == 204
    assert client.get(f"/v1/tracks/{new['id']}").status_code == 404
    hits = client.post("/v1/search/audio", files=clip, params={"k": 50}).json()["results"]
    assert new["id"] not in [h["track"]["id"] for h in hits]
    # A fresh app (restart) loads the saved index: the deleted track stays gone.
    fresh = TestClient(create_app(Settings(home=catalog_home, api_key=API_KEY),
                                  encoder=TinyEncoder()))
    hits = fresh.post("/v1/search/audio", files=clip, params={"k": 50}).json()["results"]
    assert new["id"] not in [h["track"]["id"] for h in hits] and len(hits) == 18


def test_no_key_configured_means_no_writes(catalog_home: Path) -> None:
    c = TestClient(create_app(Settings(home=catalog_home, api_key=None,
                                       read_requires_key=False), encoder=TinyEncoder()))
    r = c.delete("/v1/tracks/1", headers={"X-API-Key": "anything"})
    assert r.status_code == 403 and "TUNESCOPE_API_KEY" in r.json()["detail"]
    keyed = TestClient(create_app(Settings(home=catalog_home, api_key="k",
                                           read_requires_key=True), encoder=TinyEncoder()))
    assert keyed.get("/v1/search", params={"q": "x"}).status_code == 401
    assert keyed.get("/v1/search", params={"q": "x"}, headers={"X-API-Key": "k"}).status_code \
        == 200


def test_health_metrics_page_openapi(client: TestClient) -> None:
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["encoder"] == "tiny-test@32" and h["index"]["count"] >= 18
    client.get("/v1/search", params={"q": "metrics please"})
    m = client.get("/metrics").text
    assert 'tunescope_http_requests_total{method="GET",route="/v1/search",status="200"}' in m
    assert "tunescope_index_vectors" in m
    page = client.get("/")
    assert page.status_code == 200 and 'id="q"' in page.text
    assert client.get("/static/app.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/search/audio", "/v1/tracks/{track_id}",
            "/v1/tracks/{track_id}/audio", "/v1/tracks/{track_id}/similar", "/v1/recommend",
            "/v1/tracks", "/v1/health"} <= spec["paths"].keys()

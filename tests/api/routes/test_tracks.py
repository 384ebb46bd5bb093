"""/v1/tracks: metadata, ranged audio, upload and delete behind the key."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import API_KEY, TinyEncoder, wav_bytes


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

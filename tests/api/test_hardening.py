"""What a hostile probe of the running server found, one test per reproduction.

Each of these failed on the code before the hardening (a 500, a plain-text error, a committed
write reported as failed, an upload decoded whole) and must keep passing.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import API_KEY, SR, build_catalog, tiny_prior, tone
from tests.api.tiny_encoder import TinyEncoder


def _flac_hour_header_bytes() -> bytes:
    """Ten minutes of 48 kHz stereo silence as FLAC: tiny on the wire, huge decoded."""
    buf = io.BytesIO()
    minute = np.zeros((48000 * 60, 2), np.int16)
    with sf.SoundFile(buf, "w", 48000, 2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(10):
            f.write(minute)
    return buf.getvalue()


def _wav(wave: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_long_silent_upload_is_refused_from_its_header(client: TestClient) -> None:
    data = _flac_hour_header_bytes()
    assert len(data) < 200_000  # compressed ~1000:1
    r = client.post("/v1/search/audio", files={"file": ("silence.flac", data, "audio/flac")})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "bad_audio" and "silence.flac" in body["detail"]
    assert "BytesIO" not in body["detail"] and "0x" not in body["detail"]


def test_query_clips_get_ingests_validation(client: TestClient) -> None:
    bad = tone(220.0, 2.0)
    bad[100:200] = np.nan
    r = client.post("/v1/search/audio", files={"file": ("nan.wav", _wav(bad), "audio/wav")})
    assert r.status_code == 422 and r.json()["error"] == "bad_audio", r.text
    good = _wav(tone(220.0, 2.0))
    lying = bytearray(good)
    data_at = lying.index(b"data") + 4
    lying[data_at:data_at + 4] = (10**8).to_bytes(4, "little")  # claims far more samples
    r = client.post("/v1/search/audio", files={"file": ("lie.wav", bytes(lying), "audio/wav")})
    assert r.status_code == 422 and r.json()["error"] == "bad_audio", r.text
    silent = _wav(np.zeros(2 * SR, np.float32))
    r = client.post("/v1/search/audio", files={"file": ("quiet.wav", silent, "audio/wav")})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("url", [
    "/v1/search?q=jig&exclude=9223372036854775808",
    "/v1/tracks/1/similar?exclude=99999999999999999999999",
    "/v1/search/generative?q=jig&like=99999999999999999999999",
    "/v1/search/generative?q=jig&unlike=-3",
])
def test_huge_integers_in_query_lists_are_422(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request", r.text


def test_every_error_is_json(client: TestClient) -> None:
    for r in (client.get("/v1/tracks/2/audio", headers={"Range": ""}),
              client.get("/v1/tracks/2/audio", headers={"Range": "bytes=x-y"}),
              client.get("/v1/search", params={"q": "x" * 20_000}),
              client.get("/v1/search", params={"q": "   "}),
              client.get("/nope"),
              client.post("/v1/recommend", content=b"{not json",
                          headers={"content-type": "application/json"})):
        assert r.status_code in (404, 416, 422), (r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/json" and r.json()["detail"]


def test_json_bodies_are_bounded(client: TestClient) -> None:
    big = b'{"positive": [1], "pad": "' + b"x" * (3 * 2**20) + b'"}'
    r = client.post("/v1/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"positive": [1], "pad": "'
        for _ in range(40):
            yield b"x" * 2**16
        yield b'"}'

    r = client.post("/v1/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_security_headers(client: TestClient) -> None:
    for r in (client.get("/"), client.get("/v1/search", params={"q": "x"}),
              client.get("/v1/tracks/999999")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_server_errors_are_counted_and_say_nothing_internal(catalog_home: Path) -> None:
    app = create_app(Settings(home=catalog_home, api_key=API_KEY), encoder=TinyEncoder())
    svc = app.state.tunescope.service

    def broken(*_: object, **__: object) -> None:
        raise ValueError("secret internal state at /srv/tmp/x")

    svc.search_text = broken
    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/v1/search", params={"q": "a reel"})
    assert r.status_code == 500 and r.json()["error"] == "internal"
    assert "secret" not in r.text and "/srv" not in r.text
    m = c.get("/metrics").text
    assert 'tunescope_http_requests_total{method="GET",route="/v1/search",status="500"} 1.0' in m


def test_reads_are_not_marked_as_keyed_unless_they_are(catalog_home: Path, client: TestClient) -> None:
    spec = client.get("/openapi.json").json()["paths"]
    assert "security" not in spec["/v1/search"]["get"]
    assert spec["/v1/tracks"]["post"]["security"] == [{"APIKeyHeader": []}]
    keyed = TestClient(create_app(Settings(home=catalog_home, api_key="k", read_requires_key=True),
                                  encoder=TinyEncoder()))
    assert keyed.get("/openapi.json").json()["paths"]["/v1/search"]["get"]["security"]


def test_a_committed_delete_succeeds_when_the_index_cannot_be_saved(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_catalog(home, n=6)
    settings = Settings(home=home, api_key=API_KEY)
    c = TestClient(create_app(settings, encoder=TinyEncoder()))
    index_dir = settings.index_dir
    shutil.rmtree(index_dir)
    index_dir.write_text("not a folder")  # every save fails (works as root, unlike chmod)
    r = c.delete("/v1/tracks/3", headers={"X-API-Key": API_KEY})
    assert r.status_code == 204, r.text
    assert c.get("/v1/tracks/3").status_code == 404
    ids = [i["track"]["id"] for i in c.get("/v1/search", params={"q": "x", "k": 50}).json()["results"]]
    assert 3 not in ids and len(ids) == 5
    index_dir.unlink()
    fresh = TestClient(create_app(settings, encoder=TinyEncoder()))  # the next start: no traceback
    ids = [i["track"]["id"] for i in fresh.get("/v1/search", params={"q": "x", "k": 50}).json()["results"]]
    assert sorted(ids) == [1, 2, 4, 5, 6]


def test_generative_search_on_an_empty_catalog(tmp_path: Path) -> None:
    enc = TinyEncoder()
    c = TestClient(create_app(Settings(home=tmp_path / "empty"), encoder=enc, prior=tiny_prior(enc)))
    for url in ("/v1/search/generative", "/v1/search"):
        r = c.get(url, params={"q": "a jig"})
        assert r.status_code == 200, r.text
        assert r.json()["results"] == [] and r.json()["weak_match"] is True


def test_health_says_starting_until_warm(catalog_home: Path) -> None:
    app = create_app(Settings(home=catalog_home), encoder=TinyEncoder(), warm=True)
    state = app.state.tunescope
    c = TestClient(app)
    assert not state.ready.is_set()
    r = c.get("/v1/health")
    assert r.status_code == 503 and r.json()["status"] == "starting"
    with TestClient(app) as running:  # the lifespan starts the warm-up
        assert state.ready.wait(60)
        assert running.get("/v1/health").json()["status"] == "ok"

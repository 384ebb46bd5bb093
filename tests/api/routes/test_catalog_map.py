"""GET /v1/catalog/map and /v1/catalog/map/locate over a real catalog, through HTTP.

Generated tracks are stored by the backfill's own ``store_generated`` and indexed by the
worker's own ``add_generated``, so the map sees them exactly as a running server would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.catalog_writes import add_generated
from api.settings import Settings
from index.db import open_catalog
from index.repo.backfill import Provenance, enqueue, request_key, store_generated
from index.store import AudioStore
from tests.api.conftest import API_KEY, build_catalog, tiny_prior, tone, wav_bytes
from tests.api.tiny_encoder import TinyEncoder

SCORE = {"format": "tunescope-events/1", "meter": "3/4", "qbpm": 96, "transpose": 0,
         "onset_ql": [0, 1, 2], "dur_ql": [1, 1, 1], "pitch": [62, 66, 69], "voice": [0, 0, 0],
         "length_ql": 3, "tokens": []}


def store_generated_tone(home: Path, freq: float, query: str = "a waltz nobody wrote",
                         candidate: int = 0) -> tuple[int, np.ndarray]:
    """Store one generated track (a tone) the way the backfill worker does.

    Returns ``(track id, its embedding)``; the track has ``origin="generated"``, provenance,
    and a score in ``Track.extra``.
    """
    settings = Settings(home=home)
    factory = open_catalog(settings.resolved_database_url)
    job, _ = enqueue(factory, request_key(query), query, {"n": 1}, recent_window_s=3600)
    encoder = TinyEncoder()
    vector = encoder.embed_audio([tone(freq)])[0]
    track_id = store_generated(
        factory, AudioStore(settings.audio_dir), job, wav_bytes(1.5, freq),
        {"title": f"Waltz for a gap #{candidate + 1}", "tags": ["waltz"], "meter": "3/4",
         "instruments": ["accordion"], "score": SCORE},
        vector, encoder.id,
        Provenance(candidate_index=candidate, prompt=query, generator_id="symbolic",
                   weights_id="symbolic@test", seed=11 + candidate,
                   scores={"query": 0.42, "prior": 0.61}, gates={"nearest": 0.71},
                   neighbour_track_ids=[1, 2]))
    return track_id, vector


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("map-home")
    build_catalog(home)
    store_generated_tone(home, 523.0)  # stored before the server starts: found by the sync
    return home


@pytest.fixture(scope="module")
def map_client(home: Path) -> TestClient:
    encoder = TinyEncoder()
    return TestClient(create_app(Settings(home=home, api_key=API_KEY), encoder=encoder,
                                 prior=tiny_prior(encoder, mean_head=True)))


def test_the_map_holds_every_indexed_track_with_its_origin(map_client: TestClient) -> None:
    r = map_client.get("/v1/catalog/map")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["encoder_id"] == "tiny-test@32" and body["method"] == "pca"
    assert body["index_version"].startswith("tiny-test@32:19:")
    points = {p["id"]: p for p in body["points"]}
    assert sorted(points) == list(range(1, 20))
    assert points[19]["origin"] == "generated" and points[19]["collection"] is None
    assert {p["origin"] for i, p in points.items() if i != 19} == {"catalog"}
    assert points[2]["collection"] == "bach"
    assert body["fitted_on"] == 18  # the catalog tracks; the generated one is projected
    b = body["bounds"]
    assert all(b["x0"] < p["x"] < b["x1"] and b["y0"] < p["y"] < b["y1"]
               for i, p in points.items() if i != 19)
    d = body["density"]
    assert d["nx"] == d["ny"] == 24 and len(d["values"]) == 24 and len(d["values"][0]) == 24
    assert max(max(row) for row in d["values"]) == 1.0
    assert all(0 <= ix < 24 and 0 <= iy < 24 and d["values"][iy][ix] < d["thin_level"]
               for ix, iy in d["thin"])


def test_an_unchanged_map_is_304_and_a_new_track_moves_no_old_point(
        map_client: TestClient, home: Path) -> None:
    first = map_client.get("/v1/catalog/map")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = map_client.get("/v1/catalog/map", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content

    # What the backfill worker does with a keeper: store it, then index it in the live server.
    track_id, vector = store_generated_tone(home, 660.0, candidate=1)
    state = map_client.app.state.tunescope
    assert add_generated(state, track_id, vector, "tiny-test@32")
    after = map_client.get("/v1/catalog/map", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    before = {p["id"]: (p["x"], p["y"]) for p in first.json()["points"]}
    now = {p["id"]: p for p in after.json()["points"]}
    assert {i: (p["x"], p["y"]) for i, p in now.items() if i in before} == before
    assert now[track_id]["origin"] == "generated"
    assert after.json()["fitted_on"] == first.json()["fitted_on"]


def test_locate_places_the_query_and_the_prior_samples(map_client: TestClient) -> None:
    r = map_client.get("/v1/catalog/map/locate", params={"q": "a lively reel", "seeds": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prior_available"] and len(body["prior"]) == 5
    assert set(body["query"]) == {"x", "y", "density"}
    assert body["index_version"] == map_client.get("/v1/catalog/map").json()["index_version"]
    again = map_client.get("/v1/catalog/map/locate", params={"q": "a lively reel", "seeds": 5})
    assert again.json() == body  # deterministic per seed
    other = map_client.get("/v1/catalog/map/locate",
                           params={"q": "a lively reel", "seeds": 5, "seed": 3}).json()
    assert other["query"] == body["query"] and other["prior"] != body["prior"]
    none = map_client.get("/v1/catalog/map/locate", params={"q": "a lively reel", "seeds": 0})
    assert none.json()["prior"] == [] and none.json()["prior_available"]


@pytest.mark.parametrize("params", [{"q": "   "}, {"q": ""}, {"q": "a", "seeds": 65}, {}])
def test_locate_refuses_bad_input_in_the_error_format(map_client: TestClient,
                                                      params: dict[str, object]) -> None:
    r = map_client.get("/v1/catalog/map/locate", params=params)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request" and r.json()["detail"]


def test_without_a_prior_locate_still_places_the_query(client: TestClient) -> None:
    body = client.get("/v1/catalog/map/locate", params={"q": "an air"}).json()
    assert body["prior"] == [] and body["prior_available"] is False
    assert isinstance(body["query"]["x"], float)


def test_the_map_is_a_read_that_needs_the_key_when_reads_do(home: Path) -> None:
    keyed = TestClient(create_app(Settings(home=home, api_key=API_KEY, read_requires_key=True),
                                  encoder=TinyEncoder()))
    r = keyed.get("/v1/catalog/map")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert keyed.get("/v1/catalog/map", headers={"X-API-Key": API_KEY}).status_code == 200

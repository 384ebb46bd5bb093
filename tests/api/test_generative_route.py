"""``GET /v1/search?mode=generative``: seeds, negatives, spread, and a clear error without a prior."""

from __future__ import annotations

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import wiring
from api.routes import generative as route
from retrieval.prior.model import PriorConfig, PriorDenoiser
from retrieval.prior.pipeline import PriorPipeline
from retrieval.search import Filters, SearchOptions
from tests.api.tiny_encoder import TinyEncoder


@pytest.fixture
def with_prior(app: FastAPI):  # noqa: ANN201 - yields the injected prior
    enc_id = app.state.tunescope.service.encoder.id
    torch.manual_seed(0)
    prior = PriorPipeline(PriorDenoiser(PriorConfig(dim=TinyEncoder().dim, width=8, depth=1,
                                                    time_dim=8)), "ddim", 4,
                          card={"encoder_id": enc_id})
    wiring._priors[f"{enc_id}|None"] = prior
    yield prior
    wiring._priors.pop(f"{enc_id}|None", None)


def test_split_mode_keeps_musical_modes() -> None:
    o = SearchOptions(filters=Filters(mode=("minor", "generative")))
    mode, rest = route.split_mode(o)
    assert mode == "generative" and rest.filters.mode == ("minor",)
    assert route.split_mode(SearchOptions(filters=Filters(mode=("major",))))[0] == "text"


def test_generative_search(client: TestClient, with_prior: PriorPipeline) -> None:
    params = {"q": "a lively reel", "mode": "generative", "seeds": 4, "guidance": 1.5,
              "negative": ["slow air", "flute"], "k": 5}
    r = client.get("/v1/search", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [item["track"]["id"] for item in body["results"]]
    assert len(ids) == 5 == len(set(ids))
    q = body["query"]
    assert q["mode"] == "generative" and q["seeds"] == 4 and q["negative"] == ["slow air", "flute"]
    assert 0.0 <= q["spread"] <= 2.0
    assert client.get("/v1/search", params=params).json() == body  # deterministic per seed
    plain = client.get("/v1/search", params={"q": "a lively reel", "k": 5}).json()
    assert plain["query"]["mode"] == "text"


def test_generative_search_without_a_prior(client: TestClient, app: FastAPI) -> None:
    wiring._priors.pop(f"{app.state.tunescope.service.encoder.id}|None", None)
    r = client.get("/v1/search", params={"q": "a reel", "mode": "generative"})
    assert r.status_code == 400 and "train-prior" in r.json()["detail"]


def test_generative_search_steered_by_example_tracks(client: TestClient,
                                                     with_prior: PriorPipeline) -> None:
    ids = [item["track"]["id"] for item in client.get(
        "/v1/search", params={"q": "a reel", "k": 3}).json()["results"]]
    liked, disliked = ids[0], ids[1]
    r = client.get("/v1/search", params={"q": "a reel", "mode": "generative", "seeds": 4,
                                         "like": [liked], "unlike": [disliked], "k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    got = [item["track"]["id"] for item in body["results"]]
    assert liked not in got and disliked not in got  # examples are never returned
    assert body["query"]["like"] == [liked] and body["query"]["unlike"] == [disliked]
    unknown = client.get("/v1/search", params={"q": "a reel", "mode": "generative",
                                               "like": [987654]})
    assert unknown.status_code == 404 and "987654" in unknown.text
    plain = client.get("/v1/search", params={"q": "a reel", "like": [liked]})
    assert plain.status_code == 422 and "mode=generative" in plain.text

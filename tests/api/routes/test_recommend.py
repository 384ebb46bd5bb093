"""/v1/recommend: positive and negative examples, ids or texts."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_recommend_excludes_examples(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"positive": [5, "reel"], "negative": [12], "k": 4,
                                           "strategy": "best_score"})
    assert r.status_code == 200, r.text
    assert not {5, 12} & {i["track"]["id"] for i in r.json()["results"]}
    avg = client.post("/v1/recommend", json={"positive": [5], "k": 4,
                                             "filters": {"collection": ["bach"]}}).json()
    assert avg["results"] and all(i["track"]["collection"] == "bach" for i in avg["results"])


def test_recommend_types_are_strict(client: TestClient) -> None:
    for bad in ([True], ["12"] * 0 + [1.5], [{"id": 1}]):
        r = client.post("/v1/recommend", json={"positive": bad})
        assert r.status_code == 422, (bad, r.text)
    assert client.post("/v1/recommend", json={"positive": [2**63]}).status_code == 422
    r = client.post("/v1/recommend", json={"positive": [1], "filters": {"nope": ["x"]}})
    assert r.status_code == 422 and "nope" in r.json()["detail"]

"""/v1/health, /v1/filters, /metrics, the page and the OpenAPI schema."""

from __future__ import annotations

from fastapi.testclient import TestClient

from retrieval.search import FILTER_FIELDS


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


def test_filters_describe_every_declared_field(client: TestClient) -> None:
    got = client.get("/v1/filters").json()["filters"]
    assert [f["name"] for f in got] == [f.name for f in FILTER_FIELDS]
    by = {f["name"]: f for f in got}
    assert by["instruments"]["param"] == "instrument" and by["tempo"]["min_param"] == "tempo_min"
    params = {p["name"] for p in client.get("/openapi.json").json()["paths"]["/v1/search"]["get"]
              ["parameters"]}
    assert {f["param"] for f in got if f["kind"] != "range"} <= params
    assert {f["min_param"] for f in got if f["kind"] == "range"} <= params

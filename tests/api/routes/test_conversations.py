"""/v1/conversations: start, turns, history, restart, many at once, and every bad input a 4xx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import API_KEY, serve_in_thread, wav_bytes
from tests.api.tiny_encoder import TinyEncoder


def start(client: TestClient, **body: object) -> dict:
    r = client.post("/v1/conversations", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/conversations/{r.json()['id']}"
    return r.json()


def test_a_conversation_end_to_end(client: TestClient) -> None:
    first = start(client, text="a reel on the fiddle")
    assert len(first["id"]) == 32 and first["reply"] and first["results"]
    assert all("fiddle" in i["track"]["instruments"] for i in first["results"])
    assert first["results"][0]["position"] == 1 and "with fiddle" in first["results"][0]["why"]
    shown = {i["track"]["id"] for i in first["results"]}
    r = client.post(f"/v1/conversations/{first['id']}/messages",
                    json={"text": "faster, more like #2", "remove": ["include:instrument:fiddle"]})
    assert r.status_code == 200, r.text
    turn = r.json()
    assert turn["understood"]["labels"] == ["faster", "like #2"]
    ref = first["results"][1]["track"]["tempo_bpm"]
    assert turn["results"] and all(i["track"]["tempo_bpm"] >= ref * 1.08 for i in turn["results"])
    assert not shown & {i["track"]["id"] for i in turn["results"]}  # nothing shown twice
    keys = {c["key"] for c in turn["understood"]["chips"]}
    assert "include:instrument:fiddle" not in keys and "bound:tempo" in keys
    history = client.get(f"/v1/conversations/{first['id']}").json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
    assert history["messages"][2]["text"] == "faster, more like #2"
    assert history["messages"][3]["payload"]["results"] == [i["track"]["id"] for i in turn["results"]]


def test_start_from_tracks_and_from_a_clip(client: TestClient) -> None:
    body = start(client, track_ids=[3])
    assert 3 not in [i["track"]["id"] for i in body["results"]]
    r = client.post("/v1/conversations/audio", files={"file": ("c.wav", wav_bytes(), "audio/wav")},
                    data={"text": "like this"})
    assert r.status_code == 201, r.text and r.json()["results"]


def test_bad_input_is_a_clear_4xx_or_a_reply(client: TestClient) -> None:
    cid = start(client, text="a reel")["id"]
    r = client.post(f"/v1/conversations/{'ab' * 16}/messages", json={"text": "faster"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/v1/conversations/not-an-id").status_code == 404
    assert client.get("/v1/conversations/audio").status_code == 405
    r = client.post(f"/v1/conversations/{cid}/messages", json={"text": "more like #40"})
    assert r.status_code == 200 and "no #40" in r.json()["reply"]
    r = client.post(f"/v1/conversations/{cid}/messages", json={"text": "faster but slower, "
                                                                "no flute and with flute"})
    assert r.status_code == 200 and r.json()["reply"].count("kept neither") == 2
    big = b'{"text": "' + b"a" * (10 * 2**20) + b'"}'
    r = client.post(f"/v1/conversations/{cid}/messages", content=big,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = client.post(f"/v1/conversations/{cid}/messages", json={"text": "a" * 2001})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = client.post(f"/v1/conversations/{cid}/messages", json={"liked": [987654]})
    assert r.status_code == 200 and "Track 987654 is not in the catalog" in r.json()["reply"]
    assert client.post("/v1/conversations", json={"track_ids": [987654]}).status_code == 404
    assert client.post("/v1/conversations", json={"text": " "}).status_code == 422
    assert client.post("/v1/conversations", json={"colour": "red"}).status_code == 422


def test_survives_a_restart_and_runs_many_at_once(catalog_home: Path) -> None:
    settings = Settings(home=catalog_home, api_key=API_KEY)
    with serve_in_thread(create_app(settings, encoder=TinyEncoder())) as url:
        first = httpx.post(url + "/v1/conversations", json={"text": "a slow air"}).json()
    with serve_in_thread(create_app(settings, encoder=TinyEncoder())) as url:  # a new process's app
        r = httpx.post(f"{url}/v1/conversations/{first['id']}/messages", json={"text": "faster"})
        assert r.status_code == 200, r.text
        shown = {i["track"]["id"] for i in first["results"]}
        assert not shown & {i["track"]["id"] for i in r.json()["results"]}

        def talk(i: int) -> int:
            c = httpx.post(url + "/v1/conversations", json={"text": f"tune {i}"}, timeout=30)
            cid = c.json()["id"]
            for text in ("faster", "no flute"):
                m = httpx.post(f"{url}/v1/conversations/{cid}/messages", json={"text": text},
                               timeout=30)
                assert m.status_code == 200, m.text
            return len(httpx.get(f"{url}/v1/conversations/{cid}").json()["messages"])

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(talk, range(8))) == [6] * 8


def test_an_llm_endpoint_in_settings_reads_the_messages(catalog_home: Path) -> None:
    import json

    from tests.retrieval.conversation.openai_server import openai_app

    answer = {"exclude": [{"field": "instrument", "value": "flute"}]}
    llm = openai_app(lambda body: json.dumps(answer))
    with serve_in_thread(llm) as llm_url:
        settings = Settings(home=catalog_home, api_key=API_KEY, llm_url=llm_url + "/v1")
        client = TestClient(create_app(settings, encoder=TinyEncoder()))
        cid = start(client, text="anything at all")["id"]
        turn = client.post(f"/v1/conversations/{cid}/messages",
                           json={"text": "whatever", "repeat": True}).json()
    assert turn["understood"]["labels"] == ["no flute", "show again"]  # the model's reading, not the parser's
    assert turn["results"] and all("flute" not in i["track"]["instruments"] for i in turn["results"])
    assert llm.state.requests and llm.state.requests[-1]["messages"][-1]["content"] == "whatever"

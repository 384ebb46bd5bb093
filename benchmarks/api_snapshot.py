"""Record the JSON of a fixed list of 20 API requests against a served catalog.

Used to check that a behaviour-preserving change (the reshape of ``api/``) answers exactly as
before: run it on the old and the new code over the same catalog and diff the two files::

    python -m benchmarks.api_snapshot --home var --out before.json   # on the old commit
    python -m benchmarks.api_snapshot --home var --out after.json    # on the new one
    python -m benchmarks.api_snapshot --diff before.json after.json

The app is built in-process (``create_app`` with the configured encoder and prior, a real
SQLite catalog and FAISS index) and driven through Starlette's TestClient, so no port is
needed. Generative search moved from ``/v1/search?mode=generative`` to
``/v1/search/generative``; the script asks the OpenAPI schema which form the server speaks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any


def _requests(generative_path: str | None, clip: bytes) -> list[dict[str, Any]]:
    """The 20 requests: text, filters, paging, audio, similar, recommend, generative, bad input."""

    def gen(params: dict[str, Any]) -> dict[str, Any]:
        if generative_path:
            return {"method": "GET", "url": generative_path, "params": params}
        mode = params.pop("mode", None)
        return {"method": "GET", "url": "/v1/search",
                "params": {**params, "mode": ["generative", *([mode] if mode else [])]}}

    return [
        {"method": "GET", "url": "/v1/search", "params": {"q": "a lively jig on the flute", "k": 5}},
        {"method": "GET", "url": "/v1/search", "params": {"q": "a slow sad air", "mode": "minor", "k": 5}},
        {"method": "GET", "url": "/v1/search",
         "params": {"q": "a reel", "collection": "oneill", "instrument": "fiddle", "k": 5}},
        {"method": "GET", "url": "/v1/search",
         "params": {"q": "a chorale", "tempo_min": 60, "tempo_max": 90, "k": 5}},
        {"method": "GET", "url": "/v1/search",
         "params": {"q": "music", "k": 5, "offset": 5, "mmr": 0.7, "max_per_piece": 1}},
        {"method": "GET", "url": "/v1/search", "params": {"q": "a jig", "k": 5, "exclude": [1, 2, 3]}},
        gen({"q": "Irish dance music", "k": 5, "seeds": 8}),
        gen({"q": "Irish dance music", "k": 5, "negative": "fiddle"}),
        gen({"q": "a folk song", "k": 5, "like": 5, "unlike": 7, "mode": "minor"}),
        {"method": "POST", "url": "/v1/search/audio", "params": {"k": 5},
         "files": {"file": ("clip.flac", clip, "audio/flac")}},
        {"method": "GET", "url": "/v1/tracks/3"},
        {"method": "GET", "url": "/v1/tracks/3/similar", "params": {"k": 5}},
        {"method": "POST", "url": "/v1/recommend", "json": {"positive": [3, "a jig"], "negative": [10], "k": 5}},
        {"method": "POST", "url": "/v1/recommend",
         "json": {"positive": [3, 40], "strategy": "best_score", "k": 5, "filters": {"mode": ["major"]}}},
        {"method": "GET", "url": "/v1/tracks/3/audio", "headers": {"Range": "bytes=0-99"}},
        {"method": "GET", "url": "/v1/tracks/999999"},
        {"method": "GET", "url": "/v1/search", "params": {"q": ""}},
        {"method": "GET", "url": "/v1/search", "params": {"q": "x", "k": 1000}},
        {"method": "GET", "url": "/v1/search", "params": {"q": "x", "tempo_min": 100, "tempo_max": 50}},
        {"method": "POST", "url": "/v1/recommend", "json": {"positive": []}},
    ]


def _answer(response: Any) -> dict[str, Any]:
    ctype = response.headers.get("content-type", "")
    out: dict[str, Any] = {"status": response.status_code}
    if ctype.startswith("application/json"):
        out["json"] = response.json()
    else:
        out["content_type"] = ctype
        out["sha256"] = hashlib.sha256(response.content).hexdigest()
        out["content_range"] = response.headers.get("content-range")
    return out


def record(home: Path) -> list[dict[str, Any]]:
    """Every request's status and body, in order."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    settings = Settings(home=home)
    client = TestClient(create_app(settings))
    paths = client.get("/openapi.json").json()["paths"]
    generative_path = "/v1/search/generative" if "/v1/search/generative" in paths else None
    track = client.get("/v1/tracks/3").json()
    clip = client.get(track["audio_url"]).content
    out = []
    for req in _requests(generative_path, clip):
        kwargs = {k: req[k] for k in ("params", "json", "files", "headers") if k in req}
        out.append({"request": {k: v for k, v in req.items() if k != "files"},
                    "response": _answer(client.request(req["method"], req["url"], **kwargs))})
    return out


def diff(a: Path, b: Path) -> int:
    """Print the requests whose answers differ; the number of differences."""
    before, after = json.loads(a.read_text()), json.loads(b.read_text())
    n = 0
    for i, (x, y) in enumerate(zip(before, after, strict=True), 1):
        same = x["response"] == y["response"]
        n += not same
        print(f"{i:2d} {'same' if same else 'DIFFERENT'}  {x['request']['method']} {x['request']['url']} "
              f"{json.dumps(x['request'].get('params') or x['request'].get('json') or '')[:70]}")
        if not same:
            print("   before:", json.dumps(x["response"])[:300])
            print("   after: ", json.dumps(y["response"])[:300])
    print(f"{len(before) - n} of {len(before)} identical")
    return n


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", type=Path, default=Path("var"), help="TUNESCOPE_HOME of the catalog to query.")
    p.add_argument("--out", type=Path, help="Write the recorded answers here (JSON).")
    p.add_argument("--diff", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="Compare two recordings.")
    args = p.parse_args(argv)
    if args.diff:
        return 1 if diff(*args.diff) else 0
    answers = record(args.home)
    text = json.dumps(answers, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

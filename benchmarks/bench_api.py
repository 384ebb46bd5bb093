"""End-to-end API benchmark: ``GET /v1/search`` latency p50/p99 and requests per second.

A real uvicorn server (a subprocess, so the load generator does not share its GIL) serves a
synthetic catalog: ``n`` track rows in SQLite and ``n`` clustered 512-d vectors in the index
the size rule picks (Flat below 50k, HNSW32 above). Queries are text, embedded by a hashing
encoder (cost ~0.1 ms), so the numbers measure the service -- HTTP, filters, index, database
page fetch, JSON -- not a neural encoder. A bounded asyncio/httpx load generator keeps
``concurrency`` requests in flight on loopback.

Usage::

    python -m benchmarks.bench_api                # 1,500 (demo size) and 1,000,000 tracks
    python -m benchmarks.bench_api --quick        # 2,000 tracks, 5 s of load
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_index import clustered_vectors

OUT = Path(__file__).resolve().parent / "results"
DIM = 512
WORDS = "jig reel air hornpipe slow lively fiddle flute harp minor major dorian waltz " \
        "chorale march polka strathspey slip song dance".split()


class HashEncoder:
    """Hashed bag of words into 512-d: a stand-in whose cost is negligible."""

    id = "bench-hash@512"
    dim = DIM
    sample_rate = 16_000

    def embed_text(self, texts):  # noqa: ANN001, ANN201
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i, h % DIM] += 1.0
            out[i] += np.random.default_rng(len(t)).standard_normal(DIM).astype(np.float32) * .1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_audio(self, waveforms):  # noqa: ANN001, ANN201
        return self.embed_text(["audio"] * len(waveforms))


def build_catalog(home: Path, n: int) -> None:
    """``n`` track rows (SQLite, bulk insert) and their vectors (``vectors.npy``)."""
    from sqlalchemy import insert

    from index.db import open_catalog
    from index.models import Track

    home.mkdir(parents=True, exist_ok=True)
    factory = open_catalog(f"sqlite:///{home / 'tunescope.db'}")
    rng = np.random.default_rng(0)
    cols = ["oneill", "ryan", "bach", "essen", "aird"]
    with factory() as s:
        for start in range(0, n, 50_000):
            rows = [dict(id=i + 1, content_hash=f"{i:064x}", title=f"Tune {i}",
                         artist=f"artist{i % 997}", collection=cols[i % 5],
                         piece_id=f"p{i // 3}", tags=[WORDS[i % 8]], instruments=[WORDS[6 + i % 3]],
                         key="DGAEC"[i % 5], mode="major" if i % 4 else "minor", meter="4/4",
                         tempo_bpm=float(60 + i % 120), duration_s=float(20 + i % 10),
                         sample_rate=16000, audio_format="wav", source_path=f"t{i}.wav",
                         audio_path=f"t{i}.wav", origin="catalog")
                    for i in range(start, min(n, start + 50_000))]
            s.execute(insert(Track), rows)
        s.commit()
    np.save(home / "vectors.npy", clustered_vectors(n))
    del rng


def serve(home: Path, port: int) -> None:
    """The server process: prebuilt index + track table injected into ``create_app``."""
    import uvicorn

    from api.app import create_app
    from api.settings import Settings
    from index.db import open_catalog
    from index.vectors import IndexConfig, VectorIndex
    from retrieval.search import SearchService, TrackMeta, TrackTable

    x = np.load(home / "vectors.npy")
    ids = np.arange(1, len(x) + 1)
    index = VectorIndex.build(HashEncoder.id, ids, x, config=IndexConfig(threads=1))
    from sqlalchemy import select

    from index.models import Track

    factory = open_catalog(f"sqlite:///{home / 'tunescope.db'}")
    with factory() as s:
        table = TrackTable(TrackMeta.from_track(t) for t in s.scalars(select(Track)))
    svc = SearchService(HashEncoder(), index, table)
    app = create_app(Settings(home=home), service=svc)
    print(f"ready {index.factory} {index.count}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def load(url: str, seconds: float, concurrency: int, filtered: bool) -> dict:
    import httpx

    rng = np.random.default_rng(1)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            q = " ".join(rng.choice(WORDS, 3))
            params = {"q": q, "k": 10}
            if filtered:
                params.update(collection="bach", mode="minor")
            t0 = time.perf_counter()
            r = await client.get(url, params=params)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
            max_connections=concurrency)) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return dict(requests=len(lat), errors=errors, rps=round(len(lat) / wall, 1),
                p50_ms=round(float(np.percentile(lat, 50)), 1),
                p99_ms=round(float(np.percentile(lat, 99)), 1))


def bench(n: int, seconds: float, concurrency: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as d:
        home = Path(d)
        t0 = time.perf_counter()
        build_catalog(home, n)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_api", "--serve",
                                 str(home), "--port", str(port)], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            ready = proc.stdout.readline().split()
            setup = time.perf_counter() - t0
            url = f"http://127.0.0.1:{port}/v1/search"
            import httpx

            for _ in range(200):
                try:
                    if httpx.get(url, params={"q": "warm"}).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            rows = []
            for filtered in (False, True):
                r = asyncio.run(load(url, seconds, concurrency, filtered))
                r.update(n=n, index=ready[1] if len(ready) > 1 else "?", concurrency=concurrency,
                         filtered=filtered, setup_s=round(setup, 1))
                print(json.dumps(r), flush=True)
                rows.append(r)
            return rows
        finally:
            proc.terminate()
            proc.wait(10)


def main(argv: list[str] | None = None) -> None:
    """Run the API benchmark; writes ``benchmarks/results/bench_api*.json``."""
    p = argparse.ArgumentParser(prog="bench_api")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sizes", type=int, nargs="*")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv if argv is not None else [])
    if args.serve:
        serve(args.serve, args.port)
        return
    sizes = args.sizes or ([2_000] if args.quick else [1_500, 1_000_000])
    seconds = 5.0 if args.quick else args.seconds
    rows = [r for n in sizes for r in bench(n, seconds, args.concurrency)]
    OUT.mkdir(exist_ok=True)
    name = "bench_api_quick" if args.quick else "bench_api"
    (OUT / f"{name}.json").write_text(json.dumps(rows, indent=1))
    print("| tracks | index | filter | concurrency | RPS | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['index']} | {'collection+mode' if r['filtered'] else '-'} | "
              f"{r['concurrency']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['errors']} |")


if __name__ == "__main__":
    main(sys.argv[1:])

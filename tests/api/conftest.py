"""A tiny catalog served by the real app: synthetic tunes ingested by the catalog's own
ingestion, embedded by the tiny test encoder, behind ``create_app``."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from index.db import open_catalog
from index.ingest import ingest
from index.models import Embedding
from index.store import AudioStore
from retrieval.prior.model import PriorConfig, PriorDenoiser
from retrieval.prior.pipeline import PriorPipeline
from tests.api.tiny_encoder import TinyEncoder

API_KEY = "test-key"
SR = 16_000
COLLECTIONS = ("oneill", "bach", "essen")


def tone(freq: float, seconds: float = 1.5, sr: int = SR, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    w = sum(np.sin(2 * np.pi * freq * (h + 1) * t) / (h + 1) for h in range(harmonics))
    return (0.3 * w / np.abs(w).max()).astype(np.float32)


def build_catalog(home: Path, n: int = 18) -> TinyEncoder:
    """Write ``n`` tunes + metadata, ingest and embed them into ``home``."""
    src = home / "src"
    src.mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"tune_{i:02d}.wav" if i % 6 else f"tune_{i:02d}.flac"
        sf.write(src / name, tone(110 * 2 ** (i / 6)), SR)
        row = {"path": name, "artist": f"player{i % 4}", "collection": COLLECTIONS[i % 3],
               "tags": ["reel" if i % 2 else "air"],
               "instruments": ["fiddle" if i < 9 else "flute"],
               "key": "D" if i % 2 else "G", "mode": "minor" if i % 5 == 0 else "major",
               "meter": "4/4", "tempo_bpm": 80 + 5 * i, "piece_id": f"p{i // 2}"}
        if i != 3:  # track 4 keeps no title: the file stem must stand in
            row["title"] = f"Tune {i}"
        rows.append(row)
    (src / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    enc = TinyEncoder()
    summary = ingest_embedded(home, src, enc)
    assert summary.ingested == n, summary
    return enc


def ingest_embedded(home: Path, src: Path, encoder: Any) -> Any:
    """Ingest ``src`` (with its ``metadata.jsonl``) into ``home``'s catalog, each batch embedded
    by ``encoder`` in the same transaction; the ingest summary."""
    settings = Settings(home=home)
    factory = open_catalog(settings.resolved_database_url)
    store = AudioStore(settings.audio_dir)

    def embed(session, tracks) -> None:  # noqa: ANN001 - the ingest hook's signature
        from index.audio import decode

        waves = [decode(store.path_for(t.audio_path), encoder.sample_rate) for t in tracks]
        for t, v in zip(tracks, encoder.embed_audio(waves), strict=True):
            session.add(Embedding(track_id=t.id, encoder_id=encoder.id, dim=encoder.dim,
                                  vector=v.astype("<f4").tobytes()))

    try:
        return ingest([src], factory, store, metadata=src / "metadata.jsonl", on_batch=embed,
                      progress=False)
    finally:
        factory.kw["bind"].dispose()


def wav_bytes(seconds: float = 1.5, freq: float = 220.0) -> bytes:
    """A tone as WAV bytes, for uploads."""
    buf = io.BytesIO()
    sf.write(buf, tone(freq, seconds), SR, format="WAV")
    return buf.getvalue()


def tiny_prior(encoder: TinyEncoder, *, mean_head: bool = False) -> PriorPipeline:
    """An untrained tiny prior for the test encoder: generative search is plumbing here."""
    torch.manual_seed(0)
    head = {"mean_head": True, "mean_width": 8} if mean_head else {}
    return PriorPipeline(PriorDenoiser(PriorConfig(dim=encoder.dim, width=8, depth=1, time_dim=8,
                                                   **head)), "ddim", 4,
                         card={"encoder_id": encoder.id})


def free_port() -> int:
    """A TCP port nobody listens on (for a real server in a test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(app: FastAPI, **config: object) -> Iterator[str]:
    """Run ``app`` under a real uvicorn in a thread; yields its base URL, stops it after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def catalog_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    build_catalog(home)
    return home


@pytest.fixture(scope="module")
def app(catalog_home: Path) -> FastAPI:
    return create_app(Settings(home=catalog_home, api_key=API_KEY), encoder=TinyEncoder())


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)

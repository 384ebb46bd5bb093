"""A small catalog with varied musical attributes, in a real SQLite database and FAISS index.

Vectors are synthetic but carry the attributes (a tempo axis, a mode axis, an instrument axis
plus noise), the way an audio encoder's embeddings do, so learned directions have something
to find. Tracks go in through the ORM, embeddings through ``add_embedding``, and the search
service opens them exactly as the server does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.db import open_catalog
from index.models import Track
from index.repo.tracks import add_embedding
from retrieval.conversation.catalog import CatalogFacts
from retrieval.conversation.steering import ConversationEngine
from retrieval.encoders.base import l2_normalize
from retrieval.search import SearchService
from tests.api.tiny_encoder import TinyEncoder

TUNES = (("jig", "6/8"), ("reel", "4/4"), ("waltz", "3/4"), ("air", "3/4"), ("march", "2/4"))
ENSEMBLES = ((("fiddle",), "solo fiddle"), (("piano",), "solo piano"), (("flute",), "solo flute"),
             (("violin", "violin", "viola", "cello"), "string quartet"), (("cello",), "solo cello"))
COLLECTIONS = ("oneill", "bach", "essen")


def rows(n: int = 90) -> list[dict[str, Any]]:
    """Metadata of ``n`` tracks cycling through tune types, ensembles, modes and tempi."""
    out = []
    for i in range(n):
        tt, meter = TUNES[i % 5]
        instruments, ensemble = ENSEMBLES[(i // 5) % 5]
        out.append({"id": i + 1, "title": f"Tune {i + 1}", "tune_type": tt, "meter": meter,
                    "instruments": list(instruments), "ensemble": ensemble,
                    "mode": "minor" if (i // 25) % 2 else "major",
                    "tempo_bpm": 60.0 + (i * 37) % 120, "collection": COLLECTIONS[i % 3],
                    "artist": "Mozart" if i % 7 == 0 else "Traditional",
                    "split": "test" if i % 6 == 0 else "train", "piece_id": f"p{i}"})
    return out


def vector(r: dict[str, Any], dim: int, rng: np.random.Generator) -> np.ndarray:
    """An embedding that encodes tempo, mode and ensemble on a few axes, plus noise."""
    v = rng.standard_normal(dim).astype(np.float32) * 0.35
    v[0] += (r["tempo_bpm"] - 120) / 40
    v[1] += 1.0 if r["mode"] == "major" else -1.0
    v[2 + [e for _, e in ENSEMBLES].index(r["ensemble"])] += 1.5
    v[8 + [t for t, _ in TUNES].index(r["tune_type"])] += 1.5
    return l2_normalize(v[None, :])[0]


def make_catalog(home: Path, n: int = 90) -> tuple[Any, SearchService]:
    """Write the catalog into ``home``; its session factory and a search service over it."""
    enc = TinyEncoder()
    factory = open_catalog(f"sqlite:///{home / 'catalog.db'}")
    rng = np.random.default_rng(3)
    with factory() as session:
        for r in rows(n):
            session.add(Track(content_hash=f"{r['id']:064x}", duration_s=30.0, sample_rate=16000,
                              audio_format="flac", source_path=f"t{r['id']}.flac",
                              audio_path=f"t{r['id']}.flac", **r))
        session.flush()
        for r in rows(n):
            add_embedding(session, r["id"], enc.id, vector(r, enc.dim, rng))
        session.commit()
    return factory, SearchService.open(enc, factory, home / "indexes")


@pytest.fixture(scope="module")
def conv_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, SearchService]:
    return make_catalog(tmp_path_factory.mktemp("conv"))


@pytest.fixture(scope="module")
def engine(conv_catalog: tuple[Any, SearchService]) -> ConversationEngine:
    factory, service = conv_catalog
    return ConversationEngine(service, CatalogFacts.load(factory, service.encoder.id))

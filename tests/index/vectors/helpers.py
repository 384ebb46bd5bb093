"""Vectors shaped like real embeddings, an exact ranking to compare with, and catalog rows."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import sessionmaker

from index.models import Track
from index.repo import add_embedding

DIM = 16


def clustered(n: int, dim: int = DIM, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: structured like real embeddings, unlike uniform ones."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = q @ x.T
    return ids[np.argsort(-s, axis=1, kind="stable")[:, :k]]


def add_tracks(factory: sessionmaker, vectors: np.ndarray, start: int, encoder: str = "e") -> None:
    with factory() as s:
        for j, v in enumerate(vectors):
            tid = start + j
            s.add(Track(id=tid, content_hash=f"h{tid}", title=f"t{tid}", duration_s=1.0,
                        sample_rate=16000, audio_format="wav", source_path="x", audio_path="x"))
            s.flush()
            add_embedding(s, tid, encoder, v)
        s.commit()

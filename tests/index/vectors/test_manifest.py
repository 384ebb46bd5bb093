"""Persistence: the index file and manifest pair, written atomically and read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index.vectors import VectorIndex
from tests.index.vectors.helpers import DIM, clustered


def test_save_load_roundtrip_is_atomic(tmp_path: Path) -> None:
    x = clustered(300)
    vi = VectorIndex.build("enc/v1@x", np.arange(300), x, factory="HNSW32")
    removed = [1, 2]
    vi.remove(removed)
    manifest = vi.save(tmp_path)
    first = json.loads(manifest.read_text())
    assert first["count"] == 298 and first["dim"] == DIM and first["factory"] == "HNSW32"
    vi.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.endswith(".faiss")]) == 1, files
    assert not [f for f in files if f.endswith(".tmp")]
    back = VectorIndex.load(tmp_path, "enc/v1@x")
    assert back is not None and back.count == 298 and all(t not in back for t in removed)
    # Query with the removed vectors themselves: each would be its own top hit if it survived.
    _, got = back.search(x[removed], 3)
    assert not set(got.ravel().tolist()) & set(removed), got
    assert VectorIndex.load(tmp_path, "other") is None

"""Database sync: an opened index follows the catalog, and a broken one is rebuilt from it."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from index.models import Embedding, Track
from index.vectors import VectorIndex, db_watermark
from tests.index.vectors.helpers import DIM, add_tracks, clustered


def test_open_builds_then_follows_the_database(session_factory: sessionmaker,
                                               tmp_path: Path) -> None:
    x = clustered(60)
    add_tracks(session_factory, x[:40], 1)
    d = tmp_path / "idx"
    vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert vi.count == 40 and vi.factory == "Flat"
    with session_factory() as s:
        assert vi.watermark == db_watermark(s, "e")

    # Unchanged database: the saved index is used as is.
    again = VectorIndex.open(d, "e", DIM, session_factory)
    assert again.count == 40

    # New rows and a deleted track are applied incrementally.
    add_tracks(session_factory, x[40:60], 41)
    with session_factory() as s:
        s.execute(delete(Track).where(Track.id == 5))
        s.execute(delete(Embedding).where(Embedding.track_id == 5))
        s.commit()
    synced = VectorIndex.open(d, "e", DIM, session_factory)
    assert synced.count == 59 and 5 not in synced and 60 in synced
    _, got = synced.search(x[4:5], 59)
    assert 5 not in got[0]

    # A dimension change (new encoder weights under the same id) forces a rebuild.
    manifest = json.loads((d / "e.json").read_text())
    manifest["dim"] = 8
    (d / "e.json").write_text(json.dumps(manifest))
    rebuilt = VectorIndex.open(d, "e", DIM, session_factory)
    assert rebuilt.count == 59 and rebuilt.dim == DIM


def test_corrupt_manifest_is_rebuilt(session_factory: sessionmaker, tmp_path: Path) -> None:
    add_tracks(session_factory, clustered(10), 1)
    d = tmp_path / "idx"
    VectorIndex.open(d, "e", DIM, session_factory)
    (d / "e.json").write_text("{not json")
    assert VectorIndex.open(d, "e", DIM, session_factory).count == 10

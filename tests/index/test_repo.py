"""Track data access against a real, migrated catalog (SQLite; PostgreSQL when reachable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from index.errors import CatalogError
from index.models import Embedding, Track
from index.repo import add_embedding, count_tracks, delete_track, get_track, load_tracks
from index.store import AudioStore, hash_file


def _stored_audio(store: AudioStore, tmp_path: Path, content: bytes) -> str:
    src = tmp_path / f"{len(content)}.wav"
    src.write_bytes(content)
    return store.put(src, hash_file(src), "wav")


def _track(session: Session, tid: int, audio_path: str) -> Track:
    t = Track(id=tid, content_hash=f"{tid:064x}", title=f"t{tid}", duration_s=1.0,
              sample_rate=16000, audio_format="wav", source_path="x", audio_path=audio_path)
    session.add(t)
    return t


@pytest.fixture
def catalog(factory: sessionmaker[Session], store: AudioStore, tmp_path: Path) -> dict[str, str]:
    """Tracks 1 and 2 share one audio file, track 3 has its own; each has an embedding."""
    shared = _stored_audio(store, tmp_path, b"shared audio")
    own = _stored_audio(store, tmp_path, b"track three's audio")
    with factory() as s:
        for tid, path in ((1, shared), (2, shared), (3, own)):
            _track(s, tid, path)
        s.flush()
        for tid in (1, 2, 3):
            add_embedding(s, tid, "enc@1", np.full(4, 0.5, np.float32))
        s.commit()
    return {"shared": shared, "own": own}


def test_reads(factory: sessionmaker[Session], catalog: dict[str, str]) -> None:
    t = get_track(factory, 3)
    assert t is not None and t.title == "t3" and t.audio_path == catalog["own"]
    assert get_track(factory, 99) is None
    assert sorted(load_tracks(factory, [3, 1, 99, 1])) == [1, 3]
    assert load_tracks(factory, []) == {}
    assert count_tracks(factory) == 3


def test_add_embedding_writes_little_endian_float32(factory: sessionmaker[Session],
                                                    catalog: dict[str, str]) -> None:
    with factory() as s:
        row = s.scalars(select(Embedding).where(Embedding.track_id == 1)).one()
        assert row.dim == 4 and row.encoder_id == "enc@1"
        np.testing.assert_array_equal(np.frombuffer(row.vector, "<f4"), np.full(4, 0.5))


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.array([1.0, np.nan]), np.zeros(0)])
def test_add_embedding_refuses_bad_vectors(factory: sessionmaker[Session],
                                           catalog: dict[str, str], bad: np.ndarray) -> None:
    with factory() as s, pytest.raises(CatalogError, match=r"track 1 .*shape"):
        add_embedding(s, 1, "enc@2", bad)


def test_delete_keeps_a_shared_file_until_its_last_track(
        factory: sessionmaker[Session], store: AudioStore, catalog: dict[str, str]) -> None:
    gone = delete_track(factory, store, 1)
    assert gone is not None and gone.id == 1 and gone.title == "t1"
    assert get_track(factory, 1) is None and store.exists(catalog["shared"])
    with factory() as s:
        assert s.scalar(select(func.count()).where(Embedding.track_id == 1)) == 0
    assert delete_track(factory, store, 2) is not None
    assert not store.exists(catalog["shared"]) and store.exists(catalog["own"])
    assert delete_track(factory, store, 2) is None
    assert count_tracks(factory) == 1


def test_delete_is_one_transaction(factory: sessionmaker[Session], store: AudioStore,
                                   catalog: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure between the two deletes leaves both the track and its embedding."""
    real_execute = Session.execute
    calls = []

    def failing_second(self: Session, *args: object, **kwargs: object) -> object:
        calls.append(args[0])
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", failing_second)
    with pytest.raises(RuntimeError):
        delete_track(factory, store, 3)
    monkeypatch.undo()
    assert get_track(factory, 3) is not None and store.exists(catalog["own"])
    with factory() as s:
        assert s.scalar(select(func.count()).where(Embedding.track_id == 3)) == 1


def test_delete_survives_a_file_that_cannot_be_removed(
        factory: sessionmaker[Session], store: AudioStore, catalog: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    store.path_for(catalog["own"]).unlink()
    store.path_for(catalog["own"]).mkdir()  # unlink() of a folder fails
    assert delete_track(factory, store, 3) is not None
    assert get_track(factory, 3) is None
    assert "not removed" in caplog.text

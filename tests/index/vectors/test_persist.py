"""What is on disk never stops a start, and a failed save never undoes a committed write.

The database is the source of truth: ``open`` rebuilds from it whatever the state of the index
folder, and :func:`persist` reports a failed save as ``False`` (one warning), leaving the previous
pair for the next start to catch up from.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from index.models import Embedding, Track
from index.vectors import VectorIndex, db_watermark
from index.vectors.manifest import persist
from tests.index.vectors.helpers import DIM, add_tracks, clustered

N = 40


@pytest.fixture
def saved(session_factory: sessionmaker, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """``N`` tracks in the catalog, their index saved in ``tmp_path/idx``; 20 more vectors."""
    x = clustered(N + 20)
    add_tracks(session_factory, x[:N], 1)
    d = tmp_path / "idx"
    VectorIndex.open(d, "e", DIM, session_factory)
    return d, x


def _manifest(d: Path) -> dict:
    return json.loads((d / "e.json").read_text())


def _missing_file(d: Path) -> None:
    m = _manifest(d)
    (d / m["index_file"]).unlink()


def _truncated(d: Path) -> None:
    f = d / _manifest(d)["index_file"]
    f.write_bytes(f.read_bytes()[:100])


def _truncated_unverified(d: Path) -> None:
    """Truncated under a version 1 manifest: FAISS itself meets the short file."""
    m = _manifest(d)
    del m["checksum"]
    m["version"] = 1
    (d / "e.json").write_text(json.dumps(m))
    _truncated(d)


def _garbage_unverified(d: Path) -> None:
    _truncated_unverified(d)
    (d / _manifest(d)["index_file"]).write_bytes(os.urandom(5000))


def _manifest_text(text: str) -> Callable[[Path], None]:
    return lambda d: (d / "e.json").write_text(text)


def _manifest_field(**fields: object) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / "e.json").write_text(json.dumps({**_manifest(d), **fields}))
    return damage


def _manifest_is_a_folder(d: Path) -> None:
    (d / "e.json").unlink()
    (d / "e.json").mkdir()


DAMAGES = {
    "missing index file": _missing_file,
    "truncated index file": _truncated,
    "truncated, version 1": _truncated_unverified,
    "random bytes, version 1": _garbage_unverified,
    "manifest not json": _manifest_text("{not json"),
    "manifest a list": _manifest_text("[1, 2]"),
    "manifest empty": _manifest_text(""),
    "watermark not an object": _manifest_field(watermark=3),
    "dim a string": _manifest_field(dim="16"),
    "index file outside the folder": _manifest_field(index_file="../../escape.faiss"),
    "unknown field": _manifest_field(extra=1),
    "future version": _manifest_field(version=99),
    "manifest a folder": _manifest_is_a_folder,
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_open_rebuilds_whatever_is_on_disk(damage: Callable[[Path], None],
                                           saved: tuple[Path, np.ndarray],
                                           session_factory: sessionmaker) -> None:
    d, x = saved
    damage(d)
    vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert vi.count == N
    assert vi.search(x[:1], 1)[1][0, 0] == 1


def test_open_serves_from_memory_when_the_folder_is_a_file(
        session_factory: sessionmaker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    add_tracks(session_factory, clustered(N), 1)
    d = tmp_path / "idx"
    d.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="index.vectors"):
        vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert vi.count == N
    assert "not saved" in caplog.text and "serving it from memory" in caplog.text
    assert d.read_text() == "not a folder"


@contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG, even for root (unlike a chmod)."""
    resource = pytest.importorskip("resource")
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the signal kills pytest
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


@contextmanager
def _read_only(d: Path) -> Iterator[None]:
    d.chmod(0o500)
    try:
        yield
    finally:
        d.chmod(0o700)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _change_catalog(session_factory: sessionmaker, vi: VectorIndex, x: np.ndarray) -> None:
    """Delete track 5 and add tracks N+1..N+20, in the database and in the served index."""
    with session_factory() as s:
        s.execute(delete(Embedding).where(Embedding.track_id == 5))
        s.execute(delete(Track).where(Track.id == 5))
        s.commit()
    add_tracks(session_factory, x[N:], N + 1)
    vi.remove([5])
    vi.add(np.arange(N + 1, N + 21), x[N:])


UNWRITABLE = {
    "file too large": lambda d: _file_size_limit(1024),
    "read-only folder": pytest.param(
        lambda d: _read_only(d),
        marks=pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                                 reason="root ignores folder permissions")),
}


@pytest.mark.parametrize("unwritable", UNWRITABLE.values(), ids=UNWRITABLE.keys())
def test_failed_save_keeps_the_previous_pair_and_open_catches_up(
        unwritable: Callable[[Path], object], saved: tuple[Path, np.ndarray],
        session_factory: sessionmaker, caplog: pytest.LogCaptureFixture) -> None:
    d, x = saved
    vi = VectorIndex.load(d, "e")
    assert vi is not None
    before = _snapshot(d)
    _change_catalog(session_factory, vi, x)
    with session_factory() as s:
        wm = db_watermark(s, "e")
    with caplog.at_level(logging.WARNING, logger="index.vectors"), unwritable(d):
        assert persist(vi, d, wm) is False
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert _snapshot(d) == before  # no temporary files, the old pair untouched
    # The served index is current; the next start catches the old pair up from the database.
    assert vi.count == N + 19 and 5 not in vi
    reopened = VectorIndex.open(d, "e", DIM, session_factory)
    assert reopened.count == N + 19 and 5 not in reopened and N + 20 in reopened
    assert persist(reopened, d) is True


def test_persist_into_a_file_returns_false(saved: tuple[Path, np.ndarray],
                                           tmp_path: Path) -> None:
    d, _ = saved
    vi = VectorIndex.load(d, "e")
    assert vi is not None
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert persist(vi, blocker) is False
    assert persist(vi, blocker / "sub") is False

"""A damaged saved index is never served: the checksum and the vector check send it to a rebuild."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import sessionmaker

from index.errors import IndexFileError
from index.vectors import MANIFEST_VERSION, VectorIndex
from tests.index.vectors.helpers import DIM, add_tracks, clustered, exact_top

N = 200


@pytest.fixture
def saved(session_factory: sessionmaker, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A catalog of ``N`` tracks and its index saved by ``open`` in ``tmp_path/idx``."""
    x = clustered(N)
    add_tracks(session_factory, x, 1)
    d = tmp_path / "idx"
    VectorIndex.open(d, "e", DIM, session_factory)
    return d, x


def flip_bytes(path: Path, n: int = 256) -> None:
    """Invert ``n`` bytes in the middle of a file, keeping its size."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    path.write_bytes(bytes(data))


def assert_exact(vi: VectorIndex, x: np.ndarray) -> None:
    scores, got = vi.search(x[:20], 5)
    np.testing.assert_array_equal(got, exact_top(x, np.arange(1, N + 1), x[:20], 5))
    assert np.all(np.abs(scores) <= 1 + 1e-5), scores.max()


def test_flipped_bytes_are_caught_and_rebuilt(saved: tuple[Path, np.ndarray],
                                              session_factory: sessionmaker,
                                              caplog: pytest.LogCaptureFixture) -> None:
    d, x = saved
    (faiss_file,) = d.glob("*.faiss")
    size = faiss_file.stat().st_size
    flip_bytes(faiss_file)
    assert faiss_file.stat().st_size == size
    with caplog.at_level(logging.WARNING, logger="index.vectors"):
        vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert "checksum mismatch" in caplog.text and faiss_file.name in caplog.text
    assert vi.count == N
    assert_exact(vi, x)
    # The rebuilt index replaced the damaged pair: the next start loads it cleanly.
    assert VectorIndex.load_checked(d, "e") is not None
    assert not faiss_file.exists()


def test_load_checked_names_the_reason(saved: tuple[Path, np.ndarray]) -> None:
    d, _ = saved
    (faiss_file,) = d.glob("*.faiss")
    flip_bytes(faiss_file)
    with pytest.raises(IndexFileError, match="checksum mismatch") as info:
        VectorIndex.load_checked(d, "e")
    assert info.value.reason == "damaged (checksum mismatch)"
    assert faiss_file.name in str(info.value)
    assert VectorIndex.load(d, "e") is None


def test_manifest_carries_the_checksum(saved: tuple[Path, np.ndarray]) -> None:
    d, _ = saved
    manifest = json.loads((d / "e.json").read_text())
    assert manifest["version"] == MANIFEST_VERSION == 2
    assert len(manifest["checksum"]) == 64


def _as_version_1(d: Path) -> None:
    manifest = json.loads((d / "e.json").read_text())
    del manifest["checksum"]
    manifest["version"] = 1
    (d / "e.json").write_text(json.dumps(manifest))


def test_version_1_manifest_loads_unverified_and_gets_a_checksum(
        saved: tuple[Path, np.ndarray], session_factory: sessionmaker) -> None:
    d, x = saved
    _as_version_1(d)
    old = VectorIndex.load(d, "e")
    assert old is not None and not old.verified and old.count == N
    vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert_exact(vi, x)
    assert json.loads((d / "e.json").read_text())["version"] == 2
    back = VectorIndex.load(d, "e")
    assert back is not None and back.verified


def test_implausible_vectors_are_rebuilt(session_factory: sessionmaker, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """A file whose checksum is right but whose vectors are garbage (saved from bad memory)."""
    x = clustered(N)
    add_tracks(session_factory, x, 1)
    d = tmp_path / "idx"
    ids = np.arange(1, N + 1)
    bad = VectorIndex.build("e", ids, x * 1e12)
    with session_factory() as s:
        from index.vectors import db_watermark

        bad.save(d, db_watermark(s, "e"))
    with pytest.raises(IndexFileError, match="norm"):
        VectorIndex.load_checked(d, "e")
    with caplog.at_level(logging.WARNING, logger="index.vectors"):
        vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert "norm" in caplog.text
    assert_exact(vi, x)


def test_count_disagreeing_with_the_manifest_is_rebuilt(
        saved: tuple[Path, np.ndarray], session_factory: sessionmaker) -> None:
    d, x = saved
    manifest = json.loads((d / "e.json").read_text())
    manifest["count"] = N - 7
    (d / "e.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFileError, match=f"manifest says {N - 7}"):
        VectorIndex.load_checked(d, "e")
    vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert vi.count == N
    assert_exact(vi, x)


def test_check_vectors_passes_quantised_indexes() -> None:
    x = clustered(2000)
    for factory in ("Flat", "HNSW32", "IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8np"):
        vi = VectorIndex.build("e", np.arange(2000), x, factory=factory)
        assert vi.check_vectors(2000) is None, factory

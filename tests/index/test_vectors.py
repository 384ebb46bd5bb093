"""The vector index: factory rule, recall against Flat, deletes, persistence and DB sync."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, delete
from sqlalchemy.orm import sessionmaker

from index.errors import CatalogError
from index.models import Base, Embedding, Track
from index.vectors import IndexConfig, VectorIndex, choose_factory, db_watermark

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


def test_factory_rule_follows_catalog_size() -> None:
    assert choose_factory(0, 512) == "Flat"
    assert choose_factory(49_999, 512) == "Flat"
    assert choose_factory(1_000_000, 512) == "HNSW32"
    big = choose_factory(20_000_000, 512)
    assert big.startswith("IVF") and big.endswith(",SQ8")


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF16,Flat", "IVF16,PQ8np", "IVF16,SQ8"])
def test_recall_against_flat(factory: str) -> None:
    x = clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 3 + 11
    q = clustered(50, seed=1)
    vi = VectorIndex.build("e", ids, x, factory=factory, config=IndexConfig(nprobe=8))
    _, got = vi.search(q, 10)
    truth = exact_top(x, ids, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth, strict=True)])
    assert recall >= (0.99 if factory in ("Flat", "HNSW32") else 0.6), recall


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF8,Flat"])
def test_deleted_ids_never_return(factory: str) -> None:
    x = clustered(500)
    ids = np.arange(500, dtype=np.int64)
    vi = VectorIndex.build("e", ids, x, factory=factory, config=IndexConfig(nprobe=8))
    gone = ids[:100]
    assert vi.remove(gone) == 100
    assert vi.remove(gone) == 0
    assert vi.count == 400
    _, got = vi.search(x[:100], 20)
    assert not set(got.ravel().tolist()) & set(gone.tolist())
    assert 5 not in vi and 200 in vi
    # Filtered and exact-subset paths honour deletes too.
    _, got = vi.search(x[:5], 5, allowed=np.arange(0, 150), exact=True)
    assert set(got.ravel().tolist()) <= set(range(100, 150))
    # Re-adding a deleted id brings back exactly the new vector.
    vi.add([3], x[400:401])
    _, got = vi.search(x[400:401], 2)
    assert set(got[0].tolist()) == {3, 400}


def test_hnsw_tombstones_trigger_rebuild() -> None:
    x = clustered(400)
    vi = VectorIndex.build("e", np.arange(400), x, factory="HNSW32")
    assert not vi.supports_remove
    vi.remove(np.arange(150))
    assert vi._index.ntotal == 250 and not vi._tombstones
    np.testing.assert_allclose(vi.reconstruct([200])[0], x[200])


def test_replacing_a_vector_in_hnsw() -> None:
    x = clustered(100)
    vi = VectorIndex.build("e", np.arange(100), x, factory="HNSW32")
    vi.add([7], x[50:51])
    assert vi.count == 100
    np.testing.assert_allclose(vi.reconstruct([7])[0], x[50])


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF8,Flat"])
def test_exact_subset_equals_brute_force(factory: str) -> None:
    x = clustered(2000)
    ids = np.arange(2000, dtype=np.int64) + 1
    vi = VectorIndex.build("e", ids, x, factory=factory)
    allowed = ids[::37]
    q = clustered(10, seed=4)
    scores, got = vi.search(q, 10, allowed=allowed, exact=True)
    sub = np.isin(ids, allowed)
    truth = exact_top(x[sub], ids[sub], q, 10)
    np.testing.assert_array_equal(got, truth)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_short_pages_are_padded_and_bad_input_named() -> None:
    vi = VectorIndex.build("e", np.arange(3), clustered(3))
    s, i = vi.search(clustered(1), 5)
    assert i[0, 3:].tolist() == [-1, -1]
    with pytest.raises(CatalogError, match="dimension 16"):
        vi.search(np.zeros((1, 3), np.float32), 5)
    with pytest.raises(CatalogError, match="'Bogus12'"):
        VectorIndex.create("e", DIM, factory="Bogus12")


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


# ---------------------------------------------------------------------- database sync

@pytest.fixture
def session_factory(tmp_path: Path) -> sessionmaker:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _add_tracks(factory: sessionmaker, vectors: np.ndarray, start: int, encoder: str = "e") -> None:
    with factory() as s:
        for j, v in enumerate(vectors):
            tid = start + j
            s.add(Track(id=tid, content_hash=f"h{tid}", title=f"t{tid}", duration_s=1.0,
                        sample_rate=16000, audio_format="wav", source_path="x", audio_path="x"))
            s.add(Embedding(track_id=tid, encoder_id=encoder, dim=len(v),
                            vector=v.astype("<f4").tobytes()))
        s.commit()


def test_open_builds_then_follows_the_database(session_factory: sessionmaker,
                                               tmp_path: Path) -> None:
    x = clustered(60)
    _add_tracks(session_factory, x[:40], 1)
    d = tmp_path / "idx"
    vi = VectorIndex.open(d, "e", DIM, session_factory)
    assert vi.count == 40 and vi.factory == "Flat"
    with session_factory() as s:
        assert vi.watermark == db_watermark(s, "e")

    # Unchanged database: the saved index is used as is.
    again = VectorIndex.open(d, "e", DIM, session_factory)
    assert again.count == 40

    # New rows and a deleted track are applied incrementally.
    _add_tracks(session_factory, x[40:60], 41)
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
    _add_tracks(session_factory, clustered(10), 1)
    d = tmp_path / "idx"
    VectorIndex.open(d, "e", DIM, session_factory)
    (d / "e.json").write_text("{not json")
    assert VectorIndex.open(d, "e", DIM, session_factory).count == 10

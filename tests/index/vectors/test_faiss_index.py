"""The FAISS wrapper: recall against Flat, deletes and tombstones, exact subsets, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import CatalogError
from index.vectors import IndexConfig, VectorIndex
from tests.index.vectors.helpers import DIM, clustered, exact_top


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

"""The catalog map: PCA that is deterministic, stable under added generated tracks, cached per
index version, and a density grid that finds the hole in a ring."""

from __future__ import annotations

import numpy as np
import pytest

from index.vectors import VectorIndex
from retrieval.catalog_map import CatalogMapCache, density_grid, fit_projection, index_version
from retrieval.encoders.base import l2_normalize
from retrieval.search import SearchService, TrackMeta
from retrieval.search.table import TrackTable
from tests.api.tiny_encoder import TinyEncoder

DIM = 16


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors in three clusters: a projection worth looking at."""
    centres = l2_normalize(rng.standard_normal((3, DIM)).astype(np.float32))
    x = centres[np.arange(n) % 3] + 0.25 * rng.standard_normal((n, DIM)).astype(np.float32)
    return l2_normalize(x)


def make_service(vectors: np.ndarray, origins: list[str] | None = None) -> SearchService:
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    origins = origins or ["catalog"] * len(vectors)
    table = TrackTable([TrackMeta(id=int(i), origin=o, collection=("bach", "essen")[i % 2])
                        for i, o in zip(ids, origins, strict=True)])
    enc = TinyEncoder(dim=DIM)
    index = VectorIndex.build(enc.id, ids, vectors, factory="Flat")
    return SearchService(enc, index, table)


def add_tracks(svc: SearchService, vectors: np.ndarray, origin: str) -> list[int]:
    start = int(svc.index.ids().max()) + 1
    ids = list(range(start, start + len(vectors)))
    for i, v in zip(ids, vectors, strict=True):
        svc.add_track(TrackMeta(id=i, origin=origin), v)
    return ids


def test_pca_is_the_top_two_principal_axes_with_pinned_signs(rng: np.random.Generator) -> None:
    x = clustered(rng, 300)
    ids = np.arange(300)
    p = fit_projection(ids, x)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    # The same axes as an SVD of the centred data (up to sign), in the same order.
    assert np.allclose(np.abs(np.sum(p.components * vt[:2], axis=1)), 1.0, atol=1e-6)
    assert np.allclose(p.components @ p.components.T, np.eye(2), atol=1e-9)
    for c in p.components:  # the largest loading of each axis is positive
        assert c[np.argmax(np.abs(c))] > 0
    # Input order does not matter: shuffled rows give the same basis, mean and frame.
    perm = rng.permutation(300)
    q = fit_projection(ids[perm], x[perm])
    assert np.allclose(q.components, p.components, atol=1e-9)
    assert np.allclose(q.mean, p.mean) and np.allclose(q.bounds, p.bounds)
    xy = p.project(x)
    x0, y0, x1, y1 = p.bounds
    assert (xy[:, 0] > x0).all() and (xy[:, 0] < x1).all()
    assert (xy[:, 1] > y0).all() and (xy[:, 1] < y1).all()


def test_the_map_is_deterministic(rng: np.random.Generator) -> None:
    x = clustered(rng, 120)
    a = CatalogMapCache().get(make_service(x))
    b = CatalogMapCache().get(make_service(x.copy()))
    assert a.index_version == b.index_version
    assert a.method == "pca" and a.encoder_id == f"tiny-test@{DIM}"
    assert np.array_equal(a.ids, np.arange(1, 121)) and np.array_equal(a.xy, b.xy)
    assert np.array_equal(a.density.values, b.density.values)
    assert set(a.collections) == {"bach", "essen"} and set(a.origins) == {"catalog"}


def test_generated_tracks_do_not_move_old_points(rng: np.random.Generator) -> None:
    svc = make_service(clustered(rng, 150))
    cache = CatalogMapCache()
    before = cache.get(svc)
    assert cache.get(svc) is before  # the same version: the cached map itself
    new = clustered(rng, 40)  # many: 40 / 150 would be far past refit_fraction if they counted
    new_ids = add_tracks(svc, new, "generated")
    after = cache.get(svc)
    assert after.index_version != before.index_version == index_version(make_service(
        svc.index.reconstruct(np.arange(1, 151))))
    assert after.projection is before.projection
    old = np.isin(after.ids, before.ids)
    assert np.array_equal(after.xy[old], before.xy)  # bit for bit
    assert np.allclose(after.xy[~old], before.projection.project(new))
    assert [after.origins[i] for i in np.flatnonzero(~old)] == ["generated"] * 40
    assert after.ids[~old].tolist() == new_ids
    assert len(after.projection.fit_ids) == 150


def test_catalog_drift_refits_only_past_the_fraction(rng: np.random.Generator) -> None:
    svc = make_service(clustered(rng, 100))
    cache = CatalogMapCache(refit_fraction=0.1)
    first = cache.get(svc)
    add_tracks(svc, clustered(rng, 5), "catalog")  # 5% new catalog tracks: keep the basis
    kept = cache.get(svc)
    assert kept is not first and kept.projection is first.projection
    assert np.array_equal(kept.xy[:100], first.xy)
    svc.remove_track(1)
    add_tracks(svc, clustered(rng, 6), "catalog")  # now 5 + 6 added + 1 removed: 12% > 10%
    refit = cache.get(svc)
    assert refit.projection is not first.projection
    assert len(refit.projection.fit_ids) == 110 and 1 not in refit.ids
    # refit_fraction=0: the map is a function of the catalog alone.
    strict = CatalogMapCache(refit_fraction=0.0)
    strict.get(svc)
    add_tracks(svc, clustered(rng, 1), "catalog")
    assert len(strict.get(svc).projection.fit_ids) == 111


def test_the_cache_follows_the_index_version_through_deletes(rng: np.random.Generator) -> None:
    svc = make_service(clustered(rng, 30))
    cache = CatalogMapCache()
    a = cache.get(svc)
    svc.remove_track(7)
    b = cache.get(svc)
    assert b.index_version != a.index_version and 7 not in b.ids and len(b.ids) == 29


def test_only_generated_tracks_and_an_empty_index_still_map(rng: np.random.Generator) -> None:
    svc = make_service(clustered(rng, 20), ["generated"] * 20)
    m = CatalogMapCache().get(svc)
    assert len(m.projection.fit_ids) == 20 and set(m.origins) == {"generated"}
    empty = make_service(clustered(rng, 1))
    empty.remove_track(1)
    e = CatalogMapCache().get(empty)
    assert len(e.ids) == 0 and e.xy.shape == (0, 2) and not e.density.thin.any()
    xy, d = e.locate(clustered(rng, 2))
    assert xy.shape == (2, 2) and d.tolist() == [0.0, 0.0]


def test_the_density_grid_finds_the_hole_in_a_ring(rng: np.random.Generator) -> None:
    angles = rng.uniform(0, 2 * np.pi, 800)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1) + 0.03 * rng.standard_normal((800, 2))
    grid = density_grid(ring, (-1.3, -1.3, 1.3, 1.3), cells=24)
    centre, on_ring = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])
    assert grid.at(centre)[0] < grid.thin_level < grid.at(on_ring)[0]
    assert grid.thin[12, 12] and not grid.thin[12, 21]  # [iy, ix]: the centre and (1, 0)
    assert not grid.thin[0, 0]  # a corner far from everything is outside, not "thin"
    assert grid.values.max() == pytest.approx(1.0) and grid.values.min() >= 0
    assert grid.at(np.array([[5.0, 5.0]]))[0] == 0.0  # off the frame

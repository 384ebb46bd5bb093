"""The catalog map: every indexed track as a point in 2-D, and where the catalog is thin.

The web page draws it so a person can see what the catalog holds, where their query landed
and where generated tracks filled a gap. Three properties matter more than a pretty layout:

- **Stable.** The projection is PCA *fitted on catalog tracks only*; generated tracks (and the
  query, and the prior's samples) are projected with the same mean and basis, so adding a
  generated track never moves an old point. The basis is refitted only when the catalog
  itself drifted by more than ``refit_fraction`` of the tracks it was fitted on (uploads and
  deletes add up), not on every change. t-SNE or UMAP would re-layout everything on each
  addition (and need a dependency); a fixed linear map cannot.
- **Deterministic.** The top two eigenvectors of the float64 covariance (``numpy.linalg.eigh``,
  the right singular vectors an SVD of the centred data would give), with each component's
  sign fixed so that its largest loading is positive; a catalog larger than ``max_fit`` is
  fitted on a seeded sample. Same vectors in, same map out (from a fresh cache; a
  long-lived one keeps its basis through small catalog drifts, which is the point above).
- **Cheap, once per index version.** The version is the encoder id, the live count and a
  hash of the sorted live ids (:func:`index_version`): an encoder id names fixed weights, so
  the ids determine every vector. The map is cached per version and rebuilt only when it moved.

Measured on this project's 2 CPU cores while other jobs shared them (load ~10; unit random
vectors of dim 512, the default encoder's width; one BLAS thread, best of 5): fitting 1,500
vectors takes ~130 ms and 20,000 ~520 ms (a full ``numpy.linalg.svd`` of the centred data
took 1.5 s and 5.3 s, hence the covariance); a whole map (reconstruct, fit, project, density
grid) ~170 ms and ~750 ms; the map after a generated track was added (basis kept) ~13 ms and
~180 ms; :func:`index_version` 0.05 ms and 1 ms.

Thinness: a coarse density grid over the map (Gaussian-smoothed counts of every indexed point,
normalised to 0..1), and the cells that are *thin*: surrounded by the catalog yet with little
in them -- the holes and gaps where a query is likely to be a weak match.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from index.errors import CatalogError
from retrieval.errors import RetrievalError
from retrieval.search.service import SearchService

METHOD = "pca"


def index_version(service: SearchService) -> str:
    """A string that changes whenever the set of indexed tracks changes.

    ``"{encoder_id}:{count}:{hash of sorted live ids}"``. Sub-millisecond at 20,000 tracks.
    """
    ids = service.index.ids()
    digest = hashlib.blake2b(ids.astype("<i8").tobytes(), digest_size=8).hexdigest()
    return f"{service.encoder.id}:{len(ids)}:{digest}"


@dataclass(frozen=True)
class Projection:
    """A fixed linear map from the embedding space to the plane.

    Attributes:
        mean: float64 ``[dim]``, the fitted tracks' mean.
        components: float64 ``[2, dim]``, orthonormal rows (the first two principal axes).
        fit_ids: int64 ``[n]``, sorted ids of the tracks it was fitted on.
        bounds: ``(x0, y0, x1, y1)`` of the fitted tracks' points with a margin: the map's
            frame, fixed with the basis so the picture does not rescale when points are added.
    """

    mean: np.ndarray
    components: np.ndarray
    fit_ids: np.ndarray
    bounds: tuple[float, float, float, float]

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Points float64 ``[n, 2]`` of vectors ``[n, dim]`` (or ``[dim]``)."""
        v = np.asarray(vectors, np.float64).reshape(-1, self.mean.shape[0])
        return (v - self.mean) @ self.components.T

    def drift(self, catalog_ids: np.ndarray) -> float:
        """How far the catalog moved from the fitted set: (added + removed) / fitted."""
        changed = len(np.setxor1d(self.fit_ids, catalog_ids, assume_unique=True))
        return changed / max(1, len(self.fit_ids))


def fit_projection(ids: np.ndarray, vectors: np.ndarray, *, max_fit: int = 50_000,
                   seed: int = 0) -> Projection:
    """PCA of ``vectors`` ``[n, dim]`` (rows under ``ids`` ``[n]``) to two dimensions.

    Raises:
        RetrievalError: vectors narrower than 2 dimensions, or ids and vectors disagree.
    """
    ids = np.asarray(ids, np.int64)
    x = np.asarray(vectors, np.float64)
    if x.ndim != 2 or x.shape[1] < 2 or len(x) != len(ids):
        raise RetrievalError(f"need vectors [n, dim>=2] under n ids, got {x.shape} for "
                             f"{len(ids)} ids")
    order = np.argsort(ids, kind="stable")
    ids, x = ids[order], x[order]
    sample = x
    if len(x) > max_fit:  # seeded, over id order: the same catalog gives the same sample
        pick = np.sort(np.random.default_rng(seed).choice(len(x), max_fit, replace=False))
        sample = x[pick]
    dim = x.shape[1]
    if len(sample) == 0:
        mean, components = np.zeros(dim), np.eye(2, dim)
    else:
        mean = sample.mean(0)
        centred = sample - mean
        _, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        components = vecs[:, [-1, -2]].T.copy()
        for c in components:  # an eigenvector's sign is arbitrary: pin it
            if c[np.argmax(np.abs(c))] < 0:
                c *= -1
    proj = Projection(mean, components, ids, (-1.0, -1.0, 1.0, 1.0))
    return Projection(mean, components, ids, _frame(proj.project(x)))


def _frame(xy: np.ndarray, margin: float = 0.06) -> tuple[float, float, float, float]:
    if len(xy) == 0:
        return (-1.0, -1.0, 1.0, 1.0)
    lo, hi = xy.min(0), xy.max(0)
    pad = np.maximum((hi - lo) * margin, 1e-3)
    lo, hi = lo - pad, hi + pad
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


@dataclass(frozen=True)
class DensityGrid:
    """Smoothed point density on a regular grid over the map's frame.

    Attributes:
        bounds: ``(x0, y0, x1, y1)``, the frame the grid covers.
        values: float32 ``[ny, nx]`` in 0..1 (1 = the densest cell); row 0 is ``y0``.
        thin: bool ``[ny, nx]``, cells inside the catalog's envelope with little near them.
        thin_level: the density under which an enveloped cell counts as thin.
    """

    bounds: tuple[float, float, float, float]
    values: np.ndarray
    thin: np.ndarray
    thin_level: float

    def at(self, xy: np.ndarray) -> np.ndarray:
        """Density float32 ``[n]`` of the cells holding points ``[n, 2]`` (0 outside the frame)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        ny, nx = self.values.shape
        x0, y0, x1, y1 = self.bounds
        ix = np.floor((xy[:, 0] - x0) / (x1 - x0) * nx).astype(np.int64)
        iy = np.floor((xy[:, 1] - y0) / (y1 - y0) * ny).astype(np.int64)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.zeros(len(xy), np.float32)
        out[inside] = self.values[iy[inside], ix[inside]]
        return out


def _smooth(counts: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (sigma in cells), zero outside the grid."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    rows = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, counts)
    return np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, rows)


def _enclosed(occupied: np.ndarray) -> np.ndarray:
    """Cells with an occupied cell on both sides in their row *and* in their column."""
    def between(axis: int) -> np.ndarray:
        fwd = np.maximum.accumulate(occupied, axis=axis)
        back = np.flip(np.maximum.accumulate(np.flip(occupied, axis), axis=axis), axis)
        return fwd & back
    return between(0) & between(1)


def density_grid(xy: np.ndarray, bounds: tuple[float, float, float, float], *,
                 cells: int = 24, thin_level: float = 0.2) -> DensityGrid:
    """The density of points ``[n, 2]`` on a ``cells x cells`` grid over ``bounds``.

    Counts are blurred by one cell (a lone point is a small bump, not a spike) and divided by
    the peak. A cell is *thin* when it is under ``thin_level`` yet enclosed by denser cells
    in its row and in its column: a hole or a gap between clusters, where the catalog has
    little although it surrounds the place. The empty margins outside the cloud are not thin,
    only empty.
    """
    x0, y0, x1, y1 = bounds
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    counts, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=cells, range=[[y0, y1], [x0, x1]])
    fine = _smooth(counts, 1.0)
    values = fine / fine.max() if fine.max() > 0 else fine
    occupied = values >= thin_level
    return DensityGrid(bounds, values.astype(np.float32), _enclosed(occupied) & ~occupied,
                       thin_level)


@dataclass(frozen=True)
class CatalogMap:
    """One index version's map.

    Attributes:
        index_version: :func:`index_version` of the index it was built from.
        encoder_id: the encoder whose space is projected.
        method: how (``"pca"``).
        ids: int64 ``[n]``, sorted track ids.
        xy: float64 ``[n, 2]``, their points.
        origins: ``catalog`` or ``generated`` per track (the tracks table's ``origin``).
        collections: each track's collection (None when it has none).
        projection: the map from vectors to points (queries are projected with it).
        density: where the points are thick and thin.
    """

    index_version: str
    encoder_id: str
    method: str
    ids: np.ndarray
    xy: np.ndarray
    origins: tuple[str, ...]
    collections: tuple[str | None, ...]
    projection: Projection
    density: DensityGrid

    def locate(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points ``[n, 2]`` of vectors ``[n, dim]`` and the density ``[n]`` where they land."""
        xy = self.projection.project(vectors)
        return xy, self.density.at(xy)


class CatalogMapCache:
    """The map of a search service's index, rebuilt once per index version.

    Args:
        refit_fraction: refit the basis when the catalog tracks differ from the fitted ones by
            more than this fraction (generated tracks never count); 0 refits on every catalog
            change, which makes the map a function of the catalog alone.
        cells: density grid resolution.
        max_fit: largest number of catalog vectors the PCA is fitted on.
    """

    def __init__(self, *, refit_fraction: float = 0.1, cells: int = 24,
                 max_fit: int = 50_000) -> None:
        self.refit_fraction = refit_fraction
        self.cells = cells
        self.max_fit = max_fit
        self._map: CatalogMap | None = None
        self._lock = threading.Lock()

    def get(self, service: SearchService) -> CatalogMap:
        """The map of the service's index as it is now (cached while its version holds).

        Raises:
            RetrievalError: the index kept changing under three attempts to read it.
        """
        with self._lock:
            for _ in range(3):
                version = index_version(service)
                if self._map is not None and self._map.index_version == version:
                    return self._map
                try:
                    self._map = self._build(service, version)
                    return self._map
                except CatalogError:  # a track deleted between listing and reading: again
                    continue
            raise RetrievalError("the index changed while its map was being built; try again")

    def _build(self, service: SearchService, version: str) -> CatalogMap:
        ids = service.index.ids()
        vectors = service.index.reconstruct(ids)
        metas = [service.table.get(int(i)) for i in ids]
        origins = tuple((getattr(m, "origin", None) or "catalog") for m in metas)
        collections = tuple(getattr(m, "collection", None) for m in metas)
        is_catalog = np.array([o != "generated" for o in origins], bool)
        if not is_catalog.any():  # only generated tracks: fit on what there is
            is_catalog[:] = True
        projection = self._projection(service, ids[is_catalog], vectors[is_catalog])
        xy = projection.project(vectors)
        density = density_grid(xy, projection.bounds, cells=self.cells)
        return CatalogMap(version, service.encoder.id, METHOD, ids, xy, origins, collections,
                          projection, density)

    def _projection(self, service: SearchService, ids: np.ndarray, vectors: np.ndarray
                    ) -> Projection:
        prev = self._map
        if (prev is not None and prev.encoder_id == service.encoder.id
                and prev.projection.mean.shape[0] == vectors.shape[1]
                and len(prev.projection.fit_ids)
                and prev.projection.drift(ids) <= self.refit_fraction):
            return prev.projection
        return fit_projection(ids, vectors, max_fit=self.max_fit)

"""The catalog map's public shape: points, the density grid, and where a query lands."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrieval.catalog_map import CatalogMap

_ROUND = 5  # decimals of a coordinate: far below a pixel, and a third of the JSON


class MapPoint(BaseModel):
    """One indexed track on the map."""

    id: int
    x: float
    y: float
    origin: str = Field(description="catalog (ingested) or generated.")
    collection: str | None = None


class DensityGridPublic(BaseModel):
    """Smoothed track density on a grid over the map's frame (row 0 is ``y0``)."""

    nx: int
    ny: int
    x0: float
    y0: float
    x1: float
    y1: float
    values: list[list[float]] = Field(description="[ny][nx], 0..1 (1 = the densest cell).")
    thin: list[list[int]] = Field(description="[ix, iy] of cells inside the catalog's "
                                              "envelope with little near them.")
    thin_level: float


class CatalogMapResponse(BaseModel):
    """Every indexed track projected to 2-D, computed once per index version."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "index_version": "default@1:18:9f2c0a1b3d4e5f60", "encoder_id": "default@1",
        "method": "pca", "fitted_on": 17,
        "bounds": {"x0": -0.6, "y0": -0.5, "x1": 0.7, "y1": 0.5},
        "points": [{"id": 1, "x": 0.12, "y": -0.3, "origin": "catalog", "collection": "bach"},
                   {"id": 18, "x": 0.4, "y": 0.1, "origin": "generated", "collection": None}]}})

    index_version: str = Field(description="Changes whenever the indexed tracks change.")
    encoder_id: str
    method: str = Field(description="The projection: pca, fitted on catalog tracks only, so "
                                    "generated tracks are added without moving old points.")
    fitted_on: int = Field(description="Catalog tracks the projection was fitted on.")
    bounds: dict[str, float] = Field(description="The map's frame: x0, y0, x1, y1.")
    points: list[MapPoint]
    density: DensityGridPublic

    @classmethod
    def of(cls, m: CatalogMap) -> CatalogMapResponse:
        """The public view of a map."""
        x0, y0, x1, y1 = m.projection.bounds
        d = m.density
        ny, nx = d.values.shape
        thin_y, thin_x = np.nonzero(d.thin)
        xy = np.round(m.xy, _ROUND).tolist()
        points = [MapPoint(id=int(i), x=p[0], y=p[1], origin=o, collection=c)
                  for i, p, o, c in zip(m.ids.tolist(), xy, m.origins, m.collections,
                                        strict=True)]
        return cls(index_version=m.index_version, encoder_id=m.encoder_id, method=m.method,
                   fitted_on=len(m.projection.fit_ids),
                   bounds={"x0": x0, "y0": y0, "x1": x1, "y1": y1}, points=points,
                   density=DensityGridPublic(
                       nx=nx, ny=ny, x0=x0, y0=y0, x1=x1, y1=y1,
                       values=np.round(d.values.astype(np.float64), 3).tolist(),
                       thin=[[int(a), int(b)] for a, b in zip(thin_x, thin_y, strict=True)],
                       thin_level=d.thin_level))


class MapLocation(BaseModel):
    """A point on the map and the catalog density where it landed."""

    x: float
    y: float
    density: float = Field(description="0..1: the density grid's value under the point.")


class LocateResponse(BaseModel):
    """Where a text query and the diffusion prior's samples for it land on the map."""

    index_version: str
    query: MapLocation = Field(description="The text embedding, projected.")
    prior: list[MapLocation] = Field(description="The prior's samples for the text, projected "
                                                 "(empty when no prior exists for the encoder).")
    prior_available: bool

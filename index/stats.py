"""Catalog statistics: what is in the catalog, counted the ways people slice it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from index.models import Quarantine, Track

# Track columns reported as "count per value" (None is reported as "(none)").
BREAKDOWNS = ("collection", "tune_type", "ensemble", "origin", "split")


@dataclass(frozen=True)
class CatalogStats:
    """Counts over the whole catalog.

    Attributes:
        tracks: number of tracks.
        total_hours: summed duration in hours.
        quarantined: number of quarantined files.
        by: for each of :data:`BREAKDOWNS`, value -> track count (largest first).
    """

    tracks: int
    total_hours: float
    quarantined: int
    by: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``tunescope catalog stats --json``)."""
        return asdict(self)


def catalog_stats(session: Session) -> CatalogStats:
    """Count tracks per collection, tune type, ensemble, origin and split; total hours."""
    tracks, seconds = session.execute(
        select(func.count(Track.id), func.coalesce(func.sum(Track.duration_s), 0.0))
    ).one()
    quarantined = session.scalar(select(func.count(Quarantine.id))) or 0
    by: dict[str, dict[str, int]] = {}
    for name in BREAKDOWNS:
        column = getattr(Track, name)
        count = func.count(Track.id)
        rows = session.execute(
            select(column, count).group_by(column).order_by(count.desc(), column)
        ).all()
        by[name] = {("(none)" if value is None else str(value)): int(n) for value, n in rows}
    return CatalogStats(tracks=int(tracks), total_hours=float(seconds) / 3600.0,
                        quarantined=int(quarantined), by=by)

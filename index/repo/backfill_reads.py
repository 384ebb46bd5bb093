"""Reads of the backfill tables that the limits and the API make.

Generated tracks per hour, candidates still due, a track's provenance; split from
:mod:`index.repo.backfill`, which re-exports them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from index.models import BackfillJob, Track, TrackProvenance
from index.repo.backfill import QUEUED, RUNNING, SessionFactory


def generated_since(factory: SessionFactory, since: dt.datetime) -> int:
    """Generated tracks stored since ``since`` (the generated-tracks-per-hour limit)."""
    with factory() as session:
        return int(session.scalar(select(func.count(Track.id)).where(
            Track.origin == "generated", Track.created_at >= since)) or 0)


def pending_candidates(factory: SessionFactory) -> int:
    """Candidates still to come from queued and running jobs (``request["n"]`` less stored).

    With :func:`generated_since` this is what a generated-tracks-per-hour limit must count: a
    burst of weak searches queues jobs long before any of their tracks is stored.
    """
    with factory() as session:
        jobs = session.execute(select(BackfillJob.id, BackfillJob.request)
                               .where(BackfillJob.status.in_((QUEUED, RUNNING)))).all()
        if not jobs:
            return 0
        stored = dict(session.execute(
            select(TrackProvenance.job_id, func.count(TrackProvenance.id))
            .where(TrackProvenance.job_id.in_([j for j, _ in jobs]))
            .group_by(TrackProvenance.job_id)).all())
    return sum(max(0, int((req or {}).get("n") or 0) - int(stored.get(j, 0))) for j, req in jobs)


def get_provenance(factory: SessionFactory, track_id: int) -> TrackProvenance | None:
    """The provenance row of a generated track (detached); None for a catalog track."""
    with factory() as session:
        row = session.scalar(select(TrackProvenance).where(TrackProvenance.track_id == track_id))
        if row is not None:
            session.expunge(row)
        return row

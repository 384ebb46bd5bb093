"""The backfill job queue and the one way a generated track is stored.

The queue is a table of the catalog database, so it needs no broker and shares the catalog's
transactions. Claiming is exactly-once on both supported databases:

- **PostgreSQL**: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest claimable row that no
  other claimer holds, so concurrent workers never wait on each other nor take the same job.
- **SQLite**: one writer at a time by construction; ``BEGIN IMMEDIATE`` takes the write lock
  *before* the read, so the read-then-update cannot interleave with another claimer's.

Either way the UPDATE that takes the job repeats the claimability condition, so even a path
that lost its lock could not claim twice. A claim is a *lease*: a worker renews it by
heartbeat; a job whose lease ran out (its worker was killed) is claimable again, until
``max_attempts`` claims have been spent, and then it fails with the reason.

Times are the workers' UTC clocks (pass ``now`` to pin them in tests); workers on several
machines need clocks that agree to well within a lease.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from index.audio import validate
from index.db import session_scope
from index.errors import CatalogError
from index.models import BackfillJob, Track, TrackProvenance
from index.repo.tracks import add_embedding
from index.store import AudioStore

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
#: PostgreSQL advisory lock that serialises claims when ``max_running`` is enforced (counting
#: the running jobs and taking one must be one atomic step).
_CLAIM_LOCK = 0x7475_6E65_0001
#: Track columns a keeper's metadata may set; anything else goes to ``Track.extra``.
_TRACK_FIELDS = frozenset({
    "title", "artist", "collection", "piece_id", "tags", "instruments", "ensemble", "tune_type",
    "region", "key", "mode", "meter", "tempo_bpm", "license", "split",
})


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (the queue's only clock)."""
    return dt.datetime.now(dt.UTC)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything this module stores is UTC."""
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def request_key(query: str, options: dict[str, Any] | None = None) -> str:
    """The canonical key of a generation request: what makes two requests equivalent.

    Case and spacing of the query do not change what is generated; the options that do
    (duration, candidates, explicit attributes, filters) are part of the key, in a stable
    order. Pass the result to :func:`enqueue`.
    """
    text_part = " ".join(query.lower().split())
    return json.dumps([text_part, options or {}], sort_keys=True, separators=(",", ":"),
                      default=str)


def key_hash(key: str) -> str:
    """The dedup hash of a request key (the caller's canonical form of query + options)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@contextmanager
def _serialised(factory: SessionFactory, pg_lock: int | None = None) -> Iterator[Session]:
    """A unit of work that holds the database's write serialisation point from its start.

    SQLite: ``BEGIN IMMEDIATE`` (the write lock before the first read; other writers wait on
    the busy timeout). PostgreSQL: an advisory transaction lock on ``pg_lock`` when given
    (row locks do the rest). Commits on success, rolls back on any exception.
    """
    session = factory()
    try:
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            # pysqlite begins lazily, before the first DML: issuing BEGIN ourselves first
            # makes the transaction IMMEDIATE, and pysqlite's COMMIT/ROLLBACK still end it.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect == "postgresql" and pg_lock is not None:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": pg_lock})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# ------------------------------------------------------------------------------ enqueue

def enqueue(factory: SessionFactory, key: str, query: str, request: dict[str, Any], *,
            recent_window_s: float, max_attempts: int = 3,
            now: dt.datetime | None = None) -> tuple[BackfillJob, bool]:
    """Queue a job for ``query`` unless an equivalent one is pending or answered recently.

    Equivalent means the same ``key`` (hashed). A job that is queued or running, or that
    finished ``done`` within ``recent_window_s``, is returned instead of a new one; a failed
    job does not count (asking again retries). Check and insert are serialised (SQLite's write
    lock, a PostgreSQL advisory lock on the key), so concurrent weak searches for the same
    query queue exactly one job.

    Args:
        factory: session factory of a migrated catalog.
        key: canonical request key (normalised query text and the options that change output).
        query: the query text, kept for display and as the generator's prompt.
        request: the full request (JSON-serialisable): options, prior seeds, limits.
        recent_window_s: how long a finished job keeps answering equivalent requests.
        max_attempts: claims a new job may spend before it fails.
        now: the current time (tests); UTC now by default.

    Returns:
        ``(job, created)``: the job (detached) and whether it was created by this call.

    Raises:
        CatalogError: ``max_attempts`` < 1 or a negative window.
    """
    if max_attempts < 1 or recent_window_s < 0:
        raise CatalogError(f"max_attempts must be >= 1 and recent_window_s >= 0, got "
                           f"{max_attempts} and {recent_window_s}")
    now = now or utcnow()
    digest = key_hash(key)
    with _serialised(factory, pg_lock=int(digest[:15], 16)) as session:
        existing = _equivalent(session, digest, now - dt.timedelta(seconds=recent_window_s))
        if existing is not None:
            session.expunge(existing)
            return existing, False
        job = BackfillJob(key_hash=digest, query=query, request=request, status=QUEUED,
                          attempts=0, max_attempts=max_attempts, progress={},
                          result_track_ids=[], created_at=now, updated_at=now)
        session.add(job)
        session.flush()
        session.expunge(job)
        return job, True


def _equivalent(session: Session, digest: str, since: dt.datetime) -> BackfillJob | None:
    """The newest job of this key hash that is pending, or finished ``done`` after ``since``."""
    return session.scalars(
        select(BackfillJob).where(
            BackfillJob.key_hash == digest,
            or_(BackfillJob.status.in_((QUEUED, RUNNING)),
                and_(BackfillJob.status == DONE, BackfillJob.finished_at >= since)))
        .order_by(BackfillJob.id.desc()).limit(1)).first()


def equivalent_job(factory: SessionFactory, key: str, *, recent_window_s: float,
                   now: dt.datetime | None = None) -> BackfillJob | None:
    """The job :func:`enqueue` would answer ``key`` with instead of a new one, if any (detached).

    For callers that may not queue a new job (a rate limit) but should still point at the
    equivalent one.
    """
    now = now or utcnow()
    with factory() as session:
        job = _equivalent(session, key_hash(key), now - dt.timedelta(seconds=recent_window_s))
        if job is not None:
            session.expunge(job)
        return job


# -------------------------------------------------------------------------------- claim

def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    """Queued, or running under a lease that ran out with attempts left."""
    return or_(BackfillJob.status == QUEUED,
               and_(BackfillJob.status == RUNNING, BackfillJob.lease_expires_at < now,
                    BackfillJob.attempts < BackfillJob.max_attempts))


def _fail_exhausted(session: Session, now: dt.datetime) -> None:
    """Fail the jobs whose last allowed attempt's worker stopped heartbeating."""
    q = select(BackfillJob).where(BackfillJob.status == RUNNING,
                                  BackfillJob.lease_expires_at < now,
                                  BackfillJob.attempts >= BackfillJob.max_attempts)
    if _is_postgres(session):
        q = q.with_for_update(skip_locked=True)  # never wait on (or deadlock with) a claimer
    for job in session.scalars(q):
        last = f"; last error: {job.error}" if job.error else ""
        job.error = (f"lease expired: worker {job.lease_owner} stopped heartbeating during "
                     f"attempt {job.attempts} of {job.max_attempts}{last}")
        job.status, job.finished_at, job.updated_at = FAILED, now, now
        job.lease_owner, job.lease_expires_at = None, None
        log.warning("backfill job %d failed: %s", job.id, job.error)


def claim(factory: SessionFactory, worker_id: str, lease_s: float, *,
          max_running: int | None = None, now: dt.datetime | None = None) -> BackfillJob | None:
    """Take the oldest claimable job under a lease of ``lease_s`` seconds, or None.

    Claimable: queued, or running under an expired lease (its worker died) with attempts
    left. Each claim spends one attempt. Jobs whose final attempt's lease expired are failed
    here with that reason, so a killed worker's job always ends.

    Args:
        factory: session factory of a migrated catalog.
        worker_id: the claimer's name (unique per worker; heartbeats and results check it).
        lease_s: lease length; the worker must heartbeat well within it.
        max_running: when set, claim nothing while this many jobs hold live leases (the
            concurrent-jobs limit; counted and claimed atomically).
        now: the current time (tests); UTC now by default.

    Returns:
        The claimed job (detached, ``status='running'``), or None when there is none.
    """
    now = now or utcnow()
    with _serialised(factory, pg_lock=_CLAIM_LOCK if max_running is not None else None) as s:
        _fail_exhausted(s, now)
        if max_running is not None:
            live = s.scalar(select(func.count(BackfillJob.id)).where(
                BackfillJob.status == RUNNING, BackfillJob.lease_expires_at >= now)) or 0
            if live >= max_running:
                return None
        pick = (select(BackfillJob.id).where(_claimable(now))
                .order_by(BackfillJob.created_at, BackfillJob.id).limit(1))
        if _is_postgres(s):
            pick = pick.with_for_update(skip_locked=True)
        job_id = s.scalar(pick)
        if job_id is None:
            return None
        taken = s.execute(
            update(BackfillJob).where(BackfillJob.id == job_id, _claimable(now))
            .values(status=RUNNING, lease_owner=worker_id, attempts=BackfillJob.attempts + 1,
                    lease_expires_at=now + dt.timedelta(seconds=lease_s), heartbeat_at=now,
                    updated_at=now)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:  # cannot happen under the lock; the condition is the proof
            return None
        job = s.get(BackfillJob, job_id, populate_existing=True)
        assert job is not None
        s.expunge(job)
        return job


# -------------------------------------------------------------- lease-holder transitions

def _owned(job: BackfillJob) -> ColumnElement[bool]:
    """The row is still this claim's: running under the same owner (fencing a zombie)."""
    return and_(BackfillJob.id == job.id, BackfillJob.status == RUNNING,
                BackfillJob.lease_owner == job.lease_owner)


def _transition(factory: SessionFactory, job: BackfillJob, **values: Any) -> bool:
    with session_scope(factory) as session:
        result = session.execute(update(BackfillJob).where(_owned(job)).values(**values)
                                 .execution_options(synchronize_session=False))
        return result.rowcount == 1


def heartbeat(factory: SessionFactory, job: BackfillJob, *, lease_s: float,
              progress: dict[str, Any] | None = None, now: dt.datetime | None = None) -> bool:
    """Renew the lease (and record progress); False when the lease is no longer ours.

    A worker that gets False must stop working on the job: another worker has it (or it was
    failed), and whatever this one still stores is deduplicated, never lost or doubled.
    """
    now = now or utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + dt.timedelta(seconds=lease_s),
                              "heartbeat_at": now, "updated_at": now}
    if progress is not None:
        values["progress"] = progress
    return _transition(factory, job, **values)


def complete(factory: SessionFactory, job: BackfillJob, track_ids: list[int], *,
             progress: dict[str, Any] | None = None, now: dt.datetime | None = None) -> bool:
    """Mark the job done with its stored tracks; False when the lease was lost meanwhile."""
    now = now or utcnow()
    extra = {} if progress is None else {"progress": progress}
    return _transition(factory, job, status=DONE, result_track_ids=[int(t) for t in track_ids],
                       finished_at=now, updated_at=now, lease_owner=None,
                       lease_expires_at=None, error=None, **extra)


def fail(factory: SessionFactory, job: BackfillJob, reason: str, *,
         progress: dict[str, Any] | None = None, now: dt.datetime | None = None) -> str | None:
    """Record a failed attempt: back to the queue while attempts remain, else ``failed``.

    Returns:
        The job's new status (``queued`` or ``failed``), or None when the lease was lost.
    """
    now = now or utcnow()
    final = job.attempts >= job.max_attempts
    status = FAILED if final else QUEUED
    extra = {} if progress is None else {"progress": progress}
    ok = _transition(factory, job, status=status, error=reason[:4000], updated_at=now,
                     lease_owner=None, lease_expires_at=None,
                     finished_at=now if final else None, **extra)
    return status if ok else None


def release(factory: SessionFactory, job: BackfillJob, *, now: dt.datetime | None = None) -> bool:
    """Give the job back unfinished without spending an attempt (a worker shutting down)."""
    now = now or utcnow()
    return _transition(factory, job, status=QUEUED, attempts=BackfillJob.attempts - 1,
                       lease_owner=None, lease_expires_at=None, updated_at=now)


# ------------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class JobProgress:
    """What ``GET /v1/jobs/{id}`` shows: state, attempts, counts and the stored tracks."""

    id: int
    query: str
    status: str
    attempts: int
    max_attempts: int
    error: str | None
    progress: dict[str, Any]
    stored_track_ids: list[int]
    result_track_ids: list[int]
    created_at: dt.datetime
    finished_at: dt.datetime | None
    updated_at: dt.datetime | None = None


def get_job(factory: SessionFactory, job_id: int) -> BackfillJob | None:
    """The job with this id, detached; None when there is none."""
    with factory() as session:
        job = session.get(BackfillJob, job_id)
        if job is not None:
            session.expunge(job)
        return job


def job_progress(factory: SessionFactory, job_id: int) -> JobProgress | None:
    """The job's state and the tracks stored for it so far (by candidate index)."""
    with factory() as session:
        job = session.get(BackfillJob, job_id)
        if job is None:
            return None
        stored = list(session.scalars(select(TrackProvenance.track_id)
                                      .where(TrackProvenance.job_id == job_id)
                                      .order_by(TrackProvenance.candidate_index)))
        return JobProgress(job.id, job.query, job.status, job.attempts, job.max_attempts,
                           job.error, dict(job.progress or {}), stored,
                           list(job.result_track_ids or []), _aware(job.created_at),
                           _aware(job.finished_at), _aware(job.updated_at))


# ------------------------------------------------------------------- storing a keeper

@dataclass(frozen=True)
class Provenance:
    """How one candidate was made (the ``track_provenance`` row, before it has a track).

    Attributes:
        candidate_index: the candidate's place in its job (the idempotency key with the job).
        prompt: the text the generator was conditioned on.
        generator_id: the generator backend's name.
        weights_id: the id of its weights (a checksum or a checkpoint name).
        seed: the candidate's random seed.
        prior_samples: float32 ``[k, dim]`` prior samples that conditioned it, or None.
        scores: re-ranking scores (e.g. cosine to the query and to the prior samples).
        gates: novelty gate values (nearest-catalog similarity, threshold, copied run).
        neighbour_track_ids: the catalog tracks it was compared with, nearest first.
    """

    candidate_index: int
    prompt: str
    generator_id: str
    weights_id: str | None = None
    seed: int | None = None
    prior_samples: np.ndarray | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    neighbour_track_ids: list[int] = field(default_factory=list)


def stored_candidate(factory: SessionFactory, job_id: int, candidate_index: int) -> int | None:
    """The track already stored for this (job, candidate), if any."""
    with factory() as session:
        return session.scalar(select(TrackProvenance.track_id).where(
            TrackProvenance.job_id == job_id, TrackProvenance.candidate_index == candidate_index))


def _provenance_row(track_id: int, job_id: int, p: Provenance) -> TrackProvenance:
    prior = None if p.prior_samples is None else np.atleast_2d(np.asarray(p.prior_samples, "<f4"))
    return TrackProvenance(
        track_id=track_id, job_id=job_id, candidate_index=p.candidate_index, prompt=p.prompt,
        prior_samples=None if prior is None else prior.tobytes(),
        prior_count=0 if prior is None else prior.shape[0],
        prior_dim=0 if prior is None else prior.shape[1], generator_id=p.generator_id,
        weights_id=p.weights_id, seed=p.seed, scores=dict(p.scores), gates=dict(p.gates),
        neighbour_track_ids=[int(t) for t in p.neighbour_track_ids])


def store_generated(factory: SessionFactory, store: AudioStore, job: BackfillJob, audio: bytes,
                    metadata: dict[str, Any], embedding: np.ndarray, encoder_id: str,
                    provenance: Provenance) -> int:
    """Store one keeper: audio blob first, then track + embedding + provenance in ONE commit.

    Crash safety: the blob is content-addressed, so one without a row (a kill between the two
    steps) is harmless and reused; the three rows commit together or not at all. Idempotent
    per ``(job.id, provenance.candidate_index)``: a retried job (or a zombie worker racing
    its successor; the unique constraint settles it) gets the stored track's id back.

    Args:
        factory: session factory of a migrated catalog.
        store: the audio store.
        job: the job the candidate belongs to.
        audio: the candidate's encoded audio (WAV or any format ingestion accepts).
        metadata: track fields (title, tags, key, mode, meter, tempo_bpm, ensemble...);
            unknown keys are kept in ``Track.extra``.
        embedding: float32 ``[dim]`` L2-normalised audio embedding.
        encoder_id: the encoder that made ``embedding``.
        provenance: how the candidate was made.

    Returns:
        The track id (new, or the one already stored for this candidate).

    Raises:
        DecodeError: ``audio`` is not valid audio.
        CatalogError: a bad embedding.
    """
    done = stored_candidate(factory, job.id, provenance.candidate_index)
    if done is not None:
        return done
    checked = validate(audio)
    content_hash, rel = store.put_bytes(audio, checked.info.format)
    try:
        with session_scope(factory) as session:
            same = session.scalar(select(Track.id).where(Track.content_hash == content_hash))
            if same is not None:  # identical bytes already stored (another job's candidate)
                log.info("job %d candidate %d is track %d's audio; not stored twice",
                         job.id, provenance.candidate_index, same)
                return int(same)
            track = _generated_track(job, checked, content_hash, rel, metadata, provenance)
            session.add(track)
            session.flush()
            add_embedding(session, track.id, encoder_id, embedding)
            session.add(_provenance_row(track.id, job.id, provenance))
            return track.id
    except IntegrityError:
        done = stored_candidate(factory, job.id, provenance.candidate_index)
        if done is None:
            raise
        return done


def _generated_track(job: BackfillJob, checked: Any, content_hash: str, rel: str,
                     metadata: dict[str, Any], p: Provenance) -> Track:
    fields = {k: v for k, v in metadata.items() if k in _TRACK_FIELDS}
    extra = {k: v for k, v in metadata.items() if k not in _TRACK_FIELDS}
    fields.setdefault("title", f"Generated for “{job.query[:200]}” #{p.candidate_index + 1}")
    fields.setdefault("tags", [])
    fields.setdefault("instruments", [])
    info = checked.info
    return Track(
        content_hash=content_hash, duration_s=info.duration_s, sample_rate=info.sample_rate,
        channels=info.channels, loudness_db=checked.loudness_db, audio_format=info.format,
        source_path=f"generated:job/{job.id}/candidate/{p.candidate_index}", audio_path=rel,
        origin="generated", extra=extra,
        provenance={"job_id": job.id, "candidate_index": p.candidate_index,
                    "generator_id": p.generator_id, "weights_id": p.weights_id, "seed": p.seed},
        **fields)


# The reads the limits and the API make live in their own module; re-exported so that
# ``index.repo.backfill`` stays the one name callers use for the queue.
from index.repo.backfill_reads import generated_since, get_provenance, pending_candidates  # noqa: E402, F401

"""Catalog database schema (SQLAlchemy 2 typed ORM).

The database is the source of truth: the audio store and the vector indexes can be rebuilt
from it. Schema changes go through Alembic migrations in ``index/migrations``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """The declarative base of every table: JSON columns for the dict and list annotations.

    ``type_annotation_map`` makes a ``Mapped[dict[str, Any]]`` or ``Mapped[list[str]]`` field a
    JSON column (portable between SQLite and PostgreSQL) even where it names no column type.
    """

    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, list[int]: JSON}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Track(Base):
    """One playable recording: a catalog track or a generated one."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(512))
    artist: Mapped[str | None] = mapped_column(String(512), index=True)
    collection: Mapped[str | None] = mapped_column(String(256), index=True)
    piece_id: Mapped[str | None] = mapped_column(String(256), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    instruments: Mapped[list[str]] = mapped_column(JSON, default=list)
    ensemble: Mapped[str | None] = mapped_column(String(128))
    tune_type: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(128))
    key: Mapped[str | None] = mapped_column(String(16))
    mode: Mapped[str | None] = mapped_column(String(32))
    meter: Mapped[str | None] = mapped_column(String(16))
    tempo_bpm: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer, default=1)
    loudness_db: Mapped[float | None] = mapped_column(Float)
    audio_format: Mapped[str] = mapped_column(String(16))
    license: Mapped[str | None] = mapped_column(String(256))
    split: Mapped[str | None] = mapped_column(String(16), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    audio_path: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="catalog", index=True)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )


class Embedding(Base):
    """A track's vector for one encoder (several encoders can coexist)."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("track_id", "encoder_id", name="uq_embedding_track_encoder"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    encoder_id: Mapped[str] = mapped_column(String(128), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, L2-normalised
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    track: Mapped[Track] = relationship(back_populates="embeddings")


class IngestRun(Base):
    """One `tunescope ingest` invocation and its outcome."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # running | done | failed | interrupted
    status: Mapped[str] = mapped_column(String(16), default="running")
    pid: Mapped[int | None] = mapped_column(Integer)
    paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    n_seen: Mapped[int] = mapped_column(Integer, default=0)
    n_ingested: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_quarantined: Mapped[int] = mapped_column(Integer, default=0)


class Quarantine(Base):
    """A file that could not be ingested, and why."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=func.now())


class BackfillJob(Base):
    """A request to generate tracks for a query the catalog answers weakly.

    The queue lives in this table so that it shares the catalog's transactions: a keeper's
    track, embedding and provenance commit together, and a job's lease, attempts and outcome
    survive any worker's death. ``key_hash`` identifies equivalent requests (same normalised
    query and options) so a burst of identical weak searches queues one job.
    """

    __tablename__ = "backfill_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), index=True)
    query: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # queued | running | done | failed
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result_track_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class TrackProvenance(Base):
    """How a generated track was made: enough to reproduce it and to audit its novelty.

    One row per generated track (``track_id`` is unique), written in the same transaction as
    the track and its embedding. ``(job_id, candidate_index)`` is unique: it is the
    idempotency key that keeps a retried job from storing the same candidate twice.
    ``prior_samples`` are the diffusion prior's targets as little-endian float32 bytes
    ``[prior_count, prior_dim]``.
    """

    __tablename__ = "track_provenance"
    __table_args__ = (
        UniqueConstraint("job_id", "candidate_index", name="uq_provenance_job_candidate"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), unique=True, index=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("backfill_jobs.id", ondelete="SET NULL"), index=True)
    candidate_index: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    prior_samples: Mapped[bytes | None] = mapped_column(LargeBinary)
    prior_count: Mapped[int] = mapped_column(Integer, default=0)
    prior_dim: Mapped[int] = mapped_column(Integer, default=0)
    generator_id: Mapped[str] = mapped_column(String(128))
    weights_id: Mapped[str | None] = mapped_column(String(128))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    neighbour_track_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Conversation(Base):
    """One conversational-recommender session: its steering state, versioned.

    ``state`` is the whole memory the next turn steers from (constraints, examples, tracks
    shown); ``version`` grows by one per turn so that two messages racing on one conversation
    cannot both apply to the same old state (optimistic locking in ``index.repo.conversations``).
    """

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    encoder_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    messages: Mapped[list[ConversationMessage]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ConversationMessage.seq")


class ConversationMessage(Base):
    """One message of a conversation: the user's turn or the recommender's answer.

    ``payload`` keeps what the history must show again: the user's liked and disliked ids, or
    the answer's understood critique and result ids.
    """

    __tablename__ = "conversation_messages"
    __table_args__ = (UniqueConstraint("conversation_id", "seq", name="uq_conversation_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

"""Backfill jobs and the provenance of generated tracks (index/models.py).

``tracks.origin`` ("catalog" | "generated", indexed) already exists since 0001; this revision
adds the job queue (``backfill_jobs``) and one provenance row per generated track
(``track_provenance``), unique per (job, candidate) so a retried job never stores a duplicate.

Revision ID: 0002_backfill
Revises: 0001_initial
Create Date: 2026-12-02 00:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_backfill"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``backfill_jobs`` and ``track_provenance`` with their indexes."""
    op.create_table(
        "backfill_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result_track_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("backfill_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backfill_jobs_key_hash"), ["key_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_backfill_jobs_status"), ["status"], unique=False)

    op.create_table(
        "track_provenance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("candidate_index", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prior_samples", sa.LargeBinary(), nullable=True),
        sa.Column("prior_count", sa.Integer(), nullable=False),
        sa.Column("prior_dim", sa.Integer(), nullable=False),
        sa.Column("generator_id", sa.String(length=128), nullable=False),
        sa.Column("weights_id", sa.String(length=128), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("neighbour_track_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["backfill_jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "candidate_index", name="uq_provenance_job_candidate"),
    )
    with op.batch_alter_table("track_provenance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_provenance_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_track_provenance_track_id"), ["track_id"], unique=True)


def downgrade() -> None:
    """Drop what :func:`upgrade` created, the provenance (which points at jobs) first."""
    with op.batch_alter_table("track_provenance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_provenance_track_id"))
        batch_op.drop_index(batch_op.f("ix_track_provenance_job_id"))
    op.drop_table("track_provenance")
    with op.batch_alter_table("backfill_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backfill_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_backfill_jobs_key_hash"))
    op.drop_table("backfill_jobs")

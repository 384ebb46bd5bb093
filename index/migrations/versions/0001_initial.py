"""Initial catalog schema: tracks, embeddings, ingest runs, quarantine (index/models.py).

Revision ID: 0001_initial
Revises: (none)
Create Date: 2026-11-29 08:48:35.107382
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001_initial'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the ingest_runs, quarantine, tracks and embeddings tables with their indexes."""
    op.create_table('ingest_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('paths', sa.JSON(), nullable=False),
    sa.Column('n_seen', sa.Integer(), nullable=False),
    sa.Column('n_ingested', sa.Integer(), nullable=False),
    sa.Column('n_duplicates', sa.Integer(), nullable=False),
    sa.Column('n_quarantined', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tracks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('artist', sa.String(length=512), nullable=True),
    sa.Column('collection', sa.String(length=256), nullable=True),
    sa.Column('piece_id', sa.String(length=256), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('instruments', sa.JSON(), nullable=False),
    sa.Column('ensemble', sa.String(length=128), nullable=True),
    sa.Column('tune_type', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=128), nullable=True),
    sa.Column('key', sa.String(length=16), nullable=True),
    sa.Column('mode', sa.String(length=32), nullable=True),
    sa.Column('meter', sa.String(length=16), nullable=True),
    sa.Column('tempo_bpm', sa.Float(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('loudness_db', sa.Float(), nullable=True),
    sa.Column('audio_format', sa.String(length=16), nullable=False),
    sa.Column('license', sa.String(length=256), nullable=True),
    sa.Column('split', sa.String(length=16), nullable=True),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('audio_path', sa.Text(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('ingest_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ingest_run_id'], ['ingest_runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracks_artist'), ['artist'], unique=False)
        batch_op.create_index(batch_op.f('ix_tracks_collection'), ['collection'], unique=False)
        batch_op.create_index(batch_op.f('ix_tracks_content_hash'), ['content_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_tracks_origin'), ['origin'], unique=False)
        batch_op.create_index(batch_op.f('ix_tracks_piece_id'), ['piece_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tracks_split'), ['split'], unique=False)

    op.create_table('embeddings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.Integer(), nullable=False),
    sa.Column('encoder_id', sa.String(length=128), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('track_id', 'encoder_id', name='uq_embedding_track_encoder')
    )
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_embeddings_encoder_id'), ['encoder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_embeddings_track_id'), ['track_id'], unique=False)



def downgrade() -> None:
    """Drop everything :func:`upgrade` created, dependants (embeddings) first."""
    with op.batch_alter_table('embeddings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_embeddings_track_id'))
        batch_op.drop_index(batch_op.f('ix_embeddings_encoder_id'))

    op.drop_table('embeddings')
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracks_split'))
        batch_op.drop_index(batch_op.f('ix_tracks_piece_id'))
        batch_op.drop_index(batch_op.f('ix_tracks_origin'))
        batch_op.drop_index(batch_op.f('ix_tracks_content_hash'))
        batch_op.drop_index(batch_op.f('ix_tracks_collection'))
        batch_op.drop_index(batch_op.f('ix_tracks_artist'))

    op.drop_table('tracks')
    op.drop_table('quarantine')
    op.drop_table('ingest_runs')

"""Engine settings and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from index.db import create_engine_for, migrate, open_catalog, session_scope
from index.models import Base, IngestRun


def test_migrations_create_exactly_the_orm_schema(db_url: str) -> None:
    engine = create_engine_for(db_url)
    migrate(engine)
    migrate(db_url)  # idempotent, also from a URL
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        tables = set(inspect(conn).get_table_names())
    assert {"tracks", "embeddings", "ingest_runs", "quarantine", "alembic_version"} <= tables
    engine.dispose()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'sub' / 'c.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_session_scope_commits_or_rolls_back(factory) -> None:
    with session_scope(factory) as session:
        session.add(IngestRun(status="done"))
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        session.add(IngestRun(status="failed"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(factory) as session:
        assert session.scalars(select(IngestRun.status)).all() == ["done"]


def test_open_catalog_keeps_objects_readable_after_commit(db_url: str) -> None:
    maker = open_catalog(db_url)
    with session_scope(maker) as session:
        run = IngestRun(status="done", paths=["x"])
        session.add(run)
    assert run.paths == ["x"] and run.id is not None  # no DetachedInstanceError
    maker.kw["bind"].dispose()

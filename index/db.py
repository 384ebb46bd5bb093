"""Catalog database plumbing: engines, migrations and sessions.

Every command opens the catalog through :func:`open_catalog`, which applies pending Alembic
migrations first, so a database is never used with a schema older than the code. Alembic is
configured in code (no ``alembic.ini``) so the migrations ship inside the wheel as package data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# SQLite waits this long for a competing writer (another ingest, the API) instead of failing
# at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine_for(url: str) -> Engine:
    """Create an engine with the connection settings tunescope relies on.

    For SQLite: WAL journal (readers never block the single writer, so the API keeps serving
    while an ingest commits), foreign keys ON (SQLite ignores them by default, which would let
    embeddings outlive their track) and a busy timeout. The parent directory of a SQLite file
    is created, so a fresh ``TUNESCOPE_HOME`` works.

    Args:
        url: any SQLAlchemy URL, e.g. ``sqlite:///var/tunescope.db`` or
            ``postgresql+psycopg://user@host/db``.

    Returns:
        The engine (``pool_pre_ping`` on for servers, so a restarted PostgreSQL is survived).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable across application crashes in WAL mode (only an OS crash can
                # lose the last commits), and much faster than FULL.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return engine


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code, pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal '%' in a URL (escaped password) must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Upgrade the catalog schema to ``revision`` (idempotent; cheap when already there).

    Args:
        engine_or_url: an engine (its pragmas and pool are reused) or a URL.
        revision: target revision, ``head`` by default.
    """
    engine = create_engine_for(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def open_catalog(url: str) -> sessionmaker[Session]:
    """Open (and migrate) the catalog at ``url``; return its session factory.

    ``expire_on_commit=False`` so objects returned by a committed unit of work (the tracks an
    ingest batch inserted, say) stay readable after their session is closed.
    """
    engine = create_engine_for(url)
    migrate(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

"""Alembic environment, configured from code by :func:`index.db.migrate`.

A connection passed in ``config.attributes["connection"]`` is used as is (the caller owns the
transaction); otherwise ``sqlalchemy.url`` is used, which is what the ``alembic`` command line
gets when pointed at this folder for authoring new revisions.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from index.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database.

    Over the caller's connection when :func:`index.db.migrate` passed one (its transaction is
    the caller's), else over a short-lived engine of ``sqlalchemy.url`` (the ``alembic``
    command line's case).
    """
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()

"""Alembic migrations of the catalog schema (applied by :func:`index.db.migrate`)."""

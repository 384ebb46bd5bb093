"""Database sync: the catalog is the source of truth, a saved index is a cache of it.

At start :func:`open_index` compares the saved manifest's watermark with the ``embeddings`` rows
of the encoder and either applies the difference (new or deleted tracks) or rebuilds from
scratch, so a crash between a database write and an index save never serves stale results for
long. This is the only module of the package that reads the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from index.errors import CatalogError
from index.models import Embedding
from index.vectors.factory import IndexConfig
from index.vectors.faiss_index import REBUILD_FRACTION, VectorIndex
from index.vectors.manifest import Watermark, persist

log = logging.getLogger(__name__)


def open_index(directory: Path | str, encoder_id: str, dim: int,
               session_factory: Callable[[], Session], *, config: IndexConfig | None = None,
               save: bool = True) -> VectorIndex:
    """The index for ``encoder_id``, brought in line with the database.

    Loads the saved index, compares its watermark with the ``embeddings`` rows of this
    encoder and applies the difference (rows added since, tracks deleted since); rebuilds
    from the database when there is no usable index (none, unreadable, damaged: see
    :meth:`VectorIndex.load`), the dimension or factory rule disagrees, or the difference is
    a large part of the index. Saves when anything changed, or to give an unverified
    (version 1) index its checksum.

    Never fails because of what is on disk: a save that fails (read-only or missing folder,
    full disk) is logged by :func:`persist` and the index is served from memory.
    """
    config = config or IndexConfig()
    vi = VectorIndex.load(directory, encoder_id, config)
    with session_factory() as session:
        current = db_watermark(session, encoder_id)
        if vi is not None and vi.dim != dim:
            log.info("index dimension %d != encoder dimension %d: rebuilding", vi.dim, dim)
            vi = None
        if vi is not None and config.factory and config.factory != vi.factory:
            log.info("factory %s != saved %s: rebuilding", config.factory, vi.factory)
            vi = None
        in_sync = vi is not None and asdict(vi.watermark) == asdict(current)
        if vi is None or (not in_sync and apply_changes(vi, session, current)):
            vi = rebuild_index(session, encoder_id, dim, config=config)
            in_sync = False
        vi._watermark = current
    if save and not (in_sync and vi.verified):
        persist(vi, directory)
    return vi


def apply_changes(vi: VectorIndex, session: Session, current: Watermark) -> bool:
    """Apply the database's changes since ``vi``'s watermark; True when a rebuild is better."""
    db_ids = np.fromiter(session.scalars(
        select(Embedding.track_id).where(Embedding.encoder_id == vi.encoder_id)), np.int64)
    live = vi.ids()
    gone = np.setdiff1d(live, db_ids, assume_unique=True)
    new_rows = select(Embedding.track_id, Embedding.vector).where(
        Embedding.encoder_id == vi.encoder_id,
        Embedding.id > vi.watermark.max_embedding_id)
    n_new = session.execute(select(func.count()).select_from(new_rows.subquery())).scalar_one()
    missing = np.setdiff1d(db_ids, live, assume_unique=True)
    changes = len(gone) + max(n_new, len(missing))
    if changes > REBUILD_FRACTION * max(len(live), 1) and changes > 1000:
        return True
    vi.remove(gone)
    # New rows plus any id the index lacks (e.g. a save lost in a crash).
    rows = session.execute(new_rows).all()
    if len(missing):
        have = {r[0] for r in rows}
        extra = [int(i) for i in missing if int(i) not in have]
        for start in range(0, len(extra), 10_000):
            chunk = extra[start:start + 10_000]
            rows += session.execute(select(Embedding.track_id, Embedding.vector).where(
                Embedding.encoder_id == vi.encoder_id,
                Embedding.track_id.in_(chunk))).all()
    if rows:
        ids = np.array([r[0] for r in rows], np.int64)
        vecs = _decode_rows([r[1] for r in rows], vi.dim)
        vi.add(ids, vecs)
    log.info("index %s synced: +%d -%d", vi.encoder_id, len(rows), len(gone))
    return False


def rebuild_index(session: Session, encoder_id: str, dim: int, *,
                  config: IndexConfig | None = None) -> VectorIndex:
    """A fresh index from every ``embeddings`` row of ``encoder_id``."""
    ids, vectors = load_embeddings(session, encoder_id, dim)
    config = config or IndexConfig()
    vi = VectorIndex.create(encoder_id, dim, factory=config.factory, expected_size=len(ids),
                            config=config)
    if len(ids):
        vi.train(vectors)
        vi.add(ids, vectors)
    vi._watermark = db_watermark(session, encoder_id)
    log.info("index %s rebuilt: %d vectors, %s", encoder_id, len(ids), vi.factory)
    return vi


# ---------------------------------------------------------------------- database helpers

def db_watermark(session: Session, encoder_id: str) -> Watermark:
    """The database side of the manifest check for one encoder."""
    max_id, count = session.execute(
        select(func.coalesce(func.max(Embedding.id), 0), func.count(Embedding.id))
        .where(Embedding.encoder_id == encoder_id)).one()
    return Watermark(max_embedding_id=int(max_id), count=int(count))


def iter_embeddings(session: Session, encoder_id: str, dim: int,
                    batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(track_ids [b], vectors [b, dim])`` batches of one encoder's rows, in id order."""
    last = 0
    while True:
        rows = session.execute(
            select(Embedding.id, Embedding.track_id, Embedding.vector, Embedding.dim)
            .where(Embedding.encoder_id == encoder_id, Embedding.id > last)
            .order_by(Embedding.id).limit(batch)).all()
        if not rows:
            return
        for r in rows:
            if r[3] != dim:
                raise CatalogError(f"embedding of track {r[1]} has dim {r[3]}, encoder "
                                   f"{encoder_id!r} expects {dim}")
        last = rows[-1][0]
        yield np.array([r[1] for r in rows], np.int64), _decode_rows([r[2] for r in rows], dim)


def load_embeddings(session: Session, encoder_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row of one encoder: ``(track_ids [n], vectors [n, dim])``."""
    parts = list(iter_embeddings(session, encoder_id, dim))
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _decode_rows(blobs: list[bytes], dim: int) -> np.ndarray:
    buf = b"".join(blobs)
    if len(buf) != 4 * dim * len(blobs):
        raise CatalogError(f"embedding blobs are not {dim} float32 values each")
    return np.frombuffer(buf, dtype="<f4").reshape(len(blobs), dim).astype(np.float32)


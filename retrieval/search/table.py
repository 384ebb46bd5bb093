"""The in-memory column store of the catalog's filterable metadata.

Filters are answered here, not by SQL per query: a filter becomes a sorted array of allowed
track ids in a few milliseconds even on a million tracks. Which columns it holds, and how each
is matched, comes from :data:`~retrieval.search.fields.FILTER_FIELDS`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from index.models import Embedding, Track
from retrieval.search.fields import FILTER_FIELDS, FilterField, range_fields, value_fields

#: Columns every ``TrackMeta`` holds besides the filters': the per-piece diversity cap's.
_EXTRA_COLUMNS = ("piece_id",)


def _meta_columns(fields: Sequence[FilterField]) -> list[tuple[str, FilterField | None]]:
    """``(column, field or None)`` for every ``TrackMeta`` attribute after ``id``, deduplicated."""
    out: dict[str, FilterField | None] = {}
    for f in fields:
        out.setdefault(f.column, f)
    for c in _EXTRA_COLUMNS:
        out.setdefault(c, None)
    return list(out.items())


def make_track_meta_type(fields: Sequence[FilterField], name: str = "TrackMeta") -> type:
    """A dataclass of the filterable and diversity-relevant fields of one track.

    ``id``, then one attribute per distinct column of ``fields`` (list kinds default to ``()``,
    others to None), then ``piece_id``. The class carries ``FIELDS`` and the constructors
    :meth:`from_track` (an ORM row) and :meth:`from_values` (column values in ``COLUMNS`` order).
    """
    columns = _meta_columns(fields)
    specs: list[tuple[str, Any, Any]] = [("id", int)]
    for col, f in columns:
        if f is not None and f.kind == "list":
            specs.append((col, Sequence[str], dataclasses.field(default=())))
        else:
            specs.append((col, Any, dataclasses.field(default=None)))
    lists = frozenset(col for col, f in columns if f is not None and f.kind == "list")
    names = tuple(col for col, _ in columns)

    def from_values(cls: type, track_id: int, values: Sequence[Any]) -> Any:
        """From column values in ``COLUMNS`` order (list columns: ``None`` reads as empty)."""
        return cls(id=track_id, **{c: tuple(v or ()) if c in lists else v
                                   for c, v in zip(names, values, strict=True)})

    def from_track(cls: type, t: Track) -> Any:
        """The metadata of an ORM track."""
        return cls.from_values(t.id, [getattr(t, c) for c in names])

    cls = dataclasses.make_dataclass(
        name, specs, namespace={
            "FIELDS": tuple(fields), "COLUMNS": names, "from_values": classmethod(from_values),
            "from_track": classmethod(from_track),
            "__doc__": "The filterable and diversity-relevant fields of one track."})
    cls.__module__ = __name__
    return cls


#: The metadata of one track, as the column store holds it.
TrackMeta: Any = make_track_meta_type(FILTER_FIELDS)


def _norm(v: str) -> str:
    return v.strip().casefold()


class TrackTable:
    """In-memory column store of track metadata: inverted lists per value, numeric arrays.

    Kept in step with the catalog by :class:`~retrieval.search.service.SearchService` on every
    add and delete. ``fields``: the filters it answers (default :data:`FILTER_FIELDS`).
    """

    def __init__(self, rows: Iterable[Any] = (),
                 fields: Sequence[FilterField] = FILTER_FIELDS) -> None:
        self.fields = tuple(fields)
        self._values_fields = value_fields(self.fields)
        self._range_fields = range_fields(self.fields)
        self._rows: dict[int, Any] = {}
        self._inv: dict[str, dict[str, set[int]]] = {f.name: {} for f in self._values_fields}
        self._lock = threading.RLock()
        self._cols: dict[str, np.ndarray] | None = None
        self._inv_cache: dict[tuple[str, str], np.ndarray] = {}
        for r in rows:
            self.upsert(r)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._rows

    def get(self, track_id: int) -> Any | None:
        """The :data:`TrackMeta` of a track, or None if the table does not hold it."""
        return self._rows.get(track_id)

    def upsert(self, meta: Any) -> None:
        """Add or replace a track's :data:`TrackMeta` (its old values leave the inverted lists)."""
        with self._lock:
            self.remove(meta.id)
            self._rows[meta.id] = meta
            for f, values in self._values(meta):
                for v in values:
                    self._inv[f].setdefault(v, set()).add(meta.id)
            self._changed()

    def remove(self, track_id: int) -> None:
        """Drop a track from every list and column; an unknown id is a no-op."""
        with self._lock:
            meta = self._rows.pop(track_id, None)
            if meta is None:
                return
            for f, values in self._values(meta):
                for v in values:
                    self._inv[f].get(v, set()).discard(track_id)
            self._changed()

    def _changed(self) -> None:
        self._cols = None
        self._inv_cache.clear()

    def _values(self, meta: Any) -> Iterable[tuple[str, list[str]]]:
        for f in self._values_fields:
            v = getattr(meta, f.column)
            if v is None:
                continue
            items = [v] if isinstance(v, str) else list(v)
            yield f.name, [_norm(x) for x in items if isinstance(x, str) and x.strip()]

    def _columns(self) -> dict[str, np.ndarray]:
        if self._cols is None:
            ids = np.fromiter(self._rows.keys(), np.int64, len(self._rows))
            order = np.argsort(ids)
            rows = list(self._rows.values())

            def num(name: str) -> np.ndarray:
                a = np.array([getattr(r, name) if getattr(r, name) is not None else np.nan
                              for r in rows], np.float64)
                return a[order]

            self._cols = {"id": ids[order], **{f.column: num(f.column)
                                               for f in self._range_fields}}
        return self._cols

    def _ids_for(self, f: str, value: str) -> np.ndarray:
        key = (f, value)
        if key not in self._inv_cache:
            self._inv_cache[key] = np.sort(np.fromiter(self._inv[f].get(value, ()), np.int64))
        return self._inv_cache[key]

    def match(self, filters: Any) -> np.ndarray | None:
        """Sorted ids passing ``filters``; ``None`` when the filters are empty (all pass)."""
        if filters.is_empty():
            return None
        with self._lock:
            result: np.ndarray | None = None
            for f in self._values_fields:
                values = getattr(filters, f.name)
                if not values:
                    continue
                parts = [self._ids_for(f.name, _norm(v)) for v in values]
                ids = np.unique(np.concatenate(parts)) if len(parts) > 1 else parts[0]
                result = ids if result is None else np.intersect1d(result, ids, True)
            cols = self._columns()
            mask = self._range_mask(filters, cols)
            if mask is not None:
                ids = cols["id"][mask]
                result = ids if result is None else np.intersect1d(result, ids, True)
            return result if result is not None else cols["id"]

    def _range_mask(self, filters: Any, cols: dict[str, np.ndarray]) -> np.ndarray | None:
        """Rows (in id order) inside every range of ``filters``; None when no range is set."""
        mask = None
        for f in self._range_fields:
            lo, hi = (getattr(filters, k) for k in f.keys)
            if lo is None and hi is None:
                continue
            col = cols[f.column]
            with np.errstate(invalid="ignore"):
                m = ~np.isnan(col)
                if lo is not None:
                    m &= col >= lo
                if hi is not None:
                    m &= col <= hi
            mask = m if mask is None else mask & m
        return mask

    @classmethod
    def load(cls, session: Session, encoder_id: str, meta_type: Any = None) -> TrackTable:
        """The metadata of every track embedded by ``encoder_id``.

        ``meta_type``: a :func:`make_track_meta_type` class (default :data:`TrackMeta`); its
        ``COLUMNS`` are the SELECT and its ``FIELDS`` the table's filters.
        """
        meta_type = meta_type or TrackMeta
        rows = session.execute(
            select(Track.id, *(getattr(Track, c) for c in meta_type.COLUMNS))
            .join(Embedding, Embedding.track_id == Track.id)
            .where(Embedding.encoder_id == encoder_id)).all()
        return cls((meta_type.from_values(r[0], r[1:]) for r in rows), meta_type.FIELDS)

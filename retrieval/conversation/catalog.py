"""What the conversation knows of the catalog: each searchable track's attributes, as arrays.

Loaded once per engine from the database (the column store holds the filter columns, not the
titles or the derived density and register). Exclusions and relative bounds ("no piano",
"busier than #1") become id sets from these arrays in microseconds; the parser's vocabulary
(instruments, composers, collections, tune types, titles) comes from the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from index.models import Embedding, Track
from retrieval.conversation.attributes import facts
from retrieval.conversation.parser import Vocabulary

_COLUMNS = ("title", "artist", "collection", "tune_type", "ensemble", "instruments", "mode",
            "meter", "tempo_bpm", "split")


@dataclass
class _Row:
    id: int
    title: str | None
    artist: str | None
    collection: str | None
    tune_type: str | None
    ensemble: str | None
    instruments: list[str]
    mode: str | None
    meter: str | None
    tempo_bpm: float | None
    split: str | None


class CatalogFacts:
    """Per-track attributes (:func:`retrieval.conversation.attributes.facts`) by id and as arrays.

    Attributes:
        ids: track ids ``[n]`` (sorted).
        tempo / density / register: float arrays ``[n]`` (NaN where unknown).
        mode / meter: family and class names ``[n]`` (object arrays, None where unknown).
        rows: the metadata rows by id (titles for replies, splits for the evaluation).
    """

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows: dict[int, Any] = {int(r.id): r for r in rows}
        self.ids = np.array(sorted(self.rows), np.int64)
        self.facts = {i: facts(self.rows[i]) for i in self.ids.tolist()}
        fs = [self.facts[i] for i in self.ids.tolist()]

        def num(key: str) -> np.ndarray:
            return np.array([np.nan if f[key] is None else f[key] for f in fs], np.float64)

        self.tempo, self.density, self.register = num("tempo"), num("density"), num("register")
        self.mode = np.array([f["mode"] for f in fs], object)
        self.meter = np.array([f["meter"] for f in fs], object)
        self.families = [f["families"] for f in fs]
        self.instruments = [f["instruments"] for f in fs]

    @classmethod
    def load(cls, session_factory: Callable[[], Session], encoder_id: str) -> CatalogFacts:
        """The tracks embedded by ``encoder_id`` (the ones search can return)."""
        with session_factory() as session:
            rows = session.execute(
                select(Track.id, *(getattr(Track, c) for c in _COLUMNS))
                .join(Embedding, Embedding.track_id == Track.id)
                .where(Embedding.encoder_id == encoder_id)).all()
        return cls(_Row(r[0], *r[1:]) for r in rows)

    def __len__(self) -> int:
        return len(self.ids)

    def vocabulary(self) -> Vocabulary:
        """The parser's vocabulary: the catalog's instruments, composers, collections, titles."""
        rows = self.rows.values()
        return Vocabulary.build({i for r in rows for i in (r.instruments or ())},
                                {r.artist for r in rows}, {r.collection for r in rows},
                                {r.tune_type for r in rows}, {r.title for r in rows})

    def values(self, column: str) -> list[str]:
        """Distinct values of a metadata column (``mode``, ``meter``), for building filters."""
        return sorted({getattr(r, column) for r in self.rows.values() if getattr(r, column)})

    def matching(self, field: str, value: str) -> np.ndarray:
        """Ids of tracks that have ``value`` for ``field`` (mode, meter, instrument, family)."""
        if field == "mode":
            mask = self.mode == value
        elif field == "meter":
            mask = self.meter == value
        elif field == "instrument":
            mask = np.array([value in s for s in self.instruments], bool)
        else:
            mask = np.array([value in s for s in self.families], bool)
        return self.ids[mask]

    def outside(self, attr: str, lo: float | None, hi: float | None) -> np.ndarray:
        """Ids whose ``attr`` (density, register) is unknown or outside ``[lo, hi]``."""
        col = {"density": self.density, "register": self.register, "tempo": self.tempo}[attr]
        with np.errstate(invalid="ignore"):
            keep = ~np.isnan(col)
            if lo is not None:
                keep &= col >= lo
            if hi is not None:
                keep &= col <= hi
        return self.ids[~keep]

    def title_ids(self, title: str) -> list[int]:
        """Tracks with exactly this title (several renders of one piece share it)."""
        return [i for i, r in self.rows.items() if r.title == title]

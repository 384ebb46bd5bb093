"""The one declaration of the metadata filters: every filter-shaped thing derives from it.

Why: a filter on an existing catalog column used to be spelled out in nine places (the service's
filter record, the column store, its loader, the API's body, query parameters and web form...).
:data:`FILTER_FIELDS` is now the only list: :class:`~retrieval.search.filters.Filters`,
:class:`~retrieval.search.table.TrackMeta`, :class:`~retrieval.search.table.TrackTable` (its
inverted lists, numeric columns and SELECT) and the service's range validation read it, and the
API derives its query parameters, JSON body and web form from it. Adding a filter on a column of
:class:`index.models.Track` is one entry here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: ``categorical``: one value per track; ``list``: a track holds several (tags, instruments);
#: ``range``: a numeric column filtered by an inclusive min/max.
FilterKind = Literal["categorical", "list", "range"]


@dataclass(frozen=True)
class FilterField:
    """One filterable column of the catalog.

    Attributes:
        name: key in :class:`Filters` and in the API's JSON body ("collection", "tempo"); a
            range field appears as ``<name>_min`` / ``<name>_max``.
        column: attribute of :class:`index.models.Track` and of ``TrackMeta`` ("tempo_bpm").
        kind: see :data:`FilterKind`.
        help: one line for OpenAPI and the web page.
        param: query-parameter name when it differs from ``name`` ("instrument": one value
            per repeated parameter reads better in the singular).
        lo / hi: range kinds: the smallest / largest bound the API accepts.
        unit: range kinds: the unit shown beside the bounds ("BPM", "s").
    """

    name: str
    column: str
    kind: FilterKind
    help: str
    param: str | None = None
    lo: float = 0.0
    hi: float = 1e6
    unit: str = ""

    @property
    def query_name(self) -> str:
        """The query-parameter name: ``param`` when given, else ``name``."""
        return self.param or self.name

    @property
    def keys(self) -> tuple[str, ...]:
        """This field's attribute names in :class:`Filters` (``tempo_min``, ``tempo_max``)."""
        return (f"{self.name}_min", f"{self.name}_max") if self.kind == "range" else (self.name,)


FILTER_FIELDS: tuple[FilterField, ...] = (
    FilterField("collection", "collection", "categorical", "Source collection (e.g. oneill, bach)."),
    FilterField("tags", "tags", "list", "Tracks carrying any of these tags."),
    FilterField("instruments", "instruments", "list", "Tracks featuring any of these instruments.",
                param="instrument"),
    FilterField("key", "key", "categorical", "Tonic of the key (e.g. D, G)."),
    FilterField("mode", "mode", "categorical", "Mode (major, minor, dorian...)."),
    FilterField("meter", "meter", "categorical", "Time signature (e.g. 6/8)."),
    FilterField("origin", "origin", "categorical", "catalog (ingested) or generated."),
    FilterField("artist", "artist", "categorical", "Artist or composer."),
    FilterField("tempo", "tempo_bpm", "range", "Tempo in beats per minute.", lo=0.0, hi=1000.0,
                unit="BPM"),
    FilterField("duration", "duration_s", "range", "Duration in seconds.", lo=0.0, hi=1e6,
                unit="s"),
    FilterField("tune_type", "tune_type", "categorical", "Tune type (jig, reel, air, chorale...)."),
    FilterField("ensemble", "ensemble", "categorical", "Ensemble (solo fiddle, string quartet...)."),
)


def value_fields(fields: Sequence[FilterField]) -> tuple[FilterField, ...]:
    """The categorical and list fields (answered from inverted lists), in declaration order."""
    return tuple(f for f in fields if f.kind != "range")


def range_fields(fields: Sequence[FilterField]) -> tuple[FilterField, ...]:
    """The range fields (answered from numeric columns), in declaration order."""
    return tuple(f for f in fields if f.kind == "range")

"""``Filters``: the metadata filters of a query, one attribute per key of :data:`FILTER_FIELDS`.

The class is generated from the field declarations (:func:`make_filters_type`), so a new
filter is one :class:`FilterField` entry, and it stays a plain frozen dataclass: keyword
construction, ``dataclasses.replace``, equality and hashing work as callers expect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from retrieval.errors import InvalidQueryError
from retrieval.search.fields import FILTER_FIELDS, FilterField

_DOC = """Metadata filters: values within a field match any of them, fields combine with AND.

    Text values match case-insensitively; list fields (``tags``, ``instruments``) match when the
    track carries any of the given values. Ranges (``<name>_min`` / ``<name>_max``) are
    inclusive; a track without the value (no tempo known) never matches a range on it.
    Generated from :data:`retrieval.search.fields.FILTER_FIELDS`.
    """


def make_filters_type(fields: Sequence[FilterField], name: str = "Filters") -> type:
    """A frozen dataclass with one attribute per filter key of ``fields``.

    Categorical and list fields become ``tuple[str, ...]`` (default empty), range fields a
    ``float | None`` pair ``<name>_min`` / ``<name>_max`` (default None), in declaration order.
    The class carries ``FIELDS`` (the declarations), :meth:`is_empty` and :meth:`from_values`.
    """
    specs: list[tuple[str, Any, Any]] = []
    for f in fields:
        if f.kind == "range":
            specs += [(key, float | None, dataclasses.field(default=None)) for key in f.keys]
        else:
            specs.append((f.name, tuple[str, ...], dataclasses.field(default=())))
    value_names = tuple(f.name for f in fields if f.kind != "range")
    range_names = tuple(k for f in fields if f.kind == "range" for k in f.keys)

    def is_empty(self: Any) -> bool:
        """True when no field restricts anything (every track passes)."""
        return not any(getattr(self, n) for n in value_names) and all(
            getattr(self, n) is None for n in range_names)

    def from_values(cls: type, values: Mapping[str, Any]) -> Any:
        """Filters from ``{key: value}`` (the API's parsed body or query parameters).

        Keys are field names, or ``<name>_min`` / ``<name>_max`` for ranges. A list value
        becomes a tuple (a single string one value); ``None`` and empty values are left unset.

        Raises:
            InvalidQueryError: a key that names no filter.
        """
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in range_names:
                kwargs[key] = value
            elif key in value_names:
                kwargs[key] = (value,) if isinstance(value, str) else tuple(value or ())
            else:
                raise InvalidQueryError(f"unknown filter {key!r}; use one of "
                                        f"{', '.join((*value_names, *range_names))}")
        return cls(**kwargs)

    cls = dataclasses.make_dataclass(
        name, specs, frozen=True,
        namespace={"FIELDS": tuple(fields), "is_empty": is_empty,
                   "from_values": classmethod(from_values), "__doc__": _DOC})
    cls.__module__ = __name__
    return cls


#: The filters of every query (see :func:`make_filters_type` for its attributes).
Filters: Any = make_filters_type(FILTER_FIELDS)

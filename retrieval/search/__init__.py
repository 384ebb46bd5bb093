"""Search: query types, filters, the column store, the candidate planner, diversity, the service.

Modules, by concern: :mod:`~retrieval.search.options` (query and result types),
:mod:`~retrieval.search.fields` (the one declaration of the filter fields),
:mod:`~retrieval.search.filters` (``Filters``, derived from it), :mod:`~retrieval.search.table`
(``TrackTable``, ``TrackMeta``), :mod:`~retrieval.search.planner` (ANN vs exact-subset vs grown
search), :mod:`~retrieval.search.diversity` (the one MMR, per-group caps, paging),
:mod:`~retrieval.search.service` (``SearchService``) and generative search
(:mod:`~retrieval.search.generative`, :mod:`~retrieval.search.fusion`).

The public names below are imported on first use, so ``retrieval.search.generative`` or
``retrieval.search.options`` stay importable without SQLAlchemy and FAISS loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrieval.search.fields import FILTER_FIELDS, FilterField, FilterKind
    from retrieval.search.filters import Filters
    from retrieval.search.options import (
        Example,
        Hit,
        InvalidQueryError,
        SearchConfig,
        SearchOptions,
        SearchResult,
        Strategy,
        TrackNotFoundError,
    )
    from retrieval.search.service import SearchService
    from retrieval.search.table import TrackMeta, TrackTable

_EXPORTS = {
    "FILTER_FIELDS": "fields", "FilterField": "fields", "FilterKind": "fields",
    "Filters": "filters",
    "Example": "options", "Hit": "options", "InvalidQueryError": "options",
    "SearchConfig": "options", "SearchOptions": "options", "SearchResult": "options",
    "Strategy": "options", "TrackNotFoundError": "options",
    "SearchService": "service",
    "TrackMeta": "table", "TrackTable": "table",
}
__all__ = ["FILTER_FIELDS", "Example", "FilterField", "FilterKind", "Filters", "Hit",
           "InvalidQueryError", "SearchConfig", "SearchOptions", "SearchResult", "SearchService",
           "Strategy", "TrackMeta", "TrackNotFoundError", "TrackTable"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrieval.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"retrieval.search.{module}"), name)
    globals()[name] = value
    return value
